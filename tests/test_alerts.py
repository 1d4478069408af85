"""alerts: every rule opens an incident once (one mail), sends nothing more while it stays open,
and clears once (one mail), on a real SQLite file with a real local SMTP server receiving."""
import datetime as dt
import decimal
import itertools
import logging
import math
from pathlib import Path

import pytest

from tests.helpers import TZ, add_campaign, add_conversion, ms, property_id
from tests.mail_support import free_port
from popup_mgr import alert_settings, alerts, image_check, timeutil
from popup_mgr import db as database

NOW = dt.datetime(2026, 11, 28, 20, 0, tzinfo=dt.timezone.utc)     # 15:00 in New York
TODAY = dt.date(2026, 11, 28)
MINUTE = dt.timedelta(minutes=1)
_serial = itertools.count(1)
NOTHING = {"opened": [], "cleared": [], "errors": []}


@pytest.fixture
def config(app, inbox):
    return {**app.config, "SMTP_URL": f"smtp://127.0.0.1:{inbox.port}?from=alerts@mode.example",
            "ALERT_TO": "mike@example.com"}


class Watch:
    """Evaluates the rules at given times and tells which mails arrived since the last look."""

    def __init__(self, db, config, inbox, **sources):
        self.db, self.config, self.inbox, self.sources, self.seen = db, config, inbox, sources, 0

    def run(self, now=NOW):
        return alerts.evaluate(self.db, now, self.config, alerts.sender_for(self.config), **self.sources)

    def new_mail(self):
        fresh = self.inbox.messages[self.seen:]
        self.seen = len(self.inbox.messages)
        return [m["message"]["Subject"] for m in fresh]

    def body(self, index=-1):
        return self.inbox.messages[index]["message"].get_content()


def subjects(changes, kind):
    return [(i["rule"], i["subject"]) for i in changes[kind]]


# --- row writers (one transaction for many rows) ---------------------------------------------

def impressions_at(db, prop, campaign_id, moments, is_bot=0):
    pid = property_id(db, prop)
    with database.transaction(db):
        for moment in moments:
            ts = int(moment.timestamp() * 1000)
            db.execute("INSERT INTO impressions (event_id, ts, day, campaign_id, property_id, placement, is_bot)"
                       " VALUES (?, ?, ?, ?, ?, 'thankyou', ?)",
                       (f"imp-{next(_serial):09d}", ts, timeutil.business_day(ts, TZ), campaign_id, pid, is_bot))


def clicks_at(db, prop, campaign_id, moments, is_bot=0):
    pid = property_id(db, prop)
    with database.transaction(db):
        for moment in moments:
            ts, n = int(moment.timestamp() * 1000), next(_serial)
            db.execute("INSERT INTO clicks (click_id, event_id, ts, day, campaign_id, property_id, placement, is_bot)"
                       " VALUES (?, ?, ?, ?, ?, ?, 'thankyou', ?)",
                       (f"click-{n:09d}", f"clk-{n:09d}", ts, timeutil.business_day(ts, TZ), campaign_id, pid,
                        is_bot))


def rollup(db, day, campaign_id, impressions=0, clicks=0, conversions=0, prop="mff"):
    with database.transaction(db):
        db.execute("INSERT INTO daily_stats (day, property_id, campaign_id, placement, impressions, clicks,"
                   " conversions, revenue_cents) VALUES (?, ?, ?, 'thankyou', ?, ?, ?, ?)"
                   " ON CONFLICT DO UPDATE SET impressions = excluded.impressions, clicks = excluded.clicks,"
                   " conversions = excluded.conversions, revenue_cents = excluded.revenue_cents",
                   (day.isoformat(), property_id(db, prop), campaign_id, impressions, clicks, conversions,
                    conversions * 450))


def every(start, end, step):
    moment = start
    while moment < end:
        yield moment
        moment += step


def postback(db, moment, is_test=0):
    add_conversion(db, None, int(moment.timestamp() * 1000), 450, is_test=is_test)


# --- statistics --------------------------------------------------------------------------------

