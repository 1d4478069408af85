-- popup_mgr schema: the one source of truth for a fresh database.
--
-- A fresh database is created from this file and stamped with the newest migration number
-- (PRAGMA user_version). An existing database is upgraded by the numbered files in
-- popup_mgr/migrations/, so every change made here must also arrive as a migration; the test
-- suite checks that "old database + migrations" and "this file" give the same tables.
--
-- Conventions:
--   * money is integer cents (payout_cents, revenue_cents), never REAL;
--   * admin rows carry ISO-8601 UTC text timestamps ('2026-11-24T21:53:42Z');
--   * ledger rows (impressions, clicks, conversions) carry ts = Unix milliseconds UTC, which is
--     compact and fast on the hot path, plus day = the business-time-zone date of ts, fixed at
--     ingest so that reports never convert time zones in SQL (DST-safe);
--   * booleans are INTEGER 0/1 with a CHECK.

-- Sites that embed the popup. Codes are the public names used in URLs and the embed snippet.
CREATE TABLE properties (
    id              INTEGER PRIMARY KEY,
    code            TEXT    NOT NULL UNIQUE CHECK (length(code) BETWEEN 1 AND 32),
    name            TEXT    NOT NULL,
    domain          TEXT    NOT NULL DEFAULT '',     -- host names, separated by spaces
    active          INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    popup_enabled   INTEGER NOT NULL DEFAULT 1 CHECK (popup_enabled IN (0, 1)),
    popup_frequency TEXT    NOT NULL DEFAULT 'session'
                    CHECK (popup_frequency IN ('session', 'daily', 'always')),
    popup_placement TEXT    NOT NULL DEFAULT 'thankyou'
                    CHECK (popup_placement IN ('thankyou', 'exit-intent', 'timed')),
    delay_ms        INTEGER NOT NULL DEFAULT 1000 CHECK (delay_ms BETWEEN 0 AND 600000),
    theme           TEXT    NOT NULL DEFAULT '{}',   -- JSON object of overrides of the Mode theme
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    -- how /api/offers orders the offers (README "Rotation"), and the most the popup shows
    rotation        TEXT    NOT NULL DEFAULT 'priority' CHECK (rotation IN ('priority', 'even', 'auto')),
    max_offers      INTEGER NOT NULL DEFAULT 5
);

-- Tune (HasOffers) CPL campaigns, entered by hand. Deleting deactivates; rows are never removed
-- because the ledger refers to them.
CREATE TABLE campaigns (
    id                   INTEGER PRIMARY KEY,
    tune_campaign_id     INTEGER NOT NULL UNIQUE,    -- Tune offer_id
    aff_id               INTEGER,                    -- Tune affiliate id
    name                 TEXT    NOT NULL,           -- internal name
    display_title        TEXT    NOT NULL,           -- what visitors read
    tagline              TEXT    NOT NULL DEFAULT '',
    description          TEXT    NOT NULL DEFAULT '',
    cta_text             TEXT    NOT NULL DEFAULT 'View Offer',
    image_url            TEXT    NOT NULL DEFAULT '',
    click_url            TEXT    NOT NULL,           -- Tune tracking link; only http(s)
    impression_pixel_url TEXT    NOT NULL DEFAULT '',
    active               INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    priority             INTEGER NOT NULL DEFAULT 5 CHECK (priority BETWEEN 1 AND 10),
    performance_score    REAL    NOT NULL DEFAULT 0, -- a ranking signal, not money
    payout_cents         INTEGER NOT NULL DEFAULT 0 CHECK (payout_cents >= 0),
    subid_param          TEXT    NOT NULL DEFAULT 'aff_click_id',
    start_at             TEXT,                       -- ISO-8601 UTC; NULL = no start limit
    end_at               TEXT,                       -- ISO-8601 UTC; NULL = open-ended
    notes                TEXT    NOT NULL DEFAULT '',
    created_by           TEXT,
    created_at           TEXT    NOT NULL,
    updated_at           TEXT    NOT NULL,
    -- Why the network stops the campaign from being served (NULL = no hold): the offer is not
    -- active, has expired, is no longer approved, or today's conversion cap is reached. Set and
    -- lifted only by the Tune sync; independent of `active`, which is the admin's own switch.
    network_hold         TEXT
);

