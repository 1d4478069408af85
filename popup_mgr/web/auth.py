"""Blueprint "auth": login (password, then the two-factor code when enabled) and logout, and the
rules that say who is calling. A request is authenticated by exactly one of:

- a valid API token (`Authorization: Bearer ...`) on a route that takes tokens; the session
  cookie is then never read, and no CSRF token is needed (browsers cannot send the header
  cross-site);
- the server-side session named by the session cookie, with the CSRF token on every write.

Any Authorization header that is not a valid token answers 401, whatever cookie comes with it.
Accounts, sessions and tokens themselves live in users.py.
"""
import functools
import ipaddress
import re
import time
from urllib.parse import urlsplit

from flask import (Blueprint, current_app, flash, g, make_response, redirect, render_template, request,
                   session, url_for)
from flask_login import current_user, login_user, logout_user
from itsdangerous import BadSignature, URLSafeTimedSerializer

from popup_mgr import users
from popup_mgr.db import get_db
from popup_mgr.extensions import client_address, limiter, login_manager
from popup_mgr.web.http import is_public_path, json_error

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@login_manager.user_loader
def _load_user(user_id):
    """The session's user while its server-side row is alive (logout, a password change, a
    disabled account or the lifetimes end it); never for a request that sent a token."""
    if "Authorization" in request.headers:
        return None
    user = users.session_user(get_db(), session.get("sid"), current_app.config["SESSION_IDLE_S"],
                              current_app.config["SESSION_MAX_S"])
    return user if user is not None and str(user.id) == str(user_id) else None


def bearer_token():
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def check_authorization_header():
    """Before every non-public request: a request with an Authorization header is authenticated
    by that token alone, on a route that takes tokens; anything else is a 401 response."""
    if "Authorization" not in request.headers or is_public_path(request.path) or request.url_rule is None:
        return None     # no header, a public path, or no such route (404 whatever the caller)
    view = current_app.view_functions.get(request.endpoint)
    if not getattr(view, "accepts_api_token", False):
        return _unauthorized("this address does not take an API token: use the admin session")
    token = bearer_token()
    found = users.token_for(get_db(), token) if token else None
    if found is None:
        return _unauthorized("invalid or revoked API token")
    g.api_token = found
    return None


def _unauthorized(message):
    response = json_error(401, message)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def token_authenticated():
    return getattr(g, "api_token", None) is not None


def current_actor():
    """Who is making this request, as written to the audit log."""
    if token_authenticated():
        return f"token:{g.api_token.name}"
    if current_user.is_authenticated:
        return current_user.username
    return "anonymous"


def api_auth_required(view):
    """A valid token (read-only tokens: reads only, 403 on writes) or the admin session; 401 JSON
    otherwise. The token itself was checked before the request (check_authorization_header)."""
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if token_authenticated():
            if g.api_token.read_only and request.method in MUTATING_METHODS:
                return json_error(403, "this API token is read-only")
        elif "Authorization" in request.headers or not current_user.is_authenticated:
            return _unauthorized("authentication required: log in or send a Bearer token")
        return view(*args, **kwargs)
    wrapped.accepts_api_token = True
    return wrapped


# --- who is logged in where: coarse labels for the sessions list ---------------------------------

def network_label(address):
    """The /24 (IPv4) or /48 (IPv6) network of an address: enough to recognise "home" or
    "office", not an individual's address."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return ""
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


_BROWSERS = (("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
_SYSTEMS = (("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iOS"), ("Windows", "Windows"),
            ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


def user_agent_summary(user_agent):
    """'Firefox on Linux': which browser on which system, without version numbers."""
    user_agent = user_agent or ""
    browser = next((name for marker, name in _BROWSERS if marker in user_agent), "Other browser")
    system = next((name for marker, name in _SYSTEMS if marker in user_agent), "")
    return f"{browser} on {system}" if system else browser


# --- login and logout -----------------------------------------------------------------------------

# Per IP: a burst is slowed, every attempt counts (counting only failures would mean testing the
# limit before the request and counting after it, which lets parallel guesses through).
# Per account: wrong passwords slow down further guesses from browsers that never logged in to
# that account (users.failure_delay_s); a browser that did (the device cookie) keeps logging in
# with the right password, so guessing cannot lock the owner out.
LOGIN_LIMIT_PER_IP = "5/minute;20/hour"
LOGIN_FAILED = "Wrong username or password."
CODE_FAILED = "That code is not right."
DEVICE_COOKIE = "popup_device"
DEVICE_MAX_AGE_S = 180 * 86400
PENDING_LOGIN_S = 300
MAX_CODE_FAILURES = 5

bp = Blueprint("auth", __name__)


def safe_next(target):
    """target when it is a path on this site, else None (no open redirects).

    Rejects absolute and protocol-relative URLs (//evil, /\\evil: browsers treat a backslash as
    a slash) and control characters (browsers drop tabs and newlines, turning "/\\t/evil" into
    "//evil").
    """
    if not target or not isinstance(target, str) or not target.startswith("/"):
        return None
    if target.startswith(("//", "/\\")) or "\\" in target or _CONTROL.search(target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def wait_text(seconds):
    """'45 seconds', '2 minutes': the real wait, rounded up."""
    seconds = max(1, int(seconds))
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)
    return f"{minutes} minutes"


def _throttled_page(wait_s):
    response = make_response(render_template("login.html", throttled=wait_text(wait_s), next=None), 429)
    response.headers["Retry-After"] = str(max(1, int(wait_s)))
    return response


def _throttled(limit):
    """The per-IP limit's answer, with the time until its window frees an attempt."""
    return _throttled_page(limit.reset_at - time.time())