def poisson_cdf_reference(k, mean):
    """P(X <= k) by exact decimal arithmetic at 60 digits: an independent check of the log-space sum."""
    with decimal.localcontext() as context:
        context.prec = 60
        mean = decimal.Decimal(repr(mean))
        term, total = decimal.Decimal(1), decimal.Decimal(1)
        for i in range(1, k + 1):
            term = term * mean / i
            total += term
        return float(total * (-mean).exp())


@pytest.mark.parametrize("k, mean", [(0, 0.5), (2, 18.0), (4, 15.0), (1, 5.0), (17, 18.0), (60, 100.0),
                                     (300, 450.0), (0, 0.0), (5, 1e-9)])
def test_poisson_tail_matches_the_reference(k, mean):
    assert math.isclose(alerts.poisson_cdf(k, mean), poisson_cdf_reference(k, mean), rel_tol=1e-9, abs_tol=1e-300)


# --- property goes silent ----------------------------------------------------------------------

def test_silent_property_opens_once_and_clears_once(db, config, inbox):
    campaign = add_campaign(db, name="steady")
    # mff: an impression every 15 minutes for 8 days, then nothing for the last 4 hours (bots aside).
    impressions_at(db, "mff", campaign, every(NOW - dt.timedelta(days=8), NOW - dt.timedelta(hours=4), 15 * MINUTE))
    impressions_at(db, "mff", campaign, every(NOW - dt.timedelta(hours=2), NOW, 10 * MINUTE), is_bot=1)
    # mmm: one impression every 6 hours: a silent afternoon is normal there.
    impressions_at(db, "mmm", campaign, every(NOW - dt.timedelta(days=8), NOW - dt.timedelta(hours=4),
                                              dt.timedelta(hours=6)))
    watch = Watch(db, config, inbox)

    changes = watch.run()
    assert subjects(changes, "opened") == [("property_silent", "property:mff")]
    assert watch.new_mail() == ["[popup_mgr] ALERT: mff (ModeFreeFinds): no impressions for 3 h"]
    # The same hours of the previous 7 days had 12 impressions each.
    assert "averaged 12" in watch.body() and "http://popup.test/admin/alerts" in watch.body()

    for minutes in (10, 20):
        assert watch.run(NOW + minutes * MINUTE) == NOTHING
    assert watch.new_mail() == []

    impressions_at(db, "mff", campaign, [NOW + 25 * MINUTE])
    changes = watch.run(NOW + 30 * MINUTE)
    assert subjects(changes, "cleared") == [("property_silent", "property:mff")]
    assert watch.new_mail() == ["[popup_mgr] CLEARED: mff (ModeFreeFinds): no impressions for 3 h"]
    assert "1 impressions in the last 3 h" in watch.body()

    assert watch.run(NOW + 40 * MINUTE) == NOTHING
    assert watch.new_mail() == []
    [incident] = alerts.incidents(db)
    assert (incident["opened_at"], incident["closed_at"]) == ("2026-11-28T20:00:00Z", "2026-11-28T20:30:00Z")
    assert (incident["open_mail"], incident["close_mail"]) == ("sent", "sent")


def test_a_property_with_nothing_to_show_is_not_watched(db, config, inbox):
    steady, other = add_campaign(db, name="steady"), add_campaign(db, name="other")
    impressions_at(db, "mff", steady, every(NOW - dt.timedelta(days=8), NOW - dt.timedelta(hours=4), 15 * MINUTE))
    with database.transaction(db):
        # "other" runs on mmm only; "steady", the one campaign for mff, is paused.
        db.execute("INSERT INTO campaign_properties VALUES (?, ?)", (other, property_id(db, "mmm")))
        db.execute("UPDATE campaigns SET active = 0 WHERE id = ?", (steady,))
    assert alerts.evaluate(db, NOW, config, None) == NOTHING
    with database.transaction(db):
        db.execute("INSERT INTO campaign_properties VALUES (?, ?)", (other, property_id(db, "mff")))
    assert subjects(alerts.evaluate(db, NOW, config, None), "opened") == [("property_silent", "property:mff")]


