"""The Tune and Reconciliation admin pages, GET /api/reconciliation, the hold badge on the
campaign list and the gap sentence on the dashboard, against the stand-in network."""
import datetime as dt
import json
import logging
import re
from html import unescape
from zoneinfo import ZoneInfo

import pytest

from popup_mgr import campaigns, reconcile, tune_jobs, tune_settings
from popup_mgr import db as database
from tests.helpers import csrf_token
from tests.tune_standin import API_KEY, NETWORK_ID

TZ = "America/New_York"
ZONE = ZoneInfo(TZ)
HTMX = {"HX-Request": "true"}


@pytest.fixture
def connected(app, tune):
    tune_jobs.save_settings(app, "mike", network_id=NETWORK_ID, api_key=API_KEY, api_url=tune.url, tz=TZ)
    return app


@pytest.fixture
def token(admin_client):
    return csrf_token(admin_client, "/admin/tune")


def text(response):
    return response.get_data(as_text=True)


def words(html):
    """The visible text of an HTML answer, on one line."""
    return re.sub(r" ([.,:;])", r"\1", " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split()))


# --- who may do what --------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/admin/tune", "/admin/tune/reconciliation",
                                  "/admin/tune/reconciliation.csv?from=2026-11-20&to=2026-11-20"])
def test_pages_need_a_login(client, path):
    response = client.get(path)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("path", ["/admin/tune/settings", "/admin/tune/test", "/admin/tune/sync",
                                  "/admin/tune/campaigns/1/activate", "/admin/tune/reconciliation/apply"])
def test_every_post_needs_the_csrf_token_and_a_login(app, client, admin_client, tune, path):
    form = {"network_id": NETWORK_ID, "api_key": API_KEY, "api_url": tune.url, "from": "2026-11-20",
            "to": "2026-11-20"}
    assert client.post(path, data=form).status_code == 400             # anonymous, no token
    assert admin_client.post(path, data=form).status_code == 400       # logged in, no token
    assert tune.calls == []
    assert not tune_jobs.settings(app).network_id
    anonymous_token = csrf_token(client, "/login")
    response = client.post(path, data=form | {"csrf_token": anonymous_token})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert tune.calls == [] and not tune_jobs.settings(app).network_id


# --- the Tune page -----------------------------------------------------------------------------------

def test_save_settings_shows_the_key_masked_only_and_audits_it_masked(app, admin_client, db, tune, token):
    response = admin_client.post("/admin/tune/settings", headers=HTMX, data={
        "csrf_token": token, "network_id": NETWORK_ID, "api_key": API_KEY, "api_url": tune.url, "tz": ""})

    assert response.status_code == 200
    html = text(response)
    assert "Saved: network id, API key, API URL." in html
    assert f"Connected to network {NETWORK_ID} with the API key ••••abcd." in words(html)
    assert API_KEY not in html
    current = tune_jobs.settings(app)
    assert (current.network_id, current.api_key, current.api_url, current.tz) == (NETWORK_ID, API_KEY, tune.url, TZ)
    stored = db.execute("SELECT value FROM settings WHERE key = 'tune.api_key'").fetchone()[0]
    assert API_KEY not in stored                                          # encrypted at rest
    changes = json.loads(db.execute("SELECT changes FROM audit_log WHERE action = 'tune.settings'").fetchone()[0])
    assert changes["api_key"] == [None, "••••abcd"] and API_KEY not in json.dumps(changes)

    # An empty key field keeps the saved key.
    again = admin_client.post("/admin/tune/settings", headers=HTMX, data={
        "csrf_token": token, "network_id": NETWORK_ID, "api_key": "", "api_url": tune.url, "tz": "America/Chicago"})
    assert "Saved: time zone." in text(again)
    assert tune_jobs.settings(app).api_key == API_KEY


def test_a_refused_form_never_echoes_the_key(app, admin_client, token):
    response = admin_client.post("/admin/tune/settings", data={
        "csrf_token": token, "network_id": "not a network id!", "api_key": API_KEY, "tz": "Mars/Olympus"})

    assert response.status_code == 422
    html = text(response)
    assert API_KEY not in html
    assert "Use the network id from Tune" in html and "Use a time zone name" in html
    assert 'value="not a network id!"' in html                          # what he typed, except the key
    assert "The key you typed was not saved: enter it again." in html
    assert tune_jobs.settings(app).network_id == ""


