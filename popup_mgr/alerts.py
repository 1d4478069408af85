"""Alerts: incident rules computed from the database, and one e-mail when an incident opens and
one when it clears.

Each rule looks at its subjects (a property, a campaign, the postbacks, the backup, the Tune
sync) and says for each one FIRING, CLEAR or UNKNOWN (not enough data to judge either way, e.g.
a quiet night hour or too few impressions today). An incident opens when its subject fires
and none is open for it, and clears only on a clear verdict, never on UNKNOWN: an alert does
not flap off because the data went thin. An open incident whose subject a rule no longer watches
(campaign paused, property disabled) is cleared as such.

Rules and their thresholds (settings in alert_settings.SETTINGS, env POPUP_ALERT_*):

  property_silent  an active property with the popup on and an active campaign to show has
                   had no human impression for
                   ALERT_SILENT_HOURS, while the same hours (wall clock, business time zone) of
                   the previous 7 days averaged at least ALERT_SILENT_MIN_EXPECTED: the script
                   probably fell off a page. Clears at the next impression.
  ctr_collapse     an active campaign has ALERT_CTR_MIN_IMPRESSIONS impressions today and its CTR
                   is below ALERT_CTR_RATIO of its own CTR over the previous 7 days, and so few
                   clicks are unlikely by chance (Poisson tail below ALERT_CTR_MAX_P); usually a
                   broken image. Clears when today's CTR is back above ALERT_CTR_CLEAR_RATIO.
  postbacks_stopped  at least ALERT_POSTBACK_MIN_CLICKS human clicks since the last postback
                   from the network, and more than ALERT_POSTBACK_FACTOR times the usual clicks
                   per conversion of the last ALERT_POSTBACK_BASELINE_DAYS days. Clears when
                   postbacks arrive again.
  backup_failed    the backup job's last outcome failed. Clears after a good backup.
  tune_sync_failing  the last ALERT_TUNE_FAILURES Tune syncs all failed. Clears after a good one.
  image_broken     an active campaign's image failed ALERT_IMAGE_FAILURES checks in a row
                   (image_check.py). Clears after a good check.

Outcomes of the backup and Tune jobs are passed in as callables (the scheduler keeps them): an
outcome is a mapping or object with `ok` (bool) and `message` (or `outcome`), or an (ok, message)
pair; None means "never ran".
"""
import dataclasses
import datetime as dt
import logging
import math
from zoneinfo import ZoneInfo

from popup_mgr import alert_settings, image_check, mailer, timeutil
from popup_mgr import db as database

log = logging.getLogger(__name__)

FIRING, CLEAR, UNKNOWN = "firing", "clear", "unknown"
HOUR_MS = 3_600_000
BASELINE_DAYS = 7
ALERTS_PATH = "/admin/alerts"


@dataclasses.dataclass(frozen=True)
class Finding:
    rule: str
    subject: str
    state: str
    summary: str = ""     # for FIRING: one line, the alert mail's subject
    details: str = ""     # the figures behind the verdict


@dataclasses.dataclass(frozen=True)
class Context:
    now: dt.datetime
    now_ms: int
    tz: ZoneInfo
    config: dict
    backup_outcome: object = None
    tune_outcomes: object = None

    def setting(self, name):
        return alert_settings.get(self.config, name)

    @property
    def today(self):
        return dt.date.fromisoformat(timeutil.business_day(self.now_ms, self.tz))


# --- statistics --------------------------------------------------------------------------------

def poisson_cdf(k, mean):
    """P(X <= k) for X ~ Poisson(mean), summed in log space so that large means do not underflow."""
    if k < 0:
        return 0.0
    if mean <= 0:
        return 1.0
    logs = [-mean + i * math.log(mean) - math.lgamma(i + 1) for i in range(int(k) + 1)]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(value - top) for value in logs))


def ratio(numerator, denominator):
    """numerator / denominator, or None when the denominator is not positive."""
    return numerator / denominator if denominator > 0 else None


# --- queries -----------------------------------------------------------------------------------

