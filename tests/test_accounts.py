"""Accounts and authentication: server-side sessions, the login slow-down that never locks the
owner out, bounded password hashing, token-or-session authentication, API tokens with scopes,
the Users and tokens pages, two-factor login, and the account commands."""
import re
import threading
import time

import pyotp
import pytest

from popup_mgr import users
from popup_mgr.web import auth as web_auth
from tests.helpers import ADMIN_PASSWORD, add_campaign, csrf_token

NEW_CAMPAIGN = {"tune_campaign_id": 77, "name": "Sweeps", "display_title": "Win",
                "click_url": "https://t.example/aff_c?offer_id=77"}


def login(client, username="mike", password=ADMIN_PASSWORD, ip="127.0.0.1"):
    token = csrf_token(client, "/login")
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": ip})


def logged_in(client):
    return client.get("/admin/campaigns").status_code == 200


def post_form(client, path, data=None, page="/admin/users"):
    return client.post(path, data={"csrf_token": csrf_token(client, page), **(data or {})})


def copy_cookies(source, target):
    """A second browser with the first one's cookies (a captured session cookie)."""
    for cookie in source._cookies.values():
        target.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)


# --- item 3: server-side sessions ------------------------------------------------------------------

def test_captured_cookie_stops_working_after_logout(app, client, admin_user):
    assert login(client).status_code == 302
    thief = app.test_client()
    copy_cookies(client, thief)
    assert logged_in(thief)                         # the copy works while the session lives
    client.post("/logout", data={"csrf_token": csrf_token(client, "/admin/campaigns")})
    assert not logged_in(client)
    assert not logged_in(thief)                     # ... and not after logout, from anywhere


def test_password_change_ends_the_other_sessions_only(app, db, admin_user):
    phone, laptop = app.test_client(), app.test_client()
    login(phone), login(laptop)
    response = post_form(laptop, "/admin/account/password", {
        "current_password": ADMIN_PASSWORD, "new_password": "a brand new passphrase",
        "confirm_password": "a brand new passphrase"})
    assert response.status_code == 302
    assert logged_in(laptop) and not logged_in(phone)
    assert users.check_password(db, "mike", "a brand new passphrase") is not None


def test_own_password_change_needs_the_current_password(admin_client, db):
    response = post_form(admin_client, "/admin/account/password", {
        "current_password": "not my password", "new_password": "a brand new passphrase",
        "confirm_password": "a brand new passphrase"})
    assert response.status_code == 422 and "current password is not right" in response.get_data(as_text=True)
    assert users.check_password(db, "mike", ADMIN_PASSWORD) is not None


def test_idle_and_absolute_lifetimes(app, client, db, admin_user):
    login(client)
    assert logged_in(client)
    db.execute("UPDATE sessions SET last_seen_at = '2000-01-01T00:00:00Z'")
    assert not logged_in(client)                    # idle longer than SESSION_IDLE_S
    login(client)
    db.execute("UPDATE sessions SET created_at = '2000-01-01T00:00:00Z'")
    assert not logged_in(client)                    # in use, but older than SESSION_MAX_S


def test_lifetimes_are_settings(monkeypatch):
    from popup_mgr import config
    monkeypatch.setenv("POPUP_SESSION_IDLE_S", "600")
    monkeypatch.setenv("POPUP_SESSION_MAX_S", "3600")
    settings = config.from_environment()
    assert (settings["SESSION_IDLE_S"], settings["SESSION_MAX_S"]) == (600, 3600)
    monkeypatch.setenv("POPUP_SESSION_IDLE_S", "١٢")          # Unicode digits are not a number here
    with pytest.raises(config.ConfigError):
        config.from_environment()


def test_last_seen_is_written_at_most_once_a_minute(app, client, db, admin_user):
    login(client)
    app.config["SESSION_IDLE_S"] = 10 ** 9                  # a year-old visit is not idle here
    db.execute("UPDATE sessions SET last_seen_at = '2000-01-01T00:00:00Z'")
    logged_in(client)
    touched = db.execute("SELECT last_seen_at FROM sessions").fetchone()[0]
    assert touched > "2000-01-01T00:00:00Z"                # an old visit is brought up to date
    import datetime as dt
    from popup_mgr import timeutil
    half_a_minute_ago = timeutil.iso_utc(dt.datetime.now(timeutil.UTC) - dt.timedelta(seconds=30))
    db.execute("UPDATE sessions SET last_seen_at = ?", (half_a_minute_ago,))
    for _ in range(3):
        logged_in(client)
    assert db.execute("SELECT last_seen_at FROM sessions").fetchone()[0] == half_a_minute_ago


