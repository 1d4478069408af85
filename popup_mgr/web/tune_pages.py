"""Blueprint "tune": the admin's Tune page (connection settings, "test connection", the last sync
with "sync now", new offers waiting for review with "activate") and the Reconciliation page (per
offer per day with the differences highlighted, the conversion lists, CSV export, "apply").

Every route needs a logged-in admin and every POST carries the CSRF token (security.py checks it
for all admin writes). The API key never goes back to the browser: pages show its masked form,
and a form re-shown after an error leaves the key field empty. No SQL here: the work is
tune_jobs', the campaign change campaigns'.
"""
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for

from popup_mgr import campaigns as campaign_store
from popup_mgr import money, reconcile, tune_jobs, tune_settings, tune_sync
from popup_mgr.db import get_db
from popup_mgr.web.admin import require_login
from popup_mgr.web.analytics import csv_response
from popup_mgr.web.auth import current_actor
from popup_mgr.web.http import is_htmx, render_page_or_fragment

bp = Blueprint("tune", __name__)
bp.before_request(require_login)

EDITABLE = ("network_id", "tz", "api_url")
# Offered in the time zone field; any IANA name is accepted.
COMMON_ZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
                "America/Phoenix", "UTC", "Europe/London", "Europe/Berlin", "Asia/Kolkata", "Australia/Sydney")


def _app():
    return current_app._get_current_object()


def _status(status):
    """htmx swaps only 2xx answers: a refused form comes back as 200 with its messages shown."""
    return 200 if is_htmx() else status


# --- the Tune page -------------------------------------------------------------------------------

def _settings_context(**extra):
    current = tune_jobs.settings(_app())
    return {"tune": current.as_json(), "environment": tune_settings.ENVIRONMENT, "zones": COMMON_ZONES,
            "default_api_url": tune_settings.DEFAULT_API_URL, "form": {}, "errors": {}} | extra


