-- The reference server's schema. Times are RFC 3339 UTC text unless named *_ms (Unix ms).

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL
) STRICT;

CREATE TABLE exams (
    id           TEXT PRIMARY KEY,
    title        TEXT NOT NULL,
    version      INTEGER NOT NULL,
    opens_at     TEXT NOT NULL,
    closes_at    TEXT NOT NULL,
    duration_s   INTEGER NOT NULL,
    instructions TEXT NOT NULL,
    questions    TEXT NOT NULL -- JSON array of {id, kind, prompt, options?, max_length?}
) STRICT;

-- One login = one session = one refresh-token family.
CREATE TABLE sessions (
    id             TEXT PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users(id),
    created_at     TEXT NOT NULL,
    revoked_at     TEXT,
    revoked_reason TEXT
) STRICT;
CREATE INDEX sessions_by_user ON sessions(user_id);

-- Refresh tokens are stored as SHA-256 hashes only.
CREATE TABLE refresh_tokens (
    hash           TEXT PRIMARY KEY,
    session_id     TEXT NOT NULL REFERENCES sessions(id),
    parent_hash    TEXT,
    issued_ms      INTEGER NOT NULL,
    rotated_ms     INTEGER,          -- when it was exchanged for its successor
    successor_hash TEXT,
    replaced       INTEGER NOT NULL DEFAULT 0 -- an unused successor replaced by a retried rotation
) STRICT;
CREATE INDEX refresh_by_session ON refresh_tokens(session_id);

CREATE TABLE login_failures (
    id       INTEGER PRIMARY KEY,
    at_ms    INTEGER NOT NULL,
    username TEXT NOT NULL,
    ip       TEXT NOT NULL
) STRICT;
CREATE INDEX failures_by_user ON login_failures(username, at_ms);
CREATE INDEX failures_by_ip ON login_failures(ip, at_ms);

CREATE TABLE attempts (
    id             TEXT PRIMARY KEY,
    exam_id        TEXT NOT NULL REFERENCES exams(id),
    user_id        INTEGER NOT NULL REFERENCES users(id),
    status         TEXT NOT NULL CHECK (status IN ('open', 'submitted')),
    started_at     TEXT NOT NULL,
    deadline_at    TEXT NOT NULL,
    applied_writes INTEGER NOT NULL DEFAULT 0,
    receipt_id     TEXT,
    submitted_at   TEXT,
    answers_digest TEXT,
    late           INTEGER
) STRICT;
CREATE INDEX attempts_by_user ON attempts(user_id);

CREATE TABLE answers (
    attempt_id  TEXT NOT NULL REFERENCES attempts(id),
    question_id TEXT NOT NULL,
    value       TEXT NOT NULL, -- JSON
    seq         INTEGER NOT NULL,
    saved_at    TEXT NOT NULL,
    PRIMARY KEY (attempt_id, question_id)
) STRICT;

CREATE TABLE idempotency (
    principal   TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status      INTEGER NOT NULL,
    body        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (principal, key)
) STRICT;
CREATE INDEX idempotency_by_age ON idempotency(created_ms);

CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    user_id     INTEGER,
    type        TEXT NOT NULL,
    at          TEXT NOT NULL,
    attrs       TEXT NOT NULL,
    received_at TEXT NOT NULL
) STRICT;

CREATE TABLE ip_blocks (
    id         INTEGER PRIMARY KEY,
    cidr       TEXT NOT NULL,
    reason     TEXT NOT NULL,
    until      TEXT,
    created_at TEXT NOT NULL,
    removed_at TEXT
) STRICT;

-- Append-only: every security-relevant event, searchable by admins.
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL,
    type       TEXT NOT NULL,
    username   TEXT,
    ip         TEXT,
    session_id TEXT,
    detail     TEXT NOT NULL -- JSON object
) STRICT;
CREATE INDEX audit_by_type ON audit(type, id);
CREATE INDEX audit_by_user ON audit(username, id);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
