"""Helpers shared by the tracking tests: campaigns in the real schema, signed tokens, beacons."""
import json
import uuid

from popup_mgr import signals, timeutil, tokens

BROWSER_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Safari/537.36")
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def add_campaign(db, click_url="https://track.example.com/aff_c?offer_id=12&aff_id=3", *,
                 active=1, subid_param="aff_click_id", tune_id=None, payout_cents=450, app=None):
    now = timeutil.iso_now()
    cursor = db.execute(
        "INSERT INTO campaigns (tune_campaign_id, name, display_title, click_url, active, subid_param,"
        " payout_cents, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (tune_id or uuid.uuid4().int % 10**9, "Test offer", "Free sample", click_url, active, subid_param,
         payout_cents, now, now))
    if app is not None:
        signals.notify_catalog_changed(app)
    return cursor.lastrowid


def set_campaign_active(db, app, campaign_id, active):
    db.execute("UPDATE campaigns SET active = ? WHERE id = ?", (active, campaign_id))
    signals.notify_catalog_changed(app)


def token_for(app, campaign_id, property_code="mff", placement="thankyou", variant="", issued_s=None):
    issued_s = timeutil.now_ms() // 1000 if issued_s is None else issued_s
    return tokens.sign(app.config["SECRET_KEY"], campaign_id, property_code, placement, variant, issued_s)


def new_event_id():
    return uuid.uuid4().hex


def beacon_body(token, event_id=None, **extra):
    return json.dumps({"token": token, "event_id": event_id or new_event_id(), **extra})


def count(db, table, where="1", params=()):
    return db.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()[0]


def stats(db):
    """{measure: sum over daily_stats}."""
    row = db.execute("SELECT coalesce(sum(impressions),0) AS impressions, coalesce(sum(clicks),0) AS clicks,"
                     " coalesce(sum(conversions),0) AS conversions, coalesce(sum(revenue_cents),0) AS revenue_cents,"
                     " coalesce(sum(bot_impressions),0) AS bot_impressions, coalesce(sum(bot_clicks),0) AS bot_clicks"
                     " FROM daily_stats").fetchone()
    return dict(row)


def all_differences(db):
    from popup_mgr import rollups
    return rollups.differences(db, "0000-01-01", "9999-12-31")


def csrf_from_page(client, path):
    """The CSRF token in a rendered admin page's htmx headers (as tests/conftest.py's csrf_token;
    imported here by value because two conftest modules exist under tests/)."""
    import re
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'"X-CSRFToken": "([^"]+)"', html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)
