-- Accounts: disabled users, two-factor (TOTP) with recovery codes, server-side sessions,
-- per-account login slow-down and API token scopes.

ALTER TABLE users ADD COLUMN disabled_at TEXT;
ALTER TABLE users ADD COLUMN password_changed_at TEXT;
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_enabled_at TEXT;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;

ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'full' CHECK (scope IN ('full', 'read'));

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