-- Which properties a campaign runs on. No rows for a campaign = it runs on all properties.
CREATE TABLE campaign_properties (
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    property_id INTEGER NOT NULL REFERENCES properties (id) ON DELETE CASCADE,
    PRIMARY KEY (campaign_id, property_id)
) WITHOUT ROWID;

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,                     -- argon2id
    created_at    TEXT NOT NULL,
    last_login_at TEXT,
    disabled_at   TEXT,                              -- set: cannot log in, sessions ended
    password_changed_at TEXT,
    totp_secret   TEXT,                              -- Fernet-encrypted under the app secret
    totp_enabled_at TEXT,                            -- set: login asks for the code
    totp_last_step INTEGER NOT NULL DEFAULT 0        -- the 30-s step of the last code accepted
);

-- API bearer tokens. Only a SHA-256 of the token is stored; the token is shown once.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,                               -- written at most once a minute
    revoked_at   TEXT,
    scope        TEXT NOT NULL DEFAULT 'full' CHECK (scope IN ('full', 'read'))
);

-- Every admin change: who, when, what (changes = JSON {"field": [old, new], ...}).
CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY,
    at        TEXT    NOT NULL,
    actor     TEXT    NOT NULL,                      -- username, "token:<name>" or "cli"
    action    TEXT    NOT NULL,                      -- e.g. campaign.create, property.update
    entity    TEXT    NOT NULL,
    entity_id INTEGER,
    changes   TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id);

-- Small named settings the admin can change at run time (e.g. the postback secret).
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;

