-- The fair-time ledger: when the app was not running during an attempt (a crash, a power
-- cut, a restart). While an attempt is in progress the app notes it is alive every few
-- seconds (`alive_at_ms`, this computer's clock); at its next start, the gap since is a
-- stretch of time the student lost, kept here and reported to the server
-- (`app.not_running`).
ALTER TABLE attempts ADD COLUMN alive_at_ms INTEGER;
CREATE TABLE app_downtime (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    attempt_id  TEXT    NOT NULL,
    started_ms  INTEGER NOT NULL,   -- the last sign of life
    ended_ms    INTEGER NOT NULL,   -- the app running again
    reported    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX app_downtime_attempt ON app_downtime (attempt_id);