def test_admin_sees_and_ends_sessions(app, db, admin_user):
    me, other = app.test_client(), app.test_client()
    login(me)
    login(other, ip="203.0.113.77")
    page = me.get("/admin/users").get_data(as_text=True)
    assert "203.0.113.0/24" in page and "this browser" in page
    other_id = db.execute("SELECT id FROM sessions ORDER BY id DESC").fetchone()[0]
    assert post_form(me, f"/admin/sessions/{other_id}/end").status_code == 302
    assert not logged_in(other) and logged_in(me)
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'session.end'").fetchone()[0] == 1


# --- accounts: add, disable, reset --------------------------------------------------------------------

def test_add_disable_enable_and_reset_from_the_users_page(app, admin_client, db):
    assert post_form(admin_client, "/admin/users", {"username": "anna", "password": "anna's long password"}
                     ).status_code == 302
    anna_id = users.user_id_by_name(db, "anna")
    anna = app.test_client()
    assert login(anna, "anna", "anna's long password").status_code == 302
    assert post_form(admin_client, f"/admin/users/{anna_id}/disable").status_code == 302
    assert not logged_in(anna)
    assert login(anna, "anna", "anna's long password").status_code == 401
    post_form(admin_client, f"/admin/users/{anna_id}/enable")
    post_form(admin_client, f"/admin/users/{anna_id}/password", {"password": "reset by mike 2026"})
    assert login(anna, "anna", "reset by mike 2026").status_code == 302
    actions = [r[0] for r in db.execute("SELECT action FROM audit_log WHERE entity = 'user' AND entity_id = ?"
                                        " ORDER BY id", (anna_id,))]
    assert actions == ["user.create", "user.login", "user.disable", "user.enable", "user.password", "user.login"]
    actors = {r[0] for r in db.execute("SELECT actor FROM audit_log WHERE action IN"
                                       " ('user.create', 'user.disable', 'user.password')")}
    assert "mike" in actors


def test_the_last_enabled_admin_cannot_be_disabled(db, admin_user):
    with pytest.raises(users.AccountError):
        users.set_disabled(db, admin_user, True, "cli")


def test_short_password_refused_on_the_page(admin_client, db):
    response = post_form(admin_client, "/admin/users", {"username": "anna", "password": "short"})
    assert response.status_code == 422 and "at least 12" in response.get_data(as_text=True)


# --- item 4: slow-down without lockout ---------------------------------------------------------------

def test_failure_delays_double_and_are_capped():
    assert [users.failure_delay_s(n) for n in range(1, 12)] == [0, 0, 0, 0, 0, 30, 60, 120, 240, 480, 900]
    assert users.failure_delay_s(60) == users.MAX_DELAY_S


def test_guessing_cannot_lock_the_owner_out(app, client, admin_user):
    """The owner's browser (it logged in before) gets in with the right password while
    guesses from 40 IPs keep the account slowed down for everybody else."""
    assert login(client).status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token(client, "/admin/campaigns")})
    attacker = app.test_client()
    for attempt in range(40):
        login(attacker, password=f"guess number {attempt}", ip=f"198.51.100.{attempt}")
    refused = login(attacker, ip="198.51.100.250")          # even the right password, from elsewhere
    assert refused.status_code == 429
    wait = int(refused.headers["Retry-After"])
    assert 0 < wait <= users.MAX_DELAY_S
    assert web_auth.wait_text(wait) in refused.get_data(as_text=True)
    assert login(client, ip="192.0.2.10").status_code == 302


def test_a_guess_during_the_wait_is_not_checked(app, client, admin_user, monkeypatch):
    for attempt in range(6):
        login(client, password=f"guess {attempt}", ip=f"10.1.0.{attempt}")
    checked = []
    monkeypatch.setattr(users, "check_password", lambda *a: checked.append(a))
    assert login(client, ip="10.1.0.99").status_code == 429
    assert checked == []


def test_unknown_usernames_are_slowed_like_real_ones(client):
    answers = [login(client, username="nobody", password="x" * 12, ip=f"10.2.0.{i}").status_code
               for i in range(7)]
    assert answers == [401] * 6 + [429]


