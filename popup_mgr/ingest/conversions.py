"""Conversions: the network's postbacks, checked, parsed and stored exactly once per
transaction_id, attributed through our click id to campaign, property, day and variant; the
postback secret; and the reads of stored conversions the admin needs.

Money is written on its own connection with synchronous=FULL (fsync before returning: survives
power loss); postbacks are few, so they do not need the group-commit queue. daily_stats changes by
the exact difference a conversion makes under rollups.counts(), the one counting rule.
"""
import hmac
import re
import secrets
import sqlite3
from dataclasses import dataclass

from popup_mgr import db as database
from popup_mgr import money, rollups, timeutil
from popup_mgr.ingest.errors import EventError, IngestUnavailable, PostbackRejected

MAX_PAYOUT_CENTS = 100_000_00            # $100,000: far above any CPL payout, below nonsense
MAX_POSTBACK_ID_LENGTH = 128
_POSTBACK_ID = re.compile(r"[\x21-\x7e]+")   # printable ASCII, no spaces or control characters
STATUSES = ("approved", "pending", "rejected")
POSTBACK_SECRET_SETTING = "postback_secret"


@dataclass(frozen=True)
class Postback:
    click_id: str
    transaction_id: str
    payout_cents: int
    status: str
    is_test: bool = False


@dataclass(frozen=True)
class ConversionResult:
    outcome: str               # "recorded", "duplicate" or "updated"
    transaction_id: str
    click_id: str
    attributed: bool
    campaign_id: int | None
    property_id: int | None
    day: str | None
    payout_cents: int
    status: str
    is_test: bool

    def as_json(self):
        return {"status": "ok", "outcome": self.outcome, "transaction_id": self.transaction_id,
                "click_id": self.click_id, "attributed": self.attributed,
                "campaign_id": self.campaign_id, "property_id": self.property_id, "day": self.day,
                "payout": money.format_cents(self.payout_cents), "conversion_status": self.status,
                "test": self.is_test}


def check_postback_secret(app, params):
    """Raise PostbackRejected unless exactly one secret is given and it matches."""
    given = params.getlist("secret")
    if len(given) != 1 or not given[0]:
        raise PostbackRejected("missing secret")
    if not hmac.compare_digest(given[0].encode("utf-8", "replace"), postback_secret(app).encode()):
        raise PostbackRejected("wrong secret")


def parse_postback(params):
    """A Postback from the request's parameters (a MultiDict); EventError with the reason."""
    click_id = _single_postback_id(params, "click_id")
    transaction_id = _single_postback_id(params, "transaction_id")
    payout_text = _single(params, "payout", required=True)
    if payout_text != payout_text.strip():
        # Tune sends the macro's value as is: spaces or a line break mean a broken URL template.
        raise EventError("payout must be a plain decimal without spaces or line breaks")
    try:
        payout_cents = money.parse_cents(payout_text)
    except money.MoneyError as exc:
        raise EventError(f"payout {exc}") from None
    if payout_cents > MAX_PAYOUT_CENTS:
        raise EventError(f"payout is above {money.format_cents(MAX_PAYOUT_CENTS)}")
    status = (_single(params, "status", required=False) or "approved").strip().lower()
    if status not in STATUSES:
        raise EventError("status must be approved, pending or rejected")
    test = _single(params, "test", required=False)
    if test not in (None, "", "0", "1"):
        raise EventError("test must be 0 or 1")
    return Postback(click_id, transaction_id, payout_cents, status, test == "1")


def _single(params, name, required):
    values = params.getlist(name)
    if len(values) > 1:
        raise EventError(f"{name} given more than once")
    if not values or values[0] == "":
        if required:
            raise EventError(f"missing {name}")
        return None
    return values[0]


def _single_postback_id(params, name):
    value = _single(params, name, required=True)
    if len(value) > MAX_POSTBACK_ID_LENGTH or not _POSTBACK_ID.fullmatch(value):
        raise EventError(f"{name} must be 1-{MAX_POSTBACK_ID_LENGTH} printable characters without spaces")
    return value


