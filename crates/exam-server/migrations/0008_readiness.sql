-- Readiness before an exam (`crate::readiness`).

-- The oldest app version that may take an exam (semantic versioning, e.g. `0.2.0`); NULL: any.
-- The app says so on its exam list before the exam, and IT sees machines below it as not ready.
ALTER TABLE exams ADD COLUMN min_client_version TEXT;

-- The latest `device.readiness` report of each machine, as its app judged it: one row per
-- machine, replaced by a newer report (by the app's `checked_at`), never by an older one that
-- arrives late. The report names no student; `user_id` is whose session carried it.
CREATE TABLE machine_readiness (
    device       TEXT PRIMARY KEY,   -- the machine's fingerprint (an HMAC, never a serial)
    lab          TEXT,               -- the app's configured lab name, if it has one
    subnet       TEXT NOT NULL,      -- the sender's /24 (IPv4) or /64 (IPv6): the lab otherwise
    app_version  TEXT NOT NULL,
    checked_ms   INTEGER NOT NULL,   -- when the app judged it (its clock)
    received_ms  INTEGER NOT NULL,   -- when the server received it (the server's clock)
    user_id      INTEGER NOT NULL,
    report       TEXT NOT NULL       -- the event's attrs as JSON (checks, exams, waiting work)
) STRICT;
