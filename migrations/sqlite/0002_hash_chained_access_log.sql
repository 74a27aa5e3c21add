-- The access log becomes a set of per-writer hash chains with signed checkpoints.
-- Records written before chaining are kept, unchanged, in access_log_unchained.
ALTER TABLE access_log RENAME TO access_log_unchained;
DROP INDEX access_log_by_facility;
DROP INDEX access_log_by_time;

CREATE TABLE audit_chains (
    chain_id    TEXT PRIMARY KEY,
    public_key  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE access_log (
    chain_id                  TEXT NOT NULL,
    seq                       INTEGER NOT NULL,
    prev_hash                 TEXT NOT NULL,
    hash                      TEXT NOT NULL,
    id                        TEXT NOT NULL UNIQUE,
    at                        INTEGER NOT NULL,
    method                    TEXT NOT NULL,
    items                     TEXT NOT NULL,
    facility                  TEXT,
    staff_id                  TEXT,
    staff_role                TEXT,
    patient_key               TEXT,
    identification            TEXT,
    search_id                 TEXT,
    consent_basis             TEXT,
    exemption_reason          TEXT,
    exemption_identification  TEXT,
    purpose                   TEXT,
    activation_id             TEXT,
    decision                  TEXT NOT NULL,
    reason                    TEXT,
    grpc_code                 INTEGER NOT NULL,
    upstream_result           TEXT,
    needs_review              BOOLEAN NOT NULL,
    PRIMARY KEY (chain_id, seq)
);
CREATE INDEX access_log_by_time ON access_log (at, chain_id, seq);
CREATE INDEX access_log_by_facility ON access_log (facility, at);
CREATE INDEX access_log_by_patient ON access_log (patient_key, at);
CREATE INDEX access_log_by_activation ON access_log (activation_id, at);
CREATE INDEX access_log_review ON access_log (at) WHERE needs_review;

CREATE TABLE audit_checkpoints (
    chain_id   TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    head_hash  TEXT NOT NULL,
    at         INTEGER NOT NULL,
    signature  TEXT NOT NULL,
    PRIMARY KEY (chain_id, seq)
);
