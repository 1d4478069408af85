"""Experiments: A/B tests of 2-4 arms on one property, from the start to the applied winner.

An arm is a campaign, or a creative variant of one (`overrides` of its display fields), keyed
"a" (the control) to "d" in the order given. While an experiment runs, each visitor (the embed's
session id, `sid`) is assigned to one arm by `arm_for`, a hash of the experiment id and the sid,
so the same visitor always gets the same arm and the arms get visitors in the proportions of
their weights. The offers served in an arm carry its key as their token's variant, so the ledger
(impressions, clicks and, through the click, conversions) says which arm earned what; results are
read from the ledger, not the rollups, because they need distinct visitors and squared payouts.

Results (`get`) use stats.analyse, GrowthBook's formulas. Stopping with a winner applies it: a
winning creative's fields become its campaign's, and the losing arms' campaigns are taken off the
property. Every write is audited in its transaction and tells the catalog after the commit.
"""
import hashlib
import json
import re
import sqlite3

from flask import current_app, has_app_context

from popup_mgr import audit, campaigns, money, rollups, signals, stats, timeutil
from popup_mgr import db as database

ARM_KEYS = ("a", "b", "c", "d")
MIN_ARMS, MAX_ARMS = 2, 4
METRICS = ("rpm", "ctr")
DEFAULT_METRIC = "rpm"
STATUSES = ("running", "stopped")
# The creative fields an arm may change; the rest of a campaign (links, payout) is what is tested.
OVERRIDE_FIELDS = ("display_title", "tagline", "description", "cta_text", "image_url")
FIELDS = ("name", "property", "metric", "arms")
ARM_FIELDS = ("campaign_id", "weight", "overrides")
TOTAL_WEIGHT = 100
MAX_NAME = 200
# The embed's session id: the unit of assignment (DESIGN.md "Offers and assignment").
SID = re.compile(r"[A-Za-z0-9_-]{8,64}")
DAY_S = 86400


class ExperimentInvalid(ValueError):
    """Input that cannot be stored or applied; .errors maps each field to a message."""

    def __init__(self, errors):
        super().__init__("invalid experiment: " + ", ".join(sorted(errors)))
        self.errors = errors


class ExperimentNotFound(LookupError):
    pass


# --- assignment --------------------------------------------------------------------------------

def valid_sid(sid):
    """The sid if it is a well-formed session id, else None (a bad one is ignored, not refused:
    the offers must still show)."""
    return sid if isinstance(sid, str) and SID.fullmatch(sid) else None


def bucket(experiment_id, sid):
    """A number in [0, 100) fixed by the experiment and the visitor: uniform over visitors, and
    independent between experiments (the id is hashed in), so a visitor who was in arm "a" of
    one test is not in "a" of the next one by necessity."""
    digest = hashlib.sha256(f"{int(experiment_id)}:{sid}".encode()).digest()
    return int.from_bytes(digest[:8], "big") * TOTAL_WEIGHT / 2 ** 64


def arm_for(experiment, sid):
    """The key of the arm visitor `sid` is in: experiment = {"id", "arms": [{"key", "weight"}]}."""
    point = bucket(experiment["id"], sid)
    total = sum(arm["weight"] for arm in experiment["arms"])
    edge = 0.0
    for arm in experiment["arms"]:
        edge += arm["weight"] * TOTAL_WEIGHT / total
        if point < edge:
            return arm["key"]
    return experiment["arms"][-1]["key"]


# --- SQL: reading --------------------------------------------------------------------------------

def property_by_code(db, code):
    return db.execute("/* experiments.property_by_code */ SELECT id, code, name FROM properties"
                      " WHERE code = ?", (code,)).fetchone()


def campaigns_by_id(db, campaign_ids):
    """{id: row} with what validation needs: the campaign and the property ids it targets."""
    ids = sorted(set(campaign_ids))
    if not ids:
        return {}
    rows = db.execute(
        f"/* experiments.campaigns_by_id */ SELECT c.id, c.name, c.display_title, c.active,"
        f" (SELECT group_concat(cp.property_id) FROM campaign_properties cp"
        f"   WHERE cp.campaign_id = c.id) AS property_ids"
        f" FROM campaigns c WHERE c.id IN ({','.join('?' * len(ids))})", ids).fetchall()
    return {row["id"]: row for row in rows}


