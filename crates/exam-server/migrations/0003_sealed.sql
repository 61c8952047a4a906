-- Sealed exam packages (shared/API.md, "Sealed exam packages"): an exam may be downloaded
-- ahead of its start, its questions encrypted under a key derived from a start code.
ALTER TABLE exams ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;
-- When the package may be fetched; NULL: from opens_at on. An unsealed exam is never handed
-- out before opens_at, whatever this says.
ALTER TABLE exams ADD COLUMN available_from TEXT;
-- The proctors' start code of a sealed exam, normalised (12 symbols, no dashes); NULL for an
-- unsealed exam (one is made when first needed).
ALTER TABLE exams ADD COLUMN start_code TEXT;

-- One package per (exam, version), sealed once: every student gets the same bytes and ETag.
-- `exam_key` = Argon2id(start_code, salt, m_kib, t, p), kept here so that releasing it needs no
-- derivation: it is the server's secret, like the start code itself.
CREATE TABLE sealed_packages (
    exam_id    TEXT NOT NULL REFERENCES exams(id),
    version    INTEGER NOT NULL,
    key_id     TEXT NOT NULL UNIQUE,
    exam_key   BLOB NOT NULL,
    nonce      BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    salt       BLOB NOT NULL,
    m_kib      INTEGER NOT NULL,
    t          INTEGER NOT NULL,
    p          INTEGER NOT NULL,
    sealed_at  TEXT NOT NULL,
    PRIMARY KEY (exam_id, version)
) STRICT;
