"""Blueprint "auth": login and logout, and the decorators and helpers that say who is calling
(admin session or API bearer token). Accounts and tokens themselves live in users.py."""
import functools
import re
from urllib.parse import urlsplit

from flask import Blueprint, flash, g, make_response, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from popup_mgr import users
from popup_mgr.db import get_db
from popup_mgr.extensions import limiter, login_manager
from popup_mgr.web.http import json_error


@login_manager.user_loader
def _load_user(user_id):
    return users.user_by_id(get_db(), int(user_id)) if str(user_id).isdigit() else None


def bearer_token():
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def current_actor():
    """Who is making this request, as written to the audit log."""
    if getattr(g, "api_token_name", None):
        return f"token:{g.api_token_name}"
    if current_user.is_authenticated:
        return current_user.username
    return "anonymous"


def api_auth_required(view):
    """Admin session or `Authorization: Bearer <token>`; 401 JSON otherwise."""
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        token = bearer_token()
        if token is not None:
            name = users.token_name(get_db(), token)
            if name is None:
                return json_error(401, "invalid or revoked API token")
            g.api_token_name = name
        elif not current_user.is_authenticated:
            return json_error(401, "authentication required: log in or send a Bearer token")
        return view(*args, **kwargs)
    return wrapped


# --- login and logout ---------------------------------------------------------------------------

# Throttling without a permanent lockout: a burst is slowed per IP, and guessing one account's
# password is slowed even when the guesses come from many IPs. Every attempt counts: counting
# only failures would mean testing the limit before the request and counting after it, which
# lets a burst of parallel guesses through.
LOGIN_LIMIT_PER_IP = "5/minute;20/hour"
LOGIN_LIMIT_PER_ACCOUNT = "10/hour"
LOGIN_FAILED = "Wrong username or password."

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


def _account_key():
    return "login-account:" + (request.form.get("username") or "").strip().lower()


def _throttled(_limit):
    response = make_response(render_template("login.html", throttled=True, next=None), 429)
    response.headers["Retry-After"] = "60"
    return response


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(LOGIN_LIMIT_PER_IP, methods=["POST"], on_breach=_throttled)
@limiter.limit(LOGIN_LIMIT_PER_ACCOUNT, methods=["POST"], key_func=_account_key, on_breach=_throttled)
def login():
    next_path = safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(next_path or url_for("admin.index"))
        return render_template("login.html", next=next_path)
    db = get_db()
    user = users.check_password(db, request.form.get("username"), request.form.get("password"))
    if user is None:
        # The same answer whether the user exists or not.
        return render_template("login.html", error=LOGIN_FAILED, next=next_path,
                               username=request.form.get("username", "")), 401
    # A fresh session at login: nothing planted before login (session fixation) survives.
    session.clear()
    login_user(user)
    users.record_login(db, user.id)
    return redirect(next_path or url_for("admin.index"))


@bp.post("/logout")
def logout():
    logout_user()
    session.clear()
    flash("You are logged out.")
    return redirect(url_for("auth.login"))

