"""Blueprint "track": beacons, the click redirect, the network's postback and the admin page
that sets the postback up. HTTP only: parse, call tracking, answer. No SQL here."""
import datetime as dt
import json
import logging
from urllib.parse import parse_qs, quote, urlencode

from flask import Blueprint, current_app, jsonify, render_template, request
from flask_login import login_required

from popup_mgr import db as database
from popup_mgr import fastpath, money, tracking, urls, web
from popup_mgr.fastpath import Answer
from popup_mgr.tracking import EventError, IngestUnavailable, PostbackRejected

bp = Blueprint("track", __name__)
log = logging.getLogger(__name__)


@bp.record_once
def _on_register(setup):
    """When the blueprint is registered: the app's tracking state (settings checked at start-up)
    and its routes on the fast path in front of Flask."""
    tracking.init_app(setup.app)
    register_fast_paths(setup.app)

TEST_TRANSACTION_PREFIX = "test-"
TEST_PAYOUT = "1.00"


# --- beacons and the click redirect --------------------------------------------------------------
#
# These three paths carry nearly all traffic. Each is answered by one function returning a
# fastpath.Answer; the Flask views below and the raw-WSGI front (fastpath.py, where the why is)
# both use it, so there is one behaviour.

NO_STORE = ("Cache-Control", "no-store")
BEACON_PATHS = {"/api/impression": "impression", "/api/click": "click"}


def beacon_answer(app, kind, content_length, stream, visitor):
    """Answer for POST /api/impression or /api/click: 204 / 200 only after the commit."""
    body = _read_limited(content_length, stream)
    if body is None:
        return fastpath.error_answer(413, "body too large")
    try:
        beacon = tracking.parse_beacon(body)
        if kind == "impression":
            tracking.record_impression(app, beacon, visitor)
            return Answer(204, [NO_STORE])
        result = tracking.record_click(app, beacon, visitor)
    except EventError as exc:
        return fastpath.error_answer(400, str(exc))
    except IngestUnavailable as exc:
        return _unavailable_answer(exc)
    payload = json.dumps({"click_id": result.click_id, "redirect_url": result.redirect_url}).encode()
    return Answer(200, [NO_STORE, ("Content-Type", "application/json")], payload)


def _read_limited(content_length, stream):
    """The body, or None when it is over MAX_BEACON_BYTES (read at most one byte more, so a
    body without Content-Length cannot be large either)."""
    if content_length is not None and content_length > tracking.MAX_BEACON_BYTES:
        return None
    body = stream.read(tracking.MAX_BEACON_BYTES + 1)
    return None if len(body) > tracking.MAX_BEACON_BYTES else body


def click_answer(app, token, event_ids, uncounted, visitor):
    """302 for GET|HEAD /c/<token>, or a str: the reason for the "bad link" page (400).

    HEAD and prefetches (uncounted) redirect without counting: no visitor has clicked yet."""
    try:
        if uncounted:
            return _redirect_answer(tracking.uncounted_click_url(app, token))
        event_id = _valid_event_id(event_ids)
        return _redirect_answer(tracking.record_click(app, tracking.Beacon(token, event_id), visitor).redirect_url)
    except EventError as exc:
        return str(exc)
    except IngestUnavailable as exc:
        # The visitor clicked: losing them costs more than losing one count. The network still
        # gets a click id (the queued one when there is one), and a conversion for a click id we
        # never stored is kept as unattributed.
        log.warning("click not confirmed, redirecting anyway: %s", exc)
        if isinstance(exc, tracking.ClickNotConfirmed):
            return _redirect_answer(exc.redirect_url)
        try:
            return _redirect_answer(tracking.uncounted_click_url(app, token))
        except (EventError, IngestUnavailable):
            return _unavailable_answer(exc)


def _valid_event_id(values):
    """The one valid e= value, else an event id made here (the click still counts once)."""
    if len(values) == 1:
        try:
            return tracking.check_event_id(values[0])
        except EventError:
            pass
    return tracking.new_event_id()


def _redirect_answer(url):
    if urls.url_problem(url):
        # Only campaign links validated as http(s) are stored; anything else is never followed.
        return "offer link unavailable"
    return Answer(302, [("Location", url), ("Cache-Control", "no-store, private"),
                        ("Referrer-Policy", "no-referrer")])


def _unavailable_answer(exc):
    log.warning("event not stored: %s", exc)
    return fastpath.error_answer(503, "temporarily unavailable, retry", reason="unavailable", extra=[("Retry-After", "1")])


def is_prefetch(headers):
    """headers: a mapping with .get (Flask headers, or fastpath.EnvironHeaders)."""
    purpose = (headers.get("Sec-Purpose") or headers.get("Purpose") or "").lower()
    return purpose.startswith("prefetch") or (headers.get("X-Moz") or "").lower() == "prefetch"


@bp.post("/api/impression")
def impression():
    return fastpath.flask_response(beacon_answer(current_app, "impression", request.content_length, request.stream, _visitor()))


@bp.post("/api/click")
def click():
    return fastpath.flask_response(beacon_answer(current_app, "click", request.content_length, request.stream, _visitor()))


# path: + merge_slashes=False so that no token (e.g. "//host") ever gets a normalising redirect.
@bp.route("/c/<path:token>", methods=["GET", "HEAD"], merge_slashes=False)
def click_redirect(token):
    uncounted = request.method == "HEAD" or is_prefetch(request.headers)
    answer = click_answer(current_app, token, request.args.getlist("e"), uncounted, _visitor())
    if isinstance(answer, str):
        return bad_link_page(answer)
    return fastpath.flask_response(answer)


