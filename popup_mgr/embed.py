"""Blueprint `embed`: the popup script, the offers it shows, and the admin pages to install and try it.

Public (CORS added by web.py): `GET /popup.js`, `GET /api/offers/<property>` (also answered by
the raw-WSGI front, fastpath.py, with the same answer function as the Flask view).
Admin: `/admin/install` (copy-paste snippet per property), `/admin/playground` (try the popup
against the live campaigns).
"""
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from urllib.parse import parse_qs

from flask import Blueprint, current_app, render_template, request
from flask_login import login_required

from popup_mgr import db as database
from popup_mgr import fastpath, offers
from popup_mgr.db import PROJECT_DIR, get_db

bp = Blueprint("embed", __name__)

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


@bp.record_once
def _on_register(setup):
    fastpath.register(setup.app, ("GET", "HEAD"), _fast_offers, prefix=OFFERS_PREFIX)


OFFERS_PREFIX = "/api/offers/"
# Fresh order on every page view: never cached. CORP: the popup runs on publishers' origins.
OFFERS_HEADERS = [("Cache-Control", "no-store"), ("Cross-Origin-Resource-Policy", "cross-origin")]


def offers_answer(app, connect, property_code, placement):
    """The answer to GET /api/offers/<property_code>[?placement=], for the Flask view and the
    fast path alike."""
    body = offers.offers_body(app, connect, property_code, placement)
    if body is None:
        return fastpath.error_answer(404, f"unknown property {property_code!r}", reason="unknown-property",
                                     extra=OFFERS_HEADERS[1:])
    return fastpath.Answer(200, [("Content-Type", "application/json"), *OFFERS_HEADERS], body)


@bp.get(OFFERS_PREFIX + "<property_code>")
def api_offers(property_code):
    return fastpath.flask_response(offers_answer(current_app, get_db, property_code,
                                                 request.args.get("placement")))


def _fast_offers(app, environ, property_code):
    if not property_code or "/" in property_code or not property_code.isascii():
        return None         # not this route, or a path Flask must decode: Flask answers
    query = environ.get("QUERY_STRING")
    placement = parse_qs(query, keep_blank_values=True).get("placement", [None])[0] if query else None
    opened = []

    def connect():          # only when the snapshot is rebuilt
        opened.append(database.connect(app.config["DATABASE"]))
        return opened[-1]
    try:
        return offers_answer(app, connect, property_code, placement)
    finally:
        for db in opened:
            db.close()


def _chosen(value, choices):
    return value if value in choices else choices[0]


@bp.get("/admin/install")
@login_required
def install():
    properties = offers.list_properties(get_db())
    codes = [prop["code"] for prop in properties]
    code = request.args.get("property") if request.args.get("property") in codes else (codes or [""])[0]
    current = next((prop for prop in properties if prop["code"] == code), None)
    return render_template("embed_install.html", properties=properties, current=current,
                           snippet=snippet(current_app.config["BASE_URL"], current) if current else "")


def snippet(base_url, prop):
    """The exact HTML a publisher pastes into the property's thank-you page."""
    return (f'<script src="{base_url}/popup.js" async></script>\n'
            "<script>\n"
            "  window.ModePopup = window.ModePopup || {q: []};\n"
            "  ModePopup.init = ModePopup.init || function (o) { ModePopup.q.push(o); };\n"
            f"  ModePopup.init({{property: '{prop['code']}', placement: '{prop['popup_placement']}',"
            f" frequency: '{prop['popup_frequency']}', debug: false}});\n"
            "</script>")


@bp.get("/admin/playground")
@login_required
def playground():
    properties = offers.list_properties(get_db())
    codes = tuple(prop["code"] for prop in properties) or ("",)
    choice = {
        "property": _chosen(request.args.get("property"), codes),
        "placement": _chosen(request.args.get("placement"), offers.PLACEMENTS),
        "frequency": _chosen(request.args.get("frequency"), ("always",) + offers.FREQUENCIES),
        "seconds": request.args.get("seconds", "3") if request.args.get("seconds", "3").isdigit() else "3",
        "live": request.args.get("live") == "1",
    }
    return render_template("embed_playground.html", properties=properties, choice=choice,
                           placements=offers.PLACEMENTS, frequencies=offers.FREQUENCIES)