def test_silence_is_judged_against_the_same_local_hours_across_dst(db, config, inbox):
    """Traffic comes at 14:10 New York time every day; DST ended on 2026-11-01. Judged at 14:50
    on 2026-11-03 with a 1-hour window, the days before the change count only if the window
    follows the wall clock (24-hour steps would look at 14:50-15:50 EDT and find nothing)."""
    campaign = add_campaign(db, name="afternoon")
    daily = [dt.datetime.fromisoformat(f"2026-10-{d:02d} 14:10") for d in range(27, 32)] + \
            [dt.datetime.fromisoformat(f"2026-11-{d:02d} 14:10") for d in (1, 2)]
    moments = [dt.datetime.fromtimestamp(ms(str(day), TZ) / 1000, dt.timezone.utc) + i * dt.timedelta(seconds=20)
               for day in daily for i in range(12)]
    impressions_at(db, "mff", campaign, moments)
    now = dt.datetime.fromtimestamp(ms("2026-11-03 14:50", TZ) / 1000, dt.timezone.utc)

    changes = alerts.evaluate(db, now, {**config, "ALERT_SILENT_HOURS": 1.0}, None)

    assert subjects(changes, "opened") == [("property_silent", "property:mff")]


def test_disabled_property_is_not_watched_and_its_incident_clears(db, config, inbox):
    campaign = add_campaign(db, name="steady")
    impressions_at(db, "mff", campaign, every(NOW - dt.timedelta(days=8), NOW - dt.timedelta(hours=4), 15 * MINUTE))
    watch = Watch(db, config, inbox)
    assert subjects(watch.run(), "opened") == [("property_silent", "property:mff")]

    with database.transaction(db):
        db.execute("UPDATE properties SET popup_enabled = 0 WHERE code = 'mff'")
    changes = watch.run(NOW + 5 * MINUTE)

    assert subjects(changes, "cleared") == [("property_silent", "property:mff")]
    assert changes["cleared"][0]["clear_details"] == "no longer watched (paused or switched off)"
    assert watch.new_mail() == ["[popup_mgr] ALERT: mff (ModeFreeFinds): no impressions for 3 h",
                                "[popup_mgr] CLEARED: mff (ModeFreeFinds): no impressions for 3 h"]


# --- CTR collapses -----------------------------------------------------------------------------

def baseline(db, campaign_id, impressions, clicks):
    for back in range(1, 8):
        rollup(db, TODAY - dt.timedelta(days=back), campaign_id, impressions, clicks)


def test_ctr_collapse_opens_once_and_clears_once(db, config, inbox):
    broken = add_campaign(db, name="broken image")
    baseline(db, broken, 1000, 30)                      # 3 % CTR
    rollup(db, TODAY, broken, 600, 2)                   # 0.33 %: 18 clicks expected, 2 seen
    watch = Watch(db, config, inbox)

    changes = watch.run()
    assert subjects(changes, "opened") == [("ctr_collapse", f"campaign:{broken}")]
    assert watch.new_mail() == ["[popup_mgr] ALERT: campaign 'broken image': CTR 0.33% today vs 3.00% usual"]
    assert "today 2 clicks / 600 impressions" in watch.body()

    rollup(db, TODAY, broken, 900, 3)
    assert watch.run(NOW + 10 * MINUTE) == NOTHING
    # Recovering but still below half the usual CTR: stays open (no flapping at the threshold).
    rollup(db, TODAY, broken, 1000, 14)
    assert watch.run(NOW + 20 * MINUTE) == NOTHING
    assert watch.new_mail() == []

    rollup(db, TODAY, broken, 1200, 32)
    assert subjects(watch.run(NOW + 30 * MINUTE), "cleared") == [("ctr_collapse", f"campaign:{broken}")]
    assert watch.new_mail() == ["[popup_mgr] CLEARED: campaign 'broken image': CTR 0.33% today vs 3.00% usual"]
    assert watch.run(NOW + 40 * MINUTE) == NOTHING
    assert watch.new_mail() == []


