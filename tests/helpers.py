"""Helpers shared by the tests (and bench/): campaigns and ledger rows written straight into the
real schema, signed tokens, beacon bodies, the admin's CSRF token, and waiting for a server."""
import contextlib
import datetime as dt
import itertools
import json
import re
import time
import urllib.error
import urllib.request
import uuid
from zoneinfo import ZoneInfo

from popup_mgr import db as database
from popup_mgr import rollups, signals, timeutil
from popup_mgr.ingest import tokens

TEST_SECRET = "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
ADMIN_PASSWORD = "correct horse battery staple"
TZ = "America/New_York"
BROWSER_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Safari/537.36")
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
_serial = itertools.count(1)
# Names of the templates rendered during this test run (tests/conftest.py listens; see
# tests/test_zz_templates.py).
RENDERED_TEMPLATES = set()


# --- campaigns and properties -------------------------------------------------------------------

def add_campaign(db, *, tune_id=None, name=None, title="Free sample box", properties=(), app=None, **fields):
    """A campaign row with realistic defaults (any column can be given); returns its id.
    properties: codes it targets (none = all). app: notify its catalog, as an admin change does."""
    tune_id = tune_id if tune_id is not None else 5000 + next(_serial)
    now = timeutil.iso_now()
    row = {"tune_campaign_id": tune_id, "name": name or f"campaign {tune_id}", "display_title": title,
           "tagline": "Limited time", "description": "Get it delivered free.", "cta_text": "Claim now",
           "image_url": "https://img.example/offer.jpg",
           "click_url": f"https://tune.example/aff_c?offer_id={tune_id}&aff_id=3",
           "impression_pixel_url": f"https://tune.example/aff_i?offer_id={tune_id}", "active": 1,
           "priority": 5, "payout_cents": 450, "subid_param": "aff_click_id", "created_at": now,
           "updated_at": now, **fields}
    with database.transaction(db):
        campaign_id = db.execute(f"INSERT INTO campaigns ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                                 tuple(row.values())).lastrowid
        for code in properties:
            db.execute("INSERT INTO campaign_properties (campaign_id, property_id)"
                       " SELECT ?, id FROM properties WHERE code = ?", (campaign_id, code))
    if app is not None:
        signals.notify_catalog_changed(app)
    return campaign_id


def set_campaign_active(db, app, campaign_id, active):
    db.execute("UPDATE campaigns SET active = ? WHERE id = ?", (active, campaign_id))
    signals.notify_catalog_changed(app)


def set_property(db, code, **fields):
    if "theme" in fields and isinstance(fields["theme"], dict):
        fields["theme"] = json.dumps(fields["theme"])
    sets = ", ".join(f"{name} = ?" for name in fields)
    db.execute(f"UPDATE properties SET {sets} WHERE code = ?", (*fields.values(), code))


def property_id(db, code):
    return db.execute("SELECT id FROM properties WHERE code = ?", (code,)).fetchone()[0]


# --- beacons ----------------------------------------------------------------------------------

def token_for(app, campaign_id, property_code="mff", placement="thankyou", variant="", issued_s=None):
    issued_s = timeutil.now_ms() // 1000 if issued_s is None else issued_s
    return tokens.sign(app.config["SECRET_KEY"], campaign_id, property_code, placement, variant, issued_s)


def new_event_id():
    return uuid.uuid4().hex


def beacon_body(token, event_id=None, **extra):
    return json.dumps({"token": token, "event_id": event_id or new_event_id(), **extra})


# --- ledger rows written directly (analytics tests; ingest is tested through HTTP) ---------------

def ms(text, tz="UTC"):
    """'2026-03-08 04:59:59' in tz -> Unix ms."""
    moment = dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))
    return int(moment.timestamp() * 1000)


def add_impression(db, ts, campaign_id, prop, is_bot=0, tz=TZ, is_view=0):
    n = next(_serial)
    with database.transaction(db):
        db.execute("INSERT INTO impressions (event_id, ts, day, campaign_id, property_id, placement, is_bot,"
                   " is_view) VALUES (?, ?, ?, ?, ?, 'thankyou', ?, ?)",
                   (f"imp-{n:08d}", ts, timeutil.business_day(ts, tz), campaign_id, property_id(db, prop), is_bot,
                    is_view))


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


# --- reading what was stored ------------------------------------------------------------------------

def count(db, table, where="1", params=()):
    return db.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()[0]


def stats(db):
    """{measure: sum over daily_stats}, for every measure rollups.py defines."""
    sums = ", ".join(f"coalesce(sum({m}), 0) AS {m}" for m in rollups.MEASURES)
    return dict(db.execute(f"SELECT {sums} FROM daily_stats").fetchone())


def all_differences(db):
    return rollups.differences(db, "0000-01-01", "9999-12-31")


# --- HTTP ------------------------------------------------------------------------------------------

@contextlib.contextmanager
def flask_alone(app):
    """Take the raw-WSGI fast path out of app's WSGI chain for the block (Flask answers all)."""
    from popup_mgr.web import fastpath
    holder = app                            # the fast path may sit under other WSGI wrappers
    while not isinstance(holder.wsgi_app, fastpath.FastPath):
        holder = holder.wsgi_app
    fast = holder.wsgi_app
    holder.wsgi_app = fast.wsgi_app
    try:
        yield
    finally:
        holder.wsgi_app = fast


def log_in_session(db, session, user_id):
    """Make session (a test client's session_transaction) a logged-in admin session, with the
    server-side session row a real login creates."""
    from popup_mgr import users
    session["sid"] = users.start_session(db, user_id, "127.0.0.0/24", "test client")
    session["_user_id"] = str(user_id)
    session["_fresh"] = True


def csrf_token(client, path="/"):
    """A CSRF token for client's session, read from a rendered admin page's htmx headers."""
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'"X-CSRFToken": "([^"]+)"', html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def wait_until_up(url, timeout_s=30):
    """Return once url answers at all (any HTTP status); RuntimeError after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")
