-- Emergency viewing (救急時医療情報閲覧) and consent per kind of information.
-- Same shape as SQLite's 0006.
ALTER TABLE facilities ADD COLUMN emergency_hospital BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE access_log ADD COLUMN access_mode TEXT;
ALTER TABLE access_log ADD COLUMN consent_kinds TEXT;
