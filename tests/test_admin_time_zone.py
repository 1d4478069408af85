"""One clock in the admin: every time shown or entered is in the business zone (POPUP_TZ, New
York in these tests), labelled with the zone; storage stays UTC. New York is never on UTC, so a
UTC time shown anywhere is a different hour from the one expected."""
import datetime as dt
import re
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest

from popup_mgr import audit, campaigns, timeutil
from popup_mgr.scheduler import Scheduler
from tests.helpers import add_campaign, csrf_token

NEW_YORK = ZoneInfo("America/New_York")


def shown(iso, seconds=False):
    """How a stored UTC instant must read on a page: New York time with its abbreviation."""
    moment = timeutil.parse_iso_utc(iso).astimezone(NEW_YORK)
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


def utc_text(iso, seconds=False):
    moment = timeutil.parse_iso_utc(iso)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


@pytest.mark.parametrize("value, expected", [
    ("2026-01-15T14:00:00Z", "2026-01-15 09:00 EST"),
    ("2026-07-15T14:00:00Z", "2026-07-15 10:00 EDT"),           # summer time
    (1_784_124_000_000, "2026-07-15 10:00 EDT"),                 # Unix ms, as the ledger stores
    ("", ""), (None, ""), ("not a time", "not a time"),
])
def test_local_text(value, expected):
    assert timeutil.local_text(value, "America/New_York") == expected


@pytest.mark.parametrize("entered, stored", [
    ("2026-12-01T09:00", "2026-12-01T14:00:00Z"),
    ("2026-07-01T09:00", "2026-07-01T13:00:00Z"),
    ("2026-12-01T09:00:00Z", "2026-12-01T09:00:00Z"),             # an explicit zone is kept
    ("next week", "next week"),                                   # left for validation to reject
])
def test_entered_times_are_business_zone(entered, stored):
    assert timeutil.local_input_to_utc(entered, "America/New_York") == stored
    if stored.endswith("Z"):
        assert timeutil.local_input_to_utc(timeutil.local_input_value(stored, "America/New_York"),
                                           "America/New_York") == stored[:16] + ":00Z"


def test_schedule_is_entered_and_shown_in_the_business_zone(app, admin_client, db):
    form = {"csrf_token": csrf_token(admin_client, "/admin/campaigns/new"), "tune_campaign_id": "901",
            "name": "Winter sweeps", "display_title": "Win", "cta_text": "Go",
            "click_url": "https://t.example/aff_c?offer_id=901", "payout": "1.00", "priority": "5",
            "active_present": "1", "active": "1",
            "start_at": "2099-12-01T09:00", "end_at": "2099-12-24T18:30"}
    response = admin_client.post("/admin/campaigns/new", data=form)
    assert response.status_code == 302
    stored = campaigns.list_campaigns(db, text="Winter")[0]
    assert (stored["start_at"], stored["end_at"]) == ("2099-12-01T14:00:00Z", "2099-12-24T23:30:00Z")

    page = admin_client.get(f"/admin/campaigns/{stored['id']}/edit").get_data(as_text=True)
    assert 'value="2099-12-01T09:00"' in page and 'value="2099-12-24T18:30"' in page
    assert "Starts (America/New_York time)" in page and "(UTC)" not in page
    assert f"Added {shown(stored['created_at'])} · last changed {shown(stored['updated_at'])}" in page

    listing = admin_client.get("/admin/campaigns").get_data(as_text=True)
    assert "Starts 2099-12-01 09:00 EST" in listing
    assert shown(stored["updated_at"]) in listing and " UTC" not in listing


def test_audit_log_is_in_the_business_zone(admin_client, db):
    campaign_id = add_campaign(db, name="Audited")
    audit.record(db, "mike", "campaign.update", "campaign", campaign_id, {"priority": [5, 6]})
    db.commit()
    entry = audit.entries(db)[0][0]
    page = admin_client.get("/admin/audit").get_data(as_text=True)
    assert shown(entry["at"], seconds=True) in page
    assert utc_text(entry["at"], seconds=True) not in page
    assert re.search(r"When \((EST|EDT)\)", page)


