-- Accountability after an access (docs/audit.md, docs/notices.md).
--
-- The access log's accountability section: the exemption's reason category,
-- whether the patient is told, and the records the log keeps about itself
-- (review outcomes referring to an access, reads of the log by operators). Part
-- of each record's hash when set; NULL (and false) in records written before.
ALTER TABLE access_log ADD COLUMN exemption_category TEXT;
ALTER TABLE access_log ADD COLUMN patient_notice BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE access_log ADD COLUMN record_kind TEXT;
ALTER TABLE access_log ADD COLUMN subject_record TEXT;
ALTER TABLE access_log ADD COLUMN review_outcome TEXT;
ALTER TABLE access_log ADD COLUMN review_note TEXT;
ALTER TABLE access_log ADD COLUMN operator TEXT;
ALTER TABLE access_log ADD COLUMN audit_query TEXT;
ALTER TABLE access_log ADD COLUMN result_count BIGINT;
-- The review queue asks, per flagged access, whether an outcome refers to it.
CREATE INDEX access_log_by_subject ON access_log (subject_record) WHERE subject_record IS NOT NULL;
CREATE INDEX access_log_by_kind ON access_log (record_kind, at) WHERE record_kind IS NOT NULL;

-- The outbox of patient notices: one row per access the patient is told of,
-- inserted in the same transaction as the access record, so a notice exists
-- exactly for the accesses recorded. A dispatcher claims due rows with a lease
-- (so two replicas do not deliver one at once; an expired lease is claimed
-- again after a crash) and marks them delivered.
CREATE TABLE patient_notices (
    record_id           TEXT COLLATE "C" PRIMARY KEY,
    chain_id            TEXT COLLATE "C" NOT NULL,
    seq                 BIGINT NOT NULL,
    at                  BIGINT NOT NULL,
    facility            TEXT,
    method              TEXT NOT NULL,
    items               TEXT NOT NULL,
    consent_basis       TEXT,
    exemption_category  TEXT,
    patient_key         TEXT NOT NULL,
    attempts            BIGINT NOT NULL DEFAULT 0,
    next_attempt_at     BIGINT NOT NULL,
    lease_owner         TEXT,
    lease_until         BIGINT,
    delivered_at        BIGINT,
    last_error          TEXT
);
CREATE INDEX patient_notices_due ON patient_notices (next_attempt_at, at) WHERE delivered_at IS NULL;
