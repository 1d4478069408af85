"""The analytics query layer: every figure on the dashboard, in the CSV exports, the PDF report
and the JSON API comes from here, so that they always agree.

Reports read `daily_stats` (see rollups.py for what its columns mean), never the raw ledger,
with two bounded exceptions that read it through its `ts` indexes: the live view (last 60
minutes) and today's hourly series (at most one day).

Money stays integer cents until it is formatted; derived money figures (RPM, EPC) are computed
in integer math and rounded half-up to the cent.
"""
import dataclasses
import datetime as dt
import math

from popup_mgr import rollups, timeutil
from popup_mgr.money import format_cents

COUNTS = ("impressions", "clicks", "conversions", "revenue_cents", "views")
# A range longer than this is refused (a typo such as from=2016 should not scan a decade).
MAX_RANGE_DAYS = 3 * 366 + 1
# Below this many impressions a campaign's CTR, RPM and confidence interval are not shown:
# a handful of impressions makes any rate look extreme.
MIN_IMPRESSIONS_TO_JUDGE = 100
# Below this many clicks EPC and conversion rate are not shown, for the same reason.
MIN_CLICKS_TO_JUDGE = 20
# Below this many popup views the revenue per 1,000 views is not shown.
MIN_VIEWS_TO_JUDGE = 100
WILSON_Z = 1.96  # 95 % two-sided
PRESETS = (("today", "Today"), ("yesterday", "Yesterday"), ("7d", "Last 7 days"),
           ("30d", "Last 30 days"), ("month", "This month"), ("custom", "Custom"))
LIVE_MINUTES = 60