def _sync_context(**extra):
    last = tune_jobs.last_results(_app())
    return {"last_sync": last["last_sync"], "last_sync_success": last["last_sync_success"],
            "sync_minutes": tune_jobs.sync_interval_s() // 60} | extra


def _review_context(**extra):
    pending = [dict(row, payout=money.format_cents(row["payout_cents"]))
               for row in tune_sync.pending_review(get_db())]
    return {"pending": pending} | extra


@bp.get("/admin/tune")
def page():
    return render_template("tune/tune.html", **_settings_context(), **_sync_context(), **_review_context())


@bp.post("/admin/tune/settings")
def save_settings():
    current = tune_jobs.settings(_app())
    fields = {name: request.form[name] for name in EDITABLE
              if name in request.form and current.sources[name] != "environment"}
    key = request.form.get("api_key", "").strip()
    if key and current.sources["api_key"] != "environment":
        fields["api_key"] = key
    try:
        changes = tune_jobs.save_settings(_app(), current_actor(), **fields)
    except tune_settings.SettingsInvalid as exc:
        typed = {name: value for name, value in fields.items() if name != "api_key"}
        return _settings_answer(422, errors=exc.errors, form=typed,
                                key_typed=bool(key) and "api_key" not in exc.errors)
    notice = ("Saved: " + ", ".join(_FIELD_NAMES[name] for name in changes) + "." if changes
              else "Nothing to change.")
    if not is_htmx():
        flash(notice, "success")
        return redirect(url_for("tune.page"))
    return _settings_answer(200, notice=notice)


_FIELD_NAMES = {"network_id": "network id", "api_key": "API key", "api_url": "API URL", "tz": "time zone"}


def _settings_answer(status, **extra):
    context = _settings_context(**extra)
    if is_htmx():
        return render_template("tune/_settings.html", **context), 200
    return render_template("tune/tune.html", **context, **_sync_context(), **_review_context()), _status(status)


@bp.post("/admin/tune/test")
def test_connection():
    ok, sentence = tune_jobs.test_connection(_app())          # one try, 30 s at most
    return _settings_answer(200, test_result={"ok": ok, "sentence": sentence})


@bp.post("/admin/tune/sync")
def sync_now():
    try:
        result = tune_jobs.sync_now(_app(), actor=current_actor(), **tune_jobs.INTERACTIVE)
        outcome = {"ok": True, "sentence": tune_jobs.describe_sync(result), "result": result}
    except tune_jobs.NotConfigured as exc:
        outcome = {"ok": False, "sentence": str(exc)}
    except (tune_jobs.TuneError, tune_sync.SyncBusy) as exc:
        outcome = {"ok": False, "sentence": f"The sync failed and changed nothing: {getattr(exc, 'message', exc)}"}
    if not is_htmx():
        flash(outcome["sentence"], "success" if outcome["ok"] else "error")
        return redirect(url_for("tune.page"))
    # The review list changes with the sync: it comes along, swapped out of band.
    return render_template("tune/_sync.html", outcome=outcome, **_sync_context()) + \
        render_template("tune/_review.html", oob=True, **_review_context())


@bp.post("/admin/tune/campaigns/<int:campaign_id>/activate")
def activate(campaign_id):
    waiting = {row["id"]: row for row in tune_sync.pending_review(get_db())}
    if campaign_id not in waiting:
        abort(404)
    try:
        campaign = campaign_store.set_active(get_db(), campaign_id, True, current_actor())
        notice, failed = _activated(campaign), False
    except campaign_store.CampaignInvalid as exc:
        notice, failed = "Not activated: " + "; ".join(f"{k}: {v}" for k, v in exc.errors.items()), True
    if not is_htmx():
        flash(notice, "error" if failed else "success")
        return redirect(url_for("tune.page"))
    return render_template("tune/_review.html", notice=notice, notice_failed=failed, **_review_context())


def _activated(campaign):
    if campaign["network_hold"]:
        return (f"“{campaign['name']}” is active; it is shown once the network's hold lifts"
                f" ({campaign['network_hold']}).")
    return f"“{campaign['name']}” is active and shown from now on."


# --- the Reconciliation page -----------------------------------------------------------------------

def _requested_range(values):
    """(first, last, errors): the range asked for, the network's yesterday by default."""
    first_text, last_text = values.get("from"), values.get("to")
    if not first_text and not last_text:
        first_text = last_text = tune_jobs.yesterday(_app())
    try:
        first, last = reconcile.parse_range(first_text, last_text)
        return first, last, {}
    except reconcile.RangeInvalid as exc:
        return first_text or "", last_text or "", exc.errors


def _run(first, last, **options):
    """(done, error message)."""
    try:
        return tune_jobs.reconcile_days(_app(), first, last, **options, **tune_jobs.INTERACTIVE), None
    except tune_jobs.NotConfigured as exc:
        return None, str(exc)
    except tune_jobs.TuneError as exc:
        return None, f"Tune did not answer as expected: {exc.message}"


def _reconciliation_context(first, last, done=None, **extra):
    report = (done or {}).get("after") or (done or {}).get("report")
    context = {"first": first, "last": last, "only_differences": request.values.get("only") == "diff",
               "report": report, "tz": (done or {}).get("tz"), "errors": {}, "error": None} | extra
    if report:
        summary = reconcile.summary(report)
        names = {c["id"]: c["name"] for c in campaign_store.list_campaigns(get_db())}
        context.update(summary=summary, sentence=reconcile.gap_sentence(summary, tune_jobs.yesterday(_app())),
                       names=names, rows=[_day_row(day) for day in report["days"]],
                       to_apply=len(report["missing_in_ours"]) + len(report["status_mismatches"]))
    return context


def _day_row(day):
    """A day with which measures differ, and each difference signed ("+2", "-0.25", "0")."""
    diff = day["diff"]
    differs = {measure: str(diff[measure]) not in ("0", "0.00") for measure in ("clicks", "conversions", "revenue")}
    signed = {measure: ("+" if differs[measure] and not str(diff[measure]).startswith("-") else "") + str(diff[measure])
              for measure in differs}
    return day | {"differs": differs, "signed": signed, "any_difference": any(differs.values())}


def _render_reconciliation(context, status=200):
    response = render_page_or_fragment("tune/reconciliation.html", "tune/_reconciliation.html", **context)
    response.status_code = _status(status)
    return response


@bp.get("/admin/tune/reconciliation")
def reconciliation():
    first, last, errors = _requested_range(request.args)
    if errors:
        return _render_reconciliation(_reconciliation_context(first, last, errors=errors), 422)
    done, error = _run(first, last, record=False)
    return _render_reconciliation(_reconciliation_context(first, last, done, error=error), 503 if error else 200)


@bp.post("/admin/tune/reconciliation/apply")
def apply():
    first, last, errors = _requested_range(request.form)
    if errors:
        return _render_reconciliation(_reconciliation_context(first, last, errors=errors), 422)
    done, error = _run(first, last, apply=True, actor=current_actor())
    if error:
        return _render_reconciliation(_reconciliation_context(first, last, error=error), 503)
    applied = done["applied"]
    notice = (f"Applied: {len(applied['recorded'])} conversion(s) recorded from Tune,"
              f" {len(applied['updated'])} status(es) taken from Tune"
              + (f", {applied['unchanged']} already as Tune has them" if applied["unchanged"] else "") + ".")
    if not is_htmx():
        flash(notice, "success")
        return redirect(url_for("tune.reconciliation", **{"from": first, "to": last}))
    return _render_reconciliation(_reconciliation_context(first, last, done, notice=notice))


@bp.get("/admin/tune/reconciliation.csv")
def reconciliation_csv():
    first, last, errors = _requested_range(request.args)
    if errors:
        abort(400, "; ".join(f"{field}: {message}" for field, message in errors.items()))
    done, error = _run(first, last, record=False)
    if error:
        abort(503, error)
    report = done["report"]
    if request.args.get("table") == "conversions":
        return csv_response(f"tune-conversions-{first}-{last}.csv", *_conversion_table(report))
    return csv_response(f"tune-reconciliation-{first}-{last}.csv", *_day_table(report))


def _day_table(report):
    header = ("date", "offer_id", "campaign_id", "ours_clicks", "tune_clicks", "diff_clicks", "ours_conversions",
              "tune_conversions", "diff_conversions", "ours_revenue", "tune_revenue", "diff_revenue",
              "tune_impressions")
    rows = [[d["date"], d["offer_id"], d["campaign_id"], d["ours"]["clicks"], d["tune"]["clicks"], d["diff"]["clicks"],
             d["ours"]["conversions"], d["tune"]["conversions"], d["diff"]["conversions"], d["ours"]["revenue"],
             d["tune"]["revenue"], d["diff"]["revenue"], d["tune"]["impressions"]] for d in report["days"]]
    return header, rows


def _conversion_table(report):
    header = ("difference", "transaction_id", "click_id", "offer_id", "payout", "status", "ours_status", "datetime")
    rows = []
    for kind in ("missing_in_ours", "missing_in_tune", "status_mismatches"):
        for c in report[kind]:
            rows.append([kind, c["transaction_id"], c["click_id"] or "", c["offer_id"], c["payout"], c["status"],
                         c.get("ours_status", ""), c["datetime"]])
    return header, rows
