"""Blueprint `analytics`: the dashboard, live view, campaign stats, property comparison, CSV and
PDF exports (admin HTML, login required) and GET /api/analytics/<property> (session or Bearer).

Every figure comes from reports.py; this module parses requests and renders answers only.
"""
import csv
import datetime as dt
import io

from flask import Blueprint, Response, abort, current_app, render_template, request, url_for
from flask_login import login_required

from popup_mgr import campaigns as campaign_store
from popup_mgr import pdf_report, reports, timeutil, tune_jobs
from popup_mgr.web.auth import api_auth_required
from popup_mgr.db import get_db
from popup_mgr.money import format_cents
from popup_mgr.web.http import is_htmx, json_error, render_page_or_fragment

bp = Blueprint("analytics", __name__)

DEFAULT_PRESET = "30d"
LIVE_REFRESH_SECONDS = 5


# --- request parsing ---------------------------------------------------------------------------

def _tz():
    return current_app.config["BUSINESS_TZ"]


def _today():
    return dt.date.fromisoformat(timeutil.today(_tz()))


def _dashboard_scope(args, campaign_id=None):
    """(Scope, preset) from the dashboard's query string; raises reports.ReportError."""
    preset = args.get("range", DEFAULT_PRESET)
    today = _today()
    if preset == "custom":
        first, last = reports.parse_range(args.get("from"), args.get("to"), today)
    else:
        found = reports.preset_range(preset, today)
        if found is None:
            raise reports.ReportError(f"unknown range {preset!r}", "range")
        first, last = found
    property_id, code = reports.resolve_property(get_db(), args.get("property", "all"))
    return reports.Scope(first, last, property_id, code, campaign_id), preset


def _filters(scope, preset):
    """The query string that reproduces the current view (for exports and links)."""
    query = {"property": scope.property_code, "range": preset}
    if preset == "custom":
        query.update({"from": scope.first.isoformat(), "to": scope.last.isoformat()})
    return query


def _scope_or_error(campaign_id=None):
    """(scope, preset, None), or (None, None, message) for a bad query string; 404 for an unknown
    property."""
    try:
        scope, preset = _dashboard_scope(request.args, campaign_id)
        return scope, preset, None
    except reports.UnknownProperty as exc:
        abort(404, str(exc))
    except reports.ReportError as exc:
        return None, None, str(exc)


# --- template helpers --------------------------------------------------------------------------
# Filters are app-wide in Flask; the report_ prefix keeps them from shadowing Jinja's own
# (`count`) or other areas' filters.

@bp.app_template_filter("report_money")
def money_filter(cents):
    return reports.display_money(cents)


@bp.app_template_filter("report_count")
def count_filter(number):
    return reports.display_count(number)


@bp.app_template_filter("report_percent")
def percent_filter(fraction, digits=2):
    return reports.display_percent(fraction, digits)


@bp.app_template_filter("report_kpi")
def kpi_filter(value, kind):
    return reports.display(value, kind)


# --- dashboard ---------------------------------------------------------------------------------

@bp.get("/admin/dashboard")
@login_required
def dashboard():
    scope, preset, error = _scope_or_error()
    status = 200
    if error:
        # htmx does not swap 4xx answers, so a bad custom range typed into the form answers 200
        # with the reason shown above the default view; a plain request gets the 400.
        scope, preset, status = _default_scope(), DEFAULT_PRESET, (200 if is_htmx() else 400)
    data = reports.dashboard(get_db(), scope, _tz(), timeutil.now_ms())
    response = render_page_or_fragment(
        "analytics/dashboard.html", "analytics/_dashboard.html", data=data, error=error,
        preset=preset, presets=reports.PRESETS, filters=_filters(scope, preset),
        property_choices=reports.properties(get_db()), today=_today(), tz=_tz(),
        tune_gap=tune_jobs.dashboard_gap(current_app, get_db()))
    response.status_code = status
    return response


