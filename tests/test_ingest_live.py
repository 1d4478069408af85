"""The tracking chain through real HTTP (waitress): offer token -> impression beacon -> /c/
redirect to a local stand-in for the Tune link -> postback with the click id it received ->
revenue in daily_stats on that campaign and property."""
import http.server
import json
import threading
import urllib.request
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import waitress

from popup_mgr import create_app
from popup_mgr import db as database
from tests.helpers import BROWSER_UA, add_campaign, all_differences, new_event_id, token_for

POSTBACK_SECRET = "live-postback-secret"


class StandInTune(http.server.BaseHTTPRequestHandler):
    """Answers 200 and remembers the query of every request (what Tune would receive)."""
    received = []

    def do_GET(self):
        StandInTune.received.append(parse_qs(urlsplit(self.path).query))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def tune():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StandInTune)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    StandInTune.received = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def server(tmp_path):
    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "popup.db"),
                      "SECRET_KEY": "live-test-secret-0123456789-abcdefghijklmnop", "POSTBACK_SECRET": POSTBACK_SECRET})
    wsgi = waitress.create_server(app, host="127.0.0.1", port=0, threads=8)
    threading.Thread(target=wsgi.run, daemon=True).start()
    yield app, f"http://127.0.0.1:{wsgi.effective_port}"
    wsgi.close()


def request(url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers={"User-Agent": BROWSER_UA} | (headers or {}))
    with urllib.request.urlopen(req, timeout=10) as response:
        return response.status, response.geturl(), response.read()


def test_impression_click_redirect_postback_revenue(server, tune):
    app, base = server
    db = database.connect(app.config["DATABASE"])
    campaign = add_campaign(db, click_url=f"{tune}/aff_c?offer_id=77&aff_id=5", app=app)
    token = token_for(app, campaign, "mcad")

    body = json.dumps({"token": token, "event_id": new_event_id()}).encode()
    status, _, _ = request(f"{base}/api/impression", body, {"Content-Type": "text/plain;charset=UTF-8"})
    assert status == 204

    status, final_url, _ = request(f"{base}/c/{token}?e={new_event_id()}")     # follows the 302
    assert status == 200 and final_url.startswith(f"{tune}/aff_c?offer_id=77&aff_id=5&aff_click_id=")
    (received,) = StandInTune.received
    click_id = received["aff_click_id"][0]
    assert received["source"] == ["mcad"]

    query = urlencode({"click_id": click_id, "transaction_id": "tune-tx-1", "payout": "12.34",
                       "secret": POSTBACK_SECRET})
    status, _, answer = request(f"{base}/api/postback?{query}")
    assert status == 200 and json.loads(answer)["attributed"] is True

    row = db.execute("SELECT d.impressions, d.clicks, d.conversions, d.revenue_cents FROM daily_stats d"
                     " JOIN properties p ON p.id = d.property_id WHERE p.code = 'mcad' AND d.campaign_id = ?",
                     (campaign,)).fetchone()
    assert tuple(row) == (1, 1, 1, 1234)
    assert all_differences(db) == []
    db.close()
