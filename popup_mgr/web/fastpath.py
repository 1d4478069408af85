"""The raw-WSGI front for the public hot paths: beacons, the click redirect and the offers list.

These paths carry nearly all traffic and each does little work (a dict lookup, a token check,
a queued insert). Flask's per-request machinery (request context, session and login lookup,
rate-limit bookkeeping, before/after-request hooks, Response header objects) costs several
times that work, so `FastPath`, installed once by create_app() in front of Flask, answers them
directly. Modules register a handler per (methods, exact path or path prefix); the handler
returns an `Answer`, or None to let Flask answer (e.g. the "bad link" page). Everything that
matches no route goes on to Flask unchanged.

Each registered handler must share its answer function with the Flask view for the same path,
so that the public contract is the same either way (tests compare the two answer by answer).
"""
import logging
from dataclasses import dataclass

from flask import current_app

from popup_mgr import storage
from popup_mgr.web import http

log = logging.getLogger(__name__)

STATUS_LINES = {200: "200 OK", 204: "204 No Content", 302: "302 Found", 400: "400 Bad Request",
                404: "404 Not Found", 405: "405 Method Not Allowed", 413: "413 Content Too Large",
                415: "415 Unsupported Media Type", 503: "503 Service Unavailable"}
# Added to every fast answer, as http.add_cors_headers and security.add_security_headers do on
# Flask's answers for the public paths.
COMMON_HEADERS = (*http.CORS_HEADERS, ("X-Content-Type-Options", "nosniff"))


@dataclass
class Answer:
    status: int
    headers: list
    body: bytes = b""


@dataclass(frozen=True)
class Route:
    methods: frozenset
    handler: object          # handler(app, environ, rest) -> Answer | None; rest = path after the prefix


def register(app, methods, handler, path=None, prefix=None):
    """Answer `methods` on `path` (exact) or on every path starting with `prefix` with handler."""
    if (path is None) == (prefix is None):
        raise ValueError("give exactly one of path or prefix")
    routes = app.extensions.setdefault("fastpath_routes", {"exact": {}, "prefix": []})
    route = Route(frozenset(methods), handler)
    if path is not None:
        routes["exact"][path] = route
    else:
        routes["prefix"].append((prefix, route))


def install(app):
    """Put the front before Flask (once, after every module has registered its routes)."""
    app.wsgi_app = FastPath(app, app.wsgi_app)


class FastPath:
    """WSGI middleware: registered routes answered here, everything else by wsgi_app (Flask)."""

    def __init__(self, app, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app
        routes = app.extensions.get("fastpath_routes", {"exact": {}, "prefix": []})
        self.exact = routes["exact"]
        self.prefixes = tuple(routes["prefix"])

    def __call__(self, environ, start_response):
        method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO", "")
        route, rest = self._match(path)
        if route is None or method not in route.methods:
            return self.wsgi_app(environ, start_response)
        answer = self._guarded(route.handler, environ, rest)
        if answer is None:
            return self.wsgi_app(environ, start_response)
        headers = answer.headers + [*COMMON_HEADERS, ("Content-Length", str(len(answer.body)))]
        start_response(STATUS_LINES[answer.status], headers)
        return [] if method == "HEAD" else [answer.body]

    def _match(self, path):
        route = self.exact.get(path)
        if route is not None:
            return route, ""
        for prefix, route in self.prefixes:
            if path.startswith(prefix):
                return route, path[len(prefix):]
        return None, ""

    def _guarded(self, handler, environ, rest):
        try:
            return handler(self.app, environ, rest)
        except Exception:
            # Never a 500 on a public path: beacon clients retry a 503 with the same event id.
            log.exception("unexpected error on %s", environ.get("PATH_INFO"))
            return error_answer(503, "temporarily unavailable, retry")


def error_answer(status, error, reason=None, extra=()):
    """http.json_error's answer (the same body, X-Popup-Reason), without needing a Flask request."""
    return Answer(status, [("Cache-Control", "no-store"), ("Content-Type", "application/json"),
                           ("X-Popup-Reason", reason or error), *extra], http.error_body(error))


# A full disk refuses every event: one warning per reason a minute, with the count held back.
throttled_log = storage.ThrottledLog(log)


def unavailable_answer(exc):
    throttled_log.warning(f"event not stored: {exc}", "event not stored: %s", exc)
    return error_answer(503, "temporarily unavailable, retry", reason="unavailable", extra=[("Retry-After", "1")])


def flask_response(answer):
    """The same answer as a Flask response, for the Flask views sharing an answer function."""
    response = current_app.response_class(answer.body, status=answer.status, headers=answer.headers)
    if not any(name == "Content-Type" for name, _ in answer.headers):
        del response.headers["Content-Type"]        # as the fast path: no body, no type
    return response


class EnvironHeaders:
    """Request headers from a WSGI environ, with the .get() of Flask's request.headers."""

    def __init__(self, environ):
        self.environ = environ

    def get(self, name, default=None):
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"), default)
