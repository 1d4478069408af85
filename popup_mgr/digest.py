"""The daily digest e-mail: yesterday (a business day in POPUP_TZ) at a glance.

Per property: impressions, clicks, CTR, conversions, revenue, RPM, popup views and revenue per
1,000 views, each against the same weekday of the previous week (weekly seasonality makes "the
day before" a poor comparison); the
top campaigns; conversions whose click is unknown; and, when Tune is connected, the gap between
our figures and Tune's own report for the day.

Figures come from reports.py (the rollups), like every other figure in the product. Rates are
shown only when they mean something: no CTR without impressions or with more clicks than
impressions (clicks can arrive without an impression beacon), no RPM without impressions.
"""
import dataclasses
import datetime as dt
import html

from popup_mgr import alert_settings, mailer, reports, timeutil
from popup_mgr import db as database
from popup_mgr.money import parse_cents

TOP_CAMPAIGNS = 5
LAST_SENT_KEY = "digest.last_sent_day"
NOT_AVAILABLE = "n/a"


@dataclasses.dataclass(frozen=True)
class Digest:
    day: dt.date
    subject: str
    text: str
    html: str


# --- figures -----------------------------------------------------------------------------------

def yesterday(now, tz):
    """The business day before `now`'s (an aware datetime) in time zone tz."""
    today = dt.date.fromisoformat(timeutil.business_day(int(now.timestamp() * 1000), tz))
    return today - dt.timedelta(days=1)


def ctr(clicks, impressions):
    """clicks / impressions, or None when there are no impressions or more clicks than impressions."""
    if impressions <= 0 or clicks > impressions:
        return None
    return clicks / impressions


def rpm_cents(revenue_cents, impressions):
    """Revenue per 1,000 impressions in cents (rounded half up), or None without impressions."""
    if impressions <= 0:
        return None
    return reports.div_half_up(revenue_cents * 1000, impressions)


def change(current, previous):
    """Relative change as a fraction; None when either side is missing or there was nothing before."""
    if current is None or previous is None or previous == 0:
        return None
    return (current - previous) / previous


def row_figures(row):
    """The digest's figures of one reports.measures() row."""
    return {"impressions": row["impressions"], "clicks": row["clicks"],
            "ctr": ctr(row["clicks"], row["impressions"]), "conversions": row["conversions"],
            "revenue_cents": row["revenue_cents"], "rpm_cents": rpm_cents(row["revenue_cents"], row["impressions"]),
            "views": row["views"], "view_rpm_cents": rpm_cents(row["revenue_cents"], row["views"])}


def property_rows(db, day):
    """[{"property", "name", "now": figures, "before": figures}] for every property, then a total."""
    now, before = _scope(day), _scope(day - dt.timedelta(days=7))
    previous = {r["property_id"]: r for r in reports.by_property(db, before)}
    rows = [{"property": r["property"], "name": r["name"], "now": row_figures(r),
             "before": row_figures(previous[r["property_id"]])} for r in reports.by_property(db, now)]
    rows.append({"property": "all", "name": "All properties", "now": row_figures(reports.totals(db, now)),
                 "before": row_figures(reports.totals(db, before))})
    return rows


def top_campaigns(db, day, limit=TOP_CAMPAIGNS):
    """The best campaigns of the day by revenue (then impressions)."""
    return [{"campaign_id": c["campaign_id"], "name": c["name"], **row_figures(c)}
            for c in reports.by_campaign(db, _scope(day))[:limit]]


def _scope(day):
    return reports.Scope(first=day, last=day)