@pytest.mark.parametrize("history, today, why", [
    ((1000, 30), (400, 0), "fewer than 500 impressions today"),
    ((1000, 10), (500, 1), "1 click where 5 were expected happens by chance (p = 0.04)"),
    ((100, 3), (600, 0), "a baseline of 21 clicks is too little history"),
    ((1000, 30), (600, 700), "clicks above impressions: not a collapse"),
    ((1000, 30), (600, 15), "2.5 % against 3 %: normal variation"),
])
def test_no_incident_without_enough_evidence(db, config, inbox, history, today, why):
    campaign = add_campaign(db, name="campaign")
    baseline(db, campaign, *history)
    rollup(db, TODAY, campaign, *today)
    assert alerts.evaluate(db, NOW, config, alerts.sender_for(config))["opened"] == [], why
    assert inbox.messages == []


def test_paused_campaign_clears_its_ctr_incident(db, config, inbox):
    broken = add_campaign(db, name="broken image")
    baseline(db, broken, 1000, 30)
    rollup(db, TODAY, broken, 600, 2)
    watch = Watch(db, config, inbox)
    watch.run()
    with database.transaction(db):
        db.execute("UPDATE campaigns SET active = 0 WHERE id = ?", (broken,))
    assert subjects(watch.run(NOW + MINUTE), "cleared") == [("ctr_collapse", f"campaign:{broken}")]
    assert len(watch.new_mail()) == 2


# --- postbacks stop ----------------------------------------------------------------------------

def test_stopped_postbacks_open_once_and_clear_once(db, config, inbox):
    campaign = add_campaign(db, name="converting")
    for back in range(1, 11):
        rollup(db, TODAY - dt.timedelta(days=back), campaign, 3000, 100, conversions=10)   # 10 clicks each
    postback(db, NOW - dt.timedelta(hours=20))
    postback(db, NOW - dt.timedelta(hours=2), is_test=1)        # the admin's test postback proves nothing
    clicks_at(db, "mff", campaign, every(NOW - dt.timedelta(hours=19), NOW, dt.timedelta(seconds=270)))   # 254
    clicks_at(db, "mff", campaign, every(NOW - dt.timedelta(hours=1), NOW, dt.timedelta(seconds=10)), is_bot=1)
    watch = Watch(db, config, inbox)

    changes = watch.run()
    assert subjects(changes, "opened") == [("postbacks_stopped", "postbacks")]
    assert watch.new_mail() == ["[popup_mgr] ALERT: no postback for 254 clicks (usually one every 10)"]
    assert "since the last postback (2026-11-28T00:00:00Z)" in watch.body()

    clicks_at(db, "mff", campaign, [NOW + MINUTE])
    assert watch.run(NOW + 5 * MINUTE) == NOTHING
    assert watch.new_mail() == []

    postback(db, NOW + 6 * MINUTE)
    assert subjects(watch.run(NOW + 10 * MINUTE), "cleared") == [("postbacks_stopped", "postbacks")]
    assert watch.new_mail() == ["[popup_mgr] CLEARED: no postback for 254 clicks (usually one every 10)"]
    assert watch.run(NOW + 20 * MINUTE) == NOTHING
    assert watch.new_mail() == []


@pytest.mark.parametrize("clicks_since, conversions_per_day, why", [
    (150, 10, "fewer than 200 clicks since the last postback"),
    (250, 1, "usually 100 clicks per conversion: 250 is not 3 times that"),
    (250, 0, "no conversion history at all"),
])
def test_postbacks_not_judged_stopped(db, config, inbox, clicks_since, conversions_per_day, why):
    campaign = add_campaign(db, name="campaign")
    for back in range(1, 11):
        rollup(db, TODAY - dt.timedelta(days=back), campaign, 3000, 100, conversions=conversions_per_day)
    postback(db, NOW - dt.timedelta(hours=20))
    clicks_at(db, "mff", campaign, [NOW - i * MINUTE for i in range(1, clicks_since + 1)])
    assert alerts.evaluate(db, NOW, config, None)["opened"] == [], why


# --- backup and Tune sync ----------------------------------------------------------------------

