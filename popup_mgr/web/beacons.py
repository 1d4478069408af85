"""Blueprint "beacons": POST /api/impression, POST /api/click and GET /c/<token>.

These paths carry nearly all traffic. Each is answered by one function returning a
fastpath.Answer; the Flask views below and the raw-WSGI front (fastpath.py, where the why is)
both use it, so there is one behaviour. HTTP only: parse, call ingest.beacons, answer.
"""
import json
import logging
from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, current_app, render_template, request
from werkzeug.routing import BaseConverter

from popup_mgr import metrics, netaddr, urls
from popup_mgr.extensions import client_address
from popup_mgr.ingest import beacons
from popup_mgr.ingest.errors import ClickNotConfirmed, EventError, IngestUnavailable
from popup_mgr.web import fastpath
from popup_mgr.web.fastpath import Answer

bp = Blueprint("beacons", __name__)
log = logging.getLogger(__name__)

NO_STORE = ("Cache-Control", "no-store")
BEACON_PATHS = {"/api/impression": "impression", "/api/click": "click"}


# What a beacon body may be sent as: sendBeacon's text/plain (no CORS preflight), JSON, or no
# type at all (older clients). A form's urlencoded or multipart body is no beacon: 415.
BEACON_CONTENT_TYPES = ("text/plain", "application/json", "")


def beacon_answer(app, kind, content_length, stream, visitor, content_type=""):
    """Answer for POST /api/impression or /api/click: 204 / 200 only after the commit."""
    events = metrics.metrics_for(app)
    if (content_type or "").split(";", 1)[0].strip().lower() not in BEACON_CONTENT_TYPES:
        events.event(kind, "rejected")
        return fastpath.error_answer(415, "body must be text/plain or application/json")
    body = _read_limited(content_length, stream)
    if body is None:
        events.event(kind, "rejected")
        return fastpath.error_answer(413, "body too large")
    try:
        beacon = beacons.parse_beacon(body)
        if kind == "impression":
            counted = beacons.record_impression(app, beacon, visitor)
            events.event(kind, "counted" if counted else "duplicate")
            return Answer(204, [NO_STORE])
        result = beacons.record_click(app, beacon, visitor)
    except EventError as exc:
        events.event(kind, "rejected")
        return fastpath.error_answer(400, str(exc))
    except IngestUnavailable as exc:
        events.event(kind, "unavailable")
        return fastpath.unavailable_answer(exc)
    events.event(kind, "counted" if result.counted else "duplicate")
    payload = json.dumps({"click_id": result.click_id, "redirect_url": result.redirect_url}).encode()
    return Answer(200, [NO_STORE, ("Content-Type", "application/json")], payload)


def _read_limited(content_length, stream):
    """The body, or None when it is over MAX_BEACON_BYTES (read at most one byte more, so a
    body without Content-Length cannot be large either)."""
    if content_length is not None and content_length > beacons.MAX_BEACON_BYTES:
        return None
    body = stream.read(beacons.MAX_BEACON_BYTES + 1)
    return None if len(body) > beacons.MAX_BEACON_BYTES else body


def click_answer(app, token, event_ids, uncounted, visitor):
    """302 for GET|HEAD /c/<token>, or a str: the reason for the "bad link" page (400).

    HEAD and prefetches (uncounted) redirect without counting: no visitor has clicked yet."""
    events = metrics.metrics_for(app)
    try:
        if uncounted:
            return _redirect_answer(beacons.uncounted_click_url(app, token))
        result = beacons.record_click(app, beacons.Beacon(token, _valid_event_id(event_ids)), visitor)
        events.event("click", "counted" if result.counted else "duplicate")
        return _redirect_answer(result.redirect_url)
    except EventError as exc:
        events.event("click", "rejected")
        return str(exc)
    except IngestUnavailable as exc:
        events.event("click", "unavailable")
        # The visitor clicked: losing them costs more than losing one count. The network still
        # gets a click id (the queued one when there is one), and a conversion for a click id we
        # never stored is kept as unattributed.
        fastpath.throttled_log.warning(f"click not confirmed: {exc}",
                                       "click not confirmed, redirecting anyway: %s", exc)
        if isinstance(exc, ClickNotConfirmed):
            return _redirect_answer(exc.redirect_url)
        try:
            return _redirect_answer(beacons.uncounted_click_url(app, token))
        except (EventError, IngestUnavailable):
            return fastpath.unavailable_answer(exc)


