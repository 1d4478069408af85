-- Tune (HasOffers) sync and reconciliation.

-- Why the network stops a campaign from being served (NULL = no hold): the offer is not active,
-- has expired, is no longer approved, or today's conversion cap is reached. Set and lifted only by
-- the sync; independent of `active`, which is the admin's own switch.
ALTER TABLE campaigns ADD COLUMN network_hold TEXT;

-- The network's last known facts about each synced offer, beside the campaign made from it.
CREATE TABLE tune_offers (
    campaign_id    INTEGER PRIMARY KEY REFERENCES campaigns (id),
    offer_id       INTEGER NOT NULL UNIQUE,          -- = campaigns.tune_campaign_id
    status         TEXT    NOT NULL,                 -- active, paused, pending, deleted, ...
    approved       INTEGER NOT NULL DEFAULT 1 CHECK (approved IN (0, 1)),
    payout_type    TEXT    NOT NULL DEFAULT '',      -- cpa_flat, cpa_percentage, cpa_both, cpc, cpm
    expires_at     TEXT,                             -- ISO-8601 UTC; NULL = no expiry
    conversion_cap INTEGER NOT NULL DEFAULT 0 CHECK (conversion_cap >= 0),  -- per network day; 0 = none
    seen_at        TEXT    NOT NULL                  -- last sync that found it approved
);

-- One row per sync run (dry runs excluded): what it changed, or why it failed.
CREATE TABLE tune_sync_runs (
    id          INTEGER PRIMARY KEY,
    started_at  TEXT    NOT NULL,
    finished_at TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('ok', 'error')),
    message     TEXT    NOT NULL DEFAULT '',
    result      TEXT    NOT NULL DEFAULT '{}'        -- the sync's JSON answer
);

-- Named leases: one holder at a time across processes (the CLI and the server), until expiry.
CREATE TABLE leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_ms INTEGER NOT NULL                      -- Unix ms UTC
) WITHOUT ROWID;

-- Each reconciliation's totals and counts of differences (the dashboard shows the latest gap).
CREATE TABLE tune_reconciliations (
    id         INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    first_day  TEXT NOT NULL,
    last_day   TEXT NOT NULL,
    summary    TEXT NOT NULL                         -- JSON: totals and the number of each difference
);