def watched_properties(db):
    """Properties whose silence would mean something: active, with the popup on and at least one
    active campaign to show (a campaign without property rows runs on every property)."""
    return [dict(r) for r in db.execute(
        "/* alerts.watched_properties */ SELECT p.id, p.code, p.name FROM properties p"
        " WHERE p.active = 1 AND p.popup_enabled = 1 AND EXISTS ("
        "  SELECT 1 FROM campaigns c WHERE c.active = 1 AND ("
        "   NOT EXISTS (SELECT 1 FROM campaign_properties cp WHERE cp.campaign_id = c.id)"
        "   OR EXISTS (SELECT 1 FROM campaign_properties cp WHERE cp.campaign_id = c.id AND cp.property_id = p.id)))"
        " ORDER BY p.id")]


def impressions_by_property(db, start_ms, end_ms):
    """{property_id: human impressions} in [start_ms, end_ms), through the ts index."""
    return {r["property_id"]: r["n"] for r in db.execute(
        "/* alerts.impressions_by_property */ SELECT property_id, count(*) AS n FROM impressions"
        " WHERE ts >= ? AND ts < ? AND is_bot = 0 GROUP BY property_id", (start_ms, end_ms))}


def last_impression_ms(db, property_id, since_ms):
    return db.execute("/* alerts.last_impression_ms */ SELECT max(ts) FROM impressions"
                      " WHERE ts >= ? AND property_id = ? AND is_bot = 0", (since_ms, property_id)).fetchone()[0]


def active_campaigns(db):
    return [dict(r) for r in db.execute(
        "/* alerts.active_campaigns */ SELECT id, name, image_url FROM campaigns WHERE active = 1 ORDER BY id")]


def traffic_by_campaign(db, first_day, last_day):
    """{campaign_id: (impressions, clicks)} of humans over the inclusive business days."""
    return {r["campaign_id"]: (r["impressions"], r["clicks"]) for r in db.execute(
        "/* alerts.traffic_by_campaign */ SELECT campaign_id, sum(impressions) AS impressions,"
        " sum(clicks) AS clicks FROM daily_stats WHERE day BETWEEN ? AND ? GROUP BY campaign_id",
        (first_day.isoformat(), last_day.isoformat()))}


def clicks_and_conversions(db, first_day, last_day):
    """(human clicks, approved conversions) over the inclusive business days, from the rollups."""
    row = db.execute("/* alerts.clicks_and_conversions */ SELECT coalesce(sum(clicks), 0),"
                     " coalesce(sum(conversions), 0) FROM daily_stats WHERE day BETWEEN ? AND ?",
                     (first_day.isoformat(), last_day.isoformat())).fetchone()
    return row[0], row[1]


def last_postback_ms(db):
    """When the network last sent a postback (any status, attributed or not; test ones excluded)."""
    return db.execute("/* alerts.last_postback_ms */ SELECT max(updated_ts) FROM conversions"
                      " WHERE is_test = 0").fetchone()[0]


def human_clicks_since(db, since_ms, until_ms):
    return db.execute("/* alerts.human_clicks_since */ SELECT count(*) FROM clicks"
                      " WHERE ts > ? AND ts <= ? AND is_bot = 0", (since_ms, until_ms)).fetchone()[0]


def open_incidents(db):
    """{(rule, subject): row} of the incidents still open."""
    return {(r["rule"], r["subject"]): dict(r) for r in db.execute(
        "/* alerts.open_incidents */ SELECT * FROM incidents WHERE closed_at IS NULL")}


def incidents(db, open_only=False, limit=100):
    """Incidents for the Alerts page: open ones first, then newest first."""
    where = "WHERE closed_at IS NULL" if open_only else ""
    return [dict(r) for r in db.execute(
        f"/* alerts.incidents */ SELECT * FROM incidents {where}"
        " ORDER BY closed_at IS NOT NULL, opened_at DESC, id DESC LIMIT ?", (int(limit),))]


def incidents_awaiting_mail(db):
    return [dict(r) for r in db.execute(
        "/* alerts.incidents_awaiting_mail */ SELECT * FROM incidents"
        " WHERE open_mail IS NULL OR (closed_at IS NOT NULL AND close_mail IS NULL) ORDER BY id")]


# --- rules -------------------------------------------------------------------------------------