def running_id_on(db, property_id):
    row = db.execute("/* experiments.running_id_on */ SELECT id FROM experiments"
                     " WHERE property_id = ? AND status = 'running'", (property_id,)).fetchone()
    return row["id"] if row else None


def experiment_row(db, experiment_id):
    return db.execute(
        "/* experiments.experiment_row */ SELECT e.*, p.code AS property FROM experiments e"
        " JOIN properties p ON p.id = e.property_id WHERE e.id = ?", (experiment_id,)).fetchone()


def experiment_rows(db, status=None):
    """Every experiment, running ones first, then the latest first."""
    return db.execute(
        "/* experiments.experiment_rows */ SELECT e.*, p.code AS property FROM experiments e"
        " JOIN properties p ON p.id = e.property_id WHERE :status IS NULL OR e.status = :status"
        " ORDER BY e.status = 'running' DESC, e.id DESC", {"status": status}).fetchall()


def arm_rows(db, experiment_id):
    return db.execute("/* experiments.arm_rows */ SELECT key, campaign_id, weight, overrides"
                      " FROM experiment_arms WHERE experiment_id = ? ORDER BY key",
                      (experiment_id,)).fetchall()


def running_arm_rows(db):
    """Arms of every running experiment with their property code, for the catalog snapshot."""
    return db.execute(
        "/* experiments.running_arm_rows */ SELECT e.id, e.name, p.code AS property, a.key,"
        " a.campaign_id, a.weight, a.overrides FROM experiments e"
        " JOIN properties p ON p.id = e.property_id"
        " JOIN experiment_arms a ON a.experiment_id = e.id"
        " WHERE e.status = 'running' ORDER BY e.id, a.key").fetchall()


def impression_counts(db, property_id, start_ms, stop_ms):
    """Human impressions and distinct sessions per (arm key, campaign) in the window."""
    return db.execute(
        "/* experiments.impression_counts */ SELECT variant, campaign_id, count(*) AS impressions,"
        " count(DISTINCT session_id) AS visitors FROM impressions"
        " WHERE property_id = ? AND ts >= ? AND ts < ? AND variant <> '' AND is_bot = 0"
        " AND variant IN ('a', 'b', 'c', 'd') GROUP BY variant, campaign_id",
        (property_id, start_ms, stop_ms)).fetchall()


def click_counts(db, property_id, start_ms, stop_ms):
    return db.execute(
        "/* experiments.click_counts */ SELECT variant, campaign_id, count(*) AS clicks FROM clicks"
        " WHERE property_id = ? AND ts >= ? AND ts < ? AND variant <> '' AND is_bot = 0"
        " AND variant IN ('a', 'b', 'c', 'd') GROUP BY variant, campaign_id",
        (property_id, start_ms, stop_ms)).fetchall()


def conversion_sums(db, property_id, start_ms, stop_ms):
    """Counted conversions of the window's human clicks: count, payout and squared payouts (the
    variance of revenue per impression needs them; an impression earns 0 or one payout)."""
    return db.execute(
        "/* experiments.conversion_sums */ SELECT cv.variant, cv.campaign_id,"
        " count(*) AS conversions, sum(cv.payout_cents) AS revenue_cents,"
        " sum(cv.payout_cents * cv.payout_cents) AS revenue_sq FROM conversions cv"
        " JOIN clicks k ON k.id = cv.click_row_id"
        " WHERE k.ts >= ? AND k.ts < ? AND k.is_bot = 0 AND cv.property_id = ?"
        " AND cv.variant IN ('a', 'b', 'c', 'd') AND " + rollups.counted_sql("cv") +
        " GROUP BY cv.variant, cv.campaign_id", (start_ms, stop_ms, property_id)).fetchall()


