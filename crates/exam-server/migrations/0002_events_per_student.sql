-- Event ids are the client's: two students' clients may pick the same one, so events are
-- deduplicated per (student, id), not globally.
CREATE TABLE events_per_student (
    user_id     INTEGER NOT NULL,
    id          TEXT NOT NULL,
    type        TEXT NOT NULL,
    at          TEXT NOT NULL,
    attrs       TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (user_id, id)
) STRICT;
INSERT OR IGNORE INTO events_per_student (user_id, id, type, at, attrs, received_at)
    SELECT COALESCE(user_id, 0), id, type, at, attrs, received_at FROM events;
DROP TABLE events;
ALTER TABLE events_per_student RENAME TO events;