def reconciliation_gap(reconciliation, day):
    """What the reconciliation callable says about `day`, as
    {"ours_cents", "tune_cents" (revenue), "conversions_ours", "conversions_tune", "missing_in_ours",
    "missing_in_tune", "status_mismatches"}, or {"error": message} when it failed."""
    try:
        answer = reconciliation(day, day)
        ours, tune = answer["totals"]["ours"], answer["totals"]["tune"]
        return {"ours_cents": parse_cents(ours["revenue"]), "tune_cents": parse_cents(tune["revenue"]),
                "conversions_ours": ours["conversions"], "conversions_tune": tune["conversions"],
                "missing_in_ours": len(answer.get("missing_in_ours", [])),
                "missing_in_tune": len(answer.get("missing_in_tune", [])),
                "status_mismatches": len(answer.get("status_mismatches", []))}
    except Exception as exc:  # noqa: BLE001 - the digest goes out even when Tune cannot be asked
        return {"error": str(exc)[:300] or type(exc).__name__}


# --- formatting --------------------------------------------------------------------------------

def show_money(cents):
    return NOT_AVAILABLE if cents is None else reports.display_money(cents)


def show_rate(fraction):
    return NOT_AVAILABLE if fraction is None else f"{fraction * 100:.2f}%"


def show_change(current, previous):
    if current is None or previous is None:
        return NOT_AVAILABLE
    if previous == 0:
        return "new" if current else "="
    return f"{change(current, previous) * 100:+.0f}%"


COLUMNS = (("Impressions", "impressions", reports.display_count), ("Clicks", "clicks", reports.display_count),
           ("CTR", "ctr", show_rate), ("Conversions", "conversions", reports.display_count),
           ("Revenue", "revenue_cents", show_money), ("RPM", "rpm_cents", show_money),
           ("Popup views", "views", reports.display_count), ("Per 1k views", "view_rpm_cents", show_money))


def _cells(row):
    """[(value, change vs last week)] per column of a property row."""
    return [(show(row["now"][key]), show_change(row["now"][key], row["before"][key])) for _, key, show in COLUMNS]


def _gap_lines(gap):
    if "error" in gap:
        return [f"Reconciliation with Tune failed: {gap['error']}"]
    ours, tune = gap["ours_cents"], gap["tune_cents"]
    return [f"Revenue: ours {show_money(ours)}, Tune {show_money(tune)} (gap {show_money(ours - tune)});"
            f" conversions: ours {gap['conversions_ours']}, Tune {gap['conversions_tune']}.",
            f"Missing here: {gap['missing_in_ours']}; missing at Tune: {gap['missing_in_tune']};"
            f" status differs: {gap['status_mismatches']}."]


def render_text(day, rows, campaigns, unattributed, gap):
    compared = day - dt.timedelta(days=7)
    lines = [f"popup_mgr digest for {day:%A %Y-%m-%d} (compared with {compared:%A %Y-%m-%d})", ""]
    for row in rows:
        lines.append(f"{row['name']} ({row['property']})" if row["property"] != "all" else "All properties")
        for (label, _, _), (value, delta) in zip(COLUMNS, _cells(row)):
            lines.append(f"  {label:<12} {value:>14}   {delta:>6} vs last week")
    lines += ["", "Top campaigns"]
    if not campaigns:
        lines.append("  no traffic")
    for c in campaigns:
        lines.append(f"  {c['name']} (#{c['campaign_id']}): {show_money(c['revenue_cents'])} revenue,"
                     f" {c['conversions']} conversions, CTR {show_rate(c['ctr'])}, RPM {show_money(c['rpm_cents'])}")
    if unattributed["conversions"]:
        lines += ["", f"Unattributed conversions (click unknown): {unattributed['conversions']},"
                      f" {show_money(unattributed['revenue_cents'])}"]
    if gap is not None:
        lines += ["", "Reconciliation with Tune"] + [f"  {line}" for line in _gap_lines(gap)]
    return "\n".join(lines) + "\n"


