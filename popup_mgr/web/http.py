"""HTTP helpers shared by every blueprint: the one JSON error shape, CORS for the public
endpoints, page-or-fragment rendering for htmx, and the admin navigation."""
import json

from flask import current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from popup_mgr import netaddr, timeutil

# Paths called cross-origin from publisher pages or by the network. Everything else is admin or
# authenticated API and gets no CORS headers at all.
PUBLIC_PREFIXES = ("/popup.js", "/api/offers/", "/api/impression", "/api/click",
                   "/api/postback", "/api/health", "/c/")

# (endpoint, label); an item shows only once its blueprint is registered.
NAV = (
    ("analytics.dashboard", "Dashboard"),
    ("analytics.live", "Live"),
    ("admin.campaigns", "Campaigns"),
    ("admin.properties", "Properties"),
    ("experiments.index", "Experiments"),
    ("setup.install", "Install"),
    ("setup.playground", "Playground"),
    ("setup.postback_settings", "Postback"),
    ("tune.page", "Tune"),
    ("tune.reconciliation", "Reconciliation"),
    ("alerts.index", "Alerts"),
    ("operations.jobs", "Jobs"),
    ("admin.audit", "Audit log"),
    ("accounts.users_page", "Users"),
    ("accounts.tokens", "API tokens"),
)


# Sent on every answer of a public path (also by the raw-WSGI front, fastpath.py).
CORS_HEADERS = (
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "GET, POST, HEAD, OPTIONS"),
    ("Access-Control-Allow-Headers", "Content-Type"),
    ("Access-Control-Expose-Headers", "X-Popup-Reason"),
    ("Access-Control-Max-Age", "86400"),
)


def error_body(error, errors=None, extra=None):
    """The one JSON error body, as bytes: {"error": "...", "errors": {field: message}, ...}."""
    body = {"error": error, **(extra or {})}
    if errors:
        body["errors"] = errors
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def json_error(status, error, errors=None, reason=None, extra=None):
    """error_body() as a Flask response with the status; reason also goes in X-Popup-Reason."""
    response = current_app.response_class(error_body(error, errors, extra), status=status,
                                          mimetype="application/json")
    if reason:
        response.headers["X-Popup-Reason"] = reason
    return response


def json_created(body, location):
    """201 with the new resource as JSON and where to find it (the APIs' answer to a POST)."""
    response = jsonify(body)
    response.status_code = 201
    response.headers["Location"] = location
    return response


def json_body():
    """(data, error_response) for the JSON APIs: the parsed body, or a 400 when it is not JSON."""
    if not request.is_json:
        return None, json_error(400, "send a JSON body with Content-Type: application/json")
    data = request.get_json(silent=True)
    if data is None:
        return None, json_error(400, "the body is not valid JSON")
    return data, None


def is_public_path(path):
    return path.startswith(PUBLIC_PREFIXES)


def add_cors_headers(response):
    """Any origin may call the public endpoints; they never use cookies."""
    if is_public_path(request.path):
        for name, value in CORS_HEADERS:
            response.headers[name] = value
    return response


def is_htmx():
    """True for htmx requests that want a fragment (history restores want the full page)."""
    return request.headers.get("HX-Request") == "true" and \
        request.headers.get("HX-History-Restore-Request") != "true"


def render_page_or_fragment(page, fragment, **context):
    """The full page for a normal request, the partial it includes for an htmx request."""
    response = current_app.make_response(render_template(fragment if is_htmx() else page, **context))
    response.vary.add("HX-Request")
    return response


def nav_items():
    return [(endpoint, label) for endpoint, label in NAV if endpoint in current_app.view_functions]


def register_clock(app):
    """The admin's one clock: every time a page shows or a form takes is in the business zone
    (POPUP_TZ) and says so; storage stays UTC. Templates use `value|local_time`,
    `value|local_input` (datetime-local fields) and `business_zone` ('EST')."""
    def zone():
        return current_app.config["BUSINESS_TZ"]

    app.add_template_filter(lambda value, seconds=False: timeutil.local_text(value, zone(), seconds),
                            "local_time")
    app.add_template_filter(lambda value: timeutil.local_input_value(value, zone()), "local_input")
    app.context_processor(lambda: {"business_zone": timeutil.zone_abbreviation(zone()),
                                   "business_tz": zone()})


# What a person reads on an admin error page; other codes use Werkzeug's name and description.
ERROR_PAGES = {
    404: ("Page not found", "There is nothing at this address. The campaign or page may have been"
                            " deleted, or the link was mistyped."),
    405: ("Not here", "This address does not take that kind of request."),
}


def error_page(exc):
    """An admin-styled error page with a way back, instead of the framework's bare text."""
    title, message = ERROR_PAGES.get(exc.code, (exc.name, exc.description or ""))
    referrer = request.referrer or ""
    back = referrer if referrer.startswith(request.host_url) and referrer != request.url else None
    return render_template("error.html", code=exc.code, title=title, message=message, back=back), exc.code


def register(app):
    netaddr.check_settings(app.config)
    app.after_request(add_cors_headers)
    app.context_processor(lambda: {"nav_items": nav_items()})
    register_clock(app)

    @app.errorhandler(HTTPException)
    def http_error(exc):
        # JSON for API and public paths, so cross-origin callers can read the reason.
        if request.path.startswith("/api/") or is_public_path(request.path):
            return json_error(exc.code, exc.description or exc.name)
        # An exception that carries its own answer (the login throttle's 429) keeps it.
        if exc.code is None or exc.code < 400 or exc.response is not None or is_htmx():
            return exc
        return error_page(exc)