def _busy_page():
    response = make_response(render_template("login.html", busy=True, next=None), 503)
    response.headers["Retry-After"] = "2"
    return response


def _device_serializer():
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="popup_mgr trusted device")


def _trusted_device_for(db, username):
    """True when this browser has logged in to username's account before (signed cookie)."""
    value = request.cookies.get(DEVICE_COOKIE)
    if not value:
        return False
    try:
        user_id = _device_serializer().loads(value, max_age=DEVICE_MAX_AGE_S).get("u")
        return user_id == users.user_id_by_name(db, username)
    except (BadSignature, users.AccountError, AttributeError):
        return False


def _remember_device(response, user_id):
    response.set_cookie(DEVICE_COOKIE, _device_serializer().dumps({"u": user_id}), max_age=DEVICE_MAX_AGE_S,
                        httponly=True, samesite="Lax", secure=current_app.config.get("SESSION_COOKIE_SECURE", False))
    return response


def _finish_login(db, user, next_path):
    """A fresh session at login (nothing planted before login survives: session fixation) with a
    new server-side session row. A session this browser still had ends: a copy of its cookie must
    not outlive the login that replaced it."""
    if session.get("sid"):
        users.end_session(db, session["sid"], user.username)
    session.clear()
    session["sid"] = users.start_session(db, user.id, network_label(client_address()),
                                         user_agent_summary(request.headers.get("User-Agent")))
    login_user(user)
    users.record_login(db, user.id)
    return _remember_device(redirect(next_path or url_for("admin.index")), user.id)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(LOGIN_LIMIT_PER_IP, methods=["POST"], on_breach=_throttled)
def login():
    next_path = safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(next_path or url_for("admin.index"))
        return render_template("login.html", next=next_path)
    db = get_db()
    username = request.form.get("username", "")
    wait_s = users.login_wait_s(db, username)
    if wait_s and not _trusted_device_for(db, username):
        # The password is not even checked: a guess during the wait teaches nothing.
        return _throttled_page(wait_s)
    try:
        user = users.check_password(db, username, request.form.get("password"))
    except users.HashingBusy:
        return _busy_page()
    if user is None:
        users.record_login_failure(db, username)
        # The same answer whether the user exists or not.
        return render_template("login.html", error=LOGIN_FAILED, next=next_path, username=username), 401
    users.clear_login_failures(db, username)
    if users.totp_enabled(db, user.id):
        session.clear()
        session["pending_login"] = {"user": user.id, "at": int(time.time()), "next": next_path,
                                    "failures": 0}
        return render_template("login_code.html")
    return _finish_login(db, user, next_path)


@bp.post("/login/code")
@limiter.limit(LOGIN_LIMIT_PER_IP, on_breach=_throttled)
def login_code():
    """The second step: the code from the phone app, or a recovery code."""
    pending = session.get("pending_login")
    if not pending or time.time() - pending.get("at", 0) > PENDING_LOGIN_S:
        session.pop("pending_login", None)
        flash("Log in again: the code was not entered in time.")
        return redirect(url_for("auth.login"))
    db = get_db()
    try:
        accepted = users.check_second_factor(db, pending["user"], request.form.get("code"),
                                             current_app.config["SECRET_KEY"])
    except users.HashingBusy:
        return _busy_page()
    user = users.user_by_id(db, pending["user"]) if accepted else None
    if user is None:
        pending["failures"] = pending.get("failures", 0) + 1
        session["pending_login"] = pending
        row = users.user_row_by_id(db, pending["user"])
        users.record_login_failure(db, row["username"] if row else "")
        if pending["failures"] >= MAX_CODE_FAILURES:
            session.pop("pending_login", None)
            flash("Too many wrong codes: log in again.")
            return redirect(url_for("auth.login"))
        return render_template("login_code.html", error=CODE_FAILED), 401
    return _finish_login(db, user, pending.get("next"))


@bp.post("/logout")
def logout():
    """Ends the server-side session: the cookie, and any copy of it, stops working."""
    if current_user.is_authenticated:
        users.end_session(get_db(), session.get("sid"), current_user.username)
    logout_user()
    session.clear()
    flash("You are logged out.")
    return redirect(url_for("auth.login"))