def render_html(day, rows, campaigns, unattributed, gap):
    e = html.escape
    compared = day - dt.timedelta(days=7)
    head = "".join(f"<th>{e(label)}</th>" for label, _, _ in COLUMNS)
    body = "".join(
        f"<tr><th>{e(row['name'])}</th>"
        + "".join(f"<td>{e(value)}<br><small>{e(delta)}</small></td>" for value, delta in _cells(row)) + "</tr>"
        for row in rows)
    parts = [f"<h2>popup_mgr digest for {e(f'{day:%A %Y-%m-%d}')}</h2>",
             f"<p>Changes are against {e(f'{compared:%A %Y-%m-%d}')}.</p>",
             f'<table border="1" cellpadding="4" cellspacing="0"><tr><th>Property</th>{head}</tr>{body}</table>',
             "<h3>Top campaigns</h3>"]
    if campaigns:
        parts.append("<ol>" + "".join(
            f"<li>{e(c['name'])} (#{c['campaign_id']}): {e(show_money(c['revenue_cents']))} revenue,"
            f" {c['conversions']} conversions, CTR {e(show_rate(c['ctr']))}, RPM {e(show_money(c['rpm_cents']))}</li>"
            for c in campaigns) + "</ol>")
    else:
        parts.append("<p>No traffic.</p>")
    if unattributed["conversions"]:
        parts.append(f"<p>Unattributed conversions (click unknown): {unattributed['conversions']},"
                     f" {e(show_money(unattributed['revenue_cents']))}</p>")
    if gap is not None:
        parts.append("<h3>Reconciliation with Tune</h3>" + "".join(f"<p>{e(line)}</p>" for line in _gap_lines(gap)))
    return "<!doctype html><html><body>" + "\n".join(parts) + "</body></html>\n"


def subject(day, rows):
    total = rows[-1]
    revenue = show_money(total["now"]["revenue_cents"])
    delta = show_change(total["now"]["revenue_cents"], total["before"]["revenue_cents"])
    return f"[popup_mgr] {day:%a %Y-%m-%d}: {revenue} revenue ({delta} vs {day - dt.timedelta(days=7):%a %m-%d})"


def build(db, day, config, reconciliation=None):
    """The digest for business day `day`. reconciliation: optional callable(first, last) answering
    like `popup-mgr reconcile --json` (its failure is reported in the digest, not raised)."""
    rows, campaigns = property_rows(db, day), top_campaigns(db, day)
    unattributed = reports.unattributed(db, _scope(day), config.get("BUSINESS_TZ", "America/New_York"))
    gap = reconciliation_gap(reconciliation, day) if reconciliation else None
    return Digest(day, subject(day, rows), render_text(day, rows, campaigns, unattributed, gap),
                  render_html(day, rows, campaigns, unattributed, gap))


# --- sending -----------------------------------------------------------------------------------

def last_sent_day(db):
    row = db.execute("/* digest.last_sent_day */ SELECT value FROM settings WHERE key = ?",
                     (LAST_SENT_KEY,)).fetchone()
    return row[0] if row else None


def record_sent(db, day):
    with database.transaction(db):
        db.execute("/* digest.record_sent */ INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)"
                   " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                   (LAST_SENT_KEY, day.isoformat(), timeutil.iso_now()))


def send_digest(db, day, config, reconciliation=None):
    """Build and mail the digest for `day`; returns the recipients. Raises mailer.MailError."""
    digest = build(db, day, config, reconciliation)
    to = mailer.send(config, digest.subject, digest.text, digest.html)
    record_sent(db, day)
    return to


def job(app_config, now=None, *, reconciliation=None):
    """Scheduled job: mail yesterday's digest once (a second run the same day sends nothing).
    A mail failure raises, so the scheduler records the run as failed."""
    now = now or dt.datetime.now(timeutil.UTC)
    day = yesterday(now, app_config.get("BUSINESS_TZ", "America/New_York"))
    if not mailer.is_configured(app_config):
        return f"digest for {day} not sent: e-mail is not configured"
    with database.connection(app_config["DATABASE"]) as db:
        if last_sent_day(db) == day.isoformat():
            return f"digest for {day} already sent"
        to = send_digest(db, day, app_config, reconciliation)
    return f"digest for {day} sent to {len(to)} recipient{'s' if len(to) != 1 else ''}"
