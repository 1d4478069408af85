"""Blueprint "setup": the admin pages that connect the product to the world — Install (the
snippet per property), Playground (try the popup against the live campaigns) and Postback (the
URL to give the network, its secret, a test conversion, unattributed conversions)."""
import datetime as dt
from urllib.parse import quote, urlencode

from flask import Blueprint, current_app, render_template, request
from flask_login import login_required

from popup_mgr import catalog, money, urls
from popup_mgr import properties as property_store
from popup_mgr.db import get_db
from popup_mgr.ingest import beacons, conversions
from popup_mgr.ingest.errors import EventError
from popup_mgr.web.http import render_page_or_fragment

bp = Blueprint("setup", __name__)

TEST_TRANSACTION_PREFIX = "test-"
TEST_PAYOUT = "1.00"


@bp.app_context_processor
def _base_url_warning():
    """base_url_warning() for the pages that hand out URLs (Install, Postback, the dashboard)."""
    def warning():
        config = current_app.config
        return urls.base_url_warning(config["BASE_URL"], config.get("BASE_URL_CONFIGURED", False),
                                     config.get("ENV_NAME") == "production")
    return {"base_url_warning": warning}


def _chosen(value, choices):
    return value if value in choices else choices[0]


@bp.get("/admin/install")
@login_required
def install():
    properties = catalog.list_properties(get_db())
    codes = [prop["code"] for prop in properties]
    code = request.args.get("property") if request.args.get("property") in codes else (codes or [""])[0]
    current = next((prop for prop in properties if prop["code"] == code), None)
    return render_template("setup/install.html", properties=properties, current=current,
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
    properties = catalog.list_properties(get_db())
    codes = tuple(prop["code"] for prop in properties) or ("",)
    choice = {
        "property": _chosen(request.args.get("property"), codes),
        "placement": _chosen(request.args.get("placement"), property_store.PLACEMENTS),
        "frequency": _chosen(request.args.get("frequency"), ("always",) + property_store.FREQUENCIES),
        "seconds": request.args.get("seconds", "3") if request.args.get("seconds", "3").isdigit() else "3",
        "live": request.args.get("live") == "1",
    }
    return render_template("setup/playground.html", properties=properties, choice=choice,
                           placements=property_store.PLACEMENTS, frequencies=property_store.FREQUENCIES)


@bp.get("/admin/settings/postback")
@login_required
def postback_settings():
    return _render_postback_panel()


@bp.post("/admin/settings/postback/rotate")
@login_required
def rotate_postback_secret():
    try:
        conversions.rotate_postback_secret(current_app)
    except EventError as exc:
        return _render_postback_panel(error=str(exc))
    return _render_postback_panel(notice="New secret saved. Update the postback URL in Tune now: "
                                         "the old secret no longer works.")


@bp.post("/admin/settings/postback/test")
@login_required
def send_test_postback():
    """Send a postback through the real endpoint (in-process, with the real secret) for the
    newest click, marked as a test so it never counts as revenue, and show what was parsed."""
    db = get_db()
    click_id = conversions.latest_click_id(db) or "no-click-yet"
    query = urlencode({"click_id": click_id, "transaction_id": TEST_TRANSACTION_PREFIX + beacons.new_click_id(),
                       "payout": TEST_PAYOUT, "secret": conversions.postback_secret(current_app), "test": "1"})
    answer = current_app.test_client().get(f"/api/postback?{query}",
                                           environ_base={"REMOTE_ADDR": request.remote_addr or "127.0.0.1"})
    return _render_postback_panel(test_result={"status_code": answer.status_code, "body": answer.get_json(silent=True)})


def _render_postback_panel(**extra):
    secret = conversions.postback_secret(current_app)
    count, unattributed = conversions.unattributed_conversions(get_db())
    return render_page_or_fragment(
        "setup/postback_settings.html", "setup/_postback_panel.html",
        postback_url=postback_url(current_app.config["BASE_URL"], secret),
        secret_from_env=conversions.postback_secret_from_environment(current_app),
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