def _default_scope():
    first, last = reports.preset_range(DEFAULT_PRESET, _today())
    return reports.Scope(first, last)


@bp.get("/admin/analytics/properties")
@login_required
def properties():
    scope, preset, error = _scope_or_error()
    if error:
        abort(400, error)
    rows = reports.by_property(get_db(), reports.Scope(scope.first, scope.last))
    return render_template("analytics/properties.html", rows=rows, scope=scope, preset=preset,
                           presets=reports.PRESETS, filters=_filters(scope, preset),
                           property_choices=reports.properties(get_db()))


@bp.get("/admin/analytics/campaigns/<int:campaign_id>")
@login_required
def campaign(campaign_id):
    found = reports.campaign(get_db(), campaign_id)
    if found is None:
        abort(404, "no such campaign")
    scope, preset, error = _scope_or_error(campaign_id)
    if error:
        abort(400, error)
    data = reports.dashboard(get_db(), scope, _tz(), timeutil.now_ms())
    details = campaign_store.get(get_db(), campaign_id)
    data["properties"] = reports.properties_run_on(data["properties"], details["properties"])
    return render_page_or_fragment(
        "analytics/campaign.html", "analytics/_campaign.html", campaign=found, details=details, data=data,
        preset=preset, presets=reports.PRESETS, filters=_filters(scope, preset),
        property_choices=reports.properties(get_db()), today=_today())


# --- live view ---------------------------------------------------------------------------------

def _live_context():
    data = reports.live(get_db(), timeutil.now_ms())
    zone = timeutil.ZoneInfo(_tz())
    for slot in data["minutes"]:
        slot["label"] = dt.datetime.fromtimestamp(slot["minute_ms"] / 1000, zone).strftime("%H:%M")
    peak = max([1] + [max(s["impressions"], s["clicks"]) for s in data["minutes"]])
    return {"live": data, "peak": peak, "refresh": LIVE_REFRESH_SECONDS,
            "updated": dt.datetime.now(zone).strftime("%H:%M:%S %Z")}


@bp.get("/admin/live")
@login_required
def live():
    return render_template("analytics/live.html", **_live_context())


@bp.get("/admin/live/fragment")
@login_required
def live_fragment():
    response = current_app.make_response(render_template("analytics/_live.html", **_live_context()))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/admin/live.csv")
@login_required
def live_csv():
    context = _live_context()
    rows = [[m["label"], m["impressions"], m["clicks"], m["conversions"], format_cents(m["revenue_cents"])]
            for m in context["live"]["minutes"]]
    return _csv_response("popup-live-last-60-minutes.csv",
                         ("minute", "impressions", "clicks", "conversions", "revenue"), rows)


# --- exports -----------------------------------------------------------------------------------

MEASURE_COLUMNS = ("impressions", "clicks", "ctr", "conversions", "conversion_rate", "revenue", "rpm", "epc")


def _measure_cells(m):
    return [m["impressions"], m["clicks"], f"{m['ctr']:.6f}", m["conversions"],
            f"{m['conversion_rate']:.6f}", format_cents(m["revenue_cents"]),
            format_cents(m["rpm_cents"]), format_cents(m["epc_cents"])]


# Popup views belong to days and properties, not to campaigns (see reports.measures).
VIEW_COLUMNS = ("views", "revenue_per_1000_views")


def _view_cells(m):
    return [m["views"], format_cents(m["view_rpm_cents"])]