def _valid_event_id(values):
    """The one valid e= value, else an event id made here (the click still counts once)."""
    if len(values) == 1:
        try:
            return beacons.check_event_id(values[0])
        except EventError:
            pass
    return beacons.new_event_id()


def _redirect_answer(url):
    if urls.url_problem(url):
        # Only campaign links validated as http(s) are stored; anything else is never followed.
        return "offer link unavailable"
    return Answer(302, [("Location", url), ("Cache-Control", "no-store, private"),
                        ("Referrer-Policy", "no-referrer")])


def is_prefetch(headers):
    """headers: a mapping with .get (Flask headers, or fastpath.EnvironHeaders)."""
    purpose = (headers.get("Sec-Purpose") or headers.get("Purpose") or "").lower()
    return purpose.startswith("prefetch") or (headers.get("X-Moz") or "").lower() == "prefetch"


@bp.post("/api/impression")
def impression():
    return fastpath.flask_response(beacon_answer(current_app, "impression", request.content_length, request.stream, _visitor(),
                                                 request.headers.get("Content-Type", "")))


@bp.post("/api/click")
def click():
    return fastpath.flask_response(beacon_answer(current_app, "click", request.content_length, request.stream, _visitor(),
                                                 request.headers.get("Content-Type", "")))


class AnyTextConverter(BaseConverter):
    """Any text, also empty, starting with "/" or holding line breaks (Werkzeug's path converter
    refuses those): every /c/ link that is not a valid token gets the bad-link page, never a 404."""
    regex = r"[\s\S]*"
    part_isolating = False


@bp.record_once
def _add_converter(state):
    state.app.url_map.converters["any_text"] = AnyTextConverter


# merge_slashes=False so that no token (e.g. "//host") ever gets a normalising redirect.
@bp.route("/c/", defaults={"token": ""}, methods=["GET", "HEAD"], merge_slashes=False)
@bp.route("/c/<any_text:token>", methods=["GET", "HEAD"], merge_slashes=False)
def click_redirect(token):
    uncounted = request.method == "HEAD" or is_prefetch(request.headers)
    answer = click_answer(current_app, token, request.args.getlist("e"), uncounted, _visitor())
    if isinstance(answer, str):
        return bad_link_page(answer)
    return fastpath.flask_response(answer)


def bad_link_page(reason):
    """The visitor's page for a link we cannot follow: plain, styled, and pointing back to the
    site they came from (the Referer, usually the publisher's page) when the browser sent one."""
    back = request.referrer if urls.is_http_url(request.referrer or "") else None
    response = current_app.make_response((render_template(
        "bad_link.html", reason=reason, back=back, back_host=urlsplit(back).hostname if back else ""), 400))
    response.headers["X-Popup-Reason"] = reason
    response.headers["Cache-Control"] = "no-store"
    return response


def _visitor():
    return beacons.Visitor(client_address(), request.headers.get("User-Agent", ""))


def _fast_beacon(app, environ, _rest):
    try:
        content_length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        return fastpath.error_answer(400, "bad Content-Length")
    return beacon_answer(app, BEACON_PATHS[environ["PATH_INFO"]], None if content_length < 0 else content_length,
                         environ["wsgi.input"], _environ_visitor(app, environ), environ.get("CONTENT_TYPE", ""))


def _fast_click(app, environ, token):
    uncounted = environ["REQUEST_METHOD"] == "HEAD" or is_prefetch(fastpath.EnvironHeaders(environ))
    event_ids = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).get("e", [])
    answer = click_answer(app, token, event_ids, uncounted, _environ_visitor(app, environ))
    return None if isinstance(answer, str) else answer      # None: Flask renders the bad-link page


def _environ_visitor(app, environ):
    ip = netaddr.client_ip(app.config, environ.get("REMOTE_ADDR"), environ.get("HTTP_X_FORWARDED_FOR"))
    return beacons.Visitor(ip, environ.get("HTTP_USER_AGENT", ""))


def register_fast_paths(app):
    for path in BEACON_PATHS:
        fastpath.register(app, ("POST",), _fast_beacon, path=path)
    fastpath.register(app, ("GET", "HEAD"), _fast_click, prefix="/c/")
