-- Temporary sites (first-aid posts, mobile clinics, mobile pharmacies, relief teams)
-- under an activation. A site changes by attributed revisions, like an activation:
-- each states the site's validity window after it, so the revisions recorded up to
-- an instant give the state known then.
CREATE TABLE sites (
    id               TEXT PRIMARY KEY,
    activation_id    TEXT NOT NULL REFERENCES activations(id),
    kind             TEXT NOT NULL,
    name             TEXT NOT NULL,
    municipality     TEXT NOT NULL,
    coordinates      TEXT,
    sponsor          TEXT NOT NULL,
    contact          TEXT NOT NULL,
    requires_licence BOOLEAN NOT NULL
);
CREATE INDEX sites_by_activation ON sites (activation_id);
CREATE INDEX sites_by_sponsor ON sites (sponsor);

CREATE TABLE site_revisions (
    site_id       TEXT NOT NULL REFERENCES sites(id),
    number        INTEGER NOT NULL,
    recorded_at   INTEGER NOT NULL,
    author        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    window_start  INTEGER NOT NULL,
    window_end    INTEGER NOT NULL,
    detail        TEXT NOT NULL,
    CHECK (window_end > window_start),
    PRIMARY KEY (site_id, number)
);

-- What a call from a site adds to its access record (hashed as the 0x20 section).
ALTER TABLE access_log ADD COLUMN site_id TEXT;
ALTER TABLE access_log ADD COLUMN site_kind TEXT;
ALTER TABLE access_log ADD COLUMN site_name TEXT;
ALTER TABLE access_log ADD COLUMN site_sponsor TEXT;
ALTER TABLE access_log ADD COLUMN licence_number TEXT;
