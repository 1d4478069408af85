"""Real-browser fixtures: the app served by waitress on a free port, Debian's Chromium driven by
Playwright, and a logged-in admin browser context.

Test tools cannot download browsers here; `make test` installs Debian's (scripts/install-browsers.sh)
and these fixtures point Playwright at them.
"""
import os
import shutil
import threading

import pytest
import waitress

from popup_mgr import create_app, users
from popup_mgr import db as database

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ADMIN = ("mike", "correct horse battery staple")


def pytest_collection_modifyitems(items):
    for item in items:
        if "/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


class LiveServer:
    """A waitress server in a background thread, serving one app on 127.0.0.1."""

    def __init__(self, app, host="127.0.0.1"):
        self.app = app
        self.server = waitress.create_server(app, host=host, port=0, threads=8, ident="popup_mgr")
        self.url = f"http://{host}:{self.server.effective_port}"
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            self.server.run()
        except OSError:
            # close() from the test's thread may pull a socket out of the select() in progress
            # (EBADF): the end of the server asked for, not a failure of it.
            if not self.stopping:
                raise

    def db(self):
        return database.connect(self.app.config["DATABASE"])

    def stop(self):
        self.stopping = True
        self.server.close()


@pytest.fixture
def live_server(tmp_path):
    app = create_app({
        "TESTING": True,
        "DATABASE": str(tmp_path / "popup.db"),
        "SECRET_KEY": "browser-test-secret-0123456789-abcdefghijklmnop",
        "POSTBACK_SECRET": "postback-test-secret",
    })
    server = LiveServer(app)
    app.config["BASE_URL"] = server.url
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chromium():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make test` (installs Debian's chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def admin_session_cookie(server):
    """A signed admin session cookie for server's app (as a successful login would set)."""
    db = server.db()
    try:
        row = db.execute("SELECT id FROM users WHERE username = ?", (ADMIN[0],)).fetchone()
        user_id = row["id"] if row else users.create_user(db, *ADMIN)
        sid = users.start_session(db, user_id, "127.0.0.0/24", "browser test")
    finally:
        db.close()
    app = server.app
    value = app.session_interface.get_signing_serializer(app).dumps(
        {"_user_id": str(user_id), "_fresh": True, "sid": sid})
    return {"name": app.config["SESSION_COOKIE_NAME"], "value": value, "url": server.url}


@pytest.fixture
def admin_page(chromium, live_server):
    """A page whose browser context is logged in as the admin."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([admin_session_cookie(live_server)])
    page = context.new_page()
    yield page
    context.close()
