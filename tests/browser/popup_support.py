"""Shared pieces of the popup browser tests: the app on one origin with a recorder of what
reaches the server, a publisher site on another origin, and helpers to build its pages.

The tracking endpoints (/api/impression, /c/) are another module's; the recorder sees every
request the browser sends to the app whatever the answer, so these tests assert what the popup
SENDS and stay valid whether those endpoints answer 404 or 204.
"""
import io
import itertools
import json
import threading
import time

import pytest
import waitress

from popup_mgr import create_app
from popup_mgr.signals import notify_catalog_changed
from tests.browser.conftest import LiveServer
from tests.helpers import add_campaign, set_property

# Headless Chromium says "HeadlessChrome", which the popup rightly treats as a bot.
DESKTOP_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/156.0.0.0 Safari/537.36")
GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")
RECORDED_PREFIXES = ("/api/impression", "/api/click", "/c/")


class Recorder:
    """WSGI middleware: keeps (method, path, query, content type, body) of beacon-like requests."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app
        self.events = []
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(RECORDED_PREFIXES):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            with self.lock:
                self.events.append({"method": environ["REQUEST_METHOD"], "path": path,
                                    "query": environ.get("QUERY_STRING", ""),
                                    "content_type": environ.get("CONTENT_TYPE", ""), "body": body})
        return self.wsgi_app(environ, start_response)

    def impressions(self):
        with self.lock:
            return [json.loads(e["body"]) for e in self.events if e["path"] == "/api/impression"]

    def wait_for_impressions(self, count, timeout=5.0, settle=0.4):
        """Wait until `count` impressions arrived, then a short settle to catch any extra one
        (a duplicate would be sent within milliseconds of the first; there is nothing to flush)."""
        deadline = time.monotonic() + timeout
        while len(self.impressions()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(settle)
        return self.impressions()


class PopupApp:
    """The app under test on its own origin, with helpers to put campaigns in it."""

    def __init__(self, tmp_path):
        self.app = create_app({
            "TESTING": True,
            "DATABASE": str(tmp_path / "popup.db"),
            "SECRET_KEY": "browser-test-secret-0123456789-abcdefghijklmnop",
            "POSTBACK_SECRET": "postback-test-secret",
        })
        self.recorder = Recorder(self.app.wsgi_app)
        self.app.wsgi_app = self.recorder
        self.server = LiveServer(self.app)
        self.url = self.server.url
        self.app.config["BASE_URL"] = self.url

    def counts_impressions(self):
        """True once the tracking endpoints are part of the app (they record to the ledger)."""
        return any(rule.rule == "/api/impression" for rule in self.app.url_map.iter_rules())

    def ledger_impressions(self, expected, timeout=5.0):
        """Impression rows on disk, waiting up to timeout for `expected` of them."""
        deadline = time.monotonic() + timeout
        while True:
            db = self.server.db()
            try:
                count = db.execute("SELECT count(*) FROM impressions").fetchone()[0]
            finally:
                db.close()
            if count >= expected or time.monotonic() > deadline:
                return count
            time.sleep(0.05)

    def campaign(self, tune_id, **fields):
        db = self.server.db()
        try:
            campaign_id = add_campaign(db, tune_id=tune_id, **fields)
        finally:
            db.close()
        notify_catalog_changed(self.app)
        return campaign_id

    def property(self, code, **fields):
        db = self.server.db()
        try:
            set_property(db, code, **fields)
        finally:
            db.close()
        notify_catalog_changed(self.app)


class _Publisher:
    """A publisher site on a different origin (another port) serving registered pages."""

    def __init__(self):
        self.pages = {}
        self.names = itertools.count(1)
        self.server = waitress.create_server(self._wsgi, host="127.0.0.1", port=0, threads=4)
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        threading.Thread(target=self.server.run, daemon=True).start()

    def _wsgi(self, environ, start_response):
        page = self.pages.get(environ.get("PATH_INFO", ""))
        if page is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        body, headers, content_type = page
        start_response("200 OK", [("Content-Type", content_type),
                                  ("Cache-Control", "no-store")] + list(headers))
        return [body.encode() if isinstance(body, str) else body]

    def add(self, body, headers=(), name=None, content_type="text/html; charset=utf-8"):
        path = f"/{name or f'thanks-{next(self.names)}.html'}"
        self.pages[path] = (body, headers, content_type)
        return self.url + path


def snippet(app_url, **options):
    """The documented snippet: the async script, then the queue-or-call init block."""
    return (f'<script src="{app_url}/popup.js" async></script>\n<script>\n'
            "window.ModePopup = window.ModePopup || {q: []};\n"
            "ModePopup.init = ModePopup.init || function (o) { ModePopup.q.push(o); };\n"
            f"ModePopup.init({json.dumps(options)});\n</script>")


def attributes_tag(app_url, **data):
    attrs = " ".join(f'data-{name.replace("_", "-")}="{value}"' for name, value in data.items())
    return f'<script src="{app_url}/popup.js" {attrs} async></script>'


def page_html(embed, head="", body=""):
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>Thank you</title>{head}</head><body><main><h1>Thank you for your order</h1>"
            f"<p>Your order is on its way.</p><button id=\"before\">Order details</button>{body}</main>"
            f"{embed}</body></html>")


@pytest.fixture(scope="session")
def publisher():
    site = _Publisher()
    yield site
    site.server.close()


@pytest.fixture
def popup_app(tmp_path):
    server = PopupApp(tmp_path)
    yield server
    server.server.stop()


def route_offer_assets(context):
    """Offer images and Tune pixels live on other hosts; answer them locally (no internet here)."""
    context.route("https://img.example/**", lambda route: route.fulfill(status=200, content_type="image/gif", body=GIF))
    context.route("https://tune.example/**", lambda route: route.fulfill(status=200, content_type="image/gif", body=GIF))


@pytest.fixture
def visitor(chromium):
    """A fresh desktop visitor (own storage), collecting page errors and popup debug logs."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, user_agent=DESKTOP_UA)
    route_offer_assets(context)
    page = context.new_page()
    page.errors = []
    page.logs = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("console", lambda msg: page.logs.append(msg.text))
    yield page
    context.close()


DIALOG = "mode-popup [role=dialog]"
