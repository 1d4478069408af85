"""Blueprint `embed`: the popup script, the offers it shows, and the admin pages to install and try it.

Public (CORS added by web.py): `GET /popup.js`, `GET /api/offers/<property>`.
Admin: `/admin/install` (copy-paste snippet per property), `/admin/playground` (try the popup
against the live campaigns).
"""
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, current_app, jsonify, render_template, request
from flask_login import login_required

from popup_mgr import offers
from popup_mgr.db import PROJECT_DIR, get_db
from popup_mgr.web import json_error

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


@bp.get("/api/offers/<property_code>")
def api_offers(property_code):
    body = offers.offers_response(current_app, get_db, property_code, request.args.get("placement"))
    if body is None:
        return json_error(404, f"unknown property {property_code!r}", reason="unknown-property")
    response = jsonify(body)
    # Fresh order and tokens on every page view.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


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
