"""Reconciliation with Tune: our ledger against the network's own reports, to the cent.

Per offer per day, in the network's time zone (its reports' days): our human clicks and counted
conversions and revenue against getStats; conversion by conversion (transaction id) against
getConversions. `diff` is always Tune minus ours, so a positive revenue diff is money the
network recorded and we did not.

Definitions (both sides alike):
  * a conversion counts, with its payout as revenue, unless it is rejected (pending counts) or a
    test; a conversion's day is when it happened: for ours, when its postback arrived (or, for one
    imported by apply(), the network's conversion time);
  * a conversion belongs to its campaign's offer; one of ours without a known click takes the
    offer the network reports for the same transaction id.
Conversions near the range's edges are matched against both sides' neighbouring days too, so a
postback that arrived a few seconds after midnight is not reported missing.

apply() repairs what the network knows better: it records the network's conversions we lack
(attributed when their affiliate_click_id is one of our click ids) and takes the network's status
where ours differs, through the ingest module's own conversion writer (rollups stay exact), in one
transaction, idempotently by transaction id.
"""
import datetime as dt
import json
from zoneinfo import ZoneInfo

from popup_mgr import audit, money, timeutil
from popup_mgr import db as database
from popup_mgr.ingest import conversions
from popup_mgr.tune_client import network_cents

BUCKET_MS = 15 * 60 * 1000       # every time zone's offset and DST change is a multiple of 15 min
STATUSES = ("approved", "pending", "rejected")
ACTOR = "reconcile"
MAX_RANGE_DAYS = 366             # a year per request: Tune's conversion report reaches back 25 months


class RangeInvalid(ValueError):
    """A from/to pair that cannot be reconciled; .errors maps "from"/"to" to a message."""

    def __init__(self, errors):
        super().__init__("; ".join(f"{field}: {message}" for field, message in sorted(errors.items())))
        self.errors = errors


def parse_range(first_text, last_text):
    """(first_day, last_day) as ISO dates from the from/to parameters of the CLI, the API and the
    page; raises RangeInvalid with a message per field."""
    errors, days = {}, {}
    for field, text in (("from", first_text), ("to", last_text)):
        text = (text or "").strip()
        if not text:
            errors[field] = "required: a day as YYYY-MM-DD"
            continue
        try:
            days[field] = dt.date.fromisoformat(text) if len(text) == 10 else None
        except ValueError:
            days[field] = None
        if days[field] is None:
            errors[field] = f"{text[:40]!r} is not a day (YYYY-MM-DD)"
    if not errors:
        if days["to"] < days["from"]:
            errors["to"] = "the last day is before the first day"
        elif (days["to"] - days["from"]).days >= MAX_RANGE_DAYS:
            errors["to"] = f"at most {MAX_RANGE_DAYS} days at a time"
    if errors:
        raise RangeInvalid(errors)
    return days["from"].isoformat(), days["to"].isoformat()


def store_conversion(db, transaction_id, click_id, payout_cents, status, at_ms):
    """The ingest module's writer of one conversion (call inside a transaction)."""
    return conversions.store(db, conversions.Postback(click_id, transaction_id, payout_cents, status), at_ms)


# --- the comparison ------------------------------------------------------------------------------

def reconcile(db, client, first_day, last_day, tune_tz):
    """The contract's reconciliation JSON for first_day..last_day (network days, inclusive).
    Raises TuneError when the network cannot be read."""
    return compare(db, fetch(client, first_day, last_day), tune_tz)


def fetch(client, first_day, last_day):
    """The network's side of a reconciliation (its stats, and its conversions with a day of margin
    each side), so that compare() can run again after apply() without asking the network twice."""
    first, last = dt.date.fromisoformat(first_day), dt.date.fromisoformat(last_day)
    if last < first:
        raise ValueError("the last day is before the first day")
    margin_first, margin_last = (first - dt.timedelta(days=1)).isoformat(), (last + dt.timedelta(days=1)).isoformat()
    stats = [_tune_stat(row) for row in client.stats(first_day, last_day)]
    conversions = [_tune_conversion(row) for row in
                   client.conversions(f"{margin_first} 00:00:00", f"{margin_last} 23:59:59")]
    return {"from": first_day, "to": last_day, "margin": (margin_first, margin_last), "stats": stats,
            "conversions": [c for c in conversions if c["transaction_id"]]}