def test_failed_backup_opens_once_and_clears_once(db, config, inbox):
    outcomes = [None]
    watch = Watch(db, config, inbox, backup_outcome=lambda: outcomes[-1])
    assert watch.run() == NOTHING

    outcomes.append({"ok": False, "message": "disk full"})
    assert subjects(watch.run(), "opened") == [("backup_failed", "backup")]
    outcomes.append({"ok": False, "message": "disk still full"})
    assert watch.run(NOW + MINUTE)["opened"] == []
    assert watch.new_mail() == ["[popup_mgr] ALERT: backup failed: disk full"]

    outcomes.append((True, "instance/backups/popup-20261128T2010Z.db, 1.2 MB, integrity ok"))
    assert subjects(watch.run(NOW + 2 * MINUTE), "cleared") == [("backup_failed", "backup")]
    assert watch.new_mail() == ["[popup_mgr] CLEARED: backup failed: disk full"]
    assert "integrity ok" in watch.body()
    assert watch.run(NOW + 3 * MINUTE) == NOTHING
    assert watch.new_mail() == []


def test_a_rule_without_its_input_leaves_its_incident_alone(db, config, inbox):
    Watch(db, config, inbox, backup_outcome=lambda: {"ok": False, "message": "disk full"}).run()
    # The scheduler did not pass the backup's outcome this time: nothing is known, nothing clears.
    assert alerts.evaluate(db, NOW + MINUTE, config, None) == NOTHING
    assert [i["rule"] for i in alerts.incidents(db, open_only=True)] == ["backup_failed"]


def test_tune_sync_failing_repeatedly_opens_once_and_clears_once(db, config, inbox):
    history = []   # newest first
    watch = Watch(db, config, inbox, tune_outcomes=lambda: list(history))

    for attempt in (1, 2):
        history.insert(0, {"ok": False, "message": f"Tune: API key rejected ({attempt})"})
        assert watch.run(NOW + attempt * MINUTE)["opened"] == []
    history.insert(0, {"ok": False, "message": "Tune: API key rejected (3)"})
    assert subjects(watch.run(NOW + 3 * MINUTE), "opened") == [("tune_sync_failing", "tune")]
    history.insert(0, {"ok": False, "message": "Tune: API key rejected (4)"})
    assert watch.run(NOW + 4 * MINUTE)["opened"] == []
    assert watch.new_mail() == ["[popup_mgr] ALERT: Tune sync failed 3 times in a row: Tune: API key rejected (3)"]

    history.insert(0, {"ok": True, "outcome": "2 updated, 18 unchanged"})
    assert subjects(watch.run(NOW + 5 * MINUTE), "cleared") == [("tune_sync_failing", "tune")]
    assert watch.new_mail() == ["[popup_mgr] CLEARED: Tune sync failed 3 times in a row: Tune: API key rejected (3)"]
    # A single failure after a success is not "repeatedly".
    history.insert(0, {"ok": False, "message": "timeout"})
    assert watch.run(NOW + 6 * MINUTE) == NOTHING
    assert watch.new_mail() == []


# --- image stops loading -----------------------------------------------------------------------

def image_result(db, campaign_id, ok, at, url="https://cdn.example/a.png"):
    result = image_check.Result(url, ok, 200 if ok else 404, "image/png" if ok else "text/html",
                                error="" if ok else "HTTP 404")
    image_check.store_results(db, {campaign_id: result}, timeutil.iso_utc(at))


def test_broken_image_opens_once_and_clears_once(db, config, inbox):
    campaign = add_campaign(db, name="sweeps")
    with database.transaction(db):
        db.execute("UPDATE campaigns SET image_url = 'https://cdn.example/a.png' WHERE id = ?", (campaign,))
    watch = Watch(db, config, inbox)

    image_result(db, campaign, True, NOW - 3 * MINUTE)
    image_result(db, campaign, False, NOW - 2 * MINUTE)
    assert watch.run(NOW - 2 * MINUTE)["opened"] == []          # one failure may be a blip
    image_result(db, campaign, False, NOW - MINUTE)
    assert subjects(watch.run(NOW - MINUTE), "opened") == [("image_broken", f"campaign:{campaign}")]
    image_result(db, campaign, False, NOW)
    assert watch.run(NOW)["opened"] == []
    assert watch.new_mail() == ["[popup_mgr] ALERT: campaign 'sweeps': image does not load (HTTP 404)"]
    assert "failed 2 checks in a row" in watch.body()

    image_result(db, campaign, True, NOW + MINUTE)
    assert subjects(watch.run(NOW + MINUTE), "cleared") == [("image_broken", f"campaign:{campaign}")]
    assert watch.new_mail() == ["[popup_mgr] CLEARED: campaign 'sweeps': image does not load (HTTP 404)"]
    assert watch.run(NOW + 2 * MINUTE) == NOTHING
    assert watch.new_mail() == []


