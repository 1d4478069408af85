"""alert_status: what the Alerts page shows, read for people — the masked SMTP URL, mail status,
the settings in force, incidents by page and the image checks — on a real SQLite file."""
import datetime as dt
import urllib.parse

import pytest

from tests.helpers import add_campaign
from popup_mgr import alert_settings, alert_status, alerts, image_check, mailer

PASSWORD = "Zq7-secret/p@ss word"
ENCODED = urllib.parse.quote(PASSWORD, safe="")
NOW = dt.datetime(2026, 11, 28, 20, 0, tzinfo=dt.timezone.utc)


# --- the SMTP URL, masked -------------------------------------------------------------------------

@pytest.mark.parametrize("url, shown", [
    (f"smtp+starttls://bob:{ENCODED}@smtp.example.com:587", "smtp+starttls://bob:••••••@smtp.example.com:587"),
    (f"smtps://alerts%40mode.example:{ENCODED}@smtp.example.com", "smtps://alerts%40mode.example:••••••@smtp.example.com"),
    # An unencoded @ in the password: the last @ ends the user part (as the mailer reads it).
    ("smtp://bob:p@ss@relay.example:2525", "smtp://bob:••••••@relay.example:2525"),
    ("smtp://relay.example?starttls=1&from=alerts@mode.example&timeout=5",
     "smtp://relay.example?starttls=1&from=alerts@mode.example&timeout=5"),
    # Parameters the mailer does not read are not shown (a secret may have been put there).
    ("smtp://relay.example?from=a%40b.example&token=abc123", "smtp://relay.example?from=a@b.example"),
    ("smtp://bob@[::1]:25", "smtp://bob@[::1]:25"),
    ("smtp://:only-a-password@relay.example", "smtp://:••••••@relay.example"),
])
def test_masked_url(url, shown):
    assert mailer.masked_url(url) == shown


@pytest.mark.parametrize("url", [
    # Unencoded / ? # in the password end the host early: the password's tail would pass for a
    # port or a path, so such a URL is refused, and never shown.
    "smtp://bob:1234/5678@relay.example",
    "smtp://bob:1234?5678@relay.example",
    "smtp://bob:1234#5678@relay.example",
    "smtp://bob:abc/def@relay.example",
    "http://bob:1234@relay.example",
    "smtp://bob:1234@",
])
def test_an_unusable_url_is_refused_without_quoting_it(url):
    with pytest.raises(mailer.MailError) as caught:
        mailer.masked_url(url)
    assert "1234" not in str(caught.value) and "abc" not in str(caught.value)


# --- mail status and settings -----------------------------------------------------------------------

@pytest.mark.parametrize("config, configured, sentence", [
    ({}, False, "E-mail is off: set POPUP_SMTP_URL and POPUP_ALERT_TO. Incidents are still recorded here."),
    ({"SMTP_URL": "smtp://relay.example"}, False,
     "E-mail is off: set POPUP_ALERT_TO. Incidents are still recorded here."),
    ({"SMTP_URL": "smtp://bob:12/34@relay.example", "ALERT_TO": "mike@example.com"}, False,
     "E-mail is off: POPUP_SMTP_URL's password must be percent-encoded (@ as %40, / as %2F, ? as %3F,"
     " # as %23). Incidents are still recorded here."),
    ({"SMTP_URL": f"smtp+starttls://bob:{ENCODED}@smtp.example.com", "ALERT_TO": "mike@example.com, ops@example.com"},
     True, "Alerts and the daily digest are mailed to mike@example.com, ops@example.com through"
           " smtp.example.com:587 (starttls)."),
])
def test_mail_status(config, configured, sentence):
    status = alert_status.mail_status(config)
    assert (status["configured"], status["sentence"]) == (configured, sentence)
    assert PASSWORD not in str(status) and ENCODED not in str(status)


def test_settings_in_force_cover_every_setting_and_mask_the_password():
    config = {"SMTP_URL": f"smtp://bob:{ENCODED}@relay.example", "ALERT_TO": "mike@example.com"}
    environ = {"POPUP_ALERT_SILENT_HOURS": "6", "POPUP_ALERT_CTR_RATIO": "low"}
    rows = {row["variable"]: row for row in alert_status.settings_in_force(config, environ)}
    assert list(rows) == [f"POPUP_{name}" for name in alert_settings.SETTINGS]
    assert rows["POPUP_SMTP_URL"]["value"] == "smtp://bob:••••••@relay.example"
    assert rows["POPUP_ALERT_TO"]["value"] == "mike@example.com"
    assert (rows["POPUP_ALERT_SILENT_HOURS"]["value"], rows["POPUP_ALERT_SILENT_HOURS"]["is_default"]) == ("6.0", False)
    assert rows["POPUP_ALERT_CTR_RATIO"]["problem"] == "POPUP_ALERT_CTR_RATIO must be a float, not 'low'"
    assert (rows["POPUP_ALERT_TUNE_FAILURES"]["value"], rows["POPUP_ALERT_TUNE_FAILURES"]["is_default"]) == ("3", True)
    assert PASSWORD not in str(rows) and ENCODED not in str(rows)


def test_an_unreadable_smtp_url_is_not_shown_in_the_settings():
    [row] = [r for r in alert_status.settings_in_force({"SMTP_URL": "smtp://bob:99/secret@relay.example"}, {})
             if r["variable"] == "POPUP_SMTP_URL"]
    assert row["value"] == "(set, not shown)" and "percent-encoded" in row["problem"]
    assert "secret" not in str(row)