def compare(db, network, tune_tz):
    """The reconciliation of our ledger against fetch()'s answer."""
    first_day, last_day = network["from"], network["to"]
    stats = network["stats"]
    tune_all = {c["transaction_id"]: dict(c) for c in network["conversions"]}
    ours_all = {c["transaction_id"]: c for c in our_conversions(db, *network["margin"], tune_tz)}
    for conversion in ours_all.values():
        if conversion["offer_id"] is None and conversion["transaction_id"] in tune_all:
            conversion["offer_id"] = tune_all[conversion["transaction_id"]]["offer_id"]

    def in_range(conversion):
        return first_day <= conversion["datetime"][:10] <= last_day

    tune_in = [c for c in tune_all.values() if in_range(c)]
    ours_in = [c for c in ours_all.values() if in_range(c)]
    days = _days(db, stats, ours_in, first_day, last_day, tune_tz)
    return {
        "from": first_day, "to": last_day, "days": days,
        "missing_in_ours": [_public(c) for c in tune_in if c["transaction_id"] not in ours_all],
        "missing_in_tune": [_public(c) for c in ours_in if c["transaction_id"] not in tune_all],
        "status_mismatches": _status_mismatches(tune_all, ours_all, in_range),
        "totals": _totals(days),
    }


def _tune_stat(row):
    stat = row.get("Stat") or {}
    return {"date": stat.get("date"), "offer_id": int(stat.get("offer_id")),
            "impressions": int(stat.get("impressions") or 0), "clicks": int(stat.get("clicks") or 0),
            "conversions": int(stat.get("conversions") or 0), "revenue_cents": network_cents(stat.get("payout"))}


def _tune_conversion(row):
    stat = row.get("Stat") or {}
    mobile = row.get("ConversionsMobile") if isinstance(row.get("ConversionsMobile"), dict) else {}
    status = str(stat.get("conversion_status") or "").lower()
    return {"transaction_id": str(stat.get("ad_id") or ""), "click_id": mobile.get("affiliate_click_id") or None,
            "offer_id": int(stat.get("offer_id")), "payout_cents": network_cents(stat.get("payout")),
            "status": status if status in STATUSES else "pending", "datetime": str(stat.get("datetime") or "")}


def our_conversions(db, first_day, last_day, tune_tz):
    """Our non-test conversions that happened in first_day..last_day (network days)."""
    start_ms, _ = timeutil.day_bounds_ms(first_day, tune_tz)
    _, end_ms = timeutil.day_bounds_ms(last_day, tune_tz)
    rows = db.execute(
        "/* reconcile.our_conversions */ SELECT v.transaction_id, v.click_id, v.ts, v.payout_cents, v.status,"
        " c.tune_campaign_id AS offer_id FROM conversions v LEFT JOIN campaigns c ON c.id = v.campaign_id"
        " WHERE v.ts >= ? AND v.ts < ? AND v.is_test = 0 ORDER BY v.ts, v.id", (start_ms, end_ms)).fetchall()
    zone = ZoneInfo(tune_tz)
    return [{"transaction_id": row["transaction_id"], "click_id": row["click_id"] or None,
             "offer_id": row["offer_id"], "payout_cents": row["payout_cents"], "status": row["status"],
             "datetime": _network_datetime(row["ts"], zone)} for row in rows]


def _network_datetime(ts_ms, zone):
    return dt.datetime.fromtimestamp(ts_ms / 1000, zone).strftime("%Y-%m-%d %H:%M:%S")


def our_clicks(db, first_day, last_day, tune_tz):
    """{(network day, offer id): human clicks}. Counted per 15-minute bucket in SQL (the index
    on ts, no per-row work in Python), each bucket lying wholly inside one network day."""
    start_ms, _ = timeutil.day_bounds_ms(first_day, tune_tz)
    _, end_ms = timeutil.day_bounds_ms(last_day, tune_tz)
    rows = db.execute(
        "/* reconcile.our_clicks */ SELECT c.tune_campaign_id AS offer_id, k.ts / ? AS bucket, count(*) AS n"
        " FROM clicks k JOIN campaigns c ON c.id = k.campaign_id"
        " WHERE k.ts >= ? AND k.ts < ? AND k.is_bot = 0 GROUP BY 1, 2", (BUCKET_MS, start_ms, end_ms)).fetchall()
    zone, counts = ZoneInfo(tune_tz), {}
    for row in rows:
        key = (timeutil.business_day(row["bucket"] * BUCKET_MS, zone), row["offer_id"])
        counts[key] = counts.get(key, 0) + row["n"]
    return counts


