"""What the Alerts page shows, read for people: incidents (open ones, then past ones a page at a
time), the latest image check of every campaign, whether mail is configured, the alert settings
in force, and the test e-mail (sent, and audited like any other admin action).

Nothing here ever returns the SMTP password: the server is shown by mailer.masked_url, and a URL
that cannot be read is not shown at all.
"""
import datetime as dt
import os

from popup_mgr import alert_settings, alerts, audit, image_check, mailer, timeutil
from popup_mgr import db as database

PAST_PER_PAGE = 20
TEST_EMAIL_ACTION = "alerts.test_email"
AUDIT_ENTITY = "alerts"

RULE_LABELS = {
    "property_silent": "Property silent",
    "ctr_collapse": "CTR collapse",
    "postbacks_stopped": "Postbacks stopped",
    "backup_failed": "Backup failed",
    "tune_sync_failing": "Tune sync failing",
    "image_broken": "Image broken",
}
MAIL_WORDS = {
    "sent": "mailed",
    "not configured": "not mailed (e-mail was off)",
    "gave up": "not mailed (the server did not take it in time)",
}


# --- incidents ---------------------------------------------------------------------------------

def open_incident_rows(db):
    """Every open incident, newest first (at most one per rule and subject, so never many)."""
    return [dict(r) for r in db.execute(
        "/* alert_status.open_incident_rows */ SELECT * FROM incidents WHERE closed_at IS NULL"
        " ORDER BY opened_at DESC, id DESC")]


def past_incident_rows(db, page=1, per_page=PAST_PER_PAGE):
    """(rows, has_more): one page of cleared incidents, the most recently opened first."""
    offset = (max(int(page), 1) - 1) * per_page
    rows = [dict(r) for r in db.execute(
        "/* alert_status.past_incident_rows */ SELECT * FROM incidents WHERE closed_at IS NOT NULL"
        " ORDER BY opened_at DESC, id DESC LIMIT ? OFFSET ?", (per_page + 1, offset))]
    return rows[:per_page], len(rows) > per_page


def open_incidents(db, now=None):
    now = now or dt.datetime.now(timeutil.UTC)
    return [incident_view(row, now) for row in open_incident_rows(db)]


def past_incidents(db, page=1, per_page=PAST_PER_PAGE):
    rows, has_more = past_incident_rows(db, page, per_page)
    return [incident_view(row) for row in rows], has_more


def incident_view(row, now=None):
    """An incident row with its rule's label, how long it lasted (or has lasted) and what
    became of its mails, in words."""
    end = row["closed_at"] or timeutil.iso_utc(now or dt.datetime.now(timeutil.UTC))
    return {**row, "label": RULE_LABELS.get(row["rule"], row["rule"]),
            "duration": duration_words(row["opened_at"], end), "mail": mail_words(row)}


def mail_words(row):
    """What became of an incident's mails, e.g. 'opening mailed; clearing not mailed (e-mail was off)'."""
    words = [f"opening {_one_mail(row['open_mail'], row['mail_error'])}"]
    if row["closed_at"]:
        words.append(f"clearing {_one_mail(row['close_mail'], row['mail_error'])}")
    return "; ".join(words)


def _one_mail(outcome, error):
    if outcome is None:
        return f"to be mailed (last try failed: {error})" if error else "to be mailed at the next run"
    return MAIL_WORDS.get(outcome, outcome)