def _table(name, scope):
    """(header, rows) of one exportable table, from the same queries the screens use."""
    db = get_db()
    if name == "days":
        return ("date",) + MEASURE_COLUMNS + VIEW_COLUMNS, [[d["date"]] + _measure_cells(d) + _view_cells(d)
                                                            for d in reports.by_day(db, scope, until=_today())]
    if name == "campaigns":
        return (("campaign_id", "campaign_name") + MEASURE_COLUMNS + ("ctr_low_95", "ctr_high_95"),
                [[c["campaign_id"], c["name"]] + _measure_cells(c)
                 + [f"{c['ctr_low']:.6f}", f"{c['ctr_high']:.6f}"] for c in reports.by_campaign(db, scope)])
    if name == "campaign-properties":
        return (("campaign_id", "campaign_name", "property") + MEASURE_COLUMNS,
                [[c["campaign_id"], c["name"], p["property"]] + _measure_cells(p)
                 for c in reports.by_campaign(db, scope) for p in c["properties"]])
    if name == "properties":
        return (("property", "name") + MEASURE_COLUMNS + VIEW_COLUMNS,
                [[p["property"], p["name"]] + _measure_cells(p) + _view_cells(p) for p in reports.by_property(db, scope)])
    if name == "grid":
        return _grid_table(db, scope)
    return None


def _grid_table(db, scope):
    header = ("date", "property", "campaign_id", "campaign_name", "impressions", "clicks", "conversions", "revenue")
    return header, [[r["date"], r["property"], r["campaign_id"], r["campaign_name"], r["impressions"],
                     r["clicks"], r["conversions"], format_cents(r["revenue_cents"])]
                    for r in reports.grid(db, scope)]


def _csv_response(filename, header, rows):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        # A leading =, +, - or @ would make a spreadsheet evaluate a campaign name as a formula.
        writer.writerow([f"'{v}" if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") and not _is_number(v) else v
                         for v in row])
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


csv_response = _csv_response      # the Tune pages export with the same rules


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def _export_name(table, scope):
    suffix = f"-c{scope.campaign_id}" if scope.campaign_id else ""
    return f"popup-{table}{suffix}-{scope.property_code}-{scope.first}-{scope.last}.csv"


@bp.get("/admin/analytics/export/<table>.csv")
@login_required
def export_csv(table):
    campaign_id = request.args.get("campaign", type=int)
    scope, _, error = _scope_or_error(campaign_id)
    if error:
        abort(400, error)
    found = _table(table, scope)
    if found is None:
        abort(404, "no such table")
    return _csv_response(_export_name(table, scope), *found)


@bp.get("/admin/analytics/report.pdf")
@login_required
def report_pdf():
    scope, _, error = _scope_or_error()
    if error:
        abort(400, error)
    data = reports.dashboard(get_db(), scope, _tz(), timeutil.now_ms())
    body = pdf_report.build(data, tz=_tz(), generated=timeutil.iso_now())
    name = f"popup-report-{scope.property_code}-{scope.first}-{scope.last}.pdf"
    return Response(body, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# --- JSON API ----------------------------------------------------------------------------------

@bp.get("/api/analytics/<property_code>")
@api_auth_required
def api(property_code):
    db = get_db()
    try:
        property_id, code = reports.resolve_property(db, property_code)
    except reports.UnknownProperty as exc:
        return json_error(404, str(exc))
    try:
        first, last = reports.parse_range(request.args.get("from"), request.args.get("to"), _today())
    except reports.ReportError as exc:
        return json_error(400, str(exc), {exc.field: str(exc)})
    fmt = request.args.get("format", "json")
    if fmt not in ("json", "csv"):
        return json_error(400, "format must be json or csv", {"format": "must be json or csv"})
    scope = reports.Scope(first, last, property_id, code)
    if fmt == "csv":
        return _csv_response(_export_name("grid", scope), *_grid_table(db, scope))
    response = current_app.json.response(reports.api_report(db, scope, _today()))
    response.headers["Cache-Control"] = "no-store"
    return response


def export_links(filters):
    """url_for targets used by templates for the CSV/PDF buttons."""
    return {name: url_for("analytics.export_csv", table=name, **filters)
            for name in ("days", "campaigns", "campaign-properties", "properties", "grid")}


@bp.app_context_processor
def _helpers():
    return {"export_links": export_links, "min_impressions": reports.MIN_IMPRESSIONS_TO_JUDGE,
            "min_clicks": reports.MIN_CLICKS_TO_JUDGE, "min_views": reports.MIN_VIEWS_TO_JUDGE}
