-- The shape the SQLite schema has after its migrations, with the same names and
-- encodings (instants are BIGINT nanoseconds since the Unix epoch, UTC; hashes hex
-- TEXT), so that both stores share their access-log SQL (src/store/sql.rs).
-- PostgreSQL starts with hash-chained records: there is no unchained legacy log.
-- Identifiers that results are ordered by are COLLATE "C", byte order like SQLite,
-- so paging cursors and listings agree whatever the database's locale.

CREATE TABLE activations (
    id          TEXT COLLATE "C" PRIMARY KEY,
    event       TEXT NOT NULL,
    notice      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE activation_areas (
    -- Insertion order, which SQLite has as the rowid: areas are listed as given.
    ord           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    activation_id TEXT NOT NULL REFERENCES activations(id),
    area_kind     TEXT NOT NULL,
    area_code     TEXT NOT NULL,
    window_start  BIGINT NOT NULL,
    window_end    BIGINT NOT NULL,
    CHECK (window_end > window_start)
);
CREATE INDEX activation_areas_by_area ON activation_areas (area_kind, area_code);

CREATE TABLE searches (
    search_id   TEXT PRIMARY KEY,
    facility    TEXT NOT NULL,
    at          BIGINT NOT NULL,
    candidates  TEXT NOT NULL
);

CREATE TABLE audit_chains (
    chain_id    TEXT COLLATE "C" PRIMARY KEY,
    public_key  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE access_log (
    chain_id                  TEXT COLLATE "C" NOT NULL,
    seq                       BIGINT NOT NULL,
    prev_hash                 TEXT NOT NULL,
    hash                      TEXT NOT NULL,
    id                        TEXT NOT NULL UNIQUE,
    at                        BIGINT NOT NULL,
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
    -- Two replicas racing for one chain position: the second fails, changing nothing.
    PRIMARY KEY (chain_id, seq)
);
CREATE INDEX access_log_by_time ON access_log (at, chain_id, seq);
CREATE INDEX access_log_by_facility ON access_log (facility, at);
CREATE INDEX access_log_by_patient ON access_log (patient_key, at);
CREATE INDEX access_log_by_activation ON access_log (activation_id, at);
CREATE INDEX access_log_review ON access_log (at) WHERE needs_review;

CREATE TABLE audit_checkpoints (
    chain_id   TEXT COLLATE "C" NOT NULL,
    seq        BIGINT NOT NULL,
    head_hash  TEXT NOT NULL,
    at         BIGINT NOT NULL,
    signature  TEXT NOT NULL,
    PRIMARY KEY (chain_id, seq)
);