class ReportError(ValueError):
    """A report request that cannot be answered (bad dates, unknown property)."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.field = field


class UnknownProperty(ReportError):
    pass


@dataclasses.dataclass(frozen=True)
class Scope:
    """What a report covers: inclusive business days, one property (or all), one campaign (or all)."""
    first: dt.date
    last: dt.date
    property_id: int | None = None
    property_code: str = "all"
    campaign_id: int | None = None

    @property
    def days(self):
        return (self.last - self.first).days + 1

    def previous(self):
        """The period of equal length just before this one."""
        length = dt.timedelta(days=self.days)
        return dataclasses.replace(self, first=self.first - length, last=self.last - length)

    def params(self):
        return {"first": self.first.isoformat(), "last": self.last.isoformat(),
                "property_id": self.property_id, "campaign_id": self.campaign_id}


# --- ranges and properties ---------------------------------------------------------------------

def parse_day(text, field):
    try:
        return dt.date.fromisoformat((text or "").strip())
    except ValueError:
        raise ReportError(f"{field} must be a date as YYYY-MM-DD", field) from None


def parse_range(from_text, to_text, today):
    """Inclusive (first, last) from YYYY-MM-DD strings; missing values default to the last 30 days."""
    last = parse_day(to_text, "to") if to_text else today
    first = parse_day(from_text, "from") if from_text else min(last, today) - dt.timedelta(days=29)
    if first > last:
        raise ReportError("from must not be after to", "from")
    # Days after today hold no data, so only the past part of the range counts against the limit.
    if (min(last, today) - first).days + 1 > MAX_RANGE_DAYS:
        raise ReportError(f"the range may span at most {MAX_RANGE_DAYS} days up to today", "from")
    return first, last


def preset_range(name, today):
    """(first, last) for a dashboard preset; None for an unknown name."""
    one = dt.timedelta(days=1)
    return {
        "today": (today, today),
        "yesterday": (today - one, today - one),
        "7d": (today - 6 * one, today),
        "30d": (today - 29 * one, today),
        "month": (today.replace(day=1), today),
    }.get(name)


def properties(db):
    return [dict(r) for r in db.execute(
        "/* reports.properties */ SELECT id, code, name FROM properties ORDER BY id")]


def resolve_property(db, code):
    """(property_id or None for 'all', code); raises UnknownProperty."""
    if code == "all":
        return None, "all"
    row = db.execute("/* reports.resolve_property */ SELECT id, code FROM properties WHERE code = ?",
                     (code,)).fetchone()
    if row is None:
        raise UnknownProperty(f"unknown property {code!r}", "property")
    return row["id"], row["code"]


def campaign(db, campaign_id):
    row = db.execute("/* reports.campaign */ SELECT id, name, display_title, active, payout_cents,"
                     " tune_campaign_id FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()
    return dict(row) if row else None


def _campaign_names(db):
    return {r["id"]: r["name"] for r in db.execute("/* reports.campaign_names */ SELECT id, name FROM campaigns")}


def _property_codes(db):
    return {r["id"]: r["code"] for r in db.execute("/* reports.property_codes */ SELECT id, code FROM properties")}


# --- measures ----------------------------------------------------------------------------------

def div_half_up(numerator, denominator):
    """round(numerator / denominator) with halves rounded up, in integers (both >= 0)."""
    if denominator <= 0:
        return 0
    return (2 * numerator + denominator) // (2 * denominator)


def wilson_interval(successes, trials, z=WILSON_Z):
    """95 % Wilson score interval of a proportion, as (low, high); (0, 0) with no trials.

    Clicks may outnumber impressions (a click whose impression beacon never arrived is real
    traffic): the interval is then that of every trial a success, so it stays inside [0, 1]
    and the square root never sees a negative number."""
    if trials <= 0:
        return 0.0, 0.0
    p = min(max(successes, 0), trials) / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(max(0.0, p * (1 - p) / trials + z * z / (4 * trials * trials))) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def measures(row):
    """Counts plus every derived figure, from a mapping with the COUNTS.

    Views are popup displays (one per thank-you page that showed the popup, however many offers
    it paged through); view_rpm_cents is the revenue per 1,000 of them. A campaign's views are the
    displays that opened on it, so view figures are shown for properties and totals only."""
    m = {key: int(row[key] or 0) for key in COUNTS}
    imps, clicks = m["impressions"], m["clicks"]
    m["ctr"] = clicks / imps if imps else 0.0
    m["conversion_rate"] = m["conversions"] / clicks if clicks else 0.0
    m["rpm_cents"] = div_half_up(m["revenue_cents"] * 1000, imps)
    m["epc_cents"] = div_half_up(m["revenue_cents"], clicks)
    m["view_rpm_cents"] = div_half_up(m["revenue_cents"] * 1000, m["views"])
    m["ctr_low"], m["ctr_high"] = wilson_interval(clicks, imps)
    m["enough_impressions"] = imps >= MIN_IMPRESSIONS_TO_JUDGE
    m["enough_clicks"] = clicks >= MIN_CLICKS_TO_JUDGE
    m["enough_views"] = m["views"] >= MIN_VIEWS_TO_JUDGE
    return m


def zero():
    return measures(dict.fromkeys(COUNTS, 0))


def api_measures(m):
    """The public contract's measure keys: integers, money as decimal strings, ctr a fraction."""
    return {"impressions": m["impressions"], "clicks": m["clicks"], "ctr": round(m["ctr"], 6),
            "conversions": m["conversions"], "revenue": format_cents(m["revenue_cents"]),
            "rpm": format_cents(m["rpm_cents"]), "epc": format_cents(m["epc_cents"])}


def api_view_measures(m):
    """Popup views and the revenue per 1,000 of them, in the API's formats."""
    return {"views": m["views"], "revenue_per_1000_views": format_cents(m["view_rpm_cents"])}


def change(current, previous):
    """Relative change as a fraction (0.12 = +12 %), None when there is nothing to compare to."""
    if not previous:
        return None
    return (current - previous) / previous


def display_money(cents):
    """1234567 -> '$12,345.67' (screens and the PDF; exports use plain decimals)."""
    text = format_cents(cents)
    whole, _, fraction = text.lstrip("-").partition(".")
    return ("-" if text.startswith("-") else "") + f"${int(whole):,}.{fraction}"


