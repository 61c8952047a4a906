-- Sealed exam packages (downloaded days ahead, unreadable until the exam opens).

-- Whether the package kept is the sealed form as it came (its questions are ciphertext).
ALTER TABLE exam_packages ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;

-- A sealed package once a student opened it (with the key from the server, or the start
-- code): the opened package sealed with that student's answer key, so their attempt can be
-- resumed after a restart with neither the network nor the code, and by nobody else.
CREATE TABLE opened_packages (
    origin      TEXT    NOT NULL,
    username    TEXT    NOT NULL,
    exam_id     TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    package     BLOB    NOT NULL,   -- sealed (see exam-core's `seal` module)
    opened_at   TEXT    NOT NULL,   -- RFC 3339, the server's clock as best known
    PRIMARY KEY (origin, username, exam_id, version)
) WITHOUT ROWID;

-- Wrong start codes typed on this computer: each one after the first few makes the next
-- try wait a little longer (a guess at the keyboard is slow; a typo costs nothing).
CREATE TABLE start_code_failures (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    failures    INTEGER NOT NULL,
    last_at     INTEGER NOT NULL    -- ms since the Unix epoch, this computer's clock
);