def property_silent(db, ctx):
    hours = ctx.setting("ALERT_SILENT_HOURS")
    window_ms = int(hours * HOUR_MS)
    recent = impressions_by_property(db, ctx.now_ms - window_ms, ctx.now_ms)
    usual = _same_hours_of_last_week(db, ctx, window_ms)
    findings = []
    for prop in watched_properties(db):
        subject, seen, expected = f"property:{prop['code']}", recent.get(prop["id"], 0), usual.get(prop["id"], 0.0)
        if seen:
            findings.append(Finding("property_silent", subject, CLEAR,
                                    details=f"{seen} impressions in the last {hours:g} h"))
        elif expected >= ctx.setting("ALERT_SILENT_MIN_EXPECTED"):
            last = last_impression_ms(db, prop["id"], ctx.now_ms - (BASELINE_DAYS + 1) * 24 * HOUR_MS)
            findings.append(Finding(
                "property_silent", subject, FIRING,
                f"{prop['code']} ({prop['name']}): no impressions for {hours:g} h",
                f"No human impression on {prop['code']} in the last {hours:g} h; the same hours of the"
                f" previous {BASELINE_DAYS} days averaged {expected:.0f}. Last impression: {_when(last)}."
                " Check that the popup script is still on the property's pages."))
        else:
            findings.append(Finding("property_silent", subject, UNKNOWN,
                                    details=f"quiet hours: {expected:.1f} impressions usual"))
    return findings


def _same_hours_of_last_week(db, ctx, window_ms):
    """{property_id: average human impressions} in the same wall-clock window of the previous
    7 days (DST-correct: the window ends at the same local time each day)."""
    local_now = ctx.now.astimezone(ctx.tz)
    totals = {}
    for days_back in range(1, BASELINE_DAYS + 1):
        end_ms = int((local_now - dt.timedelta(days=days_back)).timestamp() * 1000)
        for property_id, n in impressions_by_property(db, end_ms - window_ms, end_ms).items():
            totals[property_id] = totals.get(property_id, 0) + n
    return {property_id: n / BASELINE_DAYS for property_id, n in totals.items()}


def ctr_collapse(db, ctx):
    today = ctx.today
    now_traffic = traffic_by_campaign(db, today, today)
    baseline = traffic_by_campaign(db, today - dt.timedelta(days=BASELINE_DAYS), today - dt.timedelta(days=1))
    return [_ctr_finding(campaign, now_traffic.get(campaign["id"], (0, 0)),
                         baseline.get(campaign["id"], (0, 0)), ctx)
            for campaign in active_campaigns(db)]


def _ctr_finding(campaign, today, baseline, ctx):
    subject = f"campaign:{campaign['id']}"
    (imps, clicks), (base_imps, base_clicks) = today, baseline
    if base_clicks < ctx.setting("ALERT_CTR_BASELINE_MIN_CLICKS") or not base_imps:
        return Finding("ctr_collapse", subject, UNKNOWN, details="too little history for a baseline")
    if imps < ctx.setting("ALERT_CTR_MIN_IMPRESSIONS"):
        return Finding("ctr_collapse", subject, UNKNOWN, details=f"only {imps} impressions today")
    # Clicks can exceed impressions (clicks without an impression beacon): a CTR is at most 1.
    base_ctr, ctr = min(base_clicks / base_imps, 1.0), min(clicks / imps, 1.0)
    figures = (f"today {clicks} clicks / {imps} impressions = CTR {ctr:.2%};"
               f" previous {BASELINE_DAYS} days {base_clicks} / {base_imps} = {base_ctr:.2%}")
    # The Poisson tail costs one term per click: only worth computing once the CTR looks low.
    chance = poisson_cdf(clicks, imps * base_ctr) if ctr < ctx.setting("ALERT_CTR_RATIO") * base_ctr else 1.0
    if chance < ctx.setting("ALERT_CTR_MAX_P"):
        return Finding("ctr_collapse", subject, FIRING,
                       f"campaign {campaign['name']!r}: CTR {ctr:.2%} today vs {base_ctr:.2%} usual",
                       f"{figures} (chance {chance:.1e}). Usually a broken image or a changed offer:"
                       " check the campaign's image and its landing page.")
    if ctr >= ctx.setting("ALERT_CTR_CLEAR_RATIO") * base_ctr:
        return Finding("ctr_collapse", subject, CLEAR, details=figures)
    return Finding("ctr_collapse", subject, UNKNOWN, details=figures)


