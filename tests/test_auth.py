"""Login, logout, throttling, open redirects and the token command."""
import re

import pytest

from popup_mgr import users
from popup_mgr.web import auth as web_auth
from tests.helpers import ADMIN_PASSWORD, TEST_SECRET, csrf_token


def login(client, username="mike", password=ADMIN_PASSWORD, next_path=None, environ=None):
    token = csrf_token(client, "/login")
    path = "/login" + (f"?next={next_path}" if next_path is not None else "")
    return client.post(path, data={"username": username, "password": password, "csrf_token": token},
                       environ_base=environ or {})


def test_login_page_and_successful_login(client, db, admin_user):
    page = client.get("/login")
    assert page.status_code == 200 and 'name="password"' in page.get_data(as_text=True)
    response = login(client)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/admin/campaigns").status_code == 200
    assert db.execute("SELECT last_login_at FROM users").fetchone()[0] is not None


def test_unknown_user_and_wrong_password_get_the_same_answer(client, admin_user):
    wrong_password = login(client, password="not the password")
    unknown_user = login(client, username="nobody")
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert web_auth.LOGIN_FAILED in wrong_password.get_data(as_text=True)
    # Same page apart from the echoed username and the CSRF token.
    strip = lambda r: re.sub(r'value="[^"]*"', "", r.get_data(as_text=True))    # noqa: E731
    assert strip(wrong_password) == strip(unknown_user)
    assert client.get("/admin/campaigns").status_code == 302


def test_session_is_rotated_at_login(client, admin_user):
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    before = csrf_token(client, "/login")
    login(client)
    with client.session_transaction() as session:
        assert "planted" not in session and session["_user_id"] == str(admin_user)
    assert csrf_token(client, "/admin/campaigns") != before


def test_logout_needs_post_with_csrf_and_ends_the_session(admin_client):
    assert admin_client.get("/logout").status_code == 405      # GET never changes state
    assert admin_client.post("/logout").status_code == 400      # no CSRF token
    assert admin_client.get("/admin/campaigns").status_code == 200
    token = csrf_token(admin_client, "/admin/campaigns")
    response = admin_client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert admin_client.get("/admin/campaigns").status_code == 302


def test_login_without_csrf_token_is_refused(client, admin_user):
    response = client.post("/login", data={"username": "mike", "password": ADMIN_PASSWORD})
    assert response.status_code == 400
    assert client.get("/admin/campaigns").status_code == 302


@pytest.mark.parametrize("next_path, expected", [
    ("/admin/audit", "/admin/audit"),
    ("/admin/campaigns?status=paused", "/admin/campaigns?status=paused"),
    ("//evil.example/", "/"),
    ("/\\evil.example/", "/"),
    ("/%5Cevil.example", "/"),                      # decoded from the query string: /\evil
    ("/%2F/evil.example", "/"),                     # decoded: ///evil
    ("https://evil.example/", "/"),
    ("http:/evil.example", "/"),
    ("javascript:alert(1)", "/"),
    ("evil.example", "/"),
    ("/%09/evil.example", "/"),                     # a tab that browsers would drop, making //evil
    ("", "/"),
])
def test_next_only_to_local_paths(client, admin_user, next_path, expected):
    response = login(client, next_path=next_path)
    assert response.status_code == 302
    assert response.headers["Location"] == expected


def test_logged_out_admin_page_redirects_to_login_with_next(client):
    response = client.get("/admin/properties")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2Fadmin%2Fproperties"


def test_root_redirects(client, admin_client, app):
    assert client.get("/").headers["Location"].startswith("/login")
    expected = "analytics.dashboard" if "analytics.dashboard" in app.view_functions else "admin.campaigns"
    with app.test_request_context():
        from flask import url_for
        assert admin_client.get("/").headers["Location"] == url_for(expected)


