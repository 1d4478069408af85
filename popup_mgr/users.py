"""Admin users and API tokens: accounts, password hashing (argon2id), server-side sessions, the
per-account login slow-down, two-factor codes (TOTP and recovery codes) and token hashes.
No HTTP here: web/auth.py logs people in and guards routes with these; web/accounts.py shows them.

Every change to an account, a session or a token is written to the audit log in the same
transaction as the change.
"""
import base64
import contextlib
import datetime as dt
import functools
import hashlib
import hmac
import os
import secrets
import threading
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask_login import UserMixin

from popup_mgr import audit, timeutil
from popup_mgr import db as database

MIN_PASSWORD_LENGTH = 12

# Session lifetimes (seconds), overridable with POPUP_SESSION_IDLE_S / POPUP_SESSION_MAX_S.
# Idle: a working day with breaks; absolute: a stolen cookie is useless after a day at most.
SESSION_IDLE_S = 8 * 3600
SESSION_MAX_S = 24 * 3600
# last_seen_at is written at most this often per session (a write per admin request is waste).
SESSION_TOUCH_S = 60
TOKEN_TOUCH_S = 60

# Per-account slow-down: the first FREE_FAILURES wrong passwords cost nothing; each further one
# blocks new attempts from unknown browsers for a doubling delay (30 s, 1 min, 2 min ... 15 min).
# Failures are forgotten a day after the last one.
FREE_FAILURES = 5
FIRST_DELAY_S = 30
MAX_DELAY_S = 15 * 60
FAILURE_MEMORY_S = 24 * 3600

RECOVERY_CODES = 10
TOKEN_SCOPES = ("full", "read")


# --- password hashing, bounded ----------------------------------------------------------------

class HashingBusy(RuntimeError):
    """Too many password checks are already waiting; the caller answers 503 and the client retries."""


