"""Blueprint "public": what publisher pages load — `GET /popup.js` and `GET /api/offers/<property>`
(CORS added by http.py; the offers list is also answered by the raw-WSGI front, fastpath.py, with
the same answer function as the Flask view)."""
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

from flask import Blueprint, current_app, request

from popup_mgr import experiments, offers
from popup_mgr.config import PROJECT_DIR
from popup_mgr.web import fastpath

bp = Blueprint("public", __name__)

# The terser build of embed/popup.js (scripts/build-embed.sh); the readable source is beside it.
SCRIPT_PATH = PROJECT_DIR / "embed" / "popup.min.js"
# Publishers load /popup.js without a version in the URL, so a changed script must reach
# visitors within minutes; the ETag makes every revalidation after that a 304.
SCRIPT_CACHE_CONTROL = "public, max-age=600, stale-while-revalidate=86400"


@dataclass(frozen=True)
class ScriptFile:
    body: bytes
    gzipped: bytes
    etag: str


def load_script(path=SCRIPT_PATH):
    body = Path(path).read_bytes()
    # mtime=0: the same script always gzips to the same bytes (stable across restarts).
    gzipped = gzip.compress(body, compresslevel=9, mtime=0)
    return ScriptFile(body, gzipped, hashlib.sha256(body).hexdigest()[:20])


def _script():
    if "popup_script" not in current_app.extensions:
        current_app.extensions["popup_script"] = load_script()
    return current_app.extensions["popup_script"]


@bp.get("/popup.js")
def popup_js():
    script = _script()
    wants_gzip = request.accept_encodings["gzip"] > 0
    # A different ETag per encoding: the two bodies are different representations.
    response = current_app.response_class(script.gzipped if wants_gzip else script.body,
                                          mimetype="application/javascript")
    response.set_etag(script.etag + ("-gz" if wants_gzip else ""))
    if wants_gzip:
        response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    response.headers["Cache-Control"] = SCRIPT_CACHE_CONTROL
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response.make_conditional(request)


OFFERS_PREFIX = "/api/offers/"
# Fresh order on every page view: never cached. CORP: the popup runs on publishers' origins.
OFFERS_HEADERS = [("Cache-Control", "no-store"), ("Cross-Origin-Resource-Policy", "cross-origin")]


def offers_answer(app, property_code, placement, sid=None):
    """The answer to GET /api/offers/<property_code>[?placement=&sid=], for the Flask view and
    the fast path alike. A malformed sid is ignored (the visitor still gets offers, drawn afresh
    as without one): the popup must never go blank over a storage quirk in one browser."""
    body = offers.offers_body(app, property_code, placement, sid=experiments.valid_sid(sid))
    if body is None:
        return fastpath.error_answer(404, f"unknown property {property_code!r}", reason="unknown-property",
                                     extra=OFFERS_HEADERS[1:])
    return fastpath.Answer(200, [("Content-Type", "application/json"), *OFFERS_HEADERS], body)


@bp.get(OFFERS_PREFIX + "<property_code>")
def api_offers(property_code):
    return fastpath.flask_response(offers_answer(current_app, property_code, request.args.get("placement"),
                                                 request.args.get("sid")))


def _fast_offers(app, environ, property_code):
    if not property_code or "/" in property_code or not property_code.isascii():
        return None         # not this route, or a path Flask must decode: Flask answers
    query = environ.get("QUERY_STRING")
    args = parse_qs(query, keep_blank_values=True) if query else {}
    return offers_answer(app, property_code, args.get("placement", [None])[0], args.get("sid", [None])[0])


def register_fast_paths(app):
    fastpath.register(app, ("GET", "HEAD"), _fast_offers, prefix=OFFERS_PREFIX)