def test_settings_from_the_environment_are_shown_read_only(app, admin_client, monkeypatch, token, tune):
    monkeypatch.setenv("POPUP_TUNE_NETWORK_ID", "envnet")
    monkeypatch.setenv("POPUP_TUNE_API_KEY", API_KEY)
    html = text(admin_client.get("/admin/tune"))
    assert "Set by <code>POPUP_TUNE_NETWORK_ID</code>" in html and "Set by <code>POPUP_TUNE_API_KEY</code>" in html
    assert 'name="network_id"' not in html and 'name="api_key"' not in html
    assert API_KEY not in html and "••••abcd" in html
    admin_client.post("/admin/tune/settings", data={"csrf_token": token, "network_id": "other", "api_key": "x" * 20,
                                                    "api_url": tune.url})
    assert tune_settings.stored_values(database.connect(app.config["DATABASE"])).keys() == {"tune.api_url"}


def test_test_connection_says_the_networks_answer(connected, admin_client, tune, token):
    tune.add_offer(1001)
    ok = admin_client.post("/admin/tune/test", headers=HTMX, data={"csrf_token": token})
    assert "Connected to network modenet. 1 approved offer." in text(ok)

    tune_jobs.save_settings(connected, "mike", api_key="wrongkey0123456789")
    refused = admin_client.post("/admin/tune/test", headers=HTMX, data={"csrf_token": token})
    assert ("The network refused: Affiliate_Offer.findMyApprovedOffers: Invalid api key" in text(refused))
    assert "wrongkey0123456789" not in text(refused)


def test_test_connection_before_setup_says_what_is_missing(app, admin_client, tune, token):
    answer = admin_client.post("/admin/tune/test", headers=HTMX, data={"csrf_token": token})
    assert tune_jobs.NOT_CONNECTED in text(answer) and tune.calls == []


def test_sync_now_then_review_and_activate(connected, admin_client, db, tune, token):
    tune.add_offer(1001, "Auto Insurance CPL - US")
    tune.add_offer(1002, "Home Warranty - US", status="paused")

    synced = admin_client.post("/admin/tune/sync", headers=HTMX, data={"csrf_token": token})

    html = text(synced)
    assert "Tune sync: 2 created, 0 updated, 1 held, 0 released, 0 unchanged." in html
    assert 'id="tune-review"' in html and 'hx-swap-oob="true"' in html    # the review list comes along
    assert "New offers to review: 2" in words(html)
    assert "Held by Tune: offer paused at the network" in html
    ids = {row["tune_campaign_id"]: row["id"] for row in db.execute("SELECT id, tune_campaign_id FROM campaigns")}

    activated = admin_client.post(f"/admin/tune/campaigns/{ids[1001]}/activate", headers=HTMX,
                                  data={"csrf_token": token})
    assert "“Auto Insurance CPL - US” is active and shown from now on." in text(activated)
    assert "New offers to review: 1" in words(text(activated))
    assert campaigns.get(db, ids[1001])["active"] is True
    audit = db.execute("SELECT actor, action FROM audit_log WHERE entity_id = ? ORDER BY id DESC",
                       (ids[1001],)).fetchone()
    assert tuple(audit) == ("mike", "campaign.toggle")
    held = admin_client.post(f"/admin/tune/campaigns/{ids[1002]}/activate", headers=HTMX, data={"csrf_token": token})
    assert "shown once the network's hold lifts (offer paused at the network)" in words(text(held))
    # Only campaigns waiting for review are activated here.
    assert admin_client.post(f"/admin/tune/campaigns/{ids[1001]}/activate", data={"csrf_token": token}).status_code == 404

    page = text(admin_client.get("/admin/tune"))
    assert "Done: 2 created, 0 updated, 1 held, 0 released, 0 unchanged" in page and "by mike" in page


def test_a_failed_sync_now_says_so_and_changes_nothing(connected, admin_client, db, tune, token):
    tune.add_offer(1001, link=False)
    tune.fail_next("error", method="generateTrackingLink", detail="Offer 1001 is not available to you")
    response = admin_client.post("/admin/tune/sync", data={"csrf_token": token})
    assert response.status_code == 302                                   # plain form: back to the page
    page = text(admin_client.get("/admin/tune"))
    assert ("The sync failed and changed nothing: Affiliate_Offer.generateTrackingLink: Offer 1001 is not"
            " available to you") in page
    assert "Failed: Affiliate_Offer.generateTrackingLink" in page and "Last success" in page
    assert db.execute("SELECT count(*) FROM campaigns").fetchone()[0] == 0