def campaign_ids_by_offer(db):
    return {row["tune_campaign_id"]: row["id"] for row in db.execute(
        "/* reconcile.campaign_ids_by_offer */ SELECT id, tune_campaign_id FROM campaigns")}


def _counted(conversion):
    return conversion["status"] != "rejected"


def _days(db, stats, ours_in, first_day, last_day, tune_tz):
    ours = {}
    for key, clicks in our_clicks(db, first_day, last_day, tune_tz).items():
        ours.setdefault(key, _zero_ours())["clicks"] = clicks
    for conversion in ours_in:
        entry = ours.setdefault((conversion["datetime"][:10], conversion["offer_id"]), _zero_ours())
        if _counted(conversion):
            entry["conversions"] += 1
            entry["revenue_cents"] += conversion["payout_cents"]
    tune = {}
    for stat in stats:
        entry = tune.setdefault((stat["date"], stat["offer_id"]), _zero_tune())
        for measure in entry:
            entry[measure] += stat[measure]
    campaign_ids = campaign_ids_by_offer(db)
    days = []
    for date, offer_id in sorted(set(ours) | set(tune), key=lambda key: (key[0], key[1] is None, key[1] or 0)):
        mine, theirs = ours.get((date, offer_id), _zero_ours()), tune.get((date, offer_id), _zero_tune())
        days.append({"date": date, "offer_id": offer_id, "campaign_id": campaign_ids.get(offer_id),
                     "ours": _money(mine), "tune": _money(theirs), "diff": _money(_difference(theirs, mine))})
    return days


def _zero_ours():
    return {"clicks": 0, "conversions": 0, "revenue_cents": 0}


def _zero_tune():
    return {"impressions": 0, "clicks": 0, "conversions": 0, "revenue_cents": 0}


def _difference(theirs, mine):
    return {measure: theirs[measure] - mine[measure] for measure in mine}


def _money(measures):
    """revenue_cents -> "revenue" as a decimal string, the API's form of money."""
    shown = {key: value for key, value in measures.items() if key != "revenue_cents"}
    shown["revenue"] = money.format_cents(measures["revenue_cents"])
    return shown


def _totals(days):
    ours, tune = _zero_ours(), _zero_tune()
    for day in days:
        for side, totals in (("ours", ours), ("tune", tune)):
            for measure in totals:
                if measure == "revenue_cents":
                    totals[measure] += _signed_cents(day[side]["revenue"])
                else:
                    totals[measure] += day[side][measure]
    return {"ours": _money(ours), "tune": _money(tune)}


def _public(conversion):
    return {"transaction_id": conversion["transaction_id"], "click_id": conversion["click_id"],
            "offer_id": conversion["offer_id"], "payout": money.format_cents(conversion["payout_cents"]),
            "status": conversion["status"], "datetime": conversion["datetime"]}


def _status_mismatches(tune_all, ours_all, in_range):
    """The network's view of each conversion whose status differs from ours, with ours beside it."""
    found = []
    for transaction_id, theirs in tune_all.items():
        mine = ours_all.get(transaction_id)
        if mine is None or mine["status"] == theirs["status"] or not (in_range(theirs) or in_range(mine)):
            continue
        found.append(_public(theirs) | {"ours_status": mine["status"],
                                        "ours_payout": money.format_cents(mine["payout_cents"])})
    return sorted(found, key=lambda c: (c["datetime"], c["transaction_id"]))


# --- the repair ----------------------------------------------------------------------------------

def apply(db, report, tune_tz, *, actor=ACTOR):
    """Record the report's missing_in_ours and take the network's status for its
    status_mismatches, in one transaction; audited. Idempotent: a transaction id already stored
    with that status is left alone. Returns {"recorded": [...], "updated": [...], "unchanged": n}
    (transaction ids). Use a durable connection (db.connection(path, durable=True)): this writes money."""
    outcome = {"recorded": [], "updated": [], "unchanged": 0}
    zone = ZoneInfo(tune_tz)
    with database.transaction(db):
        for conversion in report["missing_in_ours"]:
            at_ms = _network_ms(conversion["datetime"], zone)
            stored = store_conversion(db, conversion["transaction_id"], conversion["click_id"] or "",
                                      money.parse_cents(conversion["payout"]), conversion["status"], at_ms)
            _note(db, actor, stored, outcome, "recorded from the network's conversion report",
                  {"offer_id": [None, conversion["offer_id"]], "datetime": [None, conversion["datetime"]]})
        for conversion in report["status_mismatches"]:
            stored = store_conversion(db, conversion["transaction_id"], conversion["click_id"] or "",
                                      money.parse_cents(conversion["ours_payout"]), conversion["status"],
                                      timeutil.now_ms())
            _note(db, actor, stored, outcome, "status taken from the network's conversion report",
                  {"status": [conversion["ours_status"], conversion["status"]]})
    return outcome


