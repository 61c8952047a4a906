-- Shared lab machines: everything kept for the server belongs to one student of one server
-- (`origin`, `student`) and is only ever sent with that student's own credentials.
--
-- Rows kept by earlier versions get their student here, from the attempt they belong to; their
-- origin is the server the app is set up for when it first starts after the upgrade
-- (`Queue::adopt_unowned`), since a migration cannot know it. A queued row that belongs to no
-- attempt (telemetry of an earlier version) stays without a student: it is never sent, and is
-- counted for IT.

ALTER TABLE queue ADD COLUMN origin TEXT;
ALTER TABLE queue ADD COLUMN student TEXT;
ALTER TABLE inbox ADD COLUMN origin TEXT;
ALTER TABLE inbox ADD COLUMN student TEXT;
ALTER TABLE attempts ADD COLUMN origin TEXT;
ALTER TABLE exam_list ADD COLUMN origin TEXT;
ALTER TABLE outages ADD COLUMN origin TEXT;
ALTER TABLE outages ADD COLUMN student TEXT;

-- Saves still in the inbox are moved into the queue (as every start does) before this runs:
-- see `store::derive_owners`, the hook of this migration.

-- What can be sent next for one student: priority, then age.
CREATE INDEX queue_owner_ready ON queue (origin, student, priority, created_at, id)
    WHERE status = 'pending';