# --- the Reconciliation page -------------------------------------------------------------------------

def at(text_):
    return int(dt.datetime.fromisoformat(text_).replace(tzinfo=ZONE).timestamp() * 1000)


@pytest.fixture
def differing(connected, db, tune):
    campaign = campaigns.create(db, {"tune_campaign_id": 1001, "name": "Auto Insurance", "display_title": "Auto Insurance",
                                     "click_url": "https://modenet.go2cloud.org/aff_c?offer_id=1001&aff_id=2002"},
                                "mike")["id"]
    with database.transaction(db):
        for n in range(3):
            db.execute("INSERT INTO clicks (click_id, event_id, ts, day, campaign_id, property_id, placement,"
                       " is_bot) VALUES (?, ?, ?, '2026-11-20', ?, 1, 'thankyou', 0)",
                       (f"click{n}", f"event{n}", at(f"2026-11-20 10:0{n}:00"), campaign))
        reconcile.store_conversion(db, "tx-same", "click0", 450, "approved", at("2026-11-20 11:00:00"))
        reconcile.store_conversion(db, "tx-status", "click1", 450, "approved", at("2026-11-20 11:00:00"))
    tune.add_conversion("tx-same", 1001, "2026-11-20 11:00:00", click_id="click0")
    tune.add_conversion("tx-status", 1001, "2026-11-20 11:00:00", status="rejected", click_id="click1")
    tune.add_conversion("tx-tune-only", 1001, "2026-11-20 12:00:00", payout="12.40", click_id="click2")
    tune.add_stat("2026-11-20", 1001, impressions=40, clicks=3, conversions=2, payout="16.90")
    tune.add_stat("2026-11-19", 1001, impressions=10, clicks=0, conversions=0, payout="0.00")
    return campaign


RANGE = "from=2026-11-19&to=2026-11-20"


def test_reconciliation_page_highlights_the_differences(differing, admin_client, db):
    response = admin_client.get(f"/admin/tune/reconciliation?{RANGE}")

    assert response.status_code == 200
    html = text(response)
    visible = words(html)
    assert "Tune reports $7.90 more than we recorded for 2026-11-19 to 2026-11-20: 1 conversion we never received." \
        in visible
    assert html.count('class="tn-differs"') == 1                        # the 20th differs, the 19th does not
    assert "3 / 3 / 0" in visible and "2 / 2 / 0" in visible and "9.00 / 16.90 / +7.90" in visible
    assert "Missing in ours: 1" in visible and "Status differs: 1" in visible and "Missing in Tune: 0" in visible
    assert "ours approved, Tune rejected" in visible and "Apply Tune's 2 corrections" in visible
    assert reconcile.last_summary(db) is None                            # looking records nothing

    def day_table(html):
        return words(re.search(r'<table class="tn-table" id="reconciliation-days">.*?</table>', html, re.S).group(0))

    assert "2026-11-19" in day_table(html)
    only = day_table(text(admin_client.get(f"/admin/tune/reconciliation?{RANGE}&only=diff")))
    assert "2026-11-20" in only and "2026-11-19" not in only


def test_apply_from_the_page_is_audited_and_twice_is_once(differing, admin_client, db, token):
    form = {"csrf_token": token, "from": "2026-11-19", "to": "2026-11-20"}

    applied = admin_client.post("/admin/tune/reconciliation/apply", headers=HTMX, data=form)

    html = text(applied)
    assert "Applied: 1 conversion(s) recorded from Tune, 1 status(es) taken from Tune." in html
    assert "Nothing to apply" in html and "Missing in ours: 0" in words(html)
    assert db.execute("SELECT status FROM conversions WHERE transaction_id = 'tx-status'").fetchone()[0] == "rejected"
    audit = sorted(tuple(r) for r in db.execute("SELECT actor, action FROM audit_log WHERE entity = 'conversion'"))
    assert audit == [("mike", "conversion.import"), ("mike", "conversion.status")]
    assert reconcile.last_summary(db)["missing_in_ours"] == 0

    again = admin_client.post("/admin/tune/reconciliation/apply", data=form)
    assert again.status_code == 302
    assert "Applied: 0 conversion(s) recorded from Tune, 0 status(es) taken from Tune." in \
        text(admin_client.get(again.headers["Location"]))
    assert db.execute("SELECT count(*) FROM audit_log WHERE entity = 'conversion'").fetchone()[0] == 2