def display_count(number):
    return f"{int(number):,}"


def display_percent(fraction, digits=2):
    return f"{fraction * 100:.{digits}f}%"


def display(value, kind):
    """A KPI value for people: kind is 'money' (cents), 'percent' (fraction) or 'count'."""
    if kind == "money":
        return display_money(value)
    if kind == "percent":
        return display_percent(value)
    return display_count(value)


# --- rollup queries ----------------------------------------------------------------------------

# Group-by shapes of daily_stats; identifiers come only from this table.
_GROUPS = {
    "total": "",
    "day": "day",
    "campaign_property": "campaign_id, property_id",
    "grid": "day, property_id, campaign_id",
}


def _rollup(db, scope, group):
    """Summed counts from daily_stats for scope, grouped by one of _GROUPS."""
    columns = _GROUPS[group]
    where = "day BETWEEN :first AND :last"
    if scope.property_id is not None:
        where += " AND property_id = :property_id"
    if scope.campaign_id is not None:
        where += " AND campaign_id = :campaign_id"
    select = (columns + ", ") if columns else ""
    sql = (f"/* reports.rollup_{group} */ SELECT {select}sum(impressions) AS impressions,"
           " sum(clicks) AS clicks, sum(conversions) AS conversions, sum(revenue_cents) AS revenue_cents,"
           f" sum(views) AS views FROM daily_stats WHERE {where}")
    if columns:
        sql += f" GROUP BY {columns} ORDER BY {columns}"
    return db.execute(sql, scope.params()).fetchall()


def totals(db, scope):
    return measures(_rollup(db, scope, "total")[0])


def by_day(db, scope, until=None):
    """[{"date", measures...}] for every day of the range up to `until` (today: later days have
    no data yet), zero-filled."""
    found = {r["day"]: r for r in _rollup(db, scope, "day")}
    rows = []
    last = min(scope.last, until) if until else scope.last
    for offset in range((last - scope.first).days + 1):
        day = (scope.first + dt.timedelta(days=offset)).isoformat()
        rows.append({"date": day, **(measures(found[day]) if day in found else zero())})
    return rows


def _sum(rows):
    acc = dict.fromkeys(COUNTS, 0)
    for row in rows:
        for key in COUNTS:
            acc[key] += row[key]
    return acc


def campaign_property_rows(db, scope):
    """daily_stats summed per (campaign, property) for scope: the one scan that campaign rows,
    property rows and totals can all be derived from (a few dozen rows, whatever the range)."""
    return _rollup(db, scope, "campaign_property")


def by_campaign(db, scope, rows=None):
    """Campaigns with any traffic in scope, best revenue first, each with a per-property split.
    `rows`: campaign_property_rows() of scope or of a wider scope (filtered here to scope's property)."""
    names, codes = _campaign_names(db), _property_codes(db)
    groups = {}
    for r in campaign_property_rows(db, scope) if rows is None else rows:
        if scope.property_id is None or r["property_id"] == scope.property_id:
            groups.setdefault(r["campaign_id"], []).append(r)
    result = [{"campaign_id": campaign_id, "name": names.get(campaign_id, f"#{campaign_id}"),
               **measures(_sum(parts)),
               "properties": [{"property_id": p["property_id"], "property": codes.get(p["property_id"], "?"),
                               **measures(p)} for p in parts]}
              for campaign_id, parts in groups.items()]
    result.sort(key=lambda row: (-row["revenue_cents"], -row["impressions"], row["campaign_id"]))
    return result


def by_property(db, scope, rows=None):
    """Every property (zeros included) for the comparison table, in their usual order.
    `rows`: campaign_property_rows() of scope, if already fetched."""
    found = {}
    for r in campaign_property_rows(db, scope) if rows is None else rows:
        found.setdefault(r["property_id"], []).append(r)
    return [{"property_id": p["id"], "property": p["code"], "name": p["name"],
             **measures(_sum(found.get(p["id"], [])))}
            for p in properties(db)
            if scope.property_id is None or p["id"] == scope.property_id]


