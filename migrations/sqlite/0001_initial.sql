-- Instants are INTEGER nanoseconds since the Unix epoch (UTC): exact at window edges.
CREATE TABLE activations (
    id          TEXT PRIMARY KEY,
    event       TEXT NOT NULL,
    notice      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE activation_areas (
    activation_id TEXT NOT NULL REFERENCES activations(id),
    area_kind     TEXT NOT NULL,
    area_code     TEXT NOT NULL,
    window_start  INTEGER NOT NULL,
    window_end    INTEGER NOT NULL,
    CHECK (window_end > window_start)
);
CREATE INDEX activation_areas_by_area ON activation_areas (area_kind, area_code);

CREATE TABLE searches (
    search_id   TEXT PRIMARY KEY,
    facility    TEXT NOT NULL,
    at          INTEGER NOT NULL,
    candidates  TEXT NOT NULL
);

CREATE TABLE access_log (
    seq                       INTEGER PRIMARY KEY AUTOINCREMENT,
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
    needs_review              INTEGER NOT NULL
);
CREATE INDEX access_log_by_facility ON access_log (facility, at);
CREATE INDEX access_log_by_time ON access_log (at);