def bad_link_page(reason):
    response = current_app.make_response((render_template("track/bad_link.html", reason=reason), 400))
    response.headers["X-Popup-Reason"] = reason
    response.headers["Cache-Control"] = "no-store"
    return response


def _visitor():
    return tracking.Visitor(_client_ip(), request.headers.get("User-Agent", ""))


def _client_ip():
    return tracking.client_ip(current_app, request.remote_addr, request.headers.get("X-Forwarded-For"))


def _fast_beacon(app, environ, _rest):
    try:
        content_length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        return fastpath.error_answer(400, "bad Content-Length")
    return beacon_answer(app, BEACON_PATHS[environ["PATH_INFO"]], None if content_length < 0 else content_length,
                         environ["wsgi.input"], _environ_visitor(app, environ))


def _fast_click(app, environ, token):
    uncounted = environ["REQUEST_METHOD"] == "HEAD" or is_prefetch(fastpath.EnvironHeaders(environ))
    event_ids = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).get("e", [])
    answer = click_answer(app, token, event_ids, uncounted, _environ_visitor(app, environ))
    return None if isinstance(answer, str) else answer      # None: Flask renders the bad-link page


def _environ_visitor(app, environ):
    ip = tracking.client_ip(app, environ.get("REMOTE_ADDR"), environ.get("HTTP_X_FORWARDED_FOR"))
    return tracking.Visitor(ip, environ.get("HTTP_USER_AGENT", ""))


def register_fast_paths(app):
    for path in BEACON_PATHS:
        fastpath.register(app, ("POST",), _fast_beacon, path=path)
    fastpath.register(app, ("GET", "HEAD"), _fast_click, prefix="/c/")


# --- postback ------------------------------------------------------------------------------------------

@bp.route("/api/postback", methods=["GET", "POST"])
def postback():
    if request.method == "HEAD":      # Flask adds HEAD to GET routes; a HEAD must not write money
        return fastpath.flask_response(fastpath.error_answer(405, "use GET or POST"))
    params = request.args if request.method == "GET" else request.values
    try:
        tracking.check_postback_caller(current_app, params, _client_ip())
    except PostbackRejected as exc:
        return fastpath.flask_response(fastpath.error_answer(403, str(exc)))
    try:
        result = tracking.record_conversion(current_app, tracking.parse_postback(params))
    except EventError as exc:
        return fastpath.flask_response(fastpath.error_answer(400, str(exc)))
    except IngestUnavailable as exc:
        return fastpath.flask_response(_unavailable_answer(exc))
    response = jsonify(result.as_json())
    response.headers["Cache-Control"] = "no-store"
    return response


# --- admin: postback setup -----------------------------------------------------------------------------

@bp.get("/admin/settings/postback")
@login_required
def postback_settings():
    return _render_postback_panel()


@bp.post("/admin/settings/postback/rotate")
@login_required
def rotate_postback_secret():
    try:
        tracking.rotate_postback_secret(current_app)
    except EventError as exc:
        return _render_postback_panel(error=str(exc))
    return _render_postback_panel(notice="New secret saved. Update the postback URL in Tune now: "
                                         "the old secret no longer works.")


@bp.post("/admin/settings/postback/test")
@login_required
def send_test_postback():
    """Send a postback through the real endpoint (in-process, with the real secret) for the
    newest click, marked as a test so it never counts as revenue, and show what was parsed."""
    db = database.get_db()
    click_id = tracking.latest_click_id(db) or "no-click-yet"
    query = urlencode({"click_id": click_id, "transaction_id": TEST_TRANSACTION_PREFIX + tracking.new_click_id(),
                       "payout": TEST_PAYOUT, "secret": tracking.postback_secret(current_app), "test": "1"})
    answer = current_app.test_client().get(f"/api/postback?{query}",
                                           environ_base={"REMOTE_ADDR": request.remote_addr or "127.0.0.1"})
    return _render_postback_panel(test_result={"status_code": answer.status_code, "body": answer.get_json(silent=True)})


def _render_postback_panel(**extra):
    secret = tracking.postback_secret(current_app)
    count, unattributed = tracking.unattributed_conversions(database.get_db())
    return web.render_page_or_fragment(
        "track/postback_settings.html", "track/_postback_panel.html",
        postback_url=postback_url(current_app.config["BASE_URL"], secret),
        secret_from_env=tracking.postback_secret_from_environment(current_app),
        unattributed_count=count, unattributed=[_display_conversion(row) for row in unattributed], **extra)


def _display_conversion(row):
    received = dt.datetime.fromtimestamp(row["ts"] / 1000, dt.timezone.utc)
    return {"transaction_id": row["transaction_id"], "click_id": row["click_id"], "status": row["status"],
            "payout": money.format_cents(row["payout_cents"]),
            "received": received.strftime("%Y-%m-%d %H:%M:%S UTC")}


def postback_url(base_url, secret):
    """The URL to paste into Tune; {…} are Tune's macros, filled in by Tune per conversion."""
    return (f"{base_url}/api/postback?click_id={{aff_click_id}}&transaction_id={{transaction_id}}"
            f"&payout={{payout}}&secret={quote(secret, safe='')}")
