"""Shared fixtures: an app on a real temporary SQLite file, its clients and a logged-in admin."""
import pytest
from flask import template_rendered

from popup_mgr import create_app, users
from popup_mgr import db as database
from popup_mgr.extensions import limiter
from popup_mgr.ingest import state as ingest
from tests.helpers import ADMIN_PASSWORD, RENDERED_TEMPLATES, TEST_SECRET, log_in_session
from tests.mail_support import Inbox, start_server
from tests.tune_standin import TuneStandin


def _record_template(_sender, template, **_extra):
    RENDERED_TEMPLATES.add(template.name)


# For every app in this process, also those served to real browsers by tests/browser.
template_rendered.connect(_record_template, weak=False)


@pytest.fixture
def app(tmp_path):
    app = create_app({
        "TESTING": True,
        "DATABASE": str(tmp_path / "popup.db"),
        "SECRET_KEY": TEST_SECRET,
        "POSTBACK_SECRET": "postback-test-secret",
        "BASE_URL": "http://popup.test",
    })
    # The limiter's counters live in one in-memory store per process: each test starts with none
    # (logins made by earlier tests, browser tests included, must not throttle this one's).
    limiter.reset()
    yield app
    # The writer thread holds a connection to this test's file: commit what is queued and end it.
    ingest.stop(app)


@pytest.fixture
def db(app):
    """A connection of its own to the app's database file (not the request's)."""
    conn = database.connect(app.config["DATABASE"])
    yield conn
    conn.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def admin_user(db):
    return users.create_user(db, "mike", ADMIN_PASSWORD)


@pytest.fixture
def admin_client(app, db, admin_user):
    """A test client with an admin session (a server-side session row and the cookie's keys set
    directly, as a login would)."""
    client = app.test_client()
    with client.session_transaction() as session:
        log_in_session(db, session, admin_user)
    return client


@pytest.fixture
def api_token(db):
    return users.create_token(db, "tests")


@pytest.fixture
def tune(httpserver):
    """A stand-in for Tune's Affiliate API v3 on a real local HTTP server (tests/tune_standin.py)."""
    return TuneStandin(httpserver)


@pytest.fixture
def sleeps():
    """Where a Tune client given `sleep=sleeps.append` records its back-off waits."""
    return []


@pytest.fixture
def inbox():
    """A real SMTP server on 127.0.0.1 (aiosmtpd) and the messages it received."""
    inbox = Inbox()
    controller = start_server(inbox)
    inbox.port = controller.port
    yield inbox
    controller.stop()
