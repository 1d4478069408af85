-- Experiments: A/B tests of 2-4 arms on one property (an arm is a campaign, or a creative
-- variant of one through overrides). Visitors are assigned to arms by their session id; the
-- ledger's variant column holds the arm key each offer was served under.
CREATE TABLE experiments (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    property_id INTEGER NOT NULL REFERENCES properties (id),
    metric      TEXT    NOT NULL DEFAULT 'rpm' CHECK (metric IN ('rpm', 'ctr')),
    status      TEXT    NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'stopped')),
    started_at  TEXT    NOT NULL,                    -- ISO-8601 UTC; results count from here
    stopped_at  TEXT,                                -- ... up to here once stopped
    winner      TEXT,                                -- arm key applied at the stop, if any
    created_by  TEXT
);
-- At most one running experiment per property: a visitor can be in only one test at a time.
CREATE UNIQUE INDEX experiments_one_running ON experiments (property_id) WHERE status = 'running';

-- The arms, keyed 'a' (the control) to 'd' in the order given. overrides: JSON object of the
-- campaign's creative fields this arm shows instead ('{}' = the campaign as it is).
CREATE TABLE experiment_arms (
    experiment_id INTEGER NOT NULL REFERENCES experiments (id),
    key           TEXT    NOT NULL CHECK (key IN ('a', 'b', 'c', 'd')),
    campaign_id   INTEGER NOT NULL REFERENCES campaigns (id),
    weight        INTEGER NOT NULL CHECK (weight BETWEEN 1 AND 99),
    overrides     TEXT    NOT NULL DEFAULT '{}',
    PRIMARY KEY (experiment_id, key)
) WITHOUT ROWID;

-- The results read an experiment's impressions by property and time; only rows served in an arm
-- (variant set, which is none outside experiments) are in these indexes, so the ingest of other
-- traffic pays nothing for them, and each covers its query (no table reads).
CREATE INDEX impressions_arms ON impressions (property_id, ts, variant, campaign_id, session_id, is_bot)
    WHERE variant <> '' AND is_bot = 0;
CREATE INDEX clicks_arms ON clicks (property_id, ts, variant, campaign_id, is_bot) WHERE variant <> '' AND is_bot = 0;
