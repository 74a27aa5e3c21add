-- The patients an access showed besides the one it named: an attribute search's
-- candidates, in the order shown. Part of the record (its hash covers them), kept
-- one row each so that a patient's access history finds them by index.
CREATE TABLE access_log_disclosures (
    chain_id     TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    pos          INTEGER NOT NULL,
    patient_key  TEXT NOT NULL,
    PRIMARY KEY (chain_id, seq, pos),
    FOREIGN KEY (chain_id, seq) REFERENCES access_log (chain_id, seq)
        ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX access_log_disclosures_by_patient ON access_log_disclosures (patient_key, chain_id, seq);
