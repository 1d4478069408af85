"""Blueprint "accounts": the Users page (add, disable, reset a password, change your own, see and
end active sessions), two-factor enrolment, and the API tokens page. No SQL here: users.py does
the work and writes the audit rows; secrets (a new token, recovery codes) are shown once, in the
answer to the request that made them, and never stored in a readable form.
"""
from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required

from popup_mgr import users
from popup_mgr.db import get_db

bp = Blueprint("accounts", __name__, url_prefix="/admin")


@bp.errorhandler(users.HashingBusy)
def _hashing_busy(_exc):
    """Setting a password waits for a hashing slot like a login; when they are all taken, the
    admin is asked to retry instead of the request holding a server thread."""
    return render_template("accounts/busy.html"), 503, {"Retry-After": "2"}


def _lifetimes():
    return current_app.config["SESSION_IDLE_S"], current_app.config["SESSION_MAX_S"]


def _users_page(status=200, **context):
    db = get_db()
    sid = session.get("sid")
    sessions = users.active_sessions(db, *_lifetimes())
    for row in sessions:
        row["current"] = users.is_session(sid, row)
    page = render_template("accounts/users.html", users=users.list_users(db), sessions=sessions,
                           me=current_user.id, idle_h=_lifetimes()[0] / 3600, max_h=_lifetimes()[1] / 3600,
                           totp_on=users.totp_enabled(db, current_user.id),
                           codes_left=users.recovery_codes_left(db, current_user.id), **context)
    return page, status


def _done(message):
    flash(message, "success")
    return redirect(url_for("accounts.users_page"))


@bp.get("/users")
@login_required
def users_page():
    return _users_page()


@bp.post("/users")
@login_required
def add_user():
    username = request.form.get("username", "")
    try:
        users.create_user(get_db(), username, request.form.get("password", ""), actor=current_user.username)
    except users.AccountError as exc:
        return _users_page(422, add_error=str(exc), add_username=username)
    return _done(f"Admin {username.strip()!r} added.")


@bp.post("/users/<int:user_id>/disable")
@login_required
def disable_user(user_id):
    return _set_disabled(user_id, True, "Account disabled; its sessions are ended.")


@bp.post("/users/<int:user_id>/enable")
@login_required
def enable_user(user_id):
    return _set_disabled(user_id, False, "Account enabled.")


def _set_disabled(user_id, disabled, done_message):
    try:
        users.set_disabled(get_db(), user_id, disabled, current_user.username)
    except users.AccountError as exc:
        return _users_page(422, user_error=str(exc))
    return _done(done_message)


@bp.post("/users/<int:user_id>/password")
@login_required
def reset_password(user_id):
    """An admin sets another admin's password (told to them out of band); all their sessions end."""
    keep = session.get("sid") if user_id == current_user.id else None
    try:
        users.set_password(get_db(), user_id, request.form.get("password", ""), current_user.username, keep_sid=keep)
    except users.AccountError as exc:
        return _users_page(422, user_error=str(exc))
    return _done("Password reset; that account's sessions are ended.")


@bp.post("/account/password")
@login_required
def change_own_password():
    new = request.form.get("new_password", "")
    if new != request.form.get("confirm_password", ""):
        return _users_page(422, own_error="the two new passwords differ")
    try:
        users.change_own_password(get_db(), current_user.id, request.form.get("current_password"), new,
                                  keep_sid=session.get("sid"))
    except users.AccountError as exc:
        return _users_page(422, own_error=str(exc))
    except users.HashingBusy:
        return _users_page(503, own_error="the server is busy: try again in a few seconds")
    return _done("Password changed; your other sessions are ended.")


@bp.post("/sessions/<int:session_id>/end")
@login_required
def end_session(session_id):
    try:
        users.end_session_by_id(get_db(), session_id, current_user.username)
    except users.AccountError as exc:
        return _users_page(422, user_error=str(exc))
    return _done("Session ended.")


# --- two-factor enrolment --------------------------------------------------------------------------

@bp.get("/account/2fa")
@login_required
def two_factor():
    """Enrolment: a new secret waits in the (signed, server-ended) session until the phone app
    proves it has it with a code."""
    if users.totp_enabled(get_db(), current_user.id):
        return redirect(url_for("accounts.users_page"))
    secret = session.get("totp_pending") or users.new_totp_secret()
    session["totp_pending"] = secret
    return _enrol_page(secret)


def _enrol_page(secret, error=None, status=200):
    uri = users.totp_uri(secret, current_user.username)
    return render_template("accounts/two_factor.html", secret=secret, qr=users.totp_qr_data_uri(uri),
                           error=error), status


@bp.post("/account/2fa")
@login_required
def enable_two_factor():
    secret = session.get("totp_pending")
    if not secret:
        return redirect(url_for("accounts.two_factor"))
    try:
        codes = users.enable_totp(get_db(), current_user.id, secret, request.form.get("code"),
                                  current_app.config["SECRET_KEY"])
    except users.AccountError as exc:
        return _enrol_page(secret, str(exc), 422)
    session.pop("totp_pending", None)
    return render_template("accounts/recovery_codes.html", codes=codes)


@bp.post("/account/2fa/disable")
@login_required
def disable_two_factor():
    db = get_db()
    if users.check_password(db, current_user.username, request.form.get("password")) is None:
        return _users_page(422, own_error="the password is not right: two-factor stays on")
    users.disable_totp(db, current_user.id, current_user.username)
    return _done("Two-factor login is off.")


# --- API tokens ---------------------------------------------------------------------------------------

@bp.get("/tokens")
@login_required
def tokens():
    return _tokens_page()


def _tokens_page(status=200, **context):
    return render_template("accounts/tokens.html", tokens=users.list_tokens(get_db(), include_revoked=True),
                           **context), status


@bp.post("/tokens")
@login_required
def create_token():
    name = request.form.get("name", "")
    scope = "read" if request.form.get("scope") == "read" else "full"
    try:
        token = users.create_token(get_db(), name, scope=scope, actor=current_user.username)
    except users.AccountError as exc:
        return _tokens_page(422, error=str(exc), name=name)
    return _tokens_page(200, new_token=token, new_name=name.strip())


@bp.post("/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id):
    try:
        name = users.revoke_token(get_db(), token_id, current_user.username)
    except users.AccountError as exc:
        return _tokens_page(422, error=str(exc))
    flash(f"Token {name!r} revoked.", "success")
    return redirect(url_for("accounts.tokens"))
