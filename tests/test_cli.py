"""The popup-mgr commands, run as a real subprocess on a real database file."""
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from popup_mgr import users
from popup_mgr import db as database

POPUP_MGR = str(Path(sys.executable).parent / "popup-mgr")


def run(args, db_path, stdin=None, extra_env=None):
    env = {**os.environ, "POPUP_DB": str(db_path), "POPUP_ENV": "development", **(extra_env or {})}
    return subprocess.run([POPUP_MGR, *args], input=stdin, capture_output=True, text=True, env=env,
                          timeout=60)


def test_init_db_is_idempotent_and_seeds_properties(tmp_path):
    path = tmp_path / "p.db"
    for _ in range(2):
        result = run(["init-db"], path)
        assert result.returncode == 0, result.stderr
    conn = sqlite3.connect(path)
    assert [r[0] for r in conn.execute("SELECT code FROM properties ORDER BY id")] == ["mff", "mmm", "mcad", "mmd"]
    conn.close()


def test_create_admin_from_stdin_and_duplicate_refused(tmp_path):
    path = tmp_path / "p.db"
    assert run(["create-admin", "mike", "--password-stdin"], path, stdin="a long enough password\n").returncode == 0
    conn = database.connect(path)
    assert users.check_password(conn, "mike", "a long enough password") is not None
    assert users.check_password(conn, "mike", "wrong password here") is None
    conn.close()
    again = run(["create-admin", "mike", "--password-stdin"], path, stdin="another long password\n")
    assert again.returncode != 0 and "already exists" in again.stderr


def test_create_admin_rejects_short_password(tmp_path):
    result = run(["create-admin", "mike", "--password-stdin"], tmp_path / "p.db", stdin="short\n")
    assert result.returncode != 0 and "at least" in result.stderr


def test_create_token_prints_only_the_token(tmp_path):
    path = tmp_path / "p.db"
    result = run(["create-token", "zapier"], path)
    assert result.returncode == 0, result.stderr
    token = result.stdout
    assert token.endswith("\n") and token.count("\n") == 1
    conn = database.connect(path)
    assert users.token_name(conn, token.strip()) == "zapier"
    # Only a hash is stored.
    assert token.strip() not in str(conn.execute("SELECT * FROM api_tokens").fetchall())
    conn.close()


def test_same_commands_under_flask(tmp_path):
    env = {**os.environ, "POPUP_DB": str(tmp_path / "p.db")}
    flask = str(Path(sys.executable).parent / "flask")
    result = subprocess.run([flask, "--app", "popup_mgr", "create-token", "x"], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("pm_")


@pytest.mark.parametrize("secret, ok", [
    (None, False),
    ("tiny-s3cret", False),
    ("a" * 40, False),                                  # long but one repeated character
    ("Zx8-vQ2mNw7_Lk4pRt6yHb1cJs9dFg3eUa5", True),
])
def test_production_refuses_weak_secret(tmp_path, secret, ok):
    env = {"POPUP_ENV": "production"}
    if secret:
        env["POPUP_SECRET_KEY"] = secret
    else:
        env["POPUP_SECRET_KEY"] = ""
    result = run(["init-db"], tmp_path / "p.db", extra_env=env)
    assert (result.returncode == 0) is ok, result.stderr
    if not ok:
        assert "POPUP_SECRET_KEY" in result.stderr and "Traceback" not in result.stderr
        assert not (secret and secret in result.stderr)   # the secret itself is never printed


def test_backup_and_restore(tmp_path):
    path = tmp_path / "p.db"
    run(["init-db"], path)
    conn = database.connect(path)
    with database.transaction(conn):
        conn.execute("UPDATE properties SET name = 'Before backup' WHERE code = 'mff'")
    result = run(["backup", str(tmp_path / "b.db")], path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "b.db")

    with database.transaction(conn):
        conn.execute("UPDATE properties SET name = 'After backup' WHERE code = 'mff'")
    # The live connection stays open: restore works while the app is running.
    result = run(["restore", str(tmp_path / "b.db"), "--yes"], path)
    assert result.returncode == 0, result.stderr
    assert conn.execute("SELECT name FROM properties WHERE code = 'mff'").fetchone()[0] == "Before backup"
    conn.close()
    assert list((tmp_path / "backups").glob("pre-restore-*.db")), "the replaced content is kept"


def test_restore_refuses_a_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "p.db"
    run(["init-db"], path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    result = run(["restore", str(junk), "--yes"], path)
    assert result.returncode != 0 and "not a SQLite database" in result.stderr


def test_serve_links_point_at_the_served_port_without_a_base_url(tmp_path):
    """With no POPUP_BASE_URL, click links must not point at another port than the one served."""
    import json
    import socket
    import time
    import urllib.request
    from tests.helpers import add_campaign

    path = tmp_path / "p.db"
    run(["init-db"], path)
    conn = database.connect(path)
    add_campaign(conn, tune_id=5150)
    conn.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "POPUP_BASE_URL"}
    env["POPUP_DB"] = str(path)
    server = subprocess.Popen([POPUP_MGR, "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/offers/mff") as response:
                    offers = json.load(response)["offers"]
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(10)
    assert offers and offers[0]["click_url"].startswith(f"http://127.0.0.1:{port}/c/")