def duration_words(start_iso, end_iso):
    """'45 min', '3 h 20 min', '2 d 4 h' between two stored UTC timestamps."""
    minutes = max(0, int((timeutil.parse_iso_utc(end_iso) - timeutil.parse_iso_utc(start_iso)).total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


# --- image checks ------------------------------------------------------------------------------

def unchecked_campaigns(db):
    """Active campaigns with an image that has never been checked."""
    return [dict(r) for r in db.execute(
        "/* alert_status.unchecked_campaigns */ SELECT c.id AS campaign_id, c.name, c.image_url AS current_url"
        " FROM campaigns c WHERE c.active = 1 AND c.image_url != ''"
        " AND NOT EXISTS (SELECT 1 FROM image_checks i WHERE i.campaign_id = c.id) ORDER BY c.id")]


# Failing images first, then those waiting for a check, then the good ones; paused campaigns last.
STATE_ORDER = {"failing": 0, "not checked": 1, "outdated": 1, "loads": 2, "paused": 3}


def image_checks(db, tz):
    """The latest image check of every campaign that has one or should have one, each with a
    state ('failing', 'loads', 'outdated', 'not checked', 'paused') and a sentence."""
    views = [_check_view(row, tz) for row in image_check.latest_results(db)]
    views += [{**row, "url": row["current_url"], "state": "not checked", "checked_at": None,
               "sentence": "Not checked yet: the next image check will try it."}
              for row in unchecked_campaigns(db)]
    return sorted(views, key=lambda view: (STATE_ORDER[view["state"]], view["campaign_id"]))


def _check_view(row, tz):
    if not row["active"]:
        state, sentence = "paused", "Campaign paused: its image is no longer checked."
    elif row["url"] != row["current_url"]:
        state, sentence = "outdated", "The image URL changed since the last check: the next check will try the new one."
    elif row["ok"]:
        state = "loads"
        sentence = (f"Loads: HTTP {row['status']}, {row['content_type']}, {size_words(row['bytes'])}"
                    f" in {row['elapsed_ms']} ms.")
    else:
        state = "failing"
        sentence = (f"Fails: {row['error']} ({_checks(row['failures'])} in a row)."
                    f" Last loaded: {timeutil.local_text(row['last_ok_at'], tz) or 'never'}.")
    return {**row, "state": state, "sentence": sentence}


def _checks(n):
    return "1 check" if n == 1 else f"{n} checks"


def size_words(n):
    if n < 1000:
        return f"{n} bytes"
    if n < 1_000_000:
        return f"{n / 1000:.1f} KB"
    return f"{n / 1_000_000:.1f} MB"


# --- mail and settings ---------------------------------------------------------------------------

def mail_status(config):
    """{"configured", "sentence", "server" (masked URL or None), "recipients"}."""
    url, recipients = alert_settings.get(config, "SMTP_URL"), mailer.recipients(config)
    server, problem = None, None
    if url:
        try:
            server = mailer.masked_url(url)
        except mailer.MailError as exc:
            problem = str(exc)
    missing = [name for name, value in (("POPUP_SMTP_URL", url), ("POPUP_ALERT_TO", recipients)) if not value]
    if problem:
        sentence = f"E-mail is off: {problem}. Incidents are still recorded here."
    elif missing:
        sentence = f"E-mail is off: set {' and '.join(missing)}. Incidents are still recorded here."
    else:
        sentence = (f"Alerts and the daily digest are mailed to {', '.join(recipients)}"
                    f" through {mailer.parse_smtp_url(url).describe()}.")
    return {"configured": not problem and not missing, "sentence": sentence, "server": server,
            "recipients": recipients}


def settings_in_force(config, environ=os.environ):
    """[{"variable", "value", "default", "meaning", "is_default", "problem"}] for every alert
    setting, in the order of alert_settings.SETTINGS; the SMTP URL masked."""
    return [_setting_row(config, name, default, meaning, environ)
            for name, (default, meaning) in alert_settings.SETTINGS.items()]


def _setting_row(config, name, default, meaning, environ):
    row = {"variable": alert_settings.env_name(name), "default": _shown(default), "meaning": meaning,
           "problem": None}
    try:
        value = alert_settings.get(config, name, environ)
    except alert_settings.SettingError as exc:
        return {**row, "value": "—", "is_default": False, "problem": str(exc)}
    if name == "SMTP_URL" and value:
        try:
            return {**row, "value": mailer.masked_url(value), "is_default": False}
        except mailer.MailError as exc:
            return {**row, "value": "(set, not shown)", "is_default": False, "problem": str(exc)}
    return {**row, "value": _shown(value), "is_default": value == default}


def _shown(value):
    return "not set" if value == "" else str(value)


# --- test e-mail ---------------------------------------------------------------------------------

def send_test_email(db, config, actor):
    """Send the test e-mail to the alert recipients and audit the attempt; (sent, sentence)."""
    try:
        recipients = alerts.send_test_email(config)
    except (mailer.MailError, ValueError) as exc:
        # ValueError: the message itself could not be built (e.g. a line break in an address).
        sent, recipients, sentence = False, mailer.recipients(config), f"Not sent: {exc}."
    else:
        sent, sentence = True, (f"Sent to {', '.join(recipients)}. If it has not arrived in a few"
                                " minutes, look in the spam folder and at the server's log.")
    with database.transaction(db):
        audit.record(db, actor, TEST_EMAIL_ACTION, AUDIT_ENTITY, None,
                     {"recipients": [None, ", ".join(recipients)], "result": [None, sentence]})
    return sent, sentence
