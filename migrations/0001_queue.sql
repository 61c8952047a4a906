-- The client's database: the offline request queue and the network outage log.
-- Applied by exam-core (rusqlite_migration) when the app starts; never edit a released
-- migration, add the next one.

-- Every operation for the server, written before the student is told "saved".
CREATE TABLE queue (
    id              INTEGER PRIMARY KEY,        -- the id the save got in the inbox
    method          TEXT    NOT NULL,
    path            TEXT    NOT NULL,
    body            BLOB,                       -- JSON, as sent
    idempotency_key TEXT    NOT NULL UNIQUE,    -- made once (UUIDv7: time-ordered, cheap to index), reused on every retry
    stream          TEXT    NOT NULL,           -- e.g. "attempt:<uuid>": delivered in seq order
    seq             INTEGER NOT NULL,
    priority        INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 2), -- 0 high, 1 normal, 2 low
    kind            TEXT    NOT NULL,           -- attempt, answer, submission, event, telemetry, other
    coalesce_key    TEXT,                       -- a newer pending entry with this key supersedes older ones
    bytes           INTEGER NOT NULL,           -- counted against the quota
    created_at      INTEGER NOT NULL,           -- ms since the Unix epoch
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'in_flight', 'done', 'dead')),
    last_error      TEXT,
    response_status INTEGER,                    -- the server's reply, kept for done and dead entries
    response_body   TEXT,
    completed_at    INTEGER
);

-- Saves land here first: one row per save or group of saves (a JSON array of entries, no
-- secondary index), committed with synchronous=FULL before the student is told "saved";
-- moved into `queue` (each entry keeping its id) before anything reads the queue.
CREATE TABLE inbox (
    id         INTEGER PRIMARY KEY,   -- the id of its first entry
    created_at INTEGER NOT NULL,      -- ms since the Unix epoch
    entries    TEXT    NOT NULL
);

-- What can be sent next: priority, then age.
CREATE INDEX queue_ready ON queue (priority, created_at, id) WHERE status = 'pending';
-- The open entries of a stream, to keep its order (seq is unique per stream by construction:
-- the streams table hands it out), and its open barriers (attempt creation, submission).
CREATE INDEX queue_open_stream ON queue (stream, seq) WHERE status IN ('pending', 'in_flight');
CREATE INDEX queue_open_barrier ON queue (stream, seq)
    WHERE status IN ('pending', 'in_flight') AND kind NOT IN ('answer', 'event', 'telemetry');
CREATE INDEX queue_coalesce ON queue (coalesce_key) WHERE status = 'pending' AND coalesce_key IS NOT NULL;
CREATE INDEX queue_evictable ON queue (created_at, id) WHERE status = 'pending' AND kind = 'telemetry';
CREATE INDEX queue_dead ON queue (completed_at, id) WHERE status = 'dead';
CREATE INDEX queue_done ON queue (completed_at, id) WHERE status = 'done';

-- The next sequence number of each stream (kept when its entries are pruned).
CREATE TABLE streams (
    stream   TEXT PRIMARY KEY,
    next_seq INTEGER NOT NULL
) WITHOUT ROWID;

-- Running totals that must survive restarts: evictions, coalesced saves, dropped telemetry.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

-- Every time the server could not be reached, from the network monitor.
CREATE TABLE outages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    state       TEXT    NOT NULL,   -- offline, server_down, captive_portal
    started_at  INTEGER NOT NULL,   -- ms since the Unix epoch
    ended_at    INTEGER,
    duration_ms INTEGER
);