def _network_ms(text, zone):
    moment = dt.datetime.fromisoformat(text).replace(tzinfo=zone)
    return int(moment.timestamp() * 1000)


def _note(db, actor, stored, outcome, reason, changes):
    if stored.outcome == "duplicate":
        outcome["unchanged"] += 1
        return
    outcome["recorded" if stored.outcome == "recorded" else "updated"].append(stored.transaction_id)
    row_id = db.execute("/* reconcile.note */ SELECT id FROM conversions WHERE transaction_id = ?",
                        (stored.transaction_id,)).fetchone()[0]
    base = {"transaction_id": [None, stored.transaction_id], "payout": [None, money.format_cents(stored.payout_cents)],
            "campaign_id": [None, stored.campaign_id], "reason": [None, reason]}
    action = "conversion.import" if stored.outcome == "recorded" else "conversion.status"
    audit.record(db, actor, action, "conversion", row_id, base | changes)


# --- the record for the dashboard ----------------------------------------------------------------

def summary(report):
    """Totals and the number of each kind of difference: what the dashboard needs."""
    tune_extra = [c for c in report["missing_in_ours"] if c["status"] != "rejected"]
    gap_cents = sum(money.parse_cents(c["payout"]) for c in tune_extra)
    return {"from": report["from"], "to": report["to"], "totals": report["totals"],
            "missing_in_ours": len(report["missing_in_ours"]), "missing_in_tune": len(report["missing_in_tune"]),
            "status_mismatches": len(report["status_mismatches"]),
            "missing_revenue": money.format_cents(gap_cents)}


def record(db, report):
    """Keep the report's summary (the daily job and the CLI call this after reconcile())."""
    with database.transaction(db):
        db.execute("/* reconcile.record */ INSERT INTO tune_reconciliations (at, first_day, last_day, summary)"
                   " VALUES (?, ?, ?, ?)", (timeutil.iso_now(), report["from"], report["to"],
                                             json.dumps(summary(report), sort_keys=True)))


def last_summary(db):
    """The latest recorded summary with its time ("at"), or None."""
    row = db.execute("/* reconcile.last_summary */ SELECT at, summary FROM tune_reconciliations"
                     " ORDER BY id DESC LIMIT 1").fetchone()
    return None if row is None else json.loads(row["summary"]) | {"at": row["at"]}


def gap_sentence(summary_, yesterday=None):
    """One plain sentence for the dashboard, e.g. "Tune reports $12.40 more than we recorded
    yesterday: 3 conversions we never received." (yesterday: the network's, to say it in words)."""
    tune_cents = _signed_cents(summary_["totals"]["tune"]["revenue"])
    ours_cents = _signed_cents(summary_["totals"]["ours"]["revenue"])
    gap, missing = tune_cents - ours_cents, summary_["missing_in_ours"]
    if summary_["from"] == summary_["to"]:
        period = "yesterday" if summary_["from"] == yesterday else f"for {summary_['from']}"
    else:
        period = f"for {summary_['from']} to {summary_['to']}"
    if gap == 0 and not missing:
        mismatches = summary_["status_mismatches"]
        if mismatches:
            return (f"Tune and we recorded the same revenue {period}, but {mismatches} conversion"
                    f"{'s have' if mismatches != 1 else ' has'} another status at Tune.")
        return f"Tune and we recorded the same revenue {period}."
    direction = "more" if gap >= 0 else "less"
    sentence = f"Tune reports ${money.format_cents(abs(gap))} {direction} than we recorded {period}"
    if missing:
        sentence += f": {missing} conversion{'s' if missing != 1 else ''} we never received"
    return sentence + "."


def _signed_cents(text):
    return -money.parse_cents(text[1:]) if text.startswith("-") else money.parse_cents(text)