def test_login_is_throttled_per_ip_with_a_clear_429(client, admin_user):
    for _ in range(5):
        assert login(client, password="wrong password!").status_code == 401
    throttled = login(client)        # even the right password waits: the IP is throttled
    assert throttled.status_code == 429
    assert "Too many login attempts" in throttled.get_data(as_text=True)
    assert throttled.headers["Retry-After"]
    # Another IP is not affected.
    assert login(client, environ={"REMOTE_ADDR": "10.9.9.9"}).status_code == 302


def test_login_is_slowed_per_account_across_ips(client, admin_user):
    """Guesses from many IPs slow that account down for browsers that never logged in to it
    (tests/test_accounts.py: the owner's browser still gets in)."""
    for attempt in range(6):
        ip = f"10.0.0.{attempt}"
        assert login(client, password="wrong password!", environ={"REMOTE_ADDR": ip}).status_code == 401
    response = login(client, environ={"REMOTE_ADDR": "10.0.1.1"})
    assert response.status_code == 429 and "Wait 30 seconds" in response.get_data(as_text=True)
    # Only that account: another user on a fresh IP is answered normally.
    assert login(client, username="other", password="wrong password!",
                 environ={"REMOTE_ADDR": "10.0.2.2"}).status_code == 401


def test_throttle_is_not_a_permanent_lockout(app, client, admin_user, monkeypatch):
    """The window passes and the right password works again (time moved forward, no sleep)."""
    import time as real_time
    from limits import storage
    for _ in range(5):
        login(client, password="wrong password!")
    assert login(client).status_code == 429
    later = real_time.time() + 3601
    monkeypatch.setattr(storage.memory.time, "time", lambda: later)
    assert login(client).status_code == 302


def test_concurrent_attempts_cannot_slip_past_the_limit(app, admin_user):
    """20 parallel guesses from one IP: exactly 5 are tried, the rest are throttled (the limit is
    checked and counted in one step, and the in-memory storage is thread-safe)."""
    import threading

    def attempt(results):
        client = app.test_client()
        results.append(login(client, password="wrong password!").status_code)

    results = []
    threads = [threading.Thread(target=attempt, args=(results,)) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [401] * 5 + [429] * 15


def test_create_token_prints_only_the_token(runner, db):
    result = runner.invoke(args=["create-token", "ci"], catch_exceptions=False)
    assert result.exit_code == 0
    token = result.stdout.strip()
    assert result.stdout == token + "\n" and token.startswith("pm_")
    assert users.token_name(db, token) == "ci"


def test_expired_session_during_htmx_request_sends_the_page_to_login(client):
    response = client.get("/admin/campaigns/1/row/edit",
                          headers={"HX-Request": "true", "HX-Current-URL": "http://popup.test/admin/campaigns?q=x"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login?next=/admin/campaigns?q%3Dx"


@pytest.mark.parametrize("trusted, separate_budgets", [
    ("127.0.0.1", True),      # behind the configured proxy: each visitor IP has its own budget
    ("", False),              # no proxy configured: a forged X-Forwarded-For changes nothing
])
def test_login_throttle_uses_the_client_ip_behind_a_trusted_proxy(tmp_path, trusted, separate_budgets):
    from popup_mgr import create_app, users
    from popup_mgr import db as database
    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "p.db"), "SECRET_KEY": TEST_SECRET,
                      "TRUSTED_PROXIES": trusted})
    conn = database.connect(app.config["DATABASE"])
    users.create_user(conn, "mike", ADMIN_PASSWORD)
    conn.close()
    client = app.test_client()
    proxy = {"REMOTE_ADDR": "127.0.0.1"}
    for _ in range(5):
        login(client, password="wrong password!", environ={**proxy, "HTTP_X_FORWARDED_FOR": "203.0.113.5"})
    assert login(client, environ={**proxy, "HTTP_X_FORWARDED_FOR": "203.0.113.5"}).status_code == 429
    other = login(client, environ={**proxy, "HTTP_X_FORWARDED_FOR": "203.0.113.6"})
    assert other.status_code == (302 if separate_budgets else 429)
