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


def app_on_file(path, **config):
    """A test app on a real SQLite file at path, yielded and then stopped (a generator for the
    fixtures below)."""
    app = create_app({"TESTING": True, "DATABASE": str(path), "SECRET_KEY": TEST_SECRET, **config})
    # The limiter's counters live in one in-memory store per process: each test starts with none
    # (logins made by earlier tests, browser tests included, must not throttle this one's).
    limiter.reset()
    yield app
    # The writer thread holds a connection to this test's file: commit what is queued and end it.
    ingest.stop(app)


@pytest.fixture
def app(tmp_path):
    yield from app_on_file(tmp_path / "popup.db", POSTBACK_SECRET="postback-test-secret",
                           BASE_URL="http://popup.test")


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
def stored_secret_app(tmp_path):
    """An app without POPUP_POSTBACK_SECRET: the postback secret is made on first use and kept in
    the database, where the admin can rotate it."""
    yield from app_on_file(tmp_path / "stored-secret.db", POSTBACK_SECRET=None, BASE_URL="https://popup.example")


@pytest.fixture
def stored_secret_admin_client(stored_secret_app):
    conn = database.connect(stored_secret_app.config["DATABASE"])
    try:
        user_id = users.create_user(conn, "mike", ADMIN_PASSWORD)
        client = stored_secret_app.test_client()
        with client.session_transaction() as session:
            log_in_session(conn, session, user_id)
    finally:
        conn.close()
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
