-- The exams on this computer: the list last seen, downloaded packages, attempts and the
-- answers saved in them (sealed: see exam-core's `seal` module).

-- The exam list as the server last gave it, so it can be shown offline.
CREATE TABLE exam_list (
    username       TEXT    NOT NULL,     -- lab machines are shared: each student's own list
    exam_id        TEXT    NOT NULL,
    position       INTEGER NOT NULL,
    summary        TEXT    NOT NULL,     -- the server's JSON object for this exam
    fetched_at     INTEGER NOT NULL,     -- ms since the Unix epoch
    PRIMARY KEY (username, exam_id)
) WITHOUT ROWID;

-- Downloaded exam packages, kept up to date with ETag / If-None-Match.
CREATE TABLE exam_packages (
    exam_id        TEXT PRIMARY KEY,
    version        INTEGER NOT NULL,
    etag           TEXT,
    package        TEXT    NOT NULL,     -- the package JSON as received (validated)
    downloaded_at  INTEGER NOT NULL,
    checked_at     INTEGER NOT NULL      -- last time the server confirmed it (200 or 304)
) WITHOUT ROWID;

CREATE TABLE attempts (
    attempt_id        TEXT PRIMARY KEY,  -- chosen here (UUID) so an attempt can begin offline
    exam_id           TEXT    NOT NULL,
    username          TEXT    NOT NULL,
    exam_version      INTEGER NOT NULL,  -- the package version it was taken with
    started_at        TEXT    NOT NULL,  -- RFC 3339, the server's clock as best known
    deadline_at       TEXT    NOT NULL,  -- provisional until the server confirms it
    deadline_confirmed INTEGER NOT NULL DEFAULT 0,
    start_entry       INTEGER,           -- the queue entry creating it on the server
    start_error       TEXT,              -- why the server refused to create it, if it did
    status            TEXT    NOT NULL DEFAULT 'in_progress'
                      CHECK (status IN ('in_progress', 'submitted', 'closed')),
    current_question  TEXT,
    submitted_at      TEXT,
    submit_entry      INTEGER,           -- the queue entry of the (latest) submission
    answer_count      INTEGER,
    local_digest      TEXT,
    receipt_id        TEXT,
    receipt_digest    TEXT,
    receipt_late      INTEGER,
    delivered_at      TEXT,
    submit_error      TEXT,
    resends           INTEGER NOT NULL DEFAULT 0,  -- answers sent again after a digest mismatch
    opened_count      INTEGER NOT NULL DEFAULT 0   -- how many times the app opened it
);
CREATE INDEX attempts_open ON attempts (username, status);

CREATE TABLE answers (
    attempt_id       TEXT    NOT NULL REFERENCES attempts (attempt_id),
    question_id      TEXT    NOT NULL,
    value            BLOB,              -- sealed JSON value (NULL: never answered, only flagged)
    seq              INTEGER,           -- the queue seq of its latest save
    entry_id         INTEGER,           -- the queue entry of its latest save
    saved_at         TEXT,              -- when it was saved on this computer
    server_saved_at  TEXT,              -- when the server confirmed its latest save
    flagged          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (attempt_id, question_id)
) WITHOUT ROWID;

-- What the app learned of the server's clock (from `Date` headers), so deadlines do not
-- depend on this computer's clock being right.
CREATE TABLE server_clock (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    offset_ms  INTEGER NOT NULL,        -- server time minus local time
    seen_at    INTEGER NOT NULL
);