# argon2 takes ~0.1 s of one core per check and releases the GIL: unbounded, a login spray on
# many threads takes every core from the beacons. At most HASH_SLOTS checks run at once (half the
# cores, at least one) and at most HASH_WAITERS more wait, so logins never hold more than a few of
# the server's threads either.
HASH_SLOTS = max(1, (os.cpu_count() or 2) // 2)
HASH_WAITERS = 4
HASH_WAIT_S = 5.0
_hash_slots = threading.BoundedSemaphore(HASH_SLOTS)
_waiting = 0
_waiting_lock = threading.Lock()


@contextlib.contextmanager
def hashing_slot():
    """Hold one of the HASH_SLOTS while hashing; HashingBusy when the queue is full or too slow."""
    global _waiting
    with _waiting_lock:
        if _waiting >= HASH_WAITERS + HASH_SLOTS:
            raise HashingBusy("too many password checks at once")
        _waiting += 1
    try:
        if not _hash_slots.acquire(timeout=HASH_WAIT_S):
            raise HashingBusy("password checks are queued for too long")
        try:
            yield
        finally:
            _hash_slots.release()
    finally:
        with _waiting_lock:
            _waiting -= 1


@functools.cache
def _hasher():
    """argon2id with OWASP's first recommended setting (m = 19 MiB, t = 2, p = 1); built on
    first use, not at import."""
    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


@functools.cache
def _dummy_hash():
    """Verified against when the user is unknown, so both failures take the same time."""
    return _hasher().hash(secrets.token_urlsafe(16))


def hash_password(password):
    with hashing_slot():
        return _hasher().hash(password)


def _verify(stored_hash, secret):
    """True when secret matches the argon2 hash (bounded like every hash)."""
    with hashing_slot():
        try:
            return _hasher().verify(stored_hash, secret)
        except (VerificationError, InvalidHashError):
            return False


# --- users --------------------------------------------------------------------------------------

class User(UserMixin):
    """The logged-in admin as flask-login sees it."""
    def __init__(self, row):
        self.id = row["id"]
        self.username = row["username"]


class AccountError(ValueError):
    """A refused account change; the message says why, for the form or the command line."""


def _check_password_rules(password):
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")


def create_user(db, username, password, actor="cli"):
    """Add an admin; raises AccountError (a ValueError) for a bad name, a short password or a
    taken name."""
    username = (username or "").strip()
    if not username or len(username) > 64:
        raise AccountError("username must be 1-64 characters")
    _check_password_rules(password)
    password_hash = hash_password(password)
    with database.transaction(db):
        if db.execute("/* users.create_user */ SELECT 1 FROM users WHERE username = ?",
                      (username,)).fetchone():
            raise AccountError(f"user {username!r} already exists")
        cur = db.execute("/* users.create_user */ INSERT INTO users (username, password_hash, created_at)"
                         " VALUES (?, ?, ?)", (username, password_hash, timeutil.iso_now()))
        audit.record(db, actor, "user.create", "user", cur.lastrowid, {"username": [None, username]})
    return cur.lastrowid


def _user_row(db, username):
    return db.execute("/* users._user_row */ SELECT id, username, password_hash, disabled_at,"
                      " totp_enabled_at FROM users WHERE username = ?",
                      ((username or "").strip(),)).fetchone()


def user_row_by_id(db, user_id):
    return db.execute("/* users.user_row_by_id */ SELECT id, username, password_hash, disabled_at,"
                      " totp_enabled_at, totp_secret FROM users WHERE id = ?", (user_id,)).fetchone()


def check_password(db, username, password):
    """The User when the password is right and the account enabled, else None (the same work
    whether or not the user exists). Raises HashingBusy when too many checks are under way."""
    row = _user_row(db, username)
    if not _verify(row["password_hash"] if row else _dummy_hash(), password or ""):
        return None
    if row is None or row["disabled_at"]:
        return None
    if _hasher().check_needs_rehash(row["password_hash"]):
        new_hash = hash_password(password)
        with database.transaction(db):
            db.execute("/* users.check_password */ UPDATE users SET password_hash = ? WHERE id = ?",
                       (new_hash, row["id"]))
    return User(row)


def user_by_id(db, user_id):
    row = db.execute("/* users.user_by_id */ SELECT id, username FROM users"
                     " WHERE id = ? AND disabled_at IS NULL", (user_id,)).fetchone()
    return User(row) if row else None


def user_id_by_name(db, username):
    row = db.execute("/* users.user_id_by_name */ SELECT id FROM users WHERE username = ?",
                     ((username or "").strip(),)).fetchone()
    if row is None:
        raise AccountError(f"no user {username!r}")
    return row["id"]


def list_users(db):
    """Every admin with what the Users page shows, oldest first."""
    return [dict(row) for row in db.execute(
        "/* users.list_users */ SELECT u.id, u.username, u.created_at, u.last_login_at, u.disabled_at,"
        " u.password_changed_at, u.totp_enabled_at,"
        " (SELECT count(*) FROM sessions s WHERE s.user_id = u.id) AS sessions"
        " FROM users u ORDER BY u.id")]


def any_user(db):
    """True once at least one admin exists."""
    return db.execute("/* users.any_user */ SELECT 1 FROM users LIMIT 1").fetchone() is not None


def record_login(db, user_id):
    with database.transaction(db):
        db.execute("/* users.record_login */ UPDATE users SET last_login_at = ? WHERE id = ?",
                   (timeutil.iso_now(), user_id))
        audit.record(db, _username(db, user_id), "user.login", "user", user_id, {})


def _username(db, user_id):
    row = db.execute("/* users._username */ SELECT username FROM users WHERE id = ?", (user_id,)).fetchone()
    return row["username"] if row else f"user:{user_id}"


def set_password(db, user_id, new_password, actor, keep_sid=None):
    """Replace a password and end every session of that user except keep_sid (the one that made
    the change, when it is the user's own); a stolen session dies with the old password."""
    _check_password_rules(new_password)
    password_hash = hash_password(new_password)
    with database.transaction(db):
        found = db.execute("/* users.set_password */ UPDATE users SET password_hash = ?,"
                           " password_changed_at = ? WHERE id = ?",
                           (password_hash, timeutil.iso_now(), user_id)).rowcount
        if not found:
            raise AccountError(f"no user with id {user_id}")
        ended = _end_sessions_except(db, user_id, keep_sid)
        audit.record(db, actor, "user.password", "user", user_id, {"sessions_ended": [None, ended]})


def change_own_password(db, user_id, current_password, new_password, keep_sid):
    """The logged-in user's change: the current password is asked again (a borrowed unlocked
    browser must not be enough to take the account over)."""
    row = user_row_by_id(db, user_id)
    if row is None or not _verify(row["password_hash"], current_password or ""):
        raise AccountError("the current password is not right")
    set_password(db, user_id, new_password, row["username"], keep_sid=keep_sid)


def set_disabled(db, user_id, disabled, actor):
    """Disable (no login, every session ended) or enable an account. The last enabled admin
    cannot be disabled: nobody could log in to undo it."""
    with database.transaction(db):
        row = db.execute("/* users.set_disabled */ SELECT disabled_at FROM users WHERE id = ?",
                         (user_id,)).fetchone()
        if row is None:
            raise AccountError(f"no user with id {user_id}")
        if disabled and not row["disabled_at"] and _enabled_count(db) <= 1:
            raise AccountError("the last enabled admin cannot be disabled")
        value = timeutil.iso_now() if disabled else None
        db.execute("/* users.set_disabled */ UPDATE users SET disabled_at = ? WHERE id = ?", (value, user_id))
        if disabled:
            _end_sessions_except(db, user_id, None)
        audit.record(db, actor, "user.disable" if disabled else "user.enable", "user", user_id,
                     {"disabled": [bool(row["disabled_at"]), disabled]})


def _enabled_count(db):
    return db.execute("/* users._enabled_count */ SELECT count(*) FROM users WHERE disabled_at IS NULL"
                      ).fetchone()[0]


# --- server-side sessions ------------------------------------------------------------------------

def _sid_hash(sid):
    return hashlib.sha256(sid.encode()).hexdigest()


def _iso_ago(seconds, now=None):
    moment = (now or dt.datetime.now(timeutil.UTC)) - dt.timedelta(seconds=seconds)
    return timeutil.iso_utc(moment)


def start_session(db, user_id, ip_label="", user_agent=""):
    """A new session for user_id; returns the random session id the cookie carries (only its
    hash is stored). Expired sessions of every user are deleted on the way."""
    sid = secrets.token_urlsafe(32)
    now = timeutil.iso_now()
    with database.transaction(db):
        db.execute("/* users.start_session */ INSERT INTO sessions (sid_hash, user_id, created_at,"
                   " last_seen_at, ip_label, user_agent) VALUES (?, ?, ?, ?, ?, ?)",
                   (_sid_hash(sid), user_id, now, now, ip_label[:64], user_agent[:80]))
    return sid


def session_user(db, sid, idle_s=SESSION_IDLE_S, max_s=SESSION_MAX_S):
    """The User a live session belongs to, else None: the session was ended, is idle longer than
    idle_s or older than max_s, or the account is disabled. Notes the visit (at most once a
    minute)."""
    if not sid:
        return None
    row = db.execute(
        "/* users.session_user */ SELECT s.id AS session_id, s.created_at, s.last_seen_at,"
        " u.id, u.username FROM sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.sid_hash = ? AND u.disabled_at IS NULL", (_sid_hash(sid),)).fetchone()
    if row is None or row["last_seen_at"] < _iso_ago(idle_s) or row["created_at"] < _iso_ago(max_s):
        return None
    if row["last_seen_at"] < _iso_ago(SESSION_TOUCH_S):
        with database.transaction(db):
            db.execute("/* users.session_user */ UPDATE sessions SET last_seen_at = ? WHERE id = ?",
                       (timeutil.iso_now(), row["session_id"]))
    return User(row)


def end_session(db, sid, actor):
    """Logout: the session's row goes, so its cookie (or a copy of it) stops working."""
    with database.transaction(db):
        row = db.execute("/* users.end_session */ DELETE FROM sessions WHERE sid_hash = ?"
                         " RETURNING id, user_id", (_sid_hash(sid or ""),)).fetchone()
        if row:
            audit.record(db, actor, "session.end", "user", row["user_id"], {"session": [row["id"], None]})
    return row is not None


def end_session_by_id(db, session_id, actor):
    """End one session from the Users page (any user's: every admin is trusted the same)."""
    with database.transaction(db):
        row = db.execute("/* users.end_session_by_id */ DELETE FROM sessions WHERE id = ?"
                         " RETURNING id, user_id", (session_id,)).fetchone()
        if row is None:
            raise AccountError("that session has already ended")
        audit.record(db, actor, "session.end", "user", row["user_id"], {"session": [row["id"], None]})


def _end_sessions_except(db, user_id, keep_sid):
    """Delete user_id's sessions but keep_sid's; the number ended. Call inside a transaction."""
    return db.execute("/* users._end_sessions_except */ DELETE FROM sessions WHERE user_id = ?"
                      " AND sid_hash != ?", (user_id, _sid_hash(keep_sid or ""))).rowcount


def active_sessions(db, idle_s=SESSION_IDLE_S, max_s=SESSION_MAX_S):
    """Live sessions of every user, most recently seen first (expired rows are deleted here)."""
    idle_cutoff, max_cutoff = _iso_ago(idle_s), _iso_ago(max_s)
    with database.transaction(db):
        db.execute("/* users.active_sessions */ DELETE FROM sessions WHERE last_seen_at < ?"
                   " OR created_at < ?", (idle_cutoff, max_cutoff))
    return [dict(row) for row in db.execute(
        "/* users.active_sessions */ SELECT s.id, s.sid_hash, s.user_id, u.username, s.created_at,"
        " s.last_seen_at, s.ip_label, s.user_agent FROM sessions s JOIN users u ON u.id = s.user_id"
        " ORDER BY s.last_seen_at DESC, s.id DESC")]


def is_session(sid, row):
    """True when row (from active_sessions) is the session whose id is sid."""
    return bool(sid) and hmac.compare_digest(row["sid_hash"], _sid_hash(sid))


# --- per-account login slow-down ------------------------------------------------------------------

def _account_key(username):
    return (username or "").strip().lower()[:64]


def login_wait_s(db, username, now_ms=None):
    """Seconds before an unknown browser may try this username again (0: now)."""
    now_ms = now_ms if now_ms is not None else timeutil.now_ms()
    row = db.execute("/* users.login_wait_s */ SELECT blocked_until_ms FROM login_failures"
                     " WHERE account = ?", (_account_key(username),)).fetchone()
    if row is None or row["blocked_until_ms"] <= now_ms:
        return 0
    return -(-(row["blocked_until_ms"] - now_ms) // 1000)


def record_login_failure(db, username, now_ms=None):
    """Count a wrong password for this username; returns the new wait in seconds (0 while the
    failures are still free)."""
    now_ms = now_ms if now_ms is not None else timeutil.now_ms()
    key = _account_key(username)
    with database.transaction(db):
        row = db.execute("/* users.record_login_failure */ SELECT failures, last_failure_ms"
                         " FROM login_failures WHERE account = ?", (key,)).fetchone()
        failures = 1 if row is None or row["last_failure_ms"] < now_ms - FAILURE_MEMORY_S * 1000 \
            else row["failures"] + 1
        wait_s = failure_delay_s(failures)
        db.execute("/* users.record_login_failure */ INSERT INTO login_failures (account, failures,"
                   " last_failure_ms, blocked_until_ms) VALUES (?, ?, ?, ?) ON CONFLICT (account) DO UPDATE"
                   " SET failures = excluded.failures, last_failure_ms = excluded.last_failure_ms,"
                   " blocked_until_ms = excluded.blocked_until_ms",
                   (key, failures, now_ms, now_ms + wait_s * 1000))
        db.execute("/* users.record_login_failure */ DELETE FROM login_failures WHERE last_failure_ms < ?",
                   (now_ms - FAILURE_MEMORY_S * 1000,))
    return wait_s


def failure_delay_s(failures):
    """The wait after the n-th consecutive failure: none for the first FREE_FAILURES, then
    FIRST_DELAY_S doubling up to MAX_DELAY_S."""
    if failures <= FREE_FAILURES:
        return 0
    return min(FIRST_DELAY_S * 2 ** min(failures - FREE_FAILURES - 1, 20), MAX_DELAY_S)


def clear_login_failures(db, username, actor=None):
    """After a successful login, or `popup-mgr unlock` (audited when actor is given); True when
    there was something to clear."""
    with database.transaction(db):
        cleared = db.execute("/* users.clear_login_failures */ DELETE FROM login_failures WHERE account = ?",
                             (_account_key(username),)).rowcount
        if actor and cleared:
            row = _user_row(db, username)
            audit.record(db, actor, "user.unlock", "user", row["id"] if row else None,
                         {"account": [username, None]})
    return bool(cleared)


# --- two-factor: TOTP and recovery codes ---------------------------------------------------------

_TOTP_HKDF_INFO = b"popup_mgr totp secret"


def _fernet(secret_key):
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_TOTP_HKDF_INFO).derive(
        secret_key.encode("utf-8"))
    return Fernet(base64.urlsafe_b64encode(derived))


def new_totp_secret():
    import pyotp
    return pyotp.random_base32()


def totp_uri(secret, username, issuer="popup_mgr"):
    import pyotp
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def totp_qr_data_uri(uri):
    """The otpauth:// URI as a QR code in an SVG data: URL (allowed by the admin CSP's img-src)."""
    import segno
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def _totp_step(secret, code, at=None):
    """The 30-second step (the current one, or one step of clock drift either way) whose code is
    code, else None."""
    import pyotp
    code = "".join(ch for ch in (code or "") if ch in "0123456789")
    if len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    now = int(at if at is not None else time.time())
    for drift in (0, -1, 1):
        step = now // totp.interval + drift
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _totp_matches(secret, code):
    return _totp_step(secret, code) is not None


def enable_totp(db, user_id, secret, code, secret_key):
    """Turn two-factor on once the phone app proves it has the secret (code matches); returns
    the recovery codes, shown once. Raises AccountError for a wrong code."""
    if not _totp_matches(secret, code):
        raise AccountError("that code is not right: check the phone's clock and type the current code")
    codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
    hashed = [hash_password(code_text) for code_text in codes]
    encrypted = _fernet(secret_key).encrypt(secret.encode()).decode("ascii")
    with database.transaction(db):
        db.execute("/* users.enable_totp */ UPDATE users SET totp_secret = ?, totp_enabled_at = ?"
                   " WHERE id = ?", (encrypted, timeutil.iso_now(), user_id))
        db.execute("/* users.enable_totp */ DELETE FROM recovery_codes WHERE user_id = ?", (user_id,))
        db.executemany("/* users.enable_totp */ INSERT INTO recovery_codes (user_id, code_hash) VALUES (?, ?)",
                       [(user_id, code_hash) for code_hash in hashed])
        audit.record(db, _username(db, user_id), "user.totp_enable", "user", user_id, {"totp": [False, True]})
    return codes


def disable_totp(db, user_id, actor):
    with database.transaction(db):
        db.execute("/* users.disable_totp */ UPDATE users SET totp_secret = NULL, totp_enabled_at = NULL"
                   " WHERE id = ?", (user_id,))
        db.execute("/* users.disable_totp */ DELETE FROM recovery_codes WHERE user_id = ?", (user_id,))
        audit.record(db, actor, "user.totp_disable", "user", user_id, {"totp": [True, False]})


def totp_enabled(db, user_id):
    row = user_row_by_id(db, user_id)
    return bool(row and row["totp_enabled_at"])


def check_second_factor(db, user_id, code, secret_key):
    """True for the current TOTP code or an unused recovery code (which is then used up)."""
    row = user_row_by_id(db, user_id)
    if row is None or not row["totp_enabled_at"]:
        return False
    code = (code or "").strip()
    try:
        secret = _fernet(secret_key).decrypt(row["totp_secret"].encode("ascii")).decode()
    except (InvalidToken, ValueError, AttributeError):
        secret = None
    step = _totp_step(secret, code) if secret else None
    if step is not None:
        return _use_totp_step(db, user_id, step)
    return _use_recovery_code(db, user_id, code)


def _use_totp_step(db, user_id, step):
    """Accept a code's step only once, and only after the last accepted one (RFC 6238 5.2): a
    code seen over a shoulder or in a proxy log cannot be replayed."""
    with database.transaction(db):
        return db.execute("/* users._use_totp_step */ UPDATE users SET totp_last_step = ?"
                          " WHERE id = ? AND totp_last_step < ?", (step, user_id, step)).rowcount == 1


def _recovery_code():
    """xxxx-xxxx-xxxx from an alphabet without look-alikes (0/O, 1/l)."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))


def _use_recovery_code(db, user_id, code):
    normalised = code.lower().replace(" ", "")
    if len(normalised) != 14:
        return False
    for row in db.execute("/* users._use_recovery_code */ SELECT id, code_hash FROM recovery_codes"
                          " WHERE user_id = ? AND used_at IS NULL", (user_id,)).fetchall():
        if _verify(row["code_hash"], normalised):
            with database.transaction(db):
                used = db.execute("/* users._use_recovery_code */ UPDATE recovery_codes SET used_at = ?"
                                  " WHERE id = ? AND used_at IS NULL", (timeutil.iso_now(), row["id"])).rowcount
                if used:
                    audit.record(db, _username(db, user_id), "user.recovery_code_used", "user", user_id, {})
            return bool(used)
    return False


def recovery_codes_left(db, user_id):
    return db.execute("/* users.recovery_codes_left */ SELECT count(*) FROM recovery_codes"
                      " WHERE user_id = ? AND used_at IS NULL", (user_id,)).fetchone()[0]


# --- API tokens -----------------------------------------------------------------------------------

class ApiToken:
    """A valid token as the request sees it: its id, name and scope."""
    def __init__(self, row):
        self.id, self.name, self.scope = row["id"], row["name"], row["scope"]

    @property
    def read_only(self):
        return self.scope == "read"


def _token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db, name, scope="full", actor="cli"):
    """Make a new API token and return it; only its hash is stored."""
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise AccountError("token name must be 1-64 characters")
    if scope not in TOKEN_SCOPES:
        raise AccountError(f"scope must be one of {', '.join(TOKEN_SCOPES)}")
    token = "pm_" + secrets.token_urlsafe(32)
    with database.transaction(db):
        cur = db.execute("/* users.create_token */ INSERT INTO api_tokens (name, token_hash, created_at, scope)"
                         " VALUES (?, ?, ?, ?)", (name, _token_hash(token), timeutil.iso_now(), scope))
        audit.record(db, actor, "token.create", "api_token", cur.lastrowid,
                     {"name": [None, name], "scope": [None, scope]})
    return token


def token_for(db, token):
    """The ApiToken of a valid, unrevoked token, else None. Notes its use (at most once a minute,
    so a busy API client costs one write a minute, not one per call)."""
    row = db.execute("/* users.token_for */ SELECT id, name, scope, last_used_at FROM api_tokens"
                     " WHERE token_hash = ? AND revoked_at IS NULL", (_token_hash(token),)).fetchone()
    if row is None:
        return None
    if row["last_used_at"] is None or row["last_used_at"] < _iso_ago(TOKEN_TOUCH_S):
        with database.transaction(db):
            db.execute("/* users.token_for */ UPDATE api_tokens SET last_used_at = ? WHERE id = ?",
                       (timeutil.iso_now(), row["id"]))
    return ApiToken(row)


def token_name(db, token):
    """The name of a valid, unrevoked token, else None."""
    found = token_for(db, token)
    return found.name if found else None


def list_tokens(db, include_revoked=False):
    """Tokens for the Tokens page and `list-tokens`, newest first."""
    return [dict(row) for row in db.execute(
        "/* users.list_tokens */ SELECT id, name, scope, created_at, last_used_at, revoked_at"
        " FROM api_tokens" + ("" if include_revoked else " WHERE revoked_at IS NULL")
        + " ORDER BY id DESC")]


def revoke_token(db, token_id, actor):
    """Revoke by id; AccountError when there is no such live token."""
    with database.transaction(db):
        row = db.execute("/* users.revoke_token */ UPDATE api_tokens SET revoked_at = ?"
                         " WHERE id = ? AND revoked_at IS NULL RETURNING id, name",
                         (timeutil.iso_now(), token_id)).fetchone()
        if row is None:
            raise AccountError(f"no live token with id {token_id}")
        audit.record(db, actor, "token.revoke", "api_token", row["id"], {"revoked": [False, True]})
    return row["name"]


def token_id_by_name_or_id(db, value):
    """The id of the one live token called value (or with id value); AccountError otherwise."""
    if str(value).isdigit():
        return int(value)
    rows = db.execute("/* users.token_id_by_name_or_id */ SELECT id FROM api_tokens"
                      " WHERE name = ? AND revoked_at IS NULL", (value,)).fetchall()
    if len(rows) != 1:
        raise AccountError(f"{len(rows)} live tokens are called {value!r}: give the id (list-tokens)")
    return rows[0]["id"]

