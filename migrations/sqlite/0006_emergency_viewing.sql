-- Emergency viewing (救急時医療情報閲覧) and consent per kind of information.
-- The facility registry marks hospitals with an emergency department; the access
-- log keeps each call's access mode and the kinds the patient's consent covered.
-- Both columns of the log are NULL on records written before them (their hash
-- then has no 0x10 section, see docs/audit.md).
ALTER TABLE facilities ADD COLUMN emergency_hospital BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE access_log ADD COLUMN access_mode TEXT;
ALTER TABLE access_log ADD COLUMN consent_kinds TEXT;
