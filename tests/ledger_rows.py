"""Write ledger rows straight into the schema for analytics tests (ingest is tested elsewhere),
then rebuild daily_stats with the one rollup definition."""
import datetime as dt
import itertools
from zoneinfo import ZoneInfo

from popup_mgr import db as database
from popup_mgr import rollups, timeutil

TZ = "America/New_York"
_serial = itertools.count(1)


def ms(text, tz="UTC"):
    """'2026-03-08 04:59:59' in tz -> Unix ms."""
    moment = dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))
    return int(moment.timestamp() * 1000)


def property_id(db, code):
    return db.execute("SELECT id FROM properties WHERE code = ?", (code,)).fetchone()[0]


def add_campaign(db, name, payout_cents=450, active=1):
    now = timeutil.iso_now()
    with database.transaction(db):
        cur = db.execute(
            "INSERT INTO campaigns (tune_campaign_id, name, display_title, click_url, payout_cents, active,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (next(_serial) + 5000, name, name.title(), "https://mode.go2cloud.org/aff_c?offer_id=1",
             payout_cents, active, now, now))
    return cur.lastrowid


def add_impression(db, ts, campaign_id, prop, is_bot=0, tz=TZ):
    n = next(_serial)
    with database.transaction(db):
        db.execute("INSERT INTO impressions (event_id, ts, day, campaign_id, property_id, placement, is_bot)"
                   " VALUES (?, ?, ?, ?, ?, 'thankyou', ?)",
                   (f"imp-{n:08d}", ts, timeutil.business_day(ts, tz), campaign_id, property_id(db, prop), is_bot))


def add_click(db, ts, campaign_id, prop, is_bot=0, tz=TZ):
    """Returns (row id, click_id)."""
    n = next(_serial)
    click_id = f"click-{n:08d}"
    with database.transaction(db):
        cur = db.execute("INSERT INTO clicks (click_id, event_id, ts, day, campaign_id, property_id, placement,"
                         " is_bot) VALUES (?, ?, ?, ?, ?, ?, 'thankyou', ?)",
                         (click_id, f"clk-{n:08d}", ts, timeutil.business_day(ts, tz), campaign_id,
                          property_id(db, prop), is_bot))
    return cur.lastrowid, click_id


def add_conversion(db, click, ts, payout_cents, status="approved", is_test=0):
    """A conversion attributed through `click` (a (row id, click_id) pair), or unattributed if None."""
    n = next(_serial)
    with database.transaction(db):
        if click is None:
            db.execute("INSERT INTO conversions (transaction_id, click_id, ts, updated_ts, payout_cents, status,"
                       " is_test) VALUES (?, 'unknown-click', ?, ?, ?, ?, ?)",
                       (f"tx-{n:08d}", ts, ts, payout_cents, status, is_test))
            return
        row = db.execute("SELECT id, click_id, day, campaign_id, property_id, placement, variant FROM clicks"
                         " WHERE id = ?", (click[0],)).fetchone()
        db.execute("INSERT INTO conversions (transaction_id, click_id, click_row_id, ts, updated_ts, day,"
                   " campaign_id, property_id, placement, variant, payout_cents, status, is_test)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (f"tx-{n:08d}", row["click_id"], row["id"], ts, ts, row["day"], row["campaign_id"],
                    row["property_id"], row["placement"], row["variant"], payout_cents, status, is_test))


def rebuild(db, first="2000-01-01", last="2100-12-31"):
    rollups.rebuild(db, first, last)
    assert rollups.differences(db, first, last) == []
