-- Activations change while they run: every change is a revision that sets the
-- windows of some areas. An area's window is the one its latest revision set; the
-- revisions recorded up to an instant give the state known then.
CREATE TABLE activation_revisions (
    activation_id  TEXT NOT NULL REFERENCES activations(id),
    number         INTEGER NOT NULL,
    recorded_at    INTEGER NOT NULL,
    author         TEXT NOT NULL,
    notice         TEXT NOT NULL,
    kind           TEXT NOT NULL,
    PRIMARY KEY (activation_id, number)
);

CREATE TABLE activation_windows (
    activation_id  TEXT NOT NULL,
    revision       INTEGER NOT NULL,
    -- The order the revision named its areas in.
    pos            INTEGER NOT NULL,
    area_kind      TEXT NOT NULL,
    area_code      TEXT NOT NULL,
    window_start   INTEGER NOT NULL,
    window_end     INTEGER NOT NULL,
    CHECK (window_end > window_start),
    PRIMARY KEY (activation_id, revision, area_kind, area_code),
    FOREIGN KEY (activation_id, revision) REFERENCES activation_revisions (activation_id, number)
);
CREATE INDEX activation_windows_by_area ON activation_windows (area_kind, area_code, activation_id, revision);

-- Activations made before revisions become their first revision.
INSERT INTO activation_revisions (activation_id, number, recorded_at, author, notice, kind)
    SELECT id, 1, created_at, created_by, notice, 'create' FROM activations;
INSERT INTO activation_windows (activation_id, revision, pos, area_kind, area_code, window_start, window_end)
    SELECT activation_id, 1, rowid, area_kind, area_code, window_start, window_end FROM activation_areas;
DROP TABLE activation_areas;