def grid(db, scope):
    """One row per day x property x campaign (the CSV grain of the public API)."""
    names, codes = _campaign_names(db), _property_codes(db)
    return [{"date": r["day"], "property": codes.get(r["property_id"], "?"),
             "campaign_id": r["campaign_id"], "campaign_name": names.get(r["campaign_id"], ""),
             **measures(r)} for r in _rollup(db, scope, "grid")]


def unattributed(db, scope, tz):
    """Approved non-test conversions whose click is unknown, received during the range's days.
    They are not in daily_stats (no campaign, property or click day), so they are shown apart."""
    start, _ = timeutil.day_bounds_ms(scope.first, tz)
    _, end = timeutil.day_bounds_ms(scope.last, tz)
    row = db.execute("/* reports.unattributed */ SELECT count(*) AS conversions,"
                     " coalesce(sum(payout_cents), 0) AS revenue_cents FROM conversions"
                     f" WHERE ts >= ? AND ts < ? AND {rollups.counted_sql(attributed=False)}",
                     (start, end)).fetchone()
    return {"conversions": row["conversions"], "revenue_cents": row["revenue_cents"]}


def api_report(db, scope, today):
    """The JSON answer of GET /api/analytics/<property>; `days` runs from `from` to the earlier of
    `to` and today."""
    campaigns = by_campaign(db, scope)
    total = measures(_sum(campaigns))
    return {
        "property": scope.property_code,
        "from": scope.first.isoformat(),
        "to": scope.last.isoformat(),
        "totals": api_measures(total),
        # Popup views (displays of the popup) and revenue per 1,000 of them, for the whole range.
        "popup_views": api_view_measures(total),
        "campaigns": [{"campaign_id": c["campaign_id"], "name": c["name"], **api_measures(c)}
                      for c in campaigns],
        "days": [{"date": d["date"], **api_measures(d)} for d in by_day(db, scope, until=today)],
    }


# --- series for charts -------------------------------------------------------------------------

def granularity(scope, today):
    if scope.first == scope.last == today:
        return "hour"
    if scope.days <= 92:
        return "day"
    if scope.days <= 400:
        return "week"
    return "month"


def bucket(days, unit):
    """Sum day rows into weeks (starting Monday) or months; labels are the bucket's first day."""
    if unit == "day":
        return [{"label": _label(dt.date.fromisoformat(d["date"]), unit), **d} for d in days]
    buckets = {}
    for d in days:
        date = dt.date.fromisoformat(d["date"])
        start = date - dt.timedelta(days=date.weekday()) if unit == "week" else date.replace(day=1)
        acc = buckets.setdefault(start, dict.fromkeys(COUNTS, 0))
        for key in COUNTS:
            acc[key] += d[key]
    return [{"label": _label(start, unit), "date": start.isoformat(), **measures(acc)}
            for start, acc in sorted(buckets.items())]


def _label(date, unit):
    """Short axis labels: 'Nov 24' for days, 'Wk Nov 17' for weeks, 'Nov 2026' for months."""
    if unit == "month":
        return date.strftime("%b %Y")
    text = f"{date.strftime('%b')} {date.day}"
    return "Wk " + text if unit == "week" else text