def test_jobs_page_is_in_the_business_zone(app, admin_client):
    scheduler = Scheduler(app.config["DATABASE"])
    scheduler.add("nightly-check", 3600, lambda: "checked")
    before = timeutil.iso_now()
    scheduler.run_pending()
    page = admin_client.get("/admin/jobs").get_data(as_text=True)
    started = re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (EST|EDT)", page)
    assert started, page
    assert started.group(0)[:13] == shown(before, seconds=True)[:13]     # same local hour
    assert "(UTC)" not in page


def test_unattributed_postbacks_are_in_the_business_zone(client, admin_client):
    before = timeutil.iso_now()
    query = {"click_id": "stray", "transaction_id": "tx-1", "payout": "1.00", "secret": "postback-test-secret"}
    assert client.get("/api/postback?" + urlencode(query)).status_code == 200
    page = admin_client.get("/admin/settings/postback").get_data(as_text=True)
    assert " UTC" not in page
    assert shown(before)[:13] in page and re.search(r"\d\d:\d\d:\d\d (EST|EDT)", page)


def test_live_view_says_which_zone(admin_client):
    page = admin_client.get("/admin/live").get_data(as_text=True)
    now_label = dt.datetime.now(NEW_YORK).strftime("%Z")
    assert f"America/New_York time ({now_label})" in page
    assert re.search(rf"updated \d\d:\d\d:\d\d {now_label}", page)


# Pages added after the one clock: each stored instant below is 02:00 UTC, the evening before in
# New York, so both the hour and the date differ if UTC leaks through.
LATE = "2026-01-15T02:00:00Z"


def test_experiment_pages_are_in_the_business_zone(app, admin_client, db):
    from popup_mgr import experiments
    arms = [{"campaign_id": add_campaign(db, name=name), "weight": 50} for name in ("One", "Two")]
    with app.app_context():
        experiment = experiments.create(db, {"property": "mff", "arms": arms}, "mike")
        experiments.stop(db, experiment["id"], "mike")
    db.execute("UPDATE experiments SET started_at = ?, stopped_at = ?", (LATE, "2026-01-20T03:30:00Z"))
    db.commit()
    card = admin_client.get(f"/admin/experiments/{experiment['id']}").get_data(as_text=True)
    assert f"started {shown(LATE)}" in card and f"stopped {shown('2026-01-20T03:30:00Z')}" in card
    assert " UTC" not in card
    listing = admin_client.get("/admin/experiments").get_data(as_text=True)
    assert "2026-01-14 – 2026-01-19" in listing


def test_users_and_tokens_pages_are_in_the_business_zone(admin_client, db, api_token):
    db.execute("UPDATE users SET created_at = ?, last_login_at = ?", (LATE, LATE))
    db.execute("UPDATE api_tokens SET created_at = ?", (LATE,))
    db.commit()
    users_page = admin_client.get("/admin/users").get_data(as_text=True)
    assert f"Added {shown(LATE)} · last login {shown(LATE)}" in users_page
    # This very session (times of now: an old one would have expired).
    assert re.search(r"since \d{4}-\d\d-\d\d \d\d:\d\d (EST|EDT) · last seen \d{4}-\d\d-\d\d \d\d:\d\d (EST|EDT)",
                     users_page)
    tokens_page = admin_client.get("/admin/tokens").get_data(as_text=True)
    assert f"created {shown(LATE)}" in tokens_page
    assert utc_text(LATE) not in users_page + tokens_page


def test_alerts_page_is_in_the_business_zone(admin_client, db):
    db.execute("INSERT INTO incidents (rule, subject, summary, opened_at) VALUES"
               " ('property_silent', 'property:mff', 'mff is silent', ?)", (LATE,))
    db.commit()
    page = admin_client.get("/admin/alerts").get_data(as_text=True)
    assert shown(LATE) in page and " UTC" not in page


def test_tune_sync_times_are_in_the_business_zone(admin_client, db):
    db.execute("INSERT INTO tune_sync_runs (started_at, finished_at, actor, outcome) VALUES (?, ?, 'mike', 'ok')",
               (LATE, LATE))
    db.commit()
    page = admin_client.get("/admin/tune").get_data(as_text=True)
    assert f"{shown(LATE)}</time>, by mike" in page
    assert utc_text(LATE) not in page