-- Daily salts for the keyed visitor hashes. A row is deleted 48 h after its day began, after
-- which that day's hashes can no longer be linked to an IP address or user agent.
CREATE TABLE visitor_salts (
    day        TEXT PRIMARY KEY,                     -- UTC date the salt is used for
    salt       BLOB NOT NULL,
    created_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- The ledger. One row per counted event; event_id is made by the visitor's browser and is the
-- only thing duplicates are recognised by (per kind).
CREATE TABLE impressions (
    id           INTEGER PRIMARY KEY,
    event_id     TEXT    NOT NULL UNIQUE,
    ts           INTEGER NOT NULL,                   -- Unix ms UTC
    day          TEXT    NOT NULL,                   -- business-time-zone date of ts
    campaign_id  INTEGER NOT NULL REFERENCES campaigns (id),
    property_id  INTEGER NOT NULL REFERENCES properties (id),
    placement    TEXT    NOT NULL,
    variant      TEXT    NOT NULL DEFAULT '',
    session_id   TEXT,
    visitor_hash TEXT,                               -- keyed hash of IP + user agent
    is_bot       INTEGER NOT NULL DEFAULT 0 CHECK (is_bot IN (0, 1)),
    is_view      INTEGER NOT NULL DEFAULT 0 CHECK (is_view IN (0, 1))  -- first impression of a popup display
);
CREATE INDEX impressions_ts ON impressions (ts);

CREATE TABLE clicks (
    id              INTEGER PRIMARY KEY,
    click_id        TEXT    NOT NULL UNIQUE,         -- ours, sent to Tune in the sub-id parameter
    event_id        TEXT    NOT NULL UNIQUE,
    ts              INTEGER NOT NULL,
    day             TEXT    NOT NULL,
    campaign_id     INTEGER NOT NULL REFERENCES campaigns (id),
    property_id     INTEGER NOT NULL REFERENCES properties (id),
    placement       TEXT    NOT NULL,
    variant         TEXT    NOT NULL DEFAULT '',
    session_id      TEXT,
    visitor_hash    TEXT,
    is_bot          INTEGER NOT NULL DEFAULT 0 CHECK (is_bot IN (0, 1)),
    campaign_paused INTEGER NOT NULL DEFAULT 0 CHECK (campaign_paused IN (0, 1))
);
CREATE INDEX clicks_ts ON clicks (ts);

-- Conversions reported by the network's postback. Attribution columns are copied from the
-- click (day is the click's business day); they are NULL while the click id is unknown, and
-- such rows are kept for reconciliation.
CREATE TABLE conversions (
    id             INTEGER PRIMARY KEY,
    transaction_id TEXT    NOT NULL UNIQUE,
    click_id       TEXT    NOT NULL,                 -- as the network sent it
    click_row_id   INTEGER REFERENCES clicks (id),
    ts             INTEGER NOT NULL,                 -- first received, Unix ms UTC
    updated_ts     INTEGER NOT NULL,
    day            TEXT,
    campaign_id    INTEGER REFERENCES campaigns (id),
    property_id    INTEGER REFERENCES properties (id),
    placement      TEXT,
    variant        TEXT,
    payout_cents   INTEGER NOT NULL CHECK (payout_cents >= 0),
    status         TEXT    NOT NULL DEFAULT 'approved'
                   CHECK (status IN ('approved', 'pending', 'rejected')),
    is_test        INTEGER NOT NULL DEFAULT 0 CHECK (is_test IN (0, 1))
);
CREATE INDEX conversions_click_id ON conversions (click_id);
CREATE INDEX conversions_ts ON conversions (ts);

-- Rollups of the ledger, one row per business day x property x campaign x placement x variant.
-- Reports read only this table (never the raw events, except the live view), and `popup-mgr
-- verify` proves it equals the ledger. Human traffic only in impressions/clicks; bots apart.
-- conversions/revenue_cents: approved, non-test conversions attributed to that row.
CREATE TABLE daily_stats (
    day             TEXT    NOT NULL,
    property_id     INTEGER NOT NULL REFERENCES properties (id),
    campaign_id     INTEGER NOT NULL REFERENCES campaigns (id),
    placement       TEXT    NOT NULL,
    variant         TEXT    NOT NULL DEFAULT '',
    impressions     INTEGER NOT NULL DEFAULT 0,
    clicks          INTEGER NOT NULL DEFAULT 0,
    conversions     INTEGER NOT NULL DEFAULT 0,
    revenue_cents   INTEGER NOT NULL DEFAULT 0,
    bot_impressions INTEGER NOT NULL DEFAULT 0,
    bot_clicks      INTEGER NOT NULL DEFAULT 0,
    views           INTEGER NOT NULL DEFAULT 0,      -- popup displays (non-bot impressions with is_view)
    PRIMARY KEY (day, property_id, campaign_id, placement, variant)
) WITHOUT ROWID;
-- Analytics read daily_stats by day range: the primary key starts with day, so a range is one
-- contiguous scan of a clustered table (about 60 rows per day with 4 properties x 20 campaigns),
-- and reports.py derives campaigns, properties and totals from one GROUP BY of that scan. With
-- 10 million impressions over 365 days this answers a year in well under 100 ms
-- (bench/analytics.py), so no further index or coarser rollup is needed. The live view and
-- today's hourly chart read the ledger through impressions_ts, clicks_ts and conversions_ts.

-- A/B tests between offers on a property. Events carry the variant they were served under.
CREATE TABLE ab_tests (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    property_id INTEGER REFERENCES properties (id),  -- NULL = all properties
    status      TEXT    NOT NULL DEFAULT 'draft'
                CHECK (status IN ('draft', 'running', 'stopped')),
    started_at  TEXT,
    ended_at    TEXT,
    notes       TEXT    NOT NULL DEFAULT '',
    created_at  TEXT    NOT NULL
);

-- 0002_tune: Tune (HasOffers) sync and reconciliation (same DDL as the migration).
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

-- Named leases: one holder at a time across processes (the CLI and the server), until expiry:
-- 'tune-sync' for the Tune sync, 'job:<job name>' for each of the scheduler's jobs.
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

-- Alerts (migration 0005).
-- One row per incident. At most one open incident per (rule, subject); a cleared one keeps its
-- row, so the Alerts page can list past incidents. open_mail / close_mail: NULL while the mail
-- is still to be sent, else what became of it ('sent', 'not configured', 'gave up').
CREATE TABLE incidents (
    id          INTEGER PRIMARY KEY,
    rule        TEXT NOT NULL,                       -- e.g. property_silent, ctr_collapse
    subject     TEXT NOT NULL,                       -- what it is about, e.g. property:mff, campaign:12
    summary     TEXT NOT NULL,                       -- one line, as in the alert mail's subject
    details     TEXT NOT NULL DEFAULT '',            -- the figures that opened it
    opened_at   TEXT NOT NULL,
    closed_at   TEXT,
    clear_details TEXT NOT NULL DEFAULT '',          -- the figures that cleared it
    open_mail   TEXT,
    close_mail  TEXT,
    mail_error  TEXT                                 -- the last failure to send, while retried
);
CREATE UNIQUE INDEX incidents_open ON incidents (rule, subject) WHERE closed_at IS NULL;
CREATE INDEX incidents_opened_at ON incidents (opened_at);

-- The latest check of each campaign's image_url (click and pixel URLs are never fetched: the
-- network would count them). failures counts consecutive failed checks of the same URL.
CREATE TABLE image_checks (
    campaign_id  INTEGER PRIMARY KEY REFERENCES campaigns (id),
    url          TEXT    NOT NULL,
    checked_at   TEXT    NOT NULL,
    ok           INTEGER NOT NULL CHECK (ok IN (0, 1)),
    status       INTEGER,                            -- HTTP status of the last answer, if any
    content_type TEXT    NOT NULL DEFAULT '',
    bytes        INTEGER NOT NULL DEFAULT 0,
    elapsed_ms   INTEGER NOT NULL DEFAULT 0,
    error        TEXT    NOT NULL DEFAULT '',        -- why the check failed; '' when ok
    failures     INTEGER NOT NULL DEFAULT 0,
    last_ok_at   TEXT
);

-- Operations: the scheduler's run history (a job's lease is the row 'job:<job name>' in leases).

