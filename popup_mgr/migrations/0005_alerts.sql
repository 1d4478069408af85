-- Alerts: incidents opened and cleared by the alert rules, and the latest check of each
-- campaign's image.

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
