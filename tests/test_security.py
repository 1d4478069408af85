"""Security across every route: auth required, CSRF on every mutating route, headers, cookies.

Routes are enumerated from app.url_map at run time, so routes other modules add later are
covered without touching this file.
"""
import re

import pytest
from werkzeug.routing import IntegerConverter

from popup_mgr import campaigns, create_app, users
from popup_mgr import db as database
from popup_mgr.web import http as web
from popup_mgr.web import security
from tests.helpers import ADMIN_PASSWORD, TEST_SECRET, csrf_token, log_in_session

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# Reachable without logging in by design.
OPEN_ENDPOINTS = {"static", "auth.login"}


def sample_path(app, rule):
    """A concrete path for rule: ints become 1 (the campaign made by `seeded`), strings "mff"."""
    values = {name: 1 if isinstance(converter, IntegerConverter) else "mff"
              for name, converter in rule._converters.items()}
    with app.test_request_context():
        from flask import url_for
        return url_for(rule.endpoint, **values)


def routes(app, methods):
    """(endpoint, method, path) for every non-public route answering one of methods."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or web.is_public_path(rule.rule):
            continue
        for method in sorted((rule.methods or set()) & methods):
            found.append((rule.endpoint, method, sample_path(app, rule)))
    return found


def snapshot(db):
    """Every row of every table, to prove a refused request changed nothing."""
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return {t: [tuple(r) for r in db.execute(f"SELECT * FROM {t} ORDER BY 1")] for t in tables}


@pytest.fixture
def seeded(app, db):
    with app.app_context():
        return campaigns.create(db, {"tune_campaign_id": 1, "name": "Seed", "display_title": "Seed",
                                     "click_url": "https://t.example/aff_c?offer_id=1"}, "test")


def test_every_protected_route_needs_login(app, client, db, seeded):
    checked = 0
    before = snapshot(db)
    for endpoint, method, path in routes(app, {"GET", "POST", "PUT", "PATCH", "DELETE"}):
        if endpoint in OPEN_ENDPOINTS:
            continue
        token = csrf_token(client, "/login")    # so that writes get past CSRF and reach the auth check
        response = client.open(path, method=method, data={"csrf_token": token},
                               headers={"X-CSRFToken": token})
        ok = response.status_code == 401 or (
            response.status_code == 302 and response.headers["Location"].startswith("/login"))
        assert ok, f"{method} {path} ({endpoint}) answered {response.status_code} when logged out"
        checked += 1
    assert checked >= 15          # the admin pages, fragments and API are all there
    assert snapshot(db) == before


def test_every_mutating_route_requires_csrf(app, admin_client, db, seeded):
    before = snapshot(db)
    checked = 0
    for endpoint, method, path in routes(app, MUTATING):
        for kwargs in ({"data": {"active": "0", "priority": "3", "name": "x"}},
                       {"json": {"priority": 3}}, {"data": {"csrf_token": "forged"}}):
            response = admin_client.open(path, method=method, **kwargs)
            assert response.status_code in (400, 403), f"{method} {path} ({endpoint}) without CSRF: {response.status_code}"
        checked += 1
    assert checked >= 8
    assert snapshot(db) == before


def test_csrf_token_in_htmx_header_is_accepted(admin_client, db, seeded):
    token = csrf_token(admin_client, "/admin/campaigns")
    response = admin_client.post("/admin/campaigns/1/toggle", data={"active": "0"},
                                 headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert response.status_code == 200
    assert db.execute("SELECT active FROM campaigns WHERE id = 1").fetchone()[0] == 0


@pytest.mark.parametrize("postback_secret", ["from-the-environment-0123456789", None])
def test_get_routes_do_not_change_state(tmp_path, postback_secret):
    """Also without POPUP_POSTBACK_SECRET, where the secret is stored in the database: showing
    the postback page must not be what creates it."""
    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "popup.db"), "SECRET_KEY": TEST_SECRET,
                      "POSTBACK_SECRET": postback_secret})
    db = database.connect(app.config["DATABASE"])
    admin = users.create_user(db, "mike", ADMIN_PASSWORD)
    with app.app_context():
        campaigns.create(db, {"tune_campaign_id": 1, "name": "Seed", "display_title": "Seed",
                              "click_url": "https://t.example/aff_c?offer_id=1"}, "test")
    admin_client = app.test_client()
    with admin_client.session_transaction() as session:
        log_in_session(db, session, admin)
    before = snapshot(db)
    for _endpoint, _method, path in routes(app, {"GET"}):
        admin_client.get(path, headers={"HX-Request": "true"})
        admin_client.get(path)
    assert snapshot(db) == before
    db.close()


ADMIN_PAGES = ["/login", "/admin/campaigns", "/admin/campaigns/new", "/admin/campaigns/1/edit",
               "/admin/properties", "/admin/audit", "/api/campaigns"]


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_security_headers_on_admin_pages(client, admin_client, seeded, path):
    response = (client if path == "/login" else admin_client).get(path)
    assert response.status_code == 200
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    for directive in ("script-src 'self'", "style-src 'self'", "img-src 'self' https: http: data:",
                      "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'", "object-src 'none'"):
        assert directive in csp
    assert "unsafe-eval" not in csp and "unsafe-inline" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cache-Control"] == "no-store"


def test_public_endpoints_keep_their_own_headers(client):
    response = client.get("/api/health")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in response.headers and "X-Frame-Options" not in response.headers
    assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("path", ADMIN_PAGES[:-1])
def test_pages_have_no_inline_script_or_style(client, admin_client, seeded, path):
    """The CSP would block them in the browser; catch them here instead."""
    html = (client if path == "/login" else admin_client).get(path).get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert not re.search(r"\sstyle\s*=", html), "style= attribute"
    assert not re.search(r"<style\b", html), "<style> element"
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"


def test_session_cookie_flags(tmp_path, monkeypatch):
    # Secure cookies follow the public URL the deployment is configured with.
    monkeypatch.setenv("POPUP_BASE_URL", "https://popup.example")
    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "s.db"), "SECRET_KEY": TEST_SECRET})
    from popup_mgr import users
    from popup_mgr import db as database
    conn = database.connect(app.config["DATABASE"])
    users.create_user(conn, "mike", ADMIN_PASSWORD)
    conn.close()
    client = app.test_client()
    html = client.get("/login", base_url="https://popup.example").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    # Over HTTPS flask-wtf also checks the Referer (hence Referrer-Policy: same-origin).
    response = client.post("/login", data={"username": "mike", "password": ADMIN_PASSWORD, "csrf_token": token},
                           base_url="https://popup.example", headers={"Referer": "https://popup.example/login"})
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_no_hsts_on_a_plain_http_deployment(client):
    assert "Strict-Transport-Security" not in client.get("/login").headers


def test_csp_is_defined_in_one_place():
    assert security.ADMIN_HEADERS["Content-Security-Policy"] == security.CONTENT_SECURITY_POLICY


def test_csrf_failure_explains_itself(admin_client, seeded):
    page = admin_client.post("/admin/campaigns/1/toggle", data={"active": "0"})
    assert page.status_code == 400 and "nothing was changed" in page.get_data(as_text=True)
    api = admin_client.post("/api/campaigns", json={})
    assert api.status_code == 400 and api.json["error"] and api.headers["X-Popup-Reason"] == "csrf"