# --- incidents ----------------------------------------------------------------------------------

def open_and_clear(db, rule, subject, opened, cleared=None):
    fire = alerts.Finding(rule, subject, alerts.FIRING, f"{rule} {subject}", "figures")
    alerts.apply(db, {rule: [fire]}, opened)
    if cleared:
        alerts.apply(db, {rule: [alerts.Finding(rule, subject, alerts.CLEAR, details="back to normal")]}, cleared)


def test_past_incidents_come_a_page_at_a_time_newest_first(db):
    for n in range(5):
        open_and_clear(db, "backup_failed", "backup", f"2026-11-2{n}T10:00:00Z", f"2026-11-2{n}T11:30:00Z")
    open_and_clear(db, "tune_sync_failing", "tune", "2026-11-28T09:00:00Z")
    first, more = alert_status.past_incidents(db, page=1, per_page=2)
    assert [i["opened_at"] for i in first] == ["2026-11-24T10:00:00Z", "2026-11-23T10:00:00Z"] and more
    last, more = alert_status.past_incidents(db, page=3, per_page=2)
    assert [i["opened_at"] for i in last] == ["2026-11-20T10:00:00Z"] and not more
    assert (last[0]["label"], last[0]["duration"]) == ("Backup failed", "1 h 30 min")
    assert alert_status.past_incidents(db, page=4, per_page=2) == ([], False)
    [still_open] = alert_status.open_incidents(db, NOW)
    assert (still_open["label"], still_open["duration"]) == ("Tune sync failing", "11 h 0 min")


@pytest.mark.parametrize("start, end, words", [
    ("2026-11-28T10:00:00Z", "2026-11-28T10:00:59Z", "0 min"),
    ("2026-11-28T10:00:00Z", "2026-11-28T10:45:00Z", "45 min"),
    ("2026-11-28T10:00:00Z", "2026-11-28T13:20:00Z", "3 h 20 min"),
    ("2026-11-26T10:00:00Z", "2026-11-28T14:59:00Z", "2 d 4 h"),
])
def test_duration_words(start, end, words):
    assert alert_status.duration_words(start, end) == words


@pytest.mark.parametrize("row, words", [
    ({"closed_at": None, "open_mail": None, "close_mail": None, "mail_error": None},
     "opening to be mailed at the next run"),
    ({"closed_at": None, "open_mail": None, "close_mail": None, "mail_error": "cannot talk to relay:25"},
     "opening to be mailed (last try failed: cannot talk to relay:25)"),
    ({"closed_at": "x", "open_mail": "sent", "close_mail": "sent", "mail_error": None},
     "opening mailed; clearing mailed"),
    ({"closed_at": "x", "open_mail": "not configured", "close_mail": "gave up", "mail_error": None},
     "opening not mailed (e-mail was off); clearing not mailed (the server did not take it in time)"),
])
def test_mail_words(row, words):
    assert alert_status.mail_words(row) == words


# --- image checks --------------------------------------------------------------------------------

def result(url, ok, error=""):
    if ok:
        return image_check.Result(url, True, 200, "image/png", 48_213, 85)
    return image_check.Result(url, False, 404, "text/html", 0, 40, error)


def test_image_checks_failing_first_with_a_sentence_each(db):
    failing = add_campaign(db, name="Failing", image_url="https://cdn.example/a.png")
    fine = add_campaign(db, name="Fine", image_url="https://cdn.example/b.png")
    unchecked = add_campaign(db, name="Unchecked", image_url="https://cdn.example/c.png")
    changed = add_campaign(db, name="Changed", image_url="https://cdn.example/new.png")
    paused = add_campaign(db, name="Paused", image_url="https://cdn.example/p.png")
    add_campaign(db, name="No image", image_url="")
    image_check.store_results(db, {failing: result("https://cdn.example/a.png", True), fine: result("https://cdn.example/b.png", True),
                                   changed: result("https://cdn.example/old.png", True),
                                   paused: result("https://cdn.example/p.png", True)}, "2026-11-28T18:00:00Z")
    for at in ("2026-11-28T19:00:00Z", "2026-11-28T20:00:00Z"):
        image_check.store_results(db, {failing: result("https://cdn.example/a.png", False, "HTTP 404")}, at)
    db.execute("UPDATE campaigns SET active = 0 WHERE id = ?", (paused,))

    views = alert_status.image_checks(db, "America/New_York")
    assert [(v["name"], v["state"]) for v in views] == [
        ("Failing", "failing"), ("Unchecked", "not checked"), ("Changed", "outdated"), ("Fine", "loads"),
        ("Paused", "paused")]
    sentences = {v["name"]: v["sentence"] for v in views}
    assert sentences["Failing"] == "Fails: HTTP 404 (2 checks in a row). Last loaded: 2026-11-28 13:00 EST."
    assert sentences["Fine"] == "Loads: HTTP 200, image/png, 48.2 KB in 85 ms."
    assert sentences["Unchecked"] == "Not checked yet: the next image check will try it."
    assert views[1]["url"] == "https://cdn.example/c.png" and views[1]["checked_at"] is None


@pytest.mark.parametrize("n, words", [(0, "0 bytes"), (999, "999 bytes"), (48_213, "48.2 KB"),
                                      (2_500_000, "2.5 MB")])
def test_size_words(n, words):
    assert alert_status.size_words(n) == words
