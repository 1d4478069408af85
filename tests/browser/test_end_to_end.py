"""The money chain in a real browser: popup shown on a publisher page (another origin) ->
impression counted -> CTA clicked -> redirect reaches a local stand-in for the Tune link with our
click id -> the network's postback with that id -> revenue on that campaign and property."""
import json
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from popup_mgr import users
from popup_mgr import db as database
from popup_mgr import signals, timeutil

# A desktop browser's user agent: headless Chromium announces itself as "HeadlessChrome", which
# the bot filters (rightly) refuse to count.
DESKTOP_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Safari/537.36")


class _Recorder(BaseHTTPRequestHandler):
    """Serves the publisher's thank-you page and stands in for Tune's tracking link."""
    requests = []
    page = ""

    def do_GET(self):
        type(self).requests.append(self.path)
        body = (self.page if self.path.startswith("/thank-you") else "<h1>Tune offer page</h1>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def other_origin():
    handler = type("Handler", (_Recorder,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # "localhost" vs the app's "127.0.0.1": a different origin, as on a real publisher site.
    yield handler, f"http://localhost:{server.server_port}"
    server.shutdown()


def _add_campaign(live_server, click_url):
    db = live_server.db()
    now = timeutil.iso_now()
    with database.transaction(db):
        cur = db.execute(
            "INSERT INTO campaigns (tune_campaign_id, aff_id, name, display_title, tagline, description,"
            " click_url, payout_cents, priority, created_at, updated_at)"
            " VALUES (9001, 77, 'E2E offer', 'Free sample box', 'Today only', 'Get it now',"
            " ?, 450, 10, ?, ?)", (click_url, now, now))
        db.execute("UPDATE properties SET delay_ms = 0, popup_placement = 'thankyou' WHERE code = 'mff'")
    db.close()
    signals.notify_catalog_changed(live_server.app)
    return cur.lastrowid


def _count(live_server, sql, *params):
    db = live_server.db()
    try:
        return db.execute(sql, params).fetchone()[0]
    finally:
        db.close()


def test_popup_to_revenue_chain(chromium, live_server, other_origin):
    handler, origin = other_origin
    campaign_id = _add_campaign(live_server, f"{origin}/aff_c?offer_id=9001&aff_id=77")
    handler.page = f"""<!doctype html><html lang="en"><head><title>Thanks</title></head><body>
      <h1>Thank you for your order</h1>
      <script src="{live_server.url}/popup.js" async></script>
      <script>
        window.ModePopup = window.ModePopup || {{q: []}};
        ModePopup.init = ModePopup.init || function (o) {{ ModePopup.q.push(o); }};
        ModePopup.init({{property: 'mff', placement: 'thankyou', frequency: 'always'}});
      </script></body></html>"""

    context = chromium.new_context(user_agent=DESKTOP_UA, viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{origin}/thank-you")
        cta = page.get_by_role("link", name="View Offer")
        cta.wait_for(state="visible", timeout=5000)
        _wait_for(lambda: _count(live_server, "SELECT count(*) FROM impressions WHERE campaign_id = ?",
                                 campaign_id) == 1, "impression stored")

        with context.expect_page() as new_tab:
            cta.click()
        offer_page = new_tab.value
        offer_page.wait_for_load_state()
        assert offer_page.url.startswith(f"{origin}/aff_c?")
    finally:
        context.close()

    landed = [p for p in handler.requests if p.startswith("/aff_c")]
    assert len(landed) == 1
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(landed[0]).query)
    assert query["offer_id"] == ["9001"] and query["aff_id"] == ["77"] and query["source"] == ["mff"]
    click_id = query["aff_click_id"][0]
    assert _count(live_server, "SELECT count(*) FROM clicks WHERE click_id = ? AND campaign_id = ?",
                  click_id, campaign_id) == 1
    assert _count(live_server, "SELECT count(*) FROM impressions") == 1   # counted once

    postback = urllib.parse.urlencode({"click_id": click_id, "transaction_id": "tx-e2e-1", "payout": "4.50",
                                       "secret": live_server.app.config["POSTBACK_SECRET"]})
    with urllib.request.urlopen(f"{live_server.url}/api/postback?{postback}") as response:
        assert response.status == 200

    # What Mike sees: the analytics API for that property and day.
    db = live_server.db()
    token = users.create_token(db, "e2e")
    db.close()
    today = timeutil.today(live_server.app.config["BUSINESS_TZ"])
    request = urllib.request.Request(f"{live_server.url}/api/analytics/mff?from={today}&to={today}",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request) as response:
        report = json.load(response)
    row = next(c for c in report["campaigns"] if c["campaign_id"] == campaign_id)
    assert (row["impressions"], row["clicks"], row["conversions"], row["revenue"]) == (1, 1, 1, "4.50")
    assert report["totals"]["revenue"] == "4.50"


def _wait_for(predicate, what, timeout_s=5.0):
    import time
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {what}")