def postbacks_stopped(db, ctx):
    days = ctx.setting("ALERT_POSTBACK_BASELINE_DAYS")
    clicks, conversions = clicks_and_conversions(db, ctx.today - dt.timedelta(days=days),
                                                 ctx.today - dt.timedelta(days=1))
    if conversions < ctx.setting("ALERT_POSTBACK_BASELINE_MIN_CONVERSIONS"):
        return [Finding("postbacks_stopped", "postbacks", UNKNOWN, details="too few conversions to know the usual")]
    usual = clicks / conversions
    last = last_postback_ms(db)
    since = max(last or 0, ctx.now_ms - days * 24 * HOUR_MS)
    waiting = human_clicks_since(db, since, ctx.now_ms)
    figures = (f"{waiting} human clicks since the last postback ({_when(last)});"
               f" usually {usual:.1f} clicks per conversion over the last {days} days")
    minimum = ctx.setting("ALERT_POSTBACK_MIN_CLICKS")
    if waiting >= minimum and waiting > ctx.setting("ALERT_POSTBACK_FACTOR") * usual:
        return [Finding("postbacks_stopped", "postbacks", FIRING,
                        f"no postback for {waiting} clicks (usually one every {usual:.0f})",
                        f"{figures}. Check the postback URL in Tune and the postback page.")]
    # Only a fresh postback clears it: a slowly growing baseline must not hide a broken postback.
    if waiting < minimum:
        return [Finding("postbacks_stopped", "postbacks", CLEAR, details=figures)]
    return [Finding("postbacks_stopped", "postbacks", UNKNOWN, details=figures)]


def backup_failed(db, ctx):
    if ctx.backup_outcome is None:
        return None
    outcome = read_outcome(ctx.backup_outcome())
    if outcome is None:
        return [Finding("backup_failed", "backup", UNKNOWN, details="no backup has run yet")]
    ok, message = outcome
    if ok:
        return [Finding("backup_failed", "backup", CLEAR, details=message)]
    return [Finding("backup_failed", "backup", FIRING, f"backup failed: {message}"[:200],
                    f"The last backup failed: {message}")]


def tune_sync_failing(db, ctx):
    if ctx.tune_outcomes is None:
        return None
    outcomes = [read_outcome(o) for o in (ctx.tune_outcomes() or [])]
    outcomes = [o for o in outcomes if o is not None]
    needed = max(1, ctx.setting("ALERT_TUNE_FAILURES"))
    if not outcomes:
        return [Finding("tune_sync_failing", "tune", UNKNOWN, details="no sync has run yet")]
    if outcomes[0][0]:
        return [Finding("tune_sync_failing", "tune", CLEAR, details=outcomes[0][1])]
    if len(outcomes) >= needed and not any(ok for ok, _ in outcomes[:needed]):
        return [Finding("tune_sync_failing", "tune", FIRING,
                        f"Tune sync failed {needed} times in a row: {outcomes[0][1]}"[:200],
                        "Last failures:\n" + "\n".join(f"- {m}" for _, m in outcomes[:needed]))]
    return [Finding("tune_sync_failing", "tune", UNKNOWN, details=outcomes[0][1])]


def image_broken(db, ctx):
    checks = {r["campaign_id"]: r for r in image_check.latest_results(db)}
    needed = max(1, ctx.setting("ALERT_IMAGE_FAILURES"))
    findings = []
    for campaign in active_campaigns(db):
        if not campaign["image_url"]:
            continue
        subject, check = f"campaign:{campaign['id']}", checks.get(campaign["id"])
        if check is None or check["url"] != campaign["image_url"]:
            findings.append(Finding("image_broken", subject, UNKNOWN, details="not checked yet"))
        elif check["ok"]:
            findings.append(Finding("image_broken", subject, CLEAR, details=f"loaded at {check['checked_at']}"))
        elif check["failures"] >= needed:
            findings.append(Finding(
                "image_broken", subject, FIRING,
                f"campaign {campaign['name']!r}: image does not load ({check['error']})"[:200],
                f"{check['url']} failed {check['failures']} checks in a row, the last at {check['checked_at']}:"
                f" {check['error']}. Last loaded: {check['last_ok_at'] or 'never'}."))
        else:
            findings.append(Finding("image_broken", subject, UNKNOWN, details=check["error"]))
    return findings