def running_by_campaign(db):
    """{campaign id: {"id", "name", "property", "key"}} of the campaigns in a running experiment
    (the campaign list's badge)."""
    found = {}
    for row in running_arm_rows(db):
        found.setdefault(row["campaign_id"], {"id": row["id"], "name": row["name"],
                                              "property": row["property"], "key": row["key"]})
    return found


# --- SQL: writing ----------------------------------------------------------------------------------

def _insert_experiment(db, clean, property_id, actor, now):
    return db.execute(
        "/* experiments.insert_experiment */ INSERT INTO experiments"
        " (name, property_id, metric, status, started_at, created_by)"
        " VALUES (?, ?, ?, 'running', ?, ?)",
        (clean["name"], property_id, clean["metric"], now, actor)).lastrowid


def _insert_arms(db, experiment_id, arms):
    db.executemany(
        "/* experiments.insert_arms */ INSERT INTO experiment_arms"
        " (experiment_id, key, campaign_id, weight, overrides) VALUES (?, ?, ?, ?, ?)",
        [(experiment_id, arm["key"], arm["campaign_id"], arm["weight"],
          json.dumps(arm["overrides"], sort_keys=True, ensure_ascii=False)) for arm in arms])


def _mark_stopped(db, experiment_id, winner, now):
    return db.execute(
        "/* experiments.mark_stopped */ UPDATE experiments SET status = 'stopped', stopped_at = ?,"
        " winner = ? WHERE id = ? AND status = 'running'", (now, winner, experiment_id)).rowcount


def _campaign_property_ids(db, campaign_id):
    return [row["property_id"] for row in db.execute(
        "/* experiments.campaign_property_ids */ SELECT property_id FROM campaign_properties"
        " WHERE campaign_id = ? ORDER BY property_id", (campaign_id,))]


def _all_property_ids(db):
    return [row["id"] for row in db.execute(
        "/* experiments.all_property_ids */ SELECT id FROM properties ORDER BY id")]


def _replace_campaign_properties(db, campaign_id, property_ids):
    db.execute("/* experiments.replace_campaign_properties */ DELETE FROM campaign_properties"
               " WHERE campaign_id = ?", (campaign_id,))
    db.executemany("/* experiments.replace_campaign_properties */ INSERT INTO campaign_properties"
                   " (campaign_id, property_id) VALUES (?, ?)",
                   [(campaign_id, property_id) for property_id in property_ids])


def _pause_campaign(db, campaign_id, now):
    db.execute("/* experiments.pause_campaign */ UPDATE campaigns SET active = 0, updated_at = ?"
               " WHERE id = ?", (now, campaign_id))


def _set_creative(db, campaign_id, fields, now):
    columns = [field for field in OVERRIDE_FIELDS if field in fields]   # names from a fixed list
    db.execute(f"/* experiments.set_creative */ UPDATE campaigns SET"
               f" {', '.join(f'{column} = ?' for column in columns)}, updated_at = ? WHERE id = ?",
               [fields[column] for column in columns] + [now, campaign_id])


def _property_codes(db):
    return {row["id"]: row["code"] for row in db.execute(
        "/* experiments.property_codes */ SELECT id, code FROM properties")}


# --- validation --------------------------------------------------------------------------------------

