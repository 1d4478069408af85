"""Admin HTML: campaigns (table with inline htmx editing, add/edit form), properties, audit log.

Routes parse the request, call the domain modules (campaigns, properties, audit) and render a
page or the partial that page includes. No SQL here. Every route needs a logged-in admin.
"""
from urllib.parse import urlsplit

from flask import (Blueprint, abort, current_app, flash, make_response, redirect, render_template,
                   request, url_for)
from flask_login import current_user

from popup_mgr import audit, reports, rotation, timeutil
from popup_mgr import campaigns as campaign_store
from popup_mgr import properties as property_store
from popup_mgr.web.auth import current_actor, safe_next
from popup_mgr.db import get_db
from popup_mgr.extensions import login_manager
from popup_mgr.theme import DEFAULT_THEME
from popup_mgr.urls import is_http_url
from popup_mgr.web.http import is_htmx, render_page_or_fragment

bp = Blueprint("admin", __name__)


@bp.before_request
def require_login():
    if current_user.is_authenticated:
        return None
    if is_htmx():
        # A redirect would be followed inside the XHR and the login page swapped into a table
        # row; htmx instead moves the whole page to the login form.
        here = urlsplit(request.headers.get("HX-Current-URL", ""))
        response = make_response("", 401)
        response.headers["HX-Redirect"] = url_for(
            "auth.login", next=safe_next(here.path + (f"?{here.query}" if here.query else "")))
        return response
    return login_manager.unauthorized()


@bp.context_processor
def clock():
    # Rows compare ISO-8601 UTC strings with this to say "starts …" or "ended".
    return {"now_iso": timeutil.iso_now()}


@bp.get("/")
def index():
    """The dashboard once analytics is installed, else the campaigns."""
    if "analytics.dashboard" in current_app.view_functions:
        return redirect(url_for("analytics.dashboard"))
    return redirect(url_for("admin.campaigns"))


# --- campaigns table ------------------------------------------------------------------------------

def _filters():
    status = request.args.get("status", "")
    return {
        "q": request.args.get("q", "").strip()[:200],
        "status": status if status in campaign_store.STATUSES else "",
        "property": request.args.get("property", "").strip()[:32],
    }


@bp.get("/admin/campaigns")
def campaigns():
    db = get_db()
    filters = _filters()
    rows = campaign_store.list_campaigns(db, text=filters["q"] or None, status=filters["status"] or None,
                                         property_code=filters["property"] or None)
    return render_page_or_fragment("campaigns.html", "_campaign_rows.html", campaigns=rows,
                                   filters=filters, property_codes=property_store.codes(db),
                                   highlight=request.args.get("saved", type=int),
                                   **_recent_performance())


def _recent_performance():
    """The list's "last 7 days" figures per campaign (every row, fragment or page, shows them)."""
    return {"recent": reports.recent_by_campaign(get_db(), current_app.config["BUSINESS_TZ"],
                                                 timeutil.now_ms()),
            "recent_days": reports.RECENT_DAYS,
            "min_impressions": reports.MIN_IMPRESSIONS_TO_JUDGE, "min_clicks": reports.MIN_CLICKS_TO_JUDGE}


def _campaign_or_404(campaign_id):
    campaign = campaign_store.get(get_db(), campaign_id)
    if campaign is None:
        abort(404)
    return campaign


def _row(campaign, template="_campaign_row.html", errors=None, saved=False):
    """A table row fragment for htmx; a plain browser goes back to the table instead. saved: the
    row was just written, and says so."""
    if not is_htmx():
        return redirect(url_for("admin.campaigns"))
    return render_template(template, c=campaign, errors=errors or {}, saved=saved,
                           property_codes=property_store.codes(get_db()), **_recent_performance())


@bp.get("/admin/campaigns/<int:campaign_id>/row")
def campaign_row(campaign_id):
    return _row(_campaign_or_404(campaign_id))


@bp.get("/admin/campaigns/<int:campaign_id>/row/edit")
def campaign_row_edit(campaign_id):
    return _row(_campaign_or_404(campaign_id), "_campaign_row_edit.html")


@bp.post("/admin/campaigns/<int:campaign_id>/row")
def campaign_row_save(campaign_id):
    campaign = _campaign_or_404(campaign_id)
    data = campaign_store.from_form(request.form)
    return _save_row(campaign, data, error_template="_campaign_row_edit.html")


@bp.post("/admin/campaigns/<int:campaign_id>/toggle")
def campaign_toggle(campaign_id):
    campaign = _campaign_or_404(campaign_id)
    active = request.form.get("active")
    if active not in ("0", "1"):
        abort(400)
    try:
        campaign = campaign_store.set_active(get_db(), campaign_id, active == "1", current_actor())
    except campaign_store.CampaignInvalid as exc:   # e.g. a schedule that no longer validates
        return _row(campaign, errors=exc.errors)
    return _row(campaign, saved=True)


@bp.post("/admin/campaigns/<int:campaign_id>/priority")
def campaign_priority(campaign_id):
    campaign = _campaign_or_404(campaign_id)
    return _save_row(campaign, campaign_store.from_form(request.form), error_template="_campaign_row.html")


