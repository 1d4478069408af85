"""Security headers, set in this one place for every response.

Admin pages and the authenticated API get a strict Content-Security-Policy and framing,
referrer and caching rules. Public endpoints (embed script, offers, beacons, click redirects,
postback) are called from publisher pages and keep the headers their own modules set; only
nosniff is added there, which is right for every response.
"""
from flask import current_app, render_template, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError

from popup_mgr.extensions import csrf
from popup_mgr.web import http
from popup_mgr.web import auth

# img-src allows any http(s) host: the campaign form's live preview shows offer images from the
# network's CDNs. No 'unsafe-inline' or 'unsafe-eval' anywhere: page scripts are static files.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' https: http: data:",
    "connect-src 'self'",
    "font-src 'self'",
    "frame-ancestors 'none'",
    "form-action 'self'",
    "base-uri 'none'",
    "object-src 'none'",
))
ADMIN_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: flask-wtf's CSRF check over HTTPS needs the Referer.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def add_security_headers(response):
    response.headers["X-Content-Type-Options"] = "nosniff"
    if http.is_public_path(request.path):
        return response
    for name, value in ADMIN_HEADERS.items():
        response.headers.setdefault(name, value)
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        # Served over https (POPUP_BASE_URL): browsers must never fall back to http for the admin.
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if request.endpoint != "static":
        # Admin pages and API answers hold private data: never keep them in shared caches,
        # and never show a logged-out user a cached admin page with the back button.
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def csrf_failed(exc):
    """A refused write: JSON for API callers, a page that says what to do for the admin."""
    if request.path.startswith("/api/") or http.is_public_path(request.path):
        return http.json_error(400, exc.description, reason="csrf")
    return render_template("csrf_error.html", reason=exc.description), 400


MUTATING_METHODS = auth.MUTATING_METHODS


def protect_from_csrf():
    """Every admin write carries the session's CSRF token (a form field, or htmx's header).
    Public beacons and API-token calls carry no cookies, so they are not asked for one; a request
    with an Authorization header is authenticated by the token alone or refused (auth.py).
    An API call without a session is answered 401 by its view, not 400 for the missing token."""
    refused = auth.check_authorization_header()
    if refused is not None:
        return refused
    if request.method not in MUTATING_METHODS or http.is_public_path(request.path):
        return None
    if auth.token_authenticated():
        return None
    if request.path.startswith("/api/") and not current_user.is_authenticated:
        return None
    csrf.protect()
    return None


def register(app):
    # CSRF is checked here, in one place, instead of flask-wtf's default check on every view.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.before_request(protect_from_csrf)
    app.after_request(add_security_headers)
    app.register_error_handler(CSRFError, csrf_failed)