def hourly_today(db, scope, tz, now_ms):
    """Today's series per hour, from the ledger (one day at most, through the ts indexes).
    Conversions are placed in their click's hour, as daily_stats counts them on the click's day."""
    start, end = timeutil.day_bounds_ms(scope.first, tz)
    end = min(end, now_ms + 1)
    hours = max(1, -(-(end - start) // 3_600_000))
    acc = [dict.fromkeys(COUNTS, 0) for _ in range(hours)]
    params = {"start": start, "end": end, "day": scope.first.isoformat(),
              "property_id": scope.property_id, "campaign_id": scope.campaign_id}
    filters = "".join([" AND {t}.property_id = :property_id" if scope.property_id is not None else "",
                       " AND {t}.campaign_id = :campaign_id" if scope.campaign_id is not None else ""])
    for table, views in (("impressions", "sum(is_view)"), ("clicks", "0")):
        sql = (f"/* reports.hourly_today */ SELECT (ts - :start) / 3600000 AS hour, count(*) AS n,"
               f" {views} AS views FROM {table} i WHERE ts >= :start AND ts < :end AND is_bot = 0"
               f"{filters.format(t='i')} GROUP BY hour")
        for r in db.execute(sql, params):
            slot = acc[min(r["hour"], hours - 1)]
            slot[table] += r["n"]
            slot["views"] += r["views"]
    sql = ("/* reports.hourly_today */ SELECT (k.ts - :start) / 3600000 AS hour, count(*) AS n,"
           " sum(c.payout_cents) AS cents FROM conversions c JOIN clicks k ON k.id = c.click_row_id"
           f" WHERE c.ts >= :start AND c.day = :day AND {rollups.counted_sql('c')}"
           f"{filters.format(t='c')} GROUP BY hour")
    for r in db.execute(sql, params):
        slot = acc[max(0, min(r["hour"], hours - 1))]
        slot["conversions"] += r["n"]
        slot["revenue_cents"] += r["cents"]
    zone = timeutil.ZoneInfo(tz)
    return [{"label": dt.datetime.fromtimestamp((start + h * 3_600_000) / 1000, zone).strftime("%H:00"),
             "date": scope.first.isoformat(), **measures(a)} for h, a in enumerate(acc)]


def series(db, scope, tz, today, now_ms, days=None):
    """Chart points for the range at the granularity that suits it; each point says whether it is
    still in progress ("partial": the current hour, today, this week or month)."""
    unit = granularity(scope, today)
    if unit == "hour":
        points = hourly_today(db, scope, tz, now_ms)
    else:
        points = bucket(by_day(db, scope, until=today) if days is None else days, unit)
    for index, point in enumerate(points):
        point["partial"] = _in_progress(unit, point, index == len(points) - 1, today)
    return unit, points


def _in_progress(unit, point, is_last, today):
    """Whether a chart point covers time that has not finished yet (drawn apart, never as a drop)."""
    if unit == "hour":
        return is_last and point["date"] == today.isoformat()
    start = dt.date.fromisoformat(point["date"])
    if unit == "day":
        return start == today
    if unit == "week":
        return start <= today < start + dt.timedelta(days=7)
    return (start.year, start.month) == (today.year, today.month)


def ledger_totals(db, scope, start_ms, end_ms):
    """Counts for events in [start_ms, end_ms) from the ledger (a part of one day, through the ts
    indexes), filtered like scope. A conversion counts under its click, as in daily_stats, and only
    if it had arrived by end_ms: the same hours of another day must not include later postbacks."""
    params = {"start": start_ms, "end": end_ms, "property_id": scope.property_id,
              "campaign_id": scope.campaign_id}
    filters = "".join([" AND {t}.property_id = :property_id" if scope.property_id is not None else "",
                       " AND {t}.campaign_id = :campaign_id" if scope.campaign_id is not None else ""])
    found = {}
    for table, views in (("impressions", "coalesce(sum(is_view), 0)"), ("clicks", "0")):
        found[table] = db.execute(
            f"/* reports.ledger_totals */ SELECT count(*) AS n, {views} AS views FROM {table} e"
            f" WHERE ts >= :start AND ts < :end AND is_bot = 0{filters.format(t='e')}", params).fetchone()
    row = db.execute(
        "/* reports.ledger_totals */ SELECT count(*) AS n, coalesce(sum(c.payout_cents), 0) AS cents"
        " FROM conversions c JOIN clicks k ON k.id = c.click_row_id WHERE k.ts >= :start AND k.ts < :end"
        f" AND c.ts < :end AND {rollups.counted_sql('c')}{filters.format(t='c')}", params).fetchone()
    return {"impressions": found["impressions"]["n"], "clicks": found["clicks"]["n"], "conversions": row["n"],
            "revenue_cents": row["cents"], "views": found["impressions"]["views"]}


def previous_totals(db, scope, tz, now_ms, today):
    """(measures of the period before scope, "HH:MM" or None).

    A range that ends today holds only part of today: it is compared with the period before it
    cut at the same local time of day ("14:05"), so at 14:05 today is compared with yesterday
    until 14:05, not with the whole of yesterday (which made every figure look like a fall)."""
    previous = scope.previous()
    if scope.last != today:
        return totals(db, previous), None
    zone = timeutil.ZoneInfo(tz)
    now_local = dt.datetime.fromtimestamp(now_ms / 1000, zone)
    partial_day = previous.last
    start, end = timeutil.day_bounds_ms(partial_day, tz)
    cutoff = int(dt.datetime.combine(partial_day, now_local.time().replace(tzinfo=None), zone).timestamp() * 1000)
    parts = [ledger_totals(db, scope, start, max(start, min(cutoff, end)))]
    if previous.first < partial_day:
        whole = dataclasses.replace(previous, last=partial_day - dt.timedelta(days=1))
        parts.append({key: int(value or 0) for key, value in dict(_rollup(db, whole, "total")[0]).items()})
    return measures(_sum(parts)), now_local.strftime("%H:%M")


def chart_payload(unit, points, property_rows):
    """The JSON the dashboard's charts are drawn from (money as decimal strings); `partial` marks
    the points still in progress, which the charts draw pale and dashed."""
    return {
        "unit": unit,
        "labels": [p["label"] for p in points],
        "partial": [bool(p.get("partial")) for p in points],
        "revenue": [format_cents(p["revenue_cents"]) for p in points],
        "rpm": [format_cents(p["rpm_cents"]) for p in points],
        "impressions": [p["impressions"] for p in points],
        "clicks": [p["clicks"] for p in points],
        "properties": [p["property"] for p in property_rows],
        "property_revenue": [format_cents(p["revenue_cents"]) for p in property_rows],
    }


# --- the dashboard as a whole ------------------------------------------------------------------

KPIS = (("impressions", "Impressions", "count"), ("clicks", "Clicks", "count"),
        ("ctr", "CTR", "percent"), ("conversions", "Conversions", "count"),
        ("conversion_rate", "Conversion rate", "percent"), ("revenue_cents", "Revenue", "money"),
        ("rpm_cents", "RPM", "money"), ("epc_cents", "EPC", "money"))
# Popup views belong to a property, not to a campaign: these tiles are left off a campaign's page.
VIEW_KPIS = (("views", "Popup views", "count"), ("view_rpm_cents", "Revenue / 1,000 views", "money"))


def kpis(current, previous, with_views=True):
    return [{"key": key, "label": label, "kind": kind, "value": current[key],
             "previous": previous[key], "change": change(current[key], previous[key])}
            for key, label, kind in KPIS + (VIEW_KPIS if with_views else ())]


def dashboard(db, scope, tz, now_ms):
    """Everything the dashboard (and the PDF report) shows for scope."""
    today = dt.date.fromisoformat(timeutil.business_day(now_ms, tz))
    # Three scans of daily_stats whatever the range: per (campaign, property) for every property
    # (campaign rows, property comparison and totals derive from it), per day, previous totals.
    every_property = dataclasses.replace(scope, property_id=None)
    split = campaign_property_rows(db, every_property)
    campaigns = by_campaign(db, scope, split)
    property_rows = by_property(db, every_property, split)
    shown_properties = [row for row in property_rows
                        if scope.property_id is None or row["property_id"] == scope.property_id]
    current = measures(_sum(campaigns))
    previous, compared_until = previous_totals(db, scope, tz, now_ms, today)
    days = by_day(db, scope, until=today)
    unit, points = series(db, scope, tz, today, now_ms, days)
    return {
        "scope": scope,
        "totals": current,
        "previous_totals": previous,
        # "HH:MM" when the range ends today and is compared with the same hours before it.
        "compared_until": compared_until,
        "kpis": kpis(current, previous, with_views=scope.campaign_id is None),
        "days": days,
        "unit": unit,
        "points": points,
        "campaigns": campaigns,
        # With one property chosen, the property widgets show that property only.
        "properties": shown_properties,
        # Unattributed conversions have no property or campaign: shown on the all-properties view only.
        "unattributed": (unattributed(db, scope, tz) if scope.property_id is None and scope.campaign_id is None
                         else {"conversions": 0, "revenue_cents": 0}),
        "chart": chart_payload(unit, points, shown_properties),
    }


# --- live view ---------------------------------------------------------------------------------

def live(db, now_ms, minutes=LIVE_MINUTES):
    """Per-minute impressions, clicks and conversions (by arrival) for the last `minutes`
    minutes, oldest first, from the ledger's ts indexes."""
    end = now_ms - now_ms % 60_000 + 60_000            # end of the current minute
    start = end - minutes * 60_000
    slots = [{"minute_ms": start + i * 60_000, "impressions": 0, "clicks": 0, "conversions": 0,
              "revenue_cents": 0} for i in range(minutes)]
    queries = (
        ("impressions", "SELECT (ts - :start) / 60000 AS slot, count(*) AS n, 0 AS cents FROM impressions"
                        " WHERE ts >= :start AND ts < :end AND is_bot = 0 GROUP BY slot"),
        ("clicks", "SELECT (ts - :start) / 60000 AS slot, count(*) AS n, 0 AS cents FROM clicks"
                   " WHERE ts >= :start AND ts < :end AND is_bot = 0 GROUP BY slot"),
        ("conversions", "SELECT (ts - :start) / 60000 AS slot, count(*) AS n, sum(payout_cents) AS cents"
                        " FROM conversions WHERE ts >= :start AND ts < :end"
                        f" AND {rollups.counted_sql()} GROUP BY slot"),
    )
    for key, sql in queries:
        for r in db.execute(f"/* reports.live */ {sql}", {"start": start, "end": end}):
            slots[r["slot"]][key] += r["n"]
            slots[r["slot"]]["revenue_cents"] += r["cents"]
    total = {key: sum(s[key] for s in slots) for key in ("impressions", "clicks", "conversions", "revenue_cents")}
    return {"start_ms": start, "end_ms": end, "minutes": slots, "total": total}


# --- the campaign list and a campaign's page ---------------------------------------------------

RECENT_DAYS = 7


def recent_scope(tz, now_ms, days=RECENT_DAYS):
    """The last `days` business days, today included: what the campaign list's figures cover."""
    today = dt.date.fromisoformat(timeutil.business_day(now_ms, tz))
    return Scope(first=today - dt.timedelta(days=days - 1), last=today)


def recent_by_campaign(db, tz, now_ms, days=RECENT_DAYS):
    """{campaign_id: measures} over recent_scope(); campaigns without traffic are absent (the
    list shows them as "no traffic"). One scan of daily_stats for every campaign at once."""
    groups = {}
    for row in campaign_property_rows(db, recent_scope(tz, now_ms, days)):
        groups.setdefault(row["campaign_id"], []).append(row)
    return {campaign_id: measures(_sum(rows)) for campaign_id, rows in groups.items()}


def properties_run_on(property_rows, targeted_codes):
    """The per-property rows a campaign's page lists: the properties it targets (all of them when
    it targets none) and any other one that still had its traffic in the range (it was targeted
    then); never a property it has nothing to do with."""
    return [row for row in property_rows
            if not targeted_codes or row["property"] in targeted_codes or row["impressions"] > 0]