def test_per_ip_throttle_states_the_real_wait(client, admin_user):
    for _ in range(5):
        login(client, password="wrong password!")
    throttled = login(client)
    assert throttled.status_code == 429
    wait = int(throttled.headers["Retry-After"])
    assert 1 <= wait <= 61
    assert f"Wait {web_auth.wait_text(wait)} and try again" in throttled.get_data(as_text=True)


def test_unlock_and_reset_password_commands(app, runner, client, db, admin_user):
    for attempt in range(7):
        login(client, password=f"guess {attempt}", ip=f"10.3.0.{attempt}")
    assert login(client, ip="10.3.1.1").status_code == 429
    result = runner.invoke(args=["unlock", "mike"])
    assert result.exit_code == 0, result.output
    assert login(client, ip="10.3.1.2").status_code == 302
    result = runner.invoke(args=["reset-password", "mike", "--password-stdin"], input="set from the shell 1\n")
    assert result.exit_code == 0, result.output
    assert not logged_in(client)                           # its sessions ended
    assert login(client, password="set from the shell 1", ip="10.3.1.3").status_code == 302
    assert runner.invoke(args=["reset-password", "nobody", "--password-stdin"], input="x" * 20 + "\n").exit_code != 0
    assert {"user.unlock", "user.password"} <= {r[0] for r in db.execute("SELECT action FROM audit_log")}


# --- item 5: bounded hashing -------------------------------------------------------------------------

