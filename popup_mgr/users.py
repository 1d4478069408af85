"""Admin users and API tokens: accounts, password hashing (argon2id) and token hashes.
No HTTP here: web/auth.py logs people in and guards routes with these."""
import functools
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_login import UserMixin

from popup_mgr import db as database
from popup_mgr import timeutil

MIN_PASSWORD_LENGTH = 12


@functools.cache
def _hasher():
    """argon2id with OWASP's first recommended setting (m = 19 MiB, t = 2, p = 1); built on
    first use, not at import."""
    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


@functools.cache
def _dummy_hash():
    """Verified against when the user is unknown, so both failures take the same time."""
    return _hasher().hash(secrets.token_urlsafe(16))


class User(UserMixin):
    """The logged-in admin as flask-login sees it."""
    def __init__(self, row):
        self.id = row["id"]
        self.username = row["username"]


def hash_password(password):
    return _hasher().hash(password)


def create_user(db, username, password):
    """Add an admin; raises ValueError for a bad name, a short password or a taken name."""
    username = (username or "").strip()
    if not username or len(username) > 64:
        raise ValueError("username must be 1-64 characters")
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    with database.transaction(db):
        if db.execute("/* users.create_user */ SELECT 1 FROM users WHERE username = ?",
                      (username,)).fetchone():
            raise ValueError(f"user {username!r} already exists")
        cur = db.execute("/* users.create_user */ INSERT INTO users (username, password_hash, created_at)"
                         " VALUES (?, ?, ?)", (username, hash_password(password), timeutil.iso_now()))
    return cur.lastrowid


def check_password(db, username, password):
    """The User when the password is right, else None (same work whether or not the user exists)."""
    row = db.execute("/* users.check_password */ SELECT id, username, password_hash FROM users"
                     " WHERE username = ?", ((username or "").strip(),)).fetchone()
    try:
        _hasher().verify(row["password_hash"] if row else _dummy_hash(), password or "")
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    if _hasher().check_needs_rehash(row["password_hash"]):
        with database.transaction(db):
            db.execute("/* users.check_password */ UPDATE users SET password_hash = ? WHERE id = ?",
                       (hash_password(password), row["id"]))
    return User(row)


def user_by_id(db, user_id):
    row = db.execute("/* users.user_by_id */ SELECT id, username FROM users WHERE id = ?",
                     (user_id,)).fetchone()
    return User(row) if row else None


def _token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db, name):
    """Make a new API token and return it; only its hash is stored."""
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise ValueError("token name must be 1-64 characters")
    token = "pm_" + secrets.token_urlsafe(32)
    with database.transaction(db):
        db.execute("/* users.create_token */ INSERT INTO api_tokens (name, token_hash, created_at)"
                   " VALUES (?, ?, ?)", (name, _token_hash(token), timeutil.iso_now()))
    return token


def token_name(db, token):
    """The name of a valid, unrevoked token, else None."""
    row = db.execute("/* users.token_name */ SELECT id, name FROM api_tokens"
                     " WHERE token_hash = ? AND revoked_at IS NULL", (_token_hash(token),)).fetchone()
    return row["name"] if row else None




def any_user(db):
    """True once at least one admin exists."""
    return db.execute("/* users.any_user */ SELECT 1 FROM users LIMIT 1").fetchone() is not None


def record_login(db, user_id):
    with database.transaction(db):
        db.execute("/* users.record_login */ UPDATE users SET last_login_at = ? WHERE id = ?",
                   (timeutil.iso_now(), user_id))
