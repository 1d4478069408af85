"""Blueprint "setup": the admin pages that connect the product to the world — Install (the
snippet per property), Playground (try the popup against the live campaigns) and Postback (the
URL to give the network, its secret, a test conversion, unattributed conversions)."""
from urllib.parse import quote, urlencode

from flask import Blueprint, current_app, render_template, request
from flask_login import login_required

from popup_mgr import campaigns as campaign_store
from popup_mgr import catalog, money, timeutil, urls
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
    newest click of the campaign Mike picked, marked as a test so it never counts as revenue,
    and say in words what happened."""
    db = get_db()
    campaign = _chosen_campaign(db, request.form.get("campaign_id", type=int))
    click_id = conversions.latest_click_id(db, campaign["id"] if campaign else None)
    query = urlencode({"click_id": click_id or "no-click-yet",
                       "transaction_id": TEST_TRANSACTION_PREFIX + beacons.new_click_id(),
                       "payout": TEST_PAYOUT, "secret": conversions.postback_secret(current_app), "test": "1"})
    answer = current_app.test_client().get(f"/api/postback?{query}",
                                           environ_base={"REMOTE_ADDR": request.remote_addr or "127.0.0.1"})
    result = describe_test_result(answer.status_code, answer.get_json(silent=True) or {}, campaign,
                                  _property_names(db), has_click=click_id is not None)
    return _render_postback_panel(test_result=result, test_campaign_id=campaign["id"] if campaign else None)


def _chosen_campaign(db, campaign_id):
    """The campaign to test: the one picked, else the first of the campaigns list (active first)."""
    if campaign_id is not None:
        found = campaign_store.get(db, campaign_id)
        if found:
            return found
    listed = campaign_store.list_campaigns(db)
    return listed[0] if listed else None


def _property_names(db):
    return {prop["id"]: prop["name"] for prop in catalog.list_properties(db)}


def describe_test_result(status_code, body, campaign, property_names, has_click):
    """{"ok", "sentence", "details"}: what a test postback did, in Mike's words, with names."""
    name = f"Campaign “{campaign['name']}”" if campaign else "The test"
    if status_code != 200:
        reason = body.get("error") or f"HTTP {status_code}"
        return {"ok": False, "details": [],
                "sentence": f"The postback endpoint refused the test ({status_code}: {reason}). "
                            "Tune's postbacks would be refused the same way."}
    payout = _dollars(body.get("payout", TEST_PAYOUT))
    details = [("Transaction id", body.get("transaction_id")), ("Click id", body.get("click_id")),
               ("Day", body.get("day") or "—")]
    if not body.get("attributed"):
        why = ("has no click yet" if not has_click else "'s click was not found")
        return {"ok": False, "details": details,
                "sentence": f"The postback endpoint works, but {name[0].lower() + name[1:]} {why}, so the test "
                            f"conversion of {payout} could not be attributed. Open the Playground with "
                            "“Count impressions and clicks” ticked, click the offer once, and test again."}
    where = property_names.get(body.get("property_id"), "an unknown property")
    return {"ok": True, "details": details,
            "sentence": f"{name} on {where}: a test conversion of {payout} was recorded and will not "
                        "count as revenue."}


def _dollars(decimal_text):
    """'1.00' -> '$1.00' (a test payout: no thousands separators needed)."""
    return f"${decimal_text}"


UNATTRIBUTED_PAGE_SIZE = 25


def _unattributed_listing(db, args):
    """The unattributed conversions page asked for by ?q=&status=&page=, and its paging."""
    search = (args.get("q") or "").strip()[:128]
    status = args.get("status") if args.get("status") in conversions.STATUSES else ""
    page = max(1, args.get("page", 1, type=int) or 1)
    count, rows = conversions.unattributed_conversions(db, limit=UNATTRIBUTED_PAGE_SIZE,
                                                       offset=(page - 1) * UNATTRIBUTED_PAGE_SIZE,
                                                       search=search or None, status=status or None)
    pages = max(1, -(-count // UNATTRIBUTED_PAGE_SIZE))
    return {"count": count, "rows": [_display_conversion(row) for row in rows], "q": search,
            "status": status, "page": min(page, pages), "pages": pages, "statuses": conversions.STATUSES,
            "filtered": bool(search or status)}


def _render_postback_panel(**extra):
    db = get_db()
    secret = conversions.postback_secret(current_app)
    listing = _unattributed_listing(db, request.args)
    return render_page_or_fragment(
        "setup/postback_settings.html", "setup/_postback_panel.html",
        postback_url=postback_url(current_app.config["BASE_URL"], secret),
        secret_from_env=conversions.postback_secret_from_environment(current_app),
        campaigns=[{"id": c["id"], "name": c["name"], "active": c["active"]}
                   for c in campaign_store.list_campaigns(db)],
        unattributed=listing, **extra)


def _display_conversion(row):
    return {"transaction_id": row["transaction_id"], "click_id": row["click_id"], "status": row["status"],
            "payout": money.format_cents(row["payout_cents"]),
            "received": timeutil.local_text(row["ts"], current_app.config["BUSINESS_TZ"], seconds=True)}


def postback_url(base_url, secret):
    """The URL to paste into Tune; {…} are Tune's macros, filled in by Tune per conversion."""
    return (f"{base_url}/api/postback?click_id={{aff_click_id}}&transaction_id={{transaction_id}}"
            f"&payout={{payout}}&secret={quote(secret, safe='')}")
