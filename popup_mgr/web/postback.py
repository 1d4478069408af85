"""Blueprint "postback": GET or POST /api/postback, called by the network for each conversion.
HTTP only: check the caller, parse, call ingest.conversions, answer."""
from urllib.parse import parse_qsl

from flask import Blueprint, current_app, jsonify, request

from popup_mgr import metrics, netaddr
from popup_mgr.extensions import client_address
from popup_mgr.ingest import conversions
from popup_mgr.ingest.errors import EventError, IngestUnavailable, PostbackRejected
from popup_mgr.web import fastpath

bp = Blueprint("postback", __name__)


@bp.route("/api/postback", methods=["GET", "POST"])
def postback():
    if request.method == "HEAD":      # Flask adds HEAD to GET routes; a HEAD must not write money
        return fastpath.flask_response(fastpath.error_answer(405, "use GET or POST"))
    params = request.args if request.method == "GET" else request.values
    events = metrics.metrics_for(current_app)
    try:
        _check_caller(params)
        if not _query_is_utf8(request.query_string):
            raise EventError("parameters must be percent-encoded UTF-8")
        result = conversions.record_conversion(current_app, conversions.parse_postback(params))
    except PostbackRejected as exc:          # before EventError: it is one, answered 403
        events.event("conversion", "rejected")
        return fastpath.flask_response(fastpath.error_answer(403, str(exc)))
    except EventError as exc:
        events.event("conversion", "rejected")
        return fastpath.flask_response(fastpath.error_answer(400, str(exc)))
    except IngestUnavailable as exc:
        events.event("conversion", "unavailable")
        return fastpath.flask_response(fastpath.unavailable_answer(exc))
    events.event("conversion", "duplicate" if result.outcome == "duplicate" else "counted")
    response = jsonify(result.as_json())
    response.headers["Cache-Control"] = "no-store"
    return response


def _check_caller(params):
    """The caller's IP must be in POPUP_POSTBACK_ALLOWED_IPS (when set) and the secret right."""
    allowed = netaddr.parse_networks(current_app.config.get("POSTBACK_ALLOWED_IPS"))
    if allowed and not netaddr.ip_in(client_address(), allowed):
        raise PostbackRejected("caller IP not allowed")
    conversions.check_postback_secret(current_app, params)


def _query_is_utf8(raw):
    """False when a percent escape decodes to bytes that are not UTF-8 (e.g. "%FF"): Werkzeug
    would keep those as the literal text "%FF", indistinguishable from a real "%25FF"."""
    try:
        parse_qsl(raw.decode("ascii"), keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        return False
    return True
