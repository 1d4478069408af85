"""Blueprint "track": beacons, the click redirect, the network's postback and the admin page
that sets the postback up. HTTP only: parse, call tracking, answer. No SQL here."""
import logging
import datetime as dt
from urllib.parse import quote, urlencode

from flask import Blueprint, current_app, jsonify, redirect, render_template, request
from flask_login import login_required

from popup_mgr import db as database
from popup_mgr import money, tracking, urls, web
from popup_mgr.tracking import EventError, IngestUnavailable, PostbackRejected

bp = Blueprint("track", __name__)
bp.record_once(lambda setup: tracking.init_app(setup.app))
log = logging.getLogger(__name__)

TEST_TRANSACTION_PREFIX = "test-"
TEST_PAYOUT = "1.00"


# --- beacons ---------------------------------------------------------------------------------------

@bp.post("/api/impression")
def impression():
    beacon = _beacon_from_body()
    if not isinstance(beacon, tracking.Beacon):
        return beacon
    try:
        tracking.record_impression(current_app, beacon, _visitor())
    except EventError as exc:
        return _rejected(exc)
    except IngestUnavailable as exc:
        return _unavailable(exc)
    return _no_store(current_app.response_class(status=204))


@bp.post("/api/click")
def click():
    beacon = _beacon_from_body()
    if not isinstance(beacon, tracking.Beacon):
        return beacon
    try:
        result = tracking.record_click(current_app, beacon, _visitor())
    except EventError as exc:
        return _rejected(exc)
    except IngestUnavailable as exc:
        return _unavailable(exc)
    return _no_store(jsonify({"click_id": result.click_id, "redirect_url": result.redirect_url}))


def _beacon_from_body():
    """A Beacon, or the error response (413 for oversized bodies, 400 for anything invalid)."""
    declared = request.content_length
    if declared is not None and declared > tracking.MAX_BEACON_BYTES:
        return web.json_error(413, "body too large", reason="body too large")
    # Read at most one byte more than allowed: a body without Content-Length cannot be large.
    body = request.stream.read(tracking.MAX_BEACON_BYTES + 1)
    if len(body) > tracking.MAX_BEACON_BYTES:
        return web.json_error(413, "body too large", reason="body too large")
    try:
        return tracking.parse_beacon(body)
    except EventError as exc:
        return _rejected(exc)


def _visitor():
    return tracking.Visitor(_client_ip(), request.headers.get("User-Agent", ""))


def _client_ip():
    return tracking.client_ip(current_app, request.remote_addr, request.headers.get("X-Forwarded-For"))


def _rejected(exc, status=400):
    return _no_store(web.json_error(status, str(exc), reason=str(exc)))


def _unavailable(exc):
    log.warning("event not stored: %s", exc)
    response = web.json_error(503, "temporarily unavailable, retry", reason="unavailable")
    response.headers["Retry-After"] = "1"
    return _no_store(response)


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


# --- click redirect ----------------------------------------------------------------------------------

# path: + merge_slashes=False so that no token (e.g. "//host") ever gets a normalising redirect.
@bp.route("/c/<path:token>", methods=["GET", "HEAD"], merge_slashes=False)
def click_redirect(token):
    """Count the click (once per e=event id) and 302 to the campaign's stored link. HEAD and
    prefetches redirect without counting: no visitor has clicked yet."""
    try:
        if request.method == "HEAD" or _is_prefetch():
            return _redirect_to(tracking.uncounted_click_url(current_app, token))
        beacon = tracking.Beacon(token, _event_id_from_query())
        return _redirect_to(tracking.record_click(current_app, beacon, _visitor()).redirect_url)
    except EventError as exc:
        return _bad_link(str(exc))
    except IngestUnavailable as exc:
        # The visitor clicked: losing them costs more than losing one count. The uncounted
        # click id still reaches the network, and its conversion is kept as unattributed.
        log.warning("click not stored, redirecting anyway: %s", exc)
        try:
            return _redirect_to(tracking.uncounted_click_url(current_app, token))
        except (EventError, IngestUnavailable):
            return _bad_link("temporarily unavailable, please try again", status=503)


def _event_id_from_query():
    values = request.args.getlist("e")
    if len(values) == 1:
        try:
            return tracking.check_event_id(values[0])
        except EventError:
            pass
    return tracking.new_event_id()


def _is_prefetch():
    purpose = (request.headers.get("Sec-Purpose") or request.headers.get("Purpose") or "").lower()
    return purpose.startswith("prefetch") or request.headers.get("X-Moz", "").lower() == "prefetch"


def _redirect_to(url):
    if urls.url_problem(url):
        # Only campaign links validated as http(s) are stored; anything else is never followed.
        return _bad_link("offer link unavailable")
    response = redirect(url, code=302)
    response.headers["Cache-Control"] = "no-store, private"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _bad_link(reason, status=400):
    response = current_app.make_response((render_template("track/bad_link.html", reason=reason), status))
    response.headers["X-Popup-Reason"] = reason
    return _no_store(response)


# --- postback ------------------------------------------------------------------------------------------

@bp.route("/api/postback", methods=["GET", "POST"])
def postback():
    params = request.args if request.method == "GET" else request.values
    try:
        tracking.check_postback_caller(current_app, params, _client_ip())
    except PostbackRejected as exc:
        return _rejected(exc, status=403)
    try:
        result = tracking.record_conversion(current_app, tracking.parse_postback(params))
    except EventError as exc:
        return _rejected(exc)
    except IngestUnavailable as exc:
        return _unavailable(exc)
    return _no_store(jsonify(result.as_json()))


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