def test_an_image_result_for_an_old_url_does_not_count(db, config, inbox):
    campaign = add_campaign(db, name="sweeps")
    with database.transaction(db):
        db.execute("UPDATE campaigns SET image_url = 'https://cdn.example/new.png' WHERE id = ?", (campaign,))
    image_result(db, campaign, False, NOW - MINUTE, url="https://cdn.example/old.png")
    image_result(db, campaign, False, NOW, url="https://cdn.example/old.png")
    assert alerts.evaluate(db, NOW, config, None)["opened"] == []


# --- mail delivery -----------------------------------------------------------------------------

def two_failures(db, config, inbox, **extra):
    return Watch(db, config, inbox, backup_outcome=lambda: (False, "disk full"),
                 tune_outcomes=lambda: [(False, "rejected")] * 3, **extra)


def test_incidents_opened_together_go_in_one_mail(db, config, inbox):
    watch = two_failures(db, config, inbox)
    assert len(watch.run()["opened"]) == 2
    assert watch.new_mail() == ["[popup_mgr] 2 alerts, 0 cleared: backup failed: disk full"]
    assert "Tune sync failed 3 times in a row" in watch.body()


def test_a_mail_that_could_not_be_sent_is_sent_later_once(db, app, inbox, caplog):
    caplog.set_level(logging.INFO)
    down = {**app.config, "SMTP_URL": f"smtp://mike:hunter2-secret@127.0.0.1:{free_port()}",
            "ALERT_TO": "mike@example.com"}
    up = {**app.config, "SMTP_URL": f"smtp://127.0.0.1:{inbox.port}", "ALERT_TO": "mike@example.com"}
    backup = dict(backup_outcome=lambda: (False, "disk full"))

    assert len(alerts.evaluate(db, NOW, down, alerts.sender_for(down), **backup)["opened"]) == 1
    [incident] = alerts.incidents(db)
    assert incident["open_mail"] is None and "cannot talk to 127.0.0.1" in incident["mail_error"]
    assert "hunter2" not in caplog.text and "hunter2" not in incident["mail_error"]

    alerts.evaluate(db, NOW + MINUTE, up, alerts.sender_for(up), **backup)
    alerts.evaluate(db, NOW + 2 * MINUTE, up, alerts.sender_for(up), **backup)
    assert [m["message"]["Subject"] for m in inbox.messages] == ["[popup_mgr] ALERT: backup failed: disk full"]
    [incident] = alerts.incidents(db)
    assert (incident["open_mail"], incident["mail_error"]) == ("sent", None)


def test_an_undeliverable_mail_is_given_up_after_the_retry_time(db, app, inbox):
    down = {**app.config, "SMTP_URL": f"smtp://127.0.0.1:{free_port()}", "ALERT_TO": "mike@example.com"}
    up = {**app.config, "SMTP_URL": f"smtp://127.0.0.1:{inbox.port}", "ALERT_TO": "mike@example.com"}
    backup = dict(backup_outcome=lambda: (False, "disk full"))
    alerts.evaluate(db, NOW, down, alerts.sender_for(down), **backup)
    alerts.evaluate(db, NOW + dt.timedelta(hours=25), up, alerts.sender_for(up), **backup)
    assert inbox.messages == []
    assert alerts.incidents(db)[0]["open_mail"] == "gave up"