def test_reconciliation_csv(differing, admin_client):
    days = admin_client.get(f"/admin/tune/reconciliation.csv?{RANGE}")
    assert days.mimetype == "text/csv"
    assert text(days).splitlines() == [
        "date,offer_id,campaign_id,ours_clicks,tune_clicks,diff_clicks,ours_conversions,tune_conversions,"
        "diff_conversions,ours_revenue,tune_revenue,diff_revenue,tune_impressions",
        f"2026-11-19,1001,{differing},0,0,0,0,0,0,0.00,0.00,0.00,10",
        f"2026-11-20,1001,{differing},3,3,0,2,2,0,9.00,16.90,7.90,40"]
    conversions = text(admin_client.get(f"/admin/tune/reconciliation.csv?{RANGE}&table=conversions")).splitlines()
    assert conversions == [
        "difference,transaction_id,click_id,offer_id,payout,status,ours_status,datetime",
        "missing_in_ours,tx-tune-only,click2,1001,12.40,approved,,2026-11-20 12:00:00",
        "status_mismatches,tx-status,click1,1001,4.50,rejected,approved,2026-11-20 11:00:00"]


def test_reconciliation_page_bad_range_and_not_connected(app, admin_client, tune):
    bad = admin_client.get("/admin/tune/reconciliation?from=2026-11-21&to=2026-11-20")
    assert bad.status_code == 422 and "the last day is before the first day" in text(bad)
    offline = admin_client.get(f"/admin/tune/reconciliation?{RANGE}")
    assert offline.status_code == 503 and tune_jobs.NOT_CONNECTED in text(offline)
    assert tune.calls == []


def test_reconciliation_defaults_to_the_networks_yesterday(connected, admin_client, tune):
    html = text(admin_client.get("/admin/tune/reconciliation"))
    yesterday = tune_jobs.yesterday(connected)
    assert f'name="from" value="{yesterday}"' in html and f'name="to" value="{yesterday}"' in html
    assert "Tune and we recorded the same revenue yesterday." in html


# --- the API -------------------------------------------------------------------------------------------

def test_api_needs_a_session_or_a_token(client, tune):
    response = client.get(f"/api/reconciliation?{RANGE}")
    assert response.status_code == 401 and set(response.get_json()) == {"error"}
    assert client.get(f"/api/reconciliation?{RANGE}", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert tune.calls == []


@pytest.mark.parametrize("query, errors", [
    ("", {"from": "required: a day as YYYY-MM-DD", "to": "required: a day as YYYY-MM-DD"}),
    ("from=2026-11-20&to=yesterday", {"to": "'yesterday' is not a day (YYYY-MM-DD)"}),
    ("from=2026-11-20&to=2026-11-19", {"to": "the last day is before the first day"}),
])
def test_api_bad_range_is_422_in_the_campaigns_shape(connected, client, api_token, tune, query, errors):
    response = client.get(f"/api/reconciliation?{query}", headers={"Authorization": f"Bearer {api_token}"})
    assert response.status_code == 422
    assert response.get_json() == {"error": "the range is not valid: see errors", "errors": errors}
    assert tune.calls == []


def test_api_answers_the_contracts_json_and_records_nothing(differing, client, api_token, db, tune):
    response = client.get(f"/api/reconciliation?{RANGE}", headers={"Authorization": f"Bearer {api_token}"})

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"from", "to", "days", "missing_in_ours", "missing_in_tune", "status_mismatches", "totals"}
    assert body["totals"]["tune"] == {"impressions": 50, "clicks": 3, "conversions": 2, "revenue": "16.90"}
    assert [c["transaction_id"] for c in body["missing_in_ours"]] == ["tx-tune-only"]
    assert body["status_mismatches"][0]["ours_status"] == "approved"
    assert reconcile.last_summary(db) is None
    assert db.execute("SELECT count(*) FROM conversions").fetchone()[0] == 2


def test_api_is_503_when_tune_is_not_connected_or_fails(app, admin_client, tune):
    offline = admin_client.get(f"/api/reconciliation?{RANGE}")
    assert offline.status_code == 503 and offline.get_json() == {"error": tune_jobs.NOT_CONNECTED}
    tune_jobs.save_settings(app, "mike", network_id=NETWORK_ID, api_key=API_KEY, api_url=tune.url)
    tune.fail_next("error", method="getStats", detail="Reports are down for maintenance")
    failing = admin_client.get(f"/api/reconciliation?{RANGE}")
    assert failing.status_code == 503
    assert failing.get_json() == {"error": "Tune did not answer as expected: Affiliate_Report.getStats: Reports are"
                                           " down for maintenance"}