def test_concurrent_password_checks_are_bounded(db, admin_user, monkeypatch):
    """40 simultaneous checks: never more than HASH_SLOTS hash at once, and those beyond the
    waiting room are refused at once (HashingBusy) instead of holding a server thread."""
    running, peak, lock = [0], [0], threading.Lock()

    class SlowHasher:
        def verify(self, _hash, _password):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.05)
            with lock:
                running[0] -= 1
            return False

    monkeypatch.setattr(users, "_hasher", lambda: SlowHasher())
    outcomes = []

    def attempt():
        try:
            users.check_password(db, "mike", "guess")
            outcomes.append("checked")
        except users.HashingBusy:
            outcomes.append("busy")

    threads = [threading.Thread(target=attempt) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == users.HASH_SLOTS
    assert outcomes.count("busy") > 0
    assert outcomes.count("checked") >= users.HASH_SLOTS + users.HASH_WAITERS


def test_busy_hashing_answers_503_with_retry_after(client, admin_user, monkeypatch):
    def busy(*_args):
        raise users.HashingBusy("test")
    monkeypatch.setattr(users, "check_password", busy)
    response = login(client)
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert "busy" in response.get_data(as_text=True)


# --- item 6: a token or the session with CSRF, never a mix ----------------------------------------------

@pytest.mark.parametrize("header", ["Bearer junk", "Bearer ", "Basic bWlrZTpwdw==", "whatever"])
def test_any_other_authorization_header_is_401_and_the_session_is_not_used(app, admin_client, db, header):
    campaign = add_campaign(db, tune_id=5, app=app)
    for path in (f"/admin/campaigns/{campaign}/toggle", "/logout", "/api/campaigns"):
        response = admin_client.post(path, headers={"Authorization": header}, json=NEW_CAMPAIGN)
        assert response.status_code == 401, path
    assert db.execute("SELECT active FROM campaigns WHERE id = ?", (campaign,)).fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM campaigns").fetchone()[0] == 1
    assert logged_in(admin_client)                          # /logout did not run either


def test_a_valid_token_does_not_open_session_only_routes(app, admin_client, db, api_token):
    campaign = add_campaign(db, tune_id=6, app=app)
    response = admin_client.post(f"/admin/campaigns/{campaign}/toggle",
                                 headers={"Authorization": f"Bearer {api_token}"})
    assert response.status_code == 401
    assert db.execute("SELECT active FROM campaigns WHERE id = ?", (campaign,)).fetchone()[0] == 1


def test_unauthenticated_api_write_is_401_not_a_csrf_error(client):
    response = client.post("/api/campaigns", json=NEW_CAMPAIGN)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"


def test_session_api_write_still_needs_csrf(admin_client):
    assert admin_client.post("/api/campaigns", json=NEW_CAMPAIGN).status_code == 400


# --- item 12: API tokens ----------------------------------------------------------------------------

def test_read_only_token_reads_but_cannot_write(client, db):
    token = users.create_token(db, "grafana", scope="read")
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/campaigns", headers=bearer).status_code == 200
    assert client.get("/metrics", headers=bearer).status_code == 200
    response = client.post("/api/campaigns", headers=bearer, json=NEW_CAMPAIGN)
    assert response.status_code == 403 and "read-only" in response.json["error"]
    assert db.execute("SELECT count(*) FROM campaigns").fetchone()[0] == 0


def test_last_used_is_written_on_use_at_most_once_a_minute(client, db, api_token):
    assert db.execute("SELECT last_used_at FROM api_tokens").fetchone()[0] is None
    bearer = {"Authorization": f"Bearer {api_token}"}
    client.get("/api/campaigns", headers=bearer)
    first = db.execute("SELECT last_used_at FROM api_tokens").fetchone()[0]
    assert first is not None
    db.execute("UPDATE api_tokens SET last_used_at = ?", ("2999-01-01T00:00:00Z",))   # "just now"
    client.get("/api/campaigns", headers=bearer)
    assert db.execute("SELECT last_used_at FROM api_tokens").fetchone()[0] == "2999-01-01T00:00:00Z"


def test_tokens_page_shows_a_new_token_once_and_revokes(client, admin_client, db):
    response = post_form(admin_client, "/admin/tokens", {"name": "zapier", "scope": "read"}, page="/admin/tokens")
    html = response.get_data(as_text=True)
    token = re.search(r'class="new-token">(pm_[^<]+)<', html).group(1)
    assert token not in admin_client.get("/admin/tokens").get_data(as_text=True)
    assert users.token_for(db, token).scope == "read"
    assert client.get("/api/campaigns", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    token_id = db.execute("SELECT id FROM api_tokens WHERE name = 'zapier'").fetchone()[0]
    assert post_form(admin_client, f"/admin/tokens/{token_id}/revoke", page="/admin/tokens").status_code == 302
    assert client.get("/api/campaigns", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert [r[0] for r in db.execute("SELECT action FROM audit_log WHERE entity = 'api_token'")] == \
        ["token.create", "token.revoke"]


def test_token_commands(runner, db):
    token = runner.invoke(args=["create-token", "ci", "--read-only"]).stdout.strip()
    assert users.token_for(db, token).scope == "read"
    listed = runner.invoke(args=["list-tokens"]).stdout
    assert "ci" in listed and "read" in listed and token not in listed
    assert runner.invoke(args=["revoke-token", "ci"]).exit_code == 0
    assert users.token_for(db, token) is None
    assert runner.invoke(args=["revoke-token", "ci"]).exit_code != 0


# --- two-factor login ---------------------------------------------------------------------------------

def enrol(client):
    """Enrol through the pages; returns (secret, recovery codes)."""
    page = client.get("/admin/account/2fa").get_data(as_text=True)
    secret = re.search(r'class="totp-secret">([A-Z2-7]+)<', page).group(1)
    assert 'src="data:image/svg+xml' in page
    response = post_form(client, "/admin/account/2fa", {"code": pyotp.TOTP(secret).now()}, page="/admin/users")
    codes = re.findall(r"<code>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</code>", response.get_data(as_text=True))
    return secret, codes


def test_two_factor_login_with_code_and_recovery_code(app, client, db, admin_user):
    login(client)
    assert post_form(client, "/admin/account/2fa", {"code": "000000"}).status_code in (302, 422)
    secret, codes = enrol(client)
    assert len(codes) == users.RECOVERY_CODES
    assert all(code not in str(db.execute("SELECT * FROM recovery_codes").fetchall()) for code in codes)
    assert secret not in str(db.execute("SELECT totp_secret FROM users").fetchall())

    browser = app.test_client()
    asked = login(browser)
    assert asked.status_code == 200 and 'name="code"' in asked.get_data(as_text=True)
    assert not logged_in(browser)                          # the password alone is not enough
    wrong = browser.post("/login/code", data={"code": "123456", "csrf_token": csrf_token(browser, "/login")})
    assert wrong.status_code == 401
    code = pyotp.TOTP(secret).now()
    right = browser.post("/login/code", data={"code": code,
                                              "csrf_token": csrf_token(browser, "/login")})
    assert right.status_code == 302 and logged_in(browser)
    replay = app.test_client()
    login(replay)
    replayed = replay.post("/login/code", data={"code": code,
                                                "csrf_token": csrf_token(replay, "/login")})
    assert replayed.status_code == 401                     # a code is accepted once

    spare = app.test_client()
    login(spare)
    ok = spare.post("/login/code", data={"code": codes[0], "csrf_token": csrf_token(spare, "/login")})
    assert ok.status_code == 302 and logged_in(spare)
    again = app.test_client()
    login(again)
    reused = again.post("/login/code", data={"code": codes[0], "csrf_token": csrf_token(again, "/login")})
    assert reused.status_code == 401                       # each recovery code works once
    assert users.recovery_codes_left(db, admin_user) == users.RECOVERY_CODES - 1


def test_too_many_wrong_codes_end_the_pending_login(app, client, admin_user):
    login(client)
    enrol(client)
    browser = app.test_client()
    login(browser)
    for _ in range(web_auth.MAX_CODE_FAILURES):
        last = browser.post("/login/code", data={"code": "000000", "csrf_token": csrf_token(browser, "/login")},
                            environ_base={"REMOTE_ADDR": "10.4.0.1"})
    assert last.status_code == 302 and last.headers["Location"] == "/login"
    late = browser.post("/login/code", data={"code": "000000", "csrf_token": csrf_token(browser, "/login")},
                        environ_base={"REMOTE_ADDR": "10.4.0.2"})
    assert late.status_code == 302 and not logged_in(browser)


def test_reset_password_can_remove_two_factor(app, runner, client, db, admin_user):
    login(client)
    enrol(client)
    runner.invoke(args=["reset-password", "mike", "--password-stdin", "--remove-2fa"], input="lost my phone 2026\n")
    assert not users.totp_enabled(db, admin_user)
    assert login(app.test_client(), password="lost my phone 2026").status_code == 302


# --- the real server: X-Forwarded-For from a trusted proxy reaches the app -----------------------------

def test_served_app_sees_the_client_ip_behind_a_trusted_proxy(tmp_path):
    """`popup-mgr serve` with POPUP_TRUSTED_PROXIES=127.0.0.1: each visitor IP named by the proxy
    has its own login budget (waitress must not strip X-Forwarded-For before the app decides
    whether to believe it)."""
    import os
    import socket
    import subprocess
    import sys
    import urllib.parse
    import urllib.request
    from pathlib import Path

    from tests.helpers import wait_until_up
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "POPUP_DB": str(tmp_path / "p.db"), "POPUP_TRUSTED_PROXIES": "127.0.0.1",
           "POPUP_SECRET_KEY": "served-test-secret-0123456789-abcdefghijklmnop"}
    server = subprocess.Popen([str(Path(sys.executable).parent / "popup-mgr"), "serve", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())

    def attempt(ip):
        page = opener.open(f"{base}/login").read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode({"username": f"nobody-{ip}", "password": "x" * 12, "csrf_token": token})
        request = urllib.request.Request(f"{base}/login", data=body.encode(), headers={"X-Forwarded-For": ip})
        try:
            return opener.open(request).status
        except urllib.error.HTTPError as exc:
            return exc.code
    try:
        wait_until_up(f"{base}/api/health")
        assert [attempt(f"203.0.113.{i}") for i in range(8)] == [401] * 8
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_new_login_ends_the_session_the_browser_had(app, client, db, admin_user):
    login(client)
    old_copy = app.test_client()
    copy_cookies(client, old_copy)
    token = csrf_token(client, "/admin/campaigns")             # logged in: /login redirects
    client.post("/login", data={"username": "mike", "password": ADMIN_PASSWORD, "csrf_token": token})
    assert logged_in(client) and not logged_in(old_copy)
    assert db.execute("SELECT count(*) FROM sessions").fetchone()[0] == 1


def test_setting_a_password_while_hashing_is_saturated_answers_503(admin_client, db, monkeypatch):
    def busy(_password):
        raise users.HashingBusy("test")
    monkeypatch.setattr(users, "hash_password", busy)
    response = post_form(admin_client, "/admin/users", {"username": "anna", "password": "anna's long password"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "2"
    assert db.execute("SELECT count(*) FROM users").fetchone()[0] == 1
