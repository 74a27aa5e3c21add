-- The facility registry: the municipality master (JIS X 0402, 5-digit codes without
-- the check digit) and the municipality each facility is in, which its code does
-- not tell. Same shape as SQLite's 0003; codes are COLLATE "C" so listings in code
-- order agree with SQLite whatever the database's locale.
CREATE TABLE municipalities (
    code        TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT NOT NULL,
    prefecture  INTEGER NOT NULL
);
CREATE INDEX municipalities_by_prefecture ON municipalities (prefecture, code);

CREATE TABLE facilities (
    code          TEXT COLLATE "C" PRIMARY KEY,
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    prefecture    INTEGER NOT NULL,
    municipality  TEXT COLLATE "C" NOT NULL
);
CREATE INDEX facilities_by_area ON facilities (prefecture, municipality);
CREATE INDEX facilities_by_municipality ON facilities (municipality);