RULES = (property_silent, ctr_collapse, postbacks_stopped, backup_failed, tune_sync_failing, image_broken)


def read_outcome(value):
    """(ok, message) from a job outcome (see the module doc), or None when it never ran."""
    if value is None:
        return None
    if isinstance(value, tuple):
        ok, message = value
    elif isinstance(value, dict):
        ok, message = value["ok"], value.get("message") or value.get("outcome") or value.get("error") or ""
    else:
        ok = value.ok
        message = getattr(value, "message", None) or getattr(value, "outcome", None) or ""
    return bool(ok), str(message)


def _when(ts_ms):
    if not ts_ms:
        return "none recorded"
    return timeutil.iso_utc(dt.datetime.fromtimestamp(ts_ms / 1000, timeutil.UTC))


# --- incidents ---------------------------------------------------------------------------------

def evaluate(db, now, config, send, *, backup_outcome=None, tune_outcomes=None):
    """Run every rule, open and clear incidents, and mail what changed (and any mail still owed).

    now: an aware datetime. send: callable(subject, text) that raises on failure, or None when
    mail is not configured. backup_outcome: callable returning the backup job's last outcome;
    tune_outcomes: callable returning the recent Tune sync outcomes, newest first (rules whose
    input is not given do not run and leave their incidents as they are; a rule that fails is
    logged and skipped the same way).
    Returns {"opened": [incident], "cleared": [incident], "errors": ["rule: message"]}.
    """
    ctx = Context(now=now, now_ms=int(now.timestamp() * 1000),
                  tz=ZoneInfo(config.get("BUSINESS_TZ", "America/New_York")), config=config,
                  backup_outcome=backup_outcome, tune_outcomes=tune_outcomes)
    findings, errors = {}, []
    for rule in RULES:
        try:
            result = rule(db, ctx)
        except Exception as exc:  # noqa: BLE001 - one broken rule (or input) must not silence the others
            log.exception("alert rule %s failed", rule.__name__)
            errors.append(f"{rule.__name__}: {exc}"[:300])
            continue
        if result is not None:
            findings[rule.__name__] = result
    changes = apply(db, findings, timeutil.iso_utc(now))
    notify(db, now, config, send)
    return {**changes, "errors": errors}


def apply(db, findings, at):
    """Open and clear incidents for {rule name: [Finding]}; returns the incidents opened and cleared."""
    opened, cleared = [], []
    with database.transaction(db):
        already_open = open_incidents(db)
        for rule, rule_findings in findings.items():
            watched = set()
            for finding in rule_findings:
                watched.add(finding.subject)
                key = (finding.rule, finding.subject)
                if finding.state == FIRING and key not in already_open:
                    opened.append(_open(db, finding, at))
                elif finding.state == CLEAR and key in already_open:
                    cleared.append(_close(db, already_open[key]["id"], finding.details, at))
            for (open_rule, subject), incident in already_open.items():
                if open_rule == rule and subject not in watched:
                    cleared.append(_close(db, incident["id"], "no longer watched (paused or switched off)", at))
    return {"opened": opened, "cleared": cleared}


def _open(db, finding, at):
    cursor = db.execute("/* alerts.open_incident */ INSERT INTO incidents (rule, subject, summary, details, opened_at)"
                        " VALUES (?, ?, ?, ?, ?)", (finding.rule, finding.subject, finding.summary,
                                                    finding.details, at))
    return _incident(db, cursor.lastrowid)


def _close(db, incident_id, details, at):
    db.execute("/* alerts.close_incident */ UPDATE incidents SET closed_at = ?, clear_details = ? WHERE id = ?",
               (at, details, incident_id))
    return _incident(db, incident_id)


def _incident(db, incident_id):
    return dict(db.execute("/* alerts.incident */ SELECT * FROM incidents WHERE id = ?", (incident_id,)).fetchone())


# --- mail --------------------------------------------------------------------------------------