# --- the campaign list and the dashboard ----------------------------------------------------------------

def test_campaign_list_shows_a_hold_as_a_badge_with_its_reason(connected, admin_client, db, tune, token):
    tune.add_offer(1001, expiration="2020-01-01 23:59:59")
    admin_client.post("/admin/tune/sync", data={"csrf_token": token})
    html = text(admin_client.get("/admin/campaigns"))
    assert '<span class="an-badge network-hold">Held by Tune: offer expired at the network (2020-01-02T04:59:59Z)</span>' \
        in html


def test_dashboard_shows_the_last_gap_only_when_tune_is_connected(app, admin_client, db, tune):
    summary = {"from": "2026-11-20", "to": "2026-11-20", "missing_in_ours": 3, "missing_in_tune": 0,
               "status_mismatches": 0, "totals": {"ours": {"revenue": "20.00"}, "tune": {"revenue": "32.40"}}}
    with database.transaction(db):
        db.execute("INSERT INTO tune_reconciliations (at, first_day, last_day, summary) VALUES (?, ?, ?, ?)",
                   ("2026-11-21T06:00:00Z", "2026-11-20", "2026-11-20", json.dumps(summary)))
    assert 'id="tune-gap"' not in text(admin_client.get("/admin/dashboard"))

    tune_jobs.save_settings(app, "mike", network_id=NETWORK_ID, api_key=API_KEY, api_url=tune.url, tz=TZ)
    html = text(admin_client.get("/admin/dashboard"))
    assert "Tune reports $12.40 more than we recorded for 2026-11-20: 3 conversions we never received." in html
    assert 'href="/admin/tune/reconciliation?from=2026-11-20&amp;to=2026-11-20"' in html
    gap = tune_jobs.dashboard_gap(app, db, now=dt.datetime(2026, 11, 21, 15, 0, tzinfo=dt.timezone.utc))
    assert gap["sentence"] == "Tune reports $12.40 more than we recorded yesterday: 3 conversions we never received."
    assert tune.calls == []                                              # the dashboard never asks the network


# --- the key, nowhere ------------------------------------------------------------------------------------

def differing_app(test_client):
    return test_client.application


def test_the_key_is_in_no_page_and_no_log_line(differing, admin_client, api_token, client, tune, token, caplog):
    caplog.set_level(logging.DEBUG)
    tune.add_offer(1001)
    tune.add_offer(1002, status="paused")
    answers = [admin_client.post("/admin/tune/settings", data={"csrf_token": token, "network_id": NETWORK_ID,
                                                                "api_key": API_KEY, "api_url": tune.url}),
               admin_client.post("/admin/tune/test", data={"csrf_token": token}, headers=HTMX),
               admin_client.post("/admin/tune/sync", data={"csrf_token": token}, headers=HTMX),
               admin_client.post("/admin/tune/reconciliation/apply", data={"csrf_token": token, "from": "2026-11-20",
                                                                          "to": "2026-11-20"}, headers=HTMX)]
    for path in ("/admin/tune", f"/admin/tune/reconciliation?{RANGE}", f"/admin/tune/reconciliation.csv?{RANGE}",
                 "/admin/campaigns", "/admin/audit", "/admin/dashboard"):
        answers.append(admin_client.get(path))
    answers.append(client.get(f"/api/reconciliation?{RANGE}", headers={"Authorization": f"Bearer {api_token}"}))
    tune.fail_next("rate_limit", method="findMyApprovedOffers")          # a retry logs a warning
    tune_jobs.sync_now(differing_app(admin_client), backoff_s=0)

    assert all(answer.status_code in (200, 302) for answer in answers), [a.status_code for a in answers]
    for answer in answers:
        assert API_KEY not in text(answer) and API_KEY not in str(answer.headers)
    assert any("retry 1 of" in record.getMessage() for record in caplog.records)
    # The stand-in's own access log (logger "werkzeug") is the network's side, not ours.
    ours = [record for record in caplog.records if record.name != "werkzeug"]
    assert not any(API_KEY in record.getMessage() for record in ours)
    requests = [record.getMessage() for record in ours if record.name == "httpx"]
    assert requests and all("api_key=***" in line for line in requests)     # httpx's request lines, redacted
