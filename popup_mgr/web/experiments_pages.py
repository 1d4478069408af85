"""Blueprint "experiments": the admin's Experiments page — start a test on a property (2-4
campaigns, or alternative creatives of one campaign, each arm previewed live), a card per running
experiment in plain words with its per-arm table, stop with "apply the winner", and the history.

The card's figures refresh themselves (htmx) so traffic shows without reloading. The campaign list's badge
("in experiment") comes from `running_experiment_of`, offered to every template. No SQL here.
"""
from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for

from popup_mgr import campaigns as campaign_store
from popup_mgr import experiments
from popup_mgr import properties as property_store
from popup_mgr import stats
from popup_mgr.db import get_db
from popup_mgr.web.admin import require_login
from popup_mgr.web.auth import current_actor
from popup_mgr.web.http import is_htmx, render_page_or_fragment

bp = Blueprint("experiments", __name__)
bp.before_request(require_login)

SLOTS = range(experiments.MAX_ARMS)
# How often a running experiment's card refreshes itself (EXPERIMENT_CARD_REFRESH_S overrides).
CARD_REFRESH_S = 30


@bp.app_context_processor
def experiment_badges():
    return {"running_experiment_of": running_experiment_of}


def running_experiment_of(campaign_id):
    """The running experiment a campaign is in ({"id", "name", "property", "key"}) or None; read
    once per request, however many rows ask."""
    if "running_experiments" not in g:
        g.running_experiments = experiments.running_by_campaign(get_db())
    return g.running_experiments.get(campaign_id)


@bp.app_template_filter("percent")
def percent(value, digits=1):
    return "–" if value is None else f"{value * 100:.{digits}f} %"


@bp.app_template_filter("signed_percent")
def signed_percent(value):
    return "–" if value is None else f"{value * 100:+.1f} %"


@bp.get("/admin/experiments", endpoint="index")
def index():
    db = get_db()
    return render_page_or_fragment(
        "experiments/index.html", "experiments/_running.html",
        running=experiments.list_experiments(db, "running"),
        finished=experiments.list_experiments(db, "stopped", figures=False), refresh_s=_refresh_s(), **_names(db))


@bp.get("/admin/experiments/new", endpoint="new")
def new():
    db = get_db()
    codes = property_store.codes(db)
    code = request.args.get("property") if request.args.get("property") in codes else codes[0]
    return _form(db, code, {"mode": request.args.get("mode", "campaigns"), "metric": "rpm"}, {})


@bp.post("/admin/experiments", endpoint="create")
def create():
    db = get_db()
    data, slots = from_form(request.form)
    try:
        created = experiments.create(db, data, current_actor())
    except experiments.ExperimentInvalid as exc:
        return _form(db, data["property"], request.form, _errors_by_slot(exc.errors, slots), status=422)
    return redirect(url_for("experiments.detail", experiment_id=created["id"]))


@bp.get("/admin/experiments/<int:experiment_id>", endpoint="detail")
def detail(experiment_id):
    db = get_db()
    experiment = experiments.get(db, experiment_id)
    if experiment is None:
        abort(404)
    return render_page_or_fragment("experiments/detail.html", "experiments/_card.html",
                                   e=experiment, refresh_s=_refresh_s(), **_names(db))


@bp.get("/admin/experiments/<int:experiment_id>/figures", endpoint="figures")
def figures(experiment_id):
    """The card's figures alone: what its periodic refresh swaps in. A plain browser (an opened
    link, a bookmark) gets the experiment's page instead of an unstyled piece of it."""
    db = get_db()
    experiment = experiments.get(db, experiment_id)
    if experiment is None:
        abort(404)
    if not is_htmx():
        return redirect(url_for("experiments.detail", experiment_id=experiment_id))
    return render_template("experiments/_figures.html", e=experiment, refresh_s=_refresh_s(), **_names(db))


@bp.post("/admin/experiments/<int:experiment_id>/stop", endpoint="stop")
def stop(experiment_id):
    winner = request.form.get("winner") or None
    try:
        experiments.stop(get_db(), experiment_id, current_actor(), winner)
    except experiments.ExperimentNotFound:
        abort(404)
    except experiments.ExperimentInvalid as exc:
        abort(422, "; ".join(exc.errors.values()))
    return redirect(url_for("experiments.detail", experiment_id=experiment_id))


# --- the start form ----------------------------------------------------------------------------

def from_form(form):
    """(API input, slot of each arm) from the start form.

    mode "campaigns": an arm per slot with a campaign picked. mode "creatives": one campaign;
    slots A and B always, C and D when they change something; each slot's filled creative fields
    are that arm's overrides (A left blank is the campaign as it is: the control)."""
    creatives = form.get("mode") == "creatives"
    arms, slots = [], []
    for slot in SLOTS:
        overrides = {field: form.get(f"arm-{slot}-{field}", "").strip()
                     for field in experiments.OVERRIDE_FIELDS if form.get(f"arm-{slot}-{field}", "").strip()}
        campaign = form.get("campaign_id" if creatives else f"arm-{slot}-campaign_id", "").strip()
        if not campaign or (creatives and slot >= 2 and not overrides):
            continue
        weight = form.get(f"arm-{slot}-weight", "").strip()
        arms.append({"campaign_id": int(campaign) if campaign.isdigit() else campaign,
                     "weight": int(weight) if weight.isdigit() else (weight or None),
                     "overrides": overrides})
        slots.append(slot)
    return {"name": form.get("name", ""), "property": form.get("property", ""),
            "metric": form.get("metric", "rpm"), "arms": arms}, slots


def _errors_by_slot(errors, slots):
    """The domain's "arms.<index>.<field>" keys moved to the form's slots."""
    moved = {}
    for key, message in errors.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "arms" and parts[1].isdigit() and int(parts[1]) < len(slots):
            key = f"arms.{slots[int(parts[1])]}.{parts[2]}"
        moved[key] = message
    return moved


def _form(db, code, values, errors, status=200):
    offered = campaign_store.list_campaigns(db, property_code=code)
    response = render_page_or_fragment(
        "experiments/new.html", "experiments/new.html", property_code=code,
        property_codes=property_store.codes(db), campaigns=offered, values=values, errors=errors,
        slots=SLOTS, keys=experiments.ARM_KEYS, override_fields=experiments.OVERRIDE_FIELDS,
        preview_data={c["id"]: {field: c[field] for field in experiments.OVERRIDE_FIELDS} for c in offered})
    response.status_code = status
    return response


def _refresh_s():
    return current_app.config.get("EXPERIMENT_CARD_REFRESH_S", CARD_REFRESH_S)


def _names(db):
    """What the cards need beside the experiment: campaign names, and the metric's words."""
    return {"campaign_names": {c["id"]: c["name"] for c in campaign_store.list_campaigns(db)},
            "metric_names": stats.METRIC_NAMES}
