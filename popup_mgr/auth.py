"""Admin users, password hashing, API tokens and the decorators that guard admin and API routes."""
import functools
import hashlib
import re
import secrets
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import (Blueprint, flash, g, make_response, redirect, render_template, request, session,
                   url_for)
from flask_login import UserMixin, current_user, login_user, logout_user

from popup_mgr import db as database
from popup_mgr import timeutil
from popup_mgr.extensions import limiter, login_manager
from popup_mgr.web import json_error

# argon2id with OWASP's first recommended setting (m = 19 MiB, t = 2, p = 1).
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the user is unknown, so both failures take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
MIN_PASSWORD_LENGTH = 12


class User(UserMixin):
    def __init__(self, row):
        self.id = row["id"]
        self.username = row["username"]


def hash_password(password):
    return _hasher.hash(password)


def create_user(db, username, password):
    """Add an admin; raises ValueError for a bad name, a short password or a taken name."""
    username = (username or "").strip()
    if not username or len(username) > 64:
        raise ValueError("username must be 1-64 characters")
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    with database.transaction(db):
        if db.execute("/* auth.create_user */ SELECT 1 FROM users WHERE username = ?",
                      (username,)).fetchone():
            raise ValueError(f"user {username!r} already exists")
        cur = db.execute("/* auth.create_user */ INSERT INTO users (username, password_hash, created_at)"
                         " VALUES (?, ?, ?)", (username, hash_password(password), timeutil.iso_now()))
    return cur.lastrowid


def check_password(db, username, password):
    """The User when the password is right, else None (same work whether or not the user exists)."""
    row = db.execute("/* auth.check_password */ SELECT id, username, password_hash FROM users"
                     " WHERE username = ?", ((username or "").strip(),)).fetchone()
    try:
        _hasher.verify(row["password_hash"] if row else _DUMMY_HASH, password or "")
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    if _hasher.check_needs_rehash(row["password_hash"]):
        with database.transaction(db):
            db.execute("/* auth.check_password */ UPDATE users SET password_hash = ? WHERE id = ?",
                       (hash_password(password), row["id"]))
    return User(row)


def user_by_id(db, user_id):
    row = db.execute("/* auth.user_by_id */ SELECT id, username FROM users WHERE id = ?",
                     (user_id,)).fetchone()
    return User(row) if row else None


@login_manager.user_loader
def _load_user(user_id):
    return user_by_id(database.get_db(), int(user_id)) if str(user_id).isdigit() else None


# --- API tokens -----------------------------------------------------------------------------

def _token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db, name):
    """Make a new API token and return it; only its hash is stored."""
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise ValueError("token name must be 1-64 characters")
    token = "pm_" + secrets.token_urlsafe(32)
    with database.transaction(db):
        db.execute("/* auth.create_token */ INSERT INTO api_tokens (name, token_hash, created_at)"
                   " VALUES (?, ?, ?)", (name, _token_hash(token), timeutil.iso_now()))
    return token


def token_name(db, token):
    """The name of a valid, unrevoked token, else None."""
    row = db.execute("/* auth.token_name */ SELECT id, name FROM api_tokens"
                     " WHERE token_hash = ? AND revoked_at IS NULL", (_token_hash(token),)).fetchone()
    return row["name"] if row else None


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
            name = token_name(database.get_db(), token)
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
    db = database.get_db()
    user = check_password(db, request.form.get("username"), request.form.get("password"))
    if user is None:
        # The same answer whether the user exists or not.
        return render_template("login.html", error=LOGIN_FAILED, next=next_path,
                               username=request.form.get("username", "")), 401
    # A fresh session at login: nothing planted before login (session fixation) survives.
    session.clear()
    login_user(user)
    record_login(db, user.id)
    return redirect(next_path or url_for("admin.index"))


@bp.post("/logout")
def logout():
    logout_user()
    session.clear()
    flash("You are logged out.")
    return redirect(url_for("auth.login"))


def record_login(db, user_id):
    with database.transaction(db):
        db.execute("/* auth.record_login */ UPDATE users SET last_login_at = ? WHERE id = ?",
                   (timeutil.iso_now(), user_id))
