"""The storage seen from outside SQLite: the WAL behind a long reader, /api/health when writes
fail or the disk fills, the idle writer's checkpoint, throttled warnings, the postback's secret
check before any write, owner-only files."""
import logging
import os
import stat
import time

import pytest

from popup_mgr import db as database
from popup_mgr import storage
from popup_mgr.ingest import conversions
from popup_mgr.ingest import state as ingest
from popup_mgr.web import fastpath
from tests.helpers import BROWSER_UA, add_campaign, beacon_body, count, token_for

HEADERS = {"User-Agent": BROWSER_UA, "Content-Type": "text/plain"}


def wal_bytes(app):
    try:
        return os.stat(app.config["DATABASE"] + "-wal").st_size
    except FileNotFoundError:
        return 0


def fill_wal(db, rows=3000):
    """Write rows of padding (settings rows) in one transaction: about rows * 300 bytes of WAL."""
    with database.transaction(db):
        db.executemany("INSERT OR REPLACE INTO settings (key, value, updated_at) VALUES (?, ?, 'now')",
                       [(f"padding-{n}", "x" * 250) for n in range(rows)])


# --- item 7: the WAL ---------------------------------------------------------------------------

def test_every_connection_limits_the_wal_kept_after_a_reset(app):
    with database.connection(app.config["DATABASE"]) as db:
        assert db.execute("PRAGMA journal_size_limit").fetchone()[0] == database.JOURNAL_SIZE_LIMIT


def test_a_wal_grown_behind_a_long_reader_is_truncated_once_it_ends_and_the_writer_idles(app, client, db):
    token = token_for(app, add_campaign(db, app=app))
    path = app.config["DATABASE"]
    with database.connection(path) as reader, database.connection(path) as writer:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM settings").fetchone()       # holds its snapshot
        for _ in range(8):
            fill_wal(writer)
        assert wal_bytes(app) > 4 * 1024 * 1024       # automatic checkpoints could not reset it
        assert client.post("/api/impression", data=beacon_body(token), headers=HEADERS).status_code == 204
        reader.execute("COMMIT")
    ingest.of(app).writer.stop()                      # the writer's idle spell, at once
    assert wal_bytes(app) == 0 and count(db, "impressions") == 1


def test_health_reports_a_wal_stuck_behind_a_reader(app, client):
    app.config["WAL_STUCK_BYTES"] = 256 * 1024
    path = app.config["DATABASE"]
    with database.connection(path) as reader, database.connection(path) as writer:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM settings").fetchone()
        fill_wal(writer)
        response = client.get("/api/health")
        assert response.status_code == 503 and response.json["status"] == "degraded"
        assert response.json["wal"]["stuck"] is True and response.json["wal"]["bytes"] > 256 * 1024
        assert response.json["problems"] == ["wal"] and response.headers["Retry-After"]
        reader.execute("COMMIT")
        assert database.checkpoint_without_waiting(writer)[0] == 0
    response = client.get("/api/health")
    assert response.status_code == 200 and response.json["wal"] == {"bytes": 0, "stuck": False}


def test_the_idle_writer_folds_the_wal_into_the_database(app, client, db):
    token = token_for(app, add_campaign(db, app=app))
    assert client.post("/api/impression", data=beacon_body(token), headers=HEADERS).status_code == 204
    assert wal_bytes(app) > 0
    ingest.of(app).writer.stop()               # what an idle spell does, at once
    # db (this test's connection) is still open: without the writer's checkpoint the WAL would stay.
    assert wal_bytes(app) == 0 and count(db, "impressions") == 1


def test_the_checkpoint_never_waits_for_a_reader(app):
    path = app.config["DATABASE"]
    with database.connection(path) as reader, database.connection(path) as writer:
        fill_wal(writer, rows=100)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM settings").fetchone()
        fill_wal(writer, rows=100)
        started = time.monotonic()
        busy, _frames, _copied = database.checkpoint_without_waiting(writer)
        assert busy == 1 and time.monotonic() - started < 1.0
        reader.execute("COMMIT")
        assert writer.execute("PRAGMA busy_timeout").fetchone()[0] == 10000


# --- item 8: write failures and disk space in health, throttled warnings ------------------------------

@pytest.fixture
def token(app, db):
    return token_for(app, add_campaign(db, app=app))


@pytest.fixture
def locked_out(app, client, db, token):
    """The writer gives up after 50 ms while this test holds the write lock (today's visitor salt
    is made first: making it needs the lock too)."""
    assert client.post("/api/impression", data=beacon_body(token), headers=HEADERS).status_code == 204
    ingest.of(app).writer.timeout_s = 0.05
    db.execute("BEGIN IMMEDIATE")
    yield
    db.execute("ROLLBACK")


def test_health_is_degraded_while_writes_are_refused(app, client, token, locked_out):
    assert client.get("/api/health").status_code == 200     # the salt's impression was stored
    for _ in range(3):
        assert client.post("/api/impression", data=beacon_body(token), headers=HEADERS).status_code == 503
    response = client.get("/api/health")
    assert response.status_code == 503 and response.json["status"] == "degraded"
    assert response.json["writes"] == {"failed": 3, "window_s": 300} and response.json["problems"] == ["writes"]
    app.config["WRITE_FAILURE_WINDOW_S"] = 0      # the failures age out of the window
    assert client.get("/api/health").status_code == 200


