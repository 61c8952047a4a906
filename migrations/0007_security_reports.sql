-- Security findings reported about a student on this computer (device integrity), so the
-- student can read everything that was reported about them here. The report itself
-- travels to the server through the queue (`entry_id`).
CREATE TABLE security_reports (
    id          TEXT PRIMARY KEY,   -- the event's id (the server deduplicates by it)
    origin      TEXT NOT NULL,
    student     TEXT NOT NULL,
    at          TEXT NOT NULL,      -- RFC 3339
    event_type  TEXT NOT NULL,      -- security.<code>, or security.cleared
    finding     TEXT NOT NULL,      -- the finding as JSON (code, evidence, confidence …)
    attempt_id  TEXT,
    entry_id    INTEGER
);
CREATE INDEX security_reports_owner ON security_reports (origin, student, at);

-- Behaviour baselines of this computer (requests, refreshes and failures per minute, by hour
-- of the week): robust statistics need weeks of history, so they outlive the process.
CREATE TABLE activity_baselines (
    measure     TEXT PRIMARY KEY,
    state       TEXT NOT NULL       -- the baseline as JSON (exam-core's security::score)
);