def notify(db, now, config, send):
    """Send one mail with every opening and clearing not yet mailed.

    A failed send is retried at the next evaluation for ALERT_MAIL_RETRY_HOURS, then given up
    (a days-old alert is no news). Without mail configured, nothing is owed.
    """
    pending = incidents_awaiting_mail(db)
    if not pending:
        return None
    if send is None:
        _mark_mailed(db, pending, "not configured")
        return None
    cutoff = timeutil.iso_utc(now - dt.timedelta(hours=alert_settings.get(config, "ALERT_MAIL_RETRY_HOURS")))
    stale = [i for i in pending if (i["closed_at"] or i["opened_at"]) < cutoff]
    _mark_mailed(db, stale, "gave up")
    fresh = [i for i in pending if i not in stale]
    if not fresh:
        return None
    subject, text = compose(fresh, config)
    try:
        send(subject, text)
    except Exception as exc:  # noqa: BLE001 - any failure to send keeps the mail owed
        log.warning("alert mail not sent: %s", exc)
        _record_mail_error(db, fresh, str(exc)[:300])
        return None
    _mark_mailed(db, fresh, "sent")
    return subject


def _mark_mailed(db, rows, outcome):
    if not rows:
        return
    with database.transaction(db):
        for row in rows:
            db.execute("/* alerts.mark_mailed */ UPDATE incidents SET"
                       " open_mail = coalesce(open_mail, ?),"
                       " close_mail = CASE WHEN closed_at IS NOT NULL THEN coalesce(close_mail, ?) END,"
                       " mail_error = NULL WHERE id = ?",
                       (outcome, outcome, row["id"]))


def _record_mail_error(db, rows, error):
    with database.transaction(db):
        for row in rows:
            db.execute("/* alerts.record_mail_error */ UPDATE incidents SET mail_error = ? WHERE id = ?",
                       (error, row["id"]))


def compose(rows, config):
    """(subject, text) of one mail about the incidents in rows (opened or cleared, not yet mailed)."""
    opened = [r for r in rows if r["closed_at"] is None]
    cleared = [r for r in rows if r["closed_at"] is not None]
    first = (opened or cleared)[0]
    if len(rows) == 1:
        subject = f"[popup_mgr] {'ALERT' if opened else 'CLEARED'}: {first['summary']}"
    else:
        subject = f"[popup_mgr] {len(opened)} alerts, {len(cleared)} cleared: {first['summary']}"
    blocks = [_describe(r) for r in opened + cleared]
    link = f"{config.get('BASE_URL', '').rstrip('/')}{ALERTS_PATH}"
    return subject[:240], "\n\n".join(blocks) + f"\n\nAll incidents: {link}\n"


def _describe(row):
    if row["closed_at"] is None:
        return f"ALERT since {row['opened_at']}: {row['summary']}\n{row['details']}"
    return (f"CLEARED at {row['closed_at']} (open since {row['opened_at']}): {row['summary']}\n"
            f"{row['clear_details']}")


def send_test_email(config):
    """Send a test e-mail to the alert recipients; returns them. Raises mailer.MailError."""
    return mailer.send(config, "[popup_mgr] Test e-mail",
                       "This is a test e-mail from popup_mgr. Alerts and the daily digest will arrive"
                       f" like this one.\n\nAlerts: {config.get('BASE_URL', '').rstrip('/')}{ALERTS_PATH}\n")


def sender_for(config):
    """send(subject, text) through mailer, or None when mail is not configured."""
    if not mailer.is_configured(config):
        return None
    return lambda subject, text: mailer.send(config, subject, text)


def job(app_config, now=None, *, backup_outcome=None, tune_outcomes=None):
    """Scheduled job: evaluate the rules; one line saying what changed."""
    now = now or dt.datetime.now(timeutil.UTC)
    with database.connection(app_config["DATABASE"]) as db:
        changes = evaluate(db, now, app_config, sender_for(app_config),
                           backup_outcome=backup_outcome, tune_outcomes=tune_outcomes)
        still_open = len(incidents(db, open_only=True, limit=1000))
    return (f"{len(changes['opened'])} opened, {len(changes['cleared'])} cleared, {still_open} open"
            + "".join(f"; opened: {i['summary']}" for i in changes["opened"][:3])
            + "".join(f"; rule failed: {e}" for e in changes["errors"]))