def test_health_is_degraded_when_the_disk_is_nearly_full(app, client):
    free = storage.disk_status(app.config["DATABASE"])["free_bytes"]
    app.config["MIN_FREE_DISK_BYTES"] = free * 2
    response = client.get("/api/health")
    assert response.status_code == 503 and response.json["disk"]["low"] is True
    assert response.json["problems"] == ["disk"]


def test_a_refused_conversion_counts_as_a_failed_write(app, client, db):
    db.execute("BEGIN IMMEDIATE")
    original = database.connect

    def impatient(path, **kwargs):            # the postback's FULL-sync connection gives up at once
        conn = original(path, **kwargs)
        conn.execute("PRAGMA busy_timeout = 0")
        return conn

    try:
        import unittest.mock
        with unittest.mock.patch.object(database, "connect", impatient):
            response = client.get("/api/postback?click_id=c1&transaction_id=t1&payout=1.00"
                                  "&secret=postback-test-secret")
    finally:
        db.execute("ROLLBACK")
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert client.get("/api/health").json["writes"]["failed"] == 1


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_refused_events_log_one_warning_per_reason_per_minute(app, client, token, locked_out, caplog,
                                                             monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(fastpath, "throttled_log", storage.ThrottledLog(fastpath.log, 60, clock))
    caplog.set_level(logging.WARNING, logger=fastpath.log.name)
    for _ in range(20):
        assert client.post("/api/impression", data=beacon_body(token), headers=HEADERS).status_code == 503
    warnings = [r.getMessage() for r in caplog.records if "event not stored" in r.getMessage()]
    assert warnings == ["event not stored: timed out waiting for the database"]
    clock.now += 61
    assert client.post("/api/impression", data=beacon_body(token), headers=HEADERS).status_code == 503
    warnings = [r.getMessage() for r in caplog.records if "event not stored" in r.getMessage()]
    assert warnings[1:] == ["event not stored: timed out waiting for the database"
                            " (and 19 more like it in the last 60 s, not logged)"]


def test_throttling_is_per_reason():
    logged = []
    log = storage.ThrottledLog(type("L", (), {"warning": lambda self, m, *a: logged.append(m % a)})(), 60,
                               FakeClock())
    for reason in ("full", "locked", "full", "locked", "other"):
        log.warning(reason, "%s", reason)
    assert logged == ["full", "locked", "other"]


# --- item 9: the postback checks its secret before any database work ----------------------------------

def test_a_wrong_secret_is_refused_while_another_process_holds_the_write_lock(app, client, db):
    app.config["POSTBACK_SECRET"] = None          # the stored secret: read from the database
    conversions.rotate_postback_secret(app)
    db.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        response = client.get("/api/postback?click_id=c1&transaction_id=t1&payout=1.00&secret=wrong")
        elapsed = time.monotonic() - started
    finally:
        db.execute("ROLLBACK")
    # Asking for the write lock would have waited the 10 s busy timeout.
    assert response.status_code == 403 and elapsed < 2.0
    assert count(db, "conversions") == 0


@pytest.mark.parametrize("stored_secret", [True, False])
def test_postback_answers_503_with_retry_after_when_the_database_cannot_be_opened(app, client, tmp_path,
                                                                                   stored_secret):
    secret = "postback-test-secret"
    if stored_secret:
        app.config["POSTBACK_SECRET"] = None
        conversions.rotate_postback_secret(app)
    app.config["DATABASE"] = str(tmp_path / "no-such-directory" / "popup.db")
    response = client.get(f"/api/postback?click_id=c1&transaction_id=t1&payout=1.00&secret={secret}")
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert response.json["error"] == "temporarily unavailable, retry"


# --- item 13: owner-only files ---------------------------------------------------------------------

def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_database_its_wal_and_shm_are_owner_only(tmp_path):
    from popup_mgr import create_app
    os.umask(0o022)
    path = tmp_path / "new-dir" / "popup.db"
    app = create_app({"DATABASE": str(path), "SECRET_KEY": "k" * 40})
    with database.connection(str(path)) as db:
        fill_wal(db, rows=10)
        assert mode(path) == 0o600 and mode(f"{path}-wal") == 0o600 and mode(f"{path}-shm") == 0o600
    assert mode(path.parent) == 0o700
    ingest.stop(app)


def test_an_existing_world_readable_database_is_made_owner_only(tmp_path):
    from popup_mgr import create_app
    path = tmp_path / "popup.db"
    database.migrate(str(path))
    os.chmod(path, 0o644)
    app = create_app({"DATABASE": str(path), "SECRET_KEY": "k" * 40})
    assert mode(path) == 0o600
    ingest.stop(app)


def test_the_directory_made_for_a_generated_secret_key_is_owner_only(tmp_path):
    """Without POPUP_SECRET_KEY the key is kept beside the database: its new directory is made
    0700 before the database (a later 0755 directory would expose the names of its files)."""
    from popup_mgr import create_app
    os.umask(0o022)
    path = tmp_path / "instance" / "popup.db"
    app = create_app({"DATABASE": str(path), "SECRET_KEY": None})
    assert mode(path.parent) == 0o700 and mode(path.parent / "secret_key") == 0o600 and mode(path) == 0o600
    ingest.stop(app)