def record_conversion(app, postback, now_ms=None):
    """Store one conversion per transaction_id, attributed through the click, and adjust
    daily_stats by the exact difference, in one transaction on a synchronous=FULL connection
    (fsync before returning). Raises IngestUnavailable when the write fails (answer 5xx: the
    network retries, and nothing was half-written)."""
    now_ms = timeutil.now_ms() if now_ms is None else now_ms
    try:
        with database.connection(app.config["DATABASE"], durable=True) as db, database.transaction(db):
            return store(db, postback, now_ms)
    except EventError:
        raise
    except Exception as exc:
        from popup_mgr.ingest import state      # state imports this module
        state.of(app).failures.record()
        raise IngestUnavailable(f"could not store the conversion ({type(exc).__name__})") from None


def store(db, postback, now_ms):
    """Record or update one conversion inside the caller's transaction; a ConversionResult."""
    existing = db.execute("/* conversions.store */ SELECT * FROM conversions"
                          " WHERE transaction_id = ?", (postback.transaction_id,)).fetchone()
    if existing is None:
        row = _new_conversion_row(db, postback, now_ms)
        db.execute("/* conversions.store */ INSERT INTO conversions (transaction_id, click_id,"
                   " click_row_id, ts, updated_ts, day, campaign_id, property_id, placement, variant,"
                   " payout_cents, status, is_test) VALUES (:transaction_id, :click_id, :click_row_id,"
                   " :ts, :updated_ts, :day, :campaign_id, :property_id, :placement, :variant,"
                   " :payout_cents, :status, :is_test)", row)
        _adjust_conversion_rollup(db, row, *rollups.counts(row))
        return _result("recorded", row)
    row = dict(existing)
    if row["status"] == postback.status and row["payout_cents"] == postback.payout_cents:
        return _result("duplicate", row)
    before = rollups.counts(row)
    row.update(status=postback.status, payout_cents=postback.payout_cents, updated_ts=now_ms)
    db.execute("/* conversions.store */ UPDATE conversions SET status = ?, payout_cents = ?,"
               " updated_ts = ? WHERE id = ?", (row["status"], row["payout_cents"], now_ms, row["id"]))
    after = rollups.counts(row)
    _adjust_conversion_rollup(db, row, after[0] - before[0], after[1] - before[1])
    return _result("updated", row)


def _new_conversion_row(db, postback, now_ms):
    click = db.execute("/* conversions.new_conversion_row */ SELECT id, day, campaign_id, property_id,"
                       " placement, variant FROM clicks WHERE click_id = ?", (postback.click_id,)).fetchone()
    attribution = {"click_row_id": click["id"], "day": click["day"], "campaign_id": click["campaign_id"],
                   "property_id": click["property_id"], "placement": click["placement"],
                   "variant": click["variant"]} if click else \
        dict.fromkeys(("click_row_id", "day", "campaign_id", "property_id", "placement", "variant"))
    return {"transaction_id": postback.transaction_id, "click_id": postback.click_id, "ts": now_ms,
            "updated_ts": now_ms, "payout_cents": postback.payout_cents, "status": postback.status,
            "is_test": int(postback.is_test)} | attribution


def _adjust_conversion_rollup(db, row, conversions, revenue_cents):
    if row["campaign_id"] is None or (conversions == 0 and revenue_cents == 0):
        return
    db.execute("/* conversions.adjust_conversion_rollup */ INSERT INTO daily_stats"
               " (day, property_id, campaign_id, placement, variant, conversions, revenue_cents)"
               " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (day, property_id, campaign_id, placement, variant)"
               " DO UPDATE SET conversions = conversions + excluded.conversions,"
               " revenue_cents = revenue_cents + excluded.revenue_cents",
               (row["day"], row["property_id"], row["campaign_id"], row["placement"], row["variant"],
                conversions, revenue_cents))


def _result(outcome, row):
    return ConversionResult(outcome, row["transaction_id"], row["click_id"], row["campaign_id"] is not None,
                            row["campaign_id"], row["property_id"], row["day"], row["payout_cents"],
                            row["status"], bool(row["is_test"]))


# --- postback settings -------------------------------------------------------------------------------

def postback_secret_from_environment(app):
    return bool(app.config.get("POSTBACK_SECRET"))