def test_without_mail_configured_nothing_is_owed(db, app, config, inbox):
    backup = dict(backup_outcome=lambda: (False, "disk full"))
    assert len(alerts.evaluate(db, NOW, app.config, alerts.sender_for(app.config), **backup)["opened"]) == 1
    assert alerts.incidents(db)[0]["open_mail"] == "not configured"
    # Configuring mail later does not flood Mike with old news; the clearing is still mailed.
    alerts.evaluate(db, NOW + MINUTE, config, alerts.sender_for(config), **backup)
    assert inbox.messages == []
    alerts.evaluate(db, NOW + 2 * MINUTE, config, alerts.sender_for(config), backup_outcome=lambda: (True, "ok"))
    assert [m["message"]["Subject"] for m in inbox.messages] == ["[popup_mgr] CLEARED: backup failed: disk full"]


def test_send_test_email(config, inbox):
    assert alerts.send_test_email(config) == ["mike@example.com"]
    [received] = inbox.messages
    assert received["message"]["Subject"] == "[popup_mgr] Test e-mail"
    assert received["from"] == "alerts@mode.example"


# --- listing, job, settings --------------------------------------------------------------------

def test_incidents_lists_open_first_then_newest(db, config, inbox):
    outcome = [(False, "disk full")]
    watch = Watch(db, config, inbox, backup_outcome=lambda: outcome[-1])
    watch.run(NOW)
    outcome.append((True, "ok"))
    watch.run(NOW + MINUTE)
    outcome.append((False, "disk full again"))
    watch.run(NOW + 2 * MINUTE)
    Watch(db, config, inbox, tune_outcomes=lambda: [(False, "x")] * 3).run(NOW + 3 * MINUTE)

    listed = [(i["rule"], i["opened_at"], i["closed_at"] is None) for i in alerts.incidents(db)]
    assert listed == [("tune_sync_failing", "2026-11-28T20:03:00Z", True),
                      ("backup_failed", "2026-11-28T20:02:00Z", True),
                      ("backup_failed", "2026-11-28T20:00:00Z", False)]
    assert len(alerts.incidents(db, open_only=True)) == 2
    assert len(alerts.incidents(db, limit=1)) == 1


def test_job_reports_one_line(app, config, inbox):
    line = alerts.job(config, NOW, backup_outcome=lambda: {"ok": False, "message": "disk full"})
    assert line == "1 opened, 0 cleared, 1 open; opened: backup failed: disk full"
    assert alerts.job(config, NOW + MINUTE) == "0 opened, 0 cleared, 1 open"
    assert len(inbox.messages) == 1


def test_an_empty_database_raises_nothing(db, config, inbox):
    assert alerts.evaluate(db, NOW, config, alerts.sender_for(config)) == NOTHING
    assert inbox.messages == []


def test_thresholds_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("POPUP_ALERT_SILENT_HOURS", "6")
    monkeypatch.setenv("POPUP_ALERT_CTR_MIN_IMPRESSIONS", "many")
    assert alert_settings.get({}, "ALERT_SILENT_HOURS") == 6.0
    assert alert_settings.get({"ALERT_SILENT_HOURS": 2}, "ALERT_SILENT_HOURS") == 2.0
    assert alert_settings.get({}, "ALERT_TUNE_FAILURES") == 3
    with pytest.raises(alert_settings.SettingError, match="POPUP_ALERT_CTR_MIN_IMPRESSIONS must be a int"):
        alert_settings.get({}, "ALERT_CTR_MIN_IMPRESSIONS")
    assert alert_settings.problems({}) == ["POPUP_ALERT_CTR_MIN_IMPRESSIONS must be a int, not 'many'"]


def test_a_failing_rule_does_not_stop_the_others(db, config, inbox, caplog):
    def broken_outcome():
        raise OSError("backup directory unreadable")
    changes = alerts.evaluate(db, NOW, config, alerts.sender_for(config), backup_outcome=broken_outcome,
                              tune_outcomes=lambda: [(False, "rejected")] * 3)
    assert subjects(changes, "opened") == [("tune_sync_failing", "tune")]
    assert changes["errors"] == ["backup_failed: backup directory unreadable"]
    assert "alert rule backup_failed failed" in caplog.text


def test_every_setting_is_documented():
    doc = (Path(__file__).resolve().parent.parent / "docs" / "alerts.md").read_text()
    for name, (default, _) in alert_settings.SETTINGS.items():
        assert f"| `POPUP_{name}` |" in doc, f"POPUP_{name} is not in docs/alerts.md"