def _save_row(campaign, data, error_template):
    try:
        campaign = campaign_store.update(get_db(), campaign["id"], data, current_actor())
    except campaign_store.CampaignInvalid as exc:
        # htmx swaps only 2xx answers: the row comes back with its errors shown.
        return _row({**campaign, **data},
                    error_template, errors=exc.errors)
    return _row(campaign, saved=True)


# --- add / edit form ------------------------------------------------------------------------------

def _form_page(campaign, errors, status=200, campaign_id=None):
    db = get_db()
    image = campaign.get("image_url")
    return render_template("campaign_form.html", c=campaign, errors=errors, campaign_id=campaign_id,
                           preview_image=image if isinstance(image, str) and is_http_url(image) else "",
                           properties=property_store.list_properties(db),
                           preview_theme=DEFAULT_THEME), status


@bp.get("/admin/campaigns/new")
def campaign_new():
    return _form_page(dict(campaign_store.DEFAULTS, active=True), {})


@bp.post("/admin/campaigns/new")
def campaign_create():
    data = campaign_store.from_form(request.form, tz=current_app.config["BUSINESS_TZ"])
    try:
        created = campaign_store.create(get_db(), data, current_actor())
    except campaign_store.CampaignInvalid as exc:
        return _form_page(dict(campaign_store.DEFAULTS, **data), exc.errors, 422)
    flash(f"Campaign “{created['name']}” added.", "success")
    _flash_payout_warning(created)
    return redirect(url_for("admin.campaigns", saved=created["id"]))


def _flash_payout_warning(campaign):
    warning = campaign_store.payout_warning(campaign)
    if warning:
        flash(warning, "warning")


@bp.get("/admin/campaigns/<int:campaign_id>/edit")
def campaign_edit(campaign_id):
    return _form_page(_campaign_or_404(campaign_id), {}, campaign_id=campaign_id)


@bp.post("/admin/campaigns/<int:campaign_id>/edit")
def campaign_update(campaign_id):
    campaign = _campaign_or_404(campaign_id)
    data = campaign_store.from_form(request.form, tz=current_app.config["BUSINESS_TZ"])
    try:
        saved = campaign_store.update(get_db(), campaign_id, data, current_actor())
    except campaign_store.CampaignInvalid as exc:
        return _form_page({**campaign, **data}, exc.errors, 422, campaign_id=campaign_id)
    flash(f"Campaign “{saved['name']}” saved.", "success")
    _flash_payout_warning(saved)
    return redirect(url_for("admin.campaigns", saved=campaign_id))


# --- properties -----------------------------------------------------------------------------------

@bp.app_template_filter("delay_seconds")
def delay_seconds(value):
    """A property's delay as the page shows it (seconds); what was typed when it was refused."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return property_store.ms_to_seconds(value)
    return value


def _rotation_context(codes=None):
    """What each property's Rotation section shows: the modes, and who comes first now."""
    app = current_app._get_current_object()
    rows = rotation.summaries(app) if codes is None else {code: rotation.summary(app, code) for code in codes}
    return {"rotation_modes": rotation.MODE_HELP, "rotation_rows": rows, "max_offers_limit": property_store.MAX_OFFERS}


@bp.get("/admin/properties")
def properties():
    return render_template("properties.html", properties=property_store.list_properties(get_db()),
                           placements=property_store.PLACEMENTS, frequencies=property_store.FREQUENCIES,
                           **_rotation_context())


@bp.post("/admin/properties/<code>")
def property_update(code):
    db = get_db()
    prop = property_store.get(db, code)
    if prop is None:
        abort(404)
    data = property_store.from_form(request.form)
    errors, saved = {}, False
    try:
        prop = property_store.update(db, code, data, current_actor())
        saved = True
    except property_store.PropertyInvalid as exc:
        errors = exc.errors
        prop = {**prop, **{k: v for k, v in data.items() if k != "theme"},
                "theme_values": {**prop["theme_values"], **data["theme"]}}
    if not is_htmx():
        if saved:
            flash(f"Property {code} saved.", "success")
            return redirect(url_for("admin.properties"))
        shown = [prop if other["code"] == code else other for other in property_store.list_properties(db)]
        return render_template("properties.html", properties=shown, errors=errors, error_code=code,
                               placements=property_store.PLACEMENTS,
                               frequencies=property_store.FREQUENCIES, **_rotation_context()), 422
    return render_template("_property_form.html", p=prop, errors=errors, saved=saved,
                           placements=property_store.PLACEMENTS, frequencies=property_store.FREQUENCIES,
                           **_rotation_context([code]))


# --- audit log ------------------------------------------------------------------------------------

@bp.get("/admin/audit", endpoint="audit")
def audit_log():
    db = get_db()
    entities = audit.entity_names(db)
    entity = request.args.get("entity", "")
    entity = entity if entity in entities else ""
    entity_id = request.args.get("entity_id", type=int)
    page = max(request.args.get("page", 1, type=int), 1)
    entries, has_more = audit.entries(db, entity=entity or None, entity_id=entity_id, page=page)
    return render_template("audit.html", entries=entries, entity=entity, entity_id=entity_id,
                           page=page, has_more=has_more, entities=entities)