def _whole(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _clean_overrides(value):
    """(overrides, error): only the creative fields, each checked as the campaign form does."""
    if value is None:
        return {}, None
    if not isinstance(value, dict):
        return None, "Must be an object of creative fields."
    unknown = [field for field in value if field not in OVERRIDE_FIELDS]
    if unknown:
        return None, (f"Unknown field(s): {', '.join(sorted(map(str, unknown)))}; an arm may set "
                      f"{', '.join(OVERRIDE_FIELDS)}.")
    clean, errors = campaigns.validate(value, partial=True)
    if errors:
        return None, "; ".join(f"{field}: {message}" for field, message in sorted(errors.items()))
    return clean, None


def _clean_arms(value, errors):
    if not isinstance(value, list) or not all(isinstance(arm, dict) for arm in value):
        errors["arms"] = "Must be a list of arms ({\"campaign_id\", \"weight\", \"overrides\"})."
        return []
    if not MIN_ARMS <= len(value) <= MAX_ARMS:
        errors["arms"] = f"An experiment has {MIN_ARMS} to {MAX_ARMS} arms ({len(value)} given)."
        return []
    weights_given = [arm.get("weight") is not None for arm in value]
    equal = [TOTAL_WEIGHT // len(value) + (1 if i < TOTAL_WEIGHT % len(value) else 0)
             for i in range(len(value))]
    arms = []
    for index, (arm, key) in enumerate(zip(value, ARM_KEYS)):
        prefix = f"arms.{index}."
        for field in arm:
            if field not in ARM_FIELDS:
                errors[prefix + str(field)] = "Unknown field."
        campaign_id = arm.get("campaign_id")
        if not _whole(campaign_id):
            errors[prefix + "campaign_id"] = "Must be a campaign id (a whole number)."
        # All weights left out means an even split; some left out is a mistake.
        weight = arm.get("weight") if any(weights_given) else equal[index]
        if not _whole(weight) or weight < 1:
            errors[prefix + "weight"] = "Must be a whole number of at least 1."
        overrides, problem = _clean_overrides(arm.get("overrides"))
        if problem:
            errors[prefix + "overrides"] = problem
        arms.append({"key": key, "campaign_id": campaign_id, "weight": weight,
                     "overrides": overrides or {}})
    weights = [arm["weight"] for arm in arms]
    if all(_whole(w) and w >= 1 for w in weights) and sum(weights) != TOTAL_WEIGHT:
        errors["arms"] = f"Weights must add up to {TOTAL_WEIGHT} (they add up to {sum(weights)})."
    seen = {}
    for index, arm in enumerate(arms):
        same = (arm["campaign_id"], json.dumps(arm["overrides"], sort_keys=True))
        if _whole(arm["campaign_id"]) and same in seen:
            errors[f"arms.{index}.overrides"] = (
                f"Same campaign and creative as arm {ARM_KEYS[seen[same]].upper()}: give this arm "
                f"overrides to test a different creative of campaign {arm['campaign_id']}.")
        seen.setdefault(same, index)
    return arms


def validate(data):
    """(clean, errors) of the input alone; checks needing the database come in create()."""
    if not isinstance(data, dict):
        return {}, {"_body": "Send a JSON object: name, property, metric, arms."}
    errors = {field: "Unknown field." for field in data if field not in FIELDS}
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        errors["name"] = "Must be text."
    elif name is not None and len(name.strip()) > MAX_NAME:
        errors["name"] = f"At most {MAX_NAME} characters."
    metric = data.get("metric", DEFAULT_METRIC)
    if metric not in METRICS:
        errors["metric"] = 'Must be "rpm" (revenue per 1,000 impressions) or "ctr" (click-through rate).'
    if not isinstance(data.get("property"), str) or not data.get("property"):
        errors["property"] = "Required: the code of the property to test on."
    arms = _clean_arms(data.get("arms"), errors)
    clean = {"name": name.strip() if isinstance(name, str) else "", "property": data.get("property"), "metric": metric,
             "arms": arms}
    return clean, errors


def _check_against_database(db, clean):
    """The property's id; raises ExperimentInvalid for an unknown property or campaign, a
    campaign that does not run on the property, or a test already running there."""
    errors = {}
    prop = property_by_code(db, clean["property"])
    if prop is None:
        errors["property"] = f"No property {clean['property']!r}."
    elif (running := running_id_on(db, prop["id"])) is not None:
        errors["property"] = (f"Experiment #{running} is already running on {prop['code']}: "
                              f"stop it first (one experiment per property).")
    found = campaigns_by_id(db, [arm["campaign_id"] for arm in clean["arms"]])
    for index, arm in enumerate(clean["arms"]):
        row = found.get(arm["campaign_id"])
        if row is None:
            errors[f"arms.{index}.campaign_id"] = f"No campaign {arm['campaign_id']}."
        elif prop is not None and row["property_ids"] and \
                str(prop["id"]) not in row["property_ids"].split(","):
            errors[f"arms.{index}.campaign_id"] = (f"Campaign {arm['campaign_id']} does not run on "
                                                   f"{prop['code']}.")
    if errors:
        raise ExperimentInvalid(errors)
    return prop


# --- create, read, stop -------------------------------------------------------------------------------

def create(db, data, actor, started_at=None):
    """Validate and start an experiment; returns it (get()'s shape). Raises ExperimentInvalid
    and then stores nothing. started_at (ISO-8601 UTC, default now): when its results start to
    count; only the demo history dates one back."""
    clean, errors = validate(data)
    if errors:
        raise ExperimentInvalid(errors)
    now = started_at or timeutil.iso_now()
    with database.transaction(db):
        prop = _check_against_database(db, clean)
        clean["name"] = clean["name"] or f"{prop['code']} test of {now[:10]}"
        try:
            experiment_id = _insert_experiment(db, clean, prop["id"], actor, now)
        except sqlite3.IntegrityError as exc:   # the partial unique index: a concurrent start
            raise ExperimentInvalid({"property": "An experiment is already running there."}) from exc
        _insert_arms(db, experiment_id, clean["arms"])
        audit.record(db, actor, "experiment.create", "experiment", experiment_id,
                     {"name": [None, clean["name"]], "property": [None, prop["code"]],
                      "metric": [None, clean["metric"]], "arms": [None, clean["arms"]]})
    _notify()
    return get(db, experiment_id)


def _window_ms(row, now_iso):
    """(first ms, end ms exclusive, days running) of the ledger rows that count. Timestamps are
    stored to the second: the window runs to the end of the stop's second (or of now's)."""
    start_ms = int(timeutil.parse_iso_utc(row["started_at"]).timestamp() * 1000)
    stop_ms = int(timeutil.parse_iso_utc(row["stopped_at"] or now_iso).timestamp() * 1000) + 1000
    return start_ms, stop_ms, max(stop_ms - 1000 - start_ms, 0) / 1000 / DAY_S


def _arm_figures(db, row, arms, now_iso):
    """(arms with their counts, stats.ArmData list, days running)."""
    start_ms, stop_ms, days = _window_ms(row, now_iso)
    keyed = lambda rows: {(r["variant"], r["campaign_id"]): r for r in rows}   # noqa: E731
    shown = keyed(impression_counts(db, row["property_id"], start_ms, stop_ms))
    clicked = keyed(click_counts(db, row["property_id"], start_ms, stop_ms))
    converted = keyed(conversion_sums(db, row["property_id"], start_ms, stop_ms))
    public, data = [], []
    for arm in arms:
        key = (arm["key"], arm["campaign_id"])
        impressions = shown[key]["impressions"] if key in shown else 0
        visitors = shown[key]["visitors"] if key in shown else 0
        clicks = clicked[key]["clicks"] if key in clicked else 0
        conversions = converted[key]["conversions"] if key in converted else 0
        revenue = converted[key]["revenue_cents"] if key in converted else 0
        revenue_sq = converted[key]["revenue_sq"] if key in converted else 0
        public.append({**arm, "visitors": visitors, "impressions": impressions, "clicks": clicks,
                       "conversions": conversions, "revenue": money.format_cents(revenue),
                       "ctr": clicks / impressions if impressions else 0.0,
                       "rpm": money.format_cents(round(revenue * 1000 / impressions)
                                                 if impressions else 0)})
        measure = (clicks, clicks) if row["metric"] == "ctr" else (revenue, revenue_sq)
        data.append(stats.ArmData(arm["key"], arm["weight"], visitors, impressions, *measure))
    return public, data, days


def _in_field_order(overrides):
    return {field: overrides[field] for field in OVERRIDE_FIELDS if field in overrides}


def _arms(db, experiment_id):
    return [{"key": r["key"], "campaign_id": r["campaign_id"], "weight": r["weight"],
             "overrides": _in_field_order(json.loads(r["overrides"] or "{}"))}
            for r in arm_rows(db, experiment_id)]


def _public(db, row, now_iso):
    arms, data, days = _arm_figures(db, row, _arms(db, row["id"]), now_iso)
    results = stats.analyse(data, row["metric"],
                            days_running=days if row["status"] == "running" else None)
    return {"id": row["id"], "name": row["name"], "property": row["property"],
            "metric": row["metric"], "status": row["status"], "started_at": row["started_at"],
            "stopped_at": row["stopped_at"], "winner": row["winner"],
            "created_by": row["created_by"], "days_running": round(days, 2), "arms": arms,
            "results": results}


def get(db, experiment_id, now_iso=None):
    """The experiment in the contract's shape (DESIGN.md "Experiments"), or None."""
    row = experiment_row(db, experiment_id)
    return _public(db, row, now_iso or timeutil.iso_now()) if row else None


def list_experiments(db, status=None, figures=True):
    """Every experiment in get()'s shape, running first, then the latest first. figures=False
    leaves out the per-arm counts and "results" (each costs a read of the experiment's ledger
    rows), for lists that show only names, dates and winners."""
    now_iso = timeutil.iso_now()
    if figures:
        return [_public(db, row, now_iso) for row in experiment_rows(db, status)]
    return [{**{key: row[key] for key in ("id", "name", "property", "metric", "status", "started_at",
                                          "stopped_at", "winner", "created_by")},
             "arms": _arms(db, row["id"]), "results": None} for row in experiment_rows(db, status)]


def stop(db, experiment_id, actor, winner=None):
    """Stop a running experiment, applying `winner` (an arm key) if given; returns it.

    A winning arm with overrides: those creative fields become its campaign's. Every losing arm
    on another campaign: that campaign is taken off the property (when it ran only there, it is
    paused instead, since no property at all would mean "all properties")."""
    with database.transaction(db):
        row = experiment_row(db, experiment_id)
        if row is None:
            raise ExperimentNotFound(experiment_id)
        if row["status"] != "running":
            raise ExperimentInvalid({"status": "This experiment is already stopped."})
        arms = _arms(db, experiment_id)
        keys = [arm["key"] for arm in arms]
        if winner is not None and winner not in keys:
            raise ExperimentInvalid({"winner": f"Must be one of the arms: {', '.join(keys)}."})
        now = timeutil.iso_now()
        _mark_stopped(db, experiment_id, winner, now)
        audit.record(db, actor, "experiment.stop", "experiment", experiment_id,
                     {"status": ["running", "stopped"], "winner": [None, winner]})
        if winner is not None:
            _apply_winner(db, row, arms, winner, actor, now)
    _notify()
    return get(db, experiment_id)


def _apply_winner(db, row, arms, winner, actor, now):
    best = next(arm for arm in arms if arm["key"] == winner)
    if best["overrides"]:
        before = campaigns.get(db, best["campaign_id"])
        changes = audit.changes_between(before, best["overrides"])
        if changes:
            _set_creative(db, best["campaign_id"], best["overrides"], now)
            audit.record(db, actor, "experiment.apply", "campaign", best["campaign_id"], changes)
    losers = {arm["campaign_id"] for arm in arms if arm["campaign_id"] != best["campaign_id"]}
    for campaign_id in sorted(losers):
        _take_off_property(db, campaign_id, row["property_id"], actor, now)


def _take_off_property(db, campaign_id, property_id, actor, now):
    codes = _property_codes(db)
    targeted = _campaign_property_ids(db, campaign_id)
    remaining = [pid for pid in (targeted or _all_property_ids(db)) if pid != property_id]
    if len(remaining) == len(targeted):
        return                                     # not on that property (any more)
    if not remaining:
        _pause_campaign(db, campaign_id, now)
        changes = {"active": [True, False]}
    else:
        _replace_campaign_properties(db, campaign_id, remaining)
        changes = {"properties": [[codes[pid] for pid in targeted], [codes[pid] for pid in remaining]]}
    audit.record(db, actor, "experiment.apply", "campaign", campaign_id, changes)


def _notify():
    # After the commit: the offers snapshot must see the experiment start or end at once.
    if has_app_context():
        signals.notify_catalog_changed(current_app._get_current_object())
