-- Security alerts for proctors and IT (the console): what the clients report and what the
-- server's correlation rules see, with the response taken (reversible by an admin).
CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY,
    rule        TEXT NOT NULL,     -- client_finding, two_devices, session_two_devices,
                                   -- shared_device, network_changed, password_spraying
    severity    TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    username    TEXT,
    ip          TEXT,
    device      TEXT,              -- the client's device fingerprint (an HMAC, never a serial)
    attempt_id  TEXT,
    subject     TEXT,              -- what it is about (`code:subject` of a client finding)
    summary     TEXT NOT NULL,
    evidence    TEXT NOT NULL,     -- JSON object
    response    TEXT,              -- JSON object: what the server did, if anything
    created_at  TEXT NOT NULL,
    cleared_at  TEXT,              -- the client reported the condition stopped
    acked_at    TEXT,
    ack_note    TEXT,
    version     INTEGER NOT NULL DEFAULT 0   -- grows at every change: the console's stream
                                             -- sends what changed since the version it saw
) STRICT;
CREATE INDEX alerts_by_version ON alerts(version);
CREATE INDEX alerts_by_user ON alerts(username, id);

-- Where each student's clients were seen from: device fingerprint, address, session.
CREATE TABLE device_sightings (
    user_id     INTEGER NOT NULL,
    device      TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    ip          TEXT NOT NULL,
    attempt_id  TEXT,
    seen_at     TEXT NOT NULL,
    PRIMARY KEY (user_id, device, session_id, ip)
) STRICT;
CREATE INDEX sightings_by_device ON device_sightings(device, seen_at);

-- The school asks a student for their password again (step-up, RFC 9470): sessions created
-- before `required_at` are refused until the student signs in with the password again.
CREATE TABLE step_up (
    user_id     INTEGER PRIMARY KEY REFERENCES users(id),
    required_at TEXT NOT NULL,
    reason      TEXT NOT NULL
) STRICT;