def postback_secret(app):
    """POPUP_POSTBACK_SECRET when set, else the stored secret (made at start-up: reading it
    writes nothing, so neither a GET nor a postback flood takes the write lock)."""
    if app.config.get("POSTBACK_SECRET"):
        return app.config["POSTBACK_SECRET"]
    try:
        with database.connection(app.config["DATABASE"]) as db:
            row = db.execute("/* conversions.postback_secret */ SELECT value FROM settings WHERE key = ?",
                             (POSTBACK_SECRET_SETTING,)).fetchone()
        return row["value"] if row else ensure_postback_secret(app.config)
    except sqlite3.Error as exc:
        # Storage, not the caller, is at fault: 503, and the network retries the postback.
        raise IngestUnavailable(f"cannot read the postback secret ({type(exc).__name__})") from None


def ensure_postback_secret(config):
    """Store a random postback secret unless one exists (or the environment sets it); returns
    the secret in force."""
    if config.get("POSTBACK_SECRET"):
        return config["POSTBACK_SECRET"]
    with database.connection(config["DATABASE"], durable=True) as db, database.transaction(db):
        db.execute("/* conversions.ensure_postback_secret */ INSERT OR IGNORE INTO settings (key, value, updated_at)"
                   " VALUES (?, ?, ?)", (POSTBACK_SECRET_SETTING, _new_secret(), timeutil.iso_now()))
        return db.execute("/* conversions.ensure_postback_secret */ SELECT value FROM settings WHERE key = ?",
                          (POSTBACK_SECRET_SETTING,)).fetchone()["value"]


def rotate_postback_secret(app):
    """Replace the stored secret; the old one stops working at once. Returns the new one."""
    if postback_secret_from_environment(app):
        raise EventError("the postback secret is set by POPUP_POSTBACK_SECRET; change it there")
    secret = _new_secret()
    with database.connection(app.config["DATABASE"], durable=True) as db, database.transaction(db):
        db.execute("/* conversions.rotate_postback_secret */ INSERT INTO settings (key, value, updated_at)"
                   " VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                   " updated_at = excluded.updated_at", (POSTBACK_SECRET_SETTING, secret, timeutil.iso_now()))
    return secret


def _new_secret():
    return secrets.token_urlsafe(24)


def unattributed_conversions(db, limit=50, offset=0, search=None, status=None):
    """(count, rows) of real conversions whose click id we do not know, newest first: the count
    of all that match, and one page of them. search matches part of the transaction or click id;
    status is one of STATUSES."""
    where, params = "campaign_id IS NULL AND is_test = 0", {"limit": limit, "offset": offset}
    if search:
        where += (" AND (transaction_id LIKE :like ESCAPE '\\' OR click_id LIKE :like ESCAPE '\\')")
        params["like"] = "%" + re.sub(r"([\\%_])", r"\\\1", search.strip()) + "%"
    if status in STATUSES:
        where += " AND status = :status"
        params["status"] = status
    count = db.execute(f"/* conversions.unattributed_conversions */ SELECT count(*) FROM conversions"
                       f" WHERE {where}", params).fetchone()[0]
    rows = db.execute(f"/* conversions.unattributed_conversions */ SELECT transaction_id, click_id, ts,"
                      f" payout_cents, status FROM conversions WHERE {where}"
                      " ORDER BY ts DESC, id DESC LIMIT :limit OFFSET :offset", params).fetchall()
    return count, [dict(row) for row in rows]


def latest_click_id(db, campaign_id=None):
    """The newest human click's id (a realistic target for a test postback), of one campaign when
    campaign_id is given; None when there is none."""
    if campaign_id is None:
        row = db.execute("/* conversions.latest_click_id */ SELECT click_id FROM clicks WHERE is_bot = 0"
                         " ORDER BY id DESC LIMIT 1").fetchone()
    else:
        row = db.execute("/* conversions.latest_click_id */ SELECT click_id FROM clicks WHERE is_bot = 0"
                         " AND campaign_id = ? ORDER BY id DESC LIMIT 1", (campaign_id,)).fetchone()
    return row["click_id"] if row else None
