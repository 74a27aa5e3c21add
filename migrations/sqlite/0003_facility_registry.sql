-- The facility registry: the municipality master (JIS X 0402, 5-digit codes without
-- the check digit) and the municipality each facility is in, which its code does
-- not tell. Municipality-level activations are decided and previewed from these.
CREATE TABLE municipalities (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    prefecture  INTEGER NOT NULL
);
CREATE INDEX municipalities_by_prefecture ON municipalities (prefecture, code);

CREATE TABLE facilities (
    code          TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    prefecture    INTEGER NOT NULL,
    municipality  TEXT NOT NULL
);
CREATE INDEX facilities_by_area ON facilities (prefecture, municipality);
CREATE INDEX facilities_by_municipality ON facilities (municipality);