-- Every run of a scheduled job: when, how long, and how it ended, for the admin and /metrics.
-- Times are Unix ms (compared with job intervals); outcome 'running' until the run ends.
-- The scheduler keeps the latest runs per job and deletes older ones.
CREATE TABLE job_runs (
    id          INTEGER PRIMARY KEY,
    job         TEXT    NOT NULL,
    owner       TEXT    NOT NULL,
    started_ms  INTEGER NOT NULL,
    finished_ms INTEGER,
    outcome     TEXT    NOT NULL DEFAULT 'running'
                CHECK (outcome IN ('running', 'ok', 'error')),
    detail      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX job_runs_job_started ON job_runs (job, started_ms);

-- Accounts: server-side sessions, recovery codes and the per-account login slow-down.

-- One row per logged-in browser. The cookie carries a random session id; only its SHA-256 is
-- stored, so a copy of the database cannot be turned into a working cookie. Ending a session
-- deletes its row, and the cookie stops working on the next request.
CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY,
    sid_hash     TEXT    NOT NULL UNIQUE,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TEXT    NOT NULL,
    last_seen_at TEXT    NOT NULL,
    ip_label     TEXT    NOT NULL DEFAULT '',         -- coarse network (/24 or /48), not the address
    user_agent   TEXT    NOT NULL DEFAULT ''          -- summary, e.g. "Firefox on Linux"
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Two-factor recovery codes: each works once; only an argon2 hash is kept.
CREATE TABLE recovery_codes (
    id        INTEGER PRIMARY KEY,
    user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT    NOT NULL,
    used_at   TEXT
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- Failed logins per typed username (existing or not, so the slow-down says nothing about which
-- accounts exist). Times are Unix ms. Cleared by a successful login or `popup-mgr unlock`.
CREATE TABLE login_failures (
    account         TEXT    PRIMARY KEY,              -- lower-cased username as typed
    failures        INTEGER NOT NULL,
    last_failure_ms INTEGER NOT NULL,
    blocked_until_ms INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;


-- Experiments (migration 0009).
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
