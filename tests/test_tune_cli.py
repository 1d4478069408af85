"""`popup-mgr sync-tune` and `popup-mgr reconcile` against the stand-in network: through Flask's CLI
runner on the test app, and through the real console script in a subprocess (exit codes, what
reaches stdout and stderr, the key never shown)."""
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from popup_mgr import campaigns, reconcile, tune_jobs
from popup_mgr import db as database
from popup_mgr.tune_client import TuneClient
from tests.helpers import TEST_SECRET
from tests.tune_standin import API_KEY, INVALID_KEY_MESSAGE, NETWORK_ID

POPUP_MGR = str(Path(sys.executable).parent / "popup-mgr")
TZ = "America/New_York"
ZONE = ZoneInfo(TZ)


@pytest.fixture
def connected(app, tune):
    tune_jobs.save_settings(app, "mike", network_id=NETWORK_ID, api_key=API_KEY, api_url=tune.url, tz=TZ)
    return app


def invoke(runner, *args):
    return runner.invoke(args=list(args), catch_exceptions=False)


def console(db_path, *args, **env):
    """The real console script on the app's database; Tune settings from the environment given."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("POPUP_")}
    environ.update({"POPUP_DB": str(db_path), "POPUP_SECRET_KEY": TEST_SECRET, "POPUP_TZ": TZ}, **env)
    return subprocess.run([POPUP_MGR, *args], capture_output=True, text=True, env=environ, timeout=60)


def tune_env(tune, key=API_KEY):
    return {"POPUP_TUNE_NETWORK_ID": NETWORK_ID, "POPUP_TUNE_API_KEY": key, "POPUP_TUNE_API_URL": tune.url}


def snapshot(db):
    """Everything the commands may change (their run records aside)."""
    return {table: [tuple(row) for row in db.execute(f"SELECT * FROM {table} ORDER BY 1")]
            for table in ("campaigns", "tune_offers", "audit_log", "conversions", "daily_stats")}


def mikes_campaign(db, offer_id, **fields):
    return campaigns.create(db, {"tune_campaign_id": offer_id, "name": f"Mike's {offer_id}",
                                 "display_title": "Mike's own title", "tagline": "Mike's tagline",
                                 "payout": "3.00", "priority": 9,
                                 "click_url": f"https://modenet.go2cloud.org/aff_c?offer_id={offer_id}&aff_id=2002",
                                 **fields}, "mike")


# --- sync-tune -------------------------------------------------------------------------------------

def test_sync_tune_json_creates_updates_holds_and_releases(connected, runner, db, tune):
    kept = mikes_campaign(db, 1002)
    paused_by_mike = mikes_campaign(db, 1003, active=False)
    tune.add_offer(1001, "Auto Insurance CPL - US")
    tune.add_offer(1002, payout="5.25")
    tune.add_offer(1003, status="paused")

    result = invoke(runner, "sync-tune", "--json")

    assert result.exit_code == 0, result.output
    new = db.execute("SELECT id FROM campaigns WHERE tune_campaign_id = 1001").fetchone()["id"]
    assert json.loads(result.stdout) == {"created": [new], "updated": [kept["id"], paused_by_mike["id"]],
                                         "held": [{"campaign_id": paused_by_mike["id"],
                                                   "reason": "offer paused at the network"}],
                                         "released": [], "unchanged": 0}
    after = campaigns.get(db, kept["id"])
    assert (after["payout"], after["display_title"], after["tagline"], after["priority"]) == \
        ("5.25", "Mike's own title", "Mike's tagline", 9)                 # network facts only
    assert campaigns.get(db, new)["active"] is False                      # waits for review

    tune.add_offer(1003, status="active")
    again = json.loads(invoke(runner, "sync-tune", "--json").stdout)
    assert again == {"created": [], "updated": [paused_by_mike["id"]], "held": [],
                     "released": [paused_by_mike["id"]], "unchanged": 2}
    released = campaigns.get(db, paused_by_mike["id"])
    assert released["network_hold"] is None and released["active"] is False   # Mike's pause stays
    actors = {row[0] for row in db.execute("SELECT actor FROM audit_log WHERE action LIKE 'campaign.network%'")}
    assert actors == {"cli"}


def test_sync_tune_says_what_it_did_in_words(connected, runner, db, tune):
    tune.add_offer(1001)
    tune.add_offer(1002, expiration="2020-01-01")

    result = invoke(runner, "sync-tune")

    ids = [row[0] for row in db.execute("SELECT id FROM campaigns ORDER BY tune_campaign_id")]
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "Tune sync: 2 created, 0 updated, 1 held, 0 released, 0 unchanged.",
        f"  created   campaign #{ids[0]}, inactive until you review it",
        f"  created   campaign #{ids[1]}, inactive until you review it",
        # A bare expiry date ends at that day's midnight in the network's time zone.
        f"  held      campaign #{ids[1]}: offer expired at the network (2020-01-02T05:00:00Z)"]


def test_dry_run_reports_exactly_what_a_run_would_do_and_changes_nothing(connected, runner, db, tune):
    mikes_campaign(db, 1002)
    tune.add_offer(1001)
    tune.add_offer(1002, payout="6.00", status="paused")
    before = snapshot(db)

    dry = invoke(runner, "sync-tune", "--dry-run", "--json")
    words = invoke(runner, "sync-tune", "--dry-run")

    assert snapshot(db) == before
    assert words.stdout.startswith("Tune sync (dry run, nothing changed): 1 created, 1 updated, 1 held")
    real = invoke(runner, "sync-tune", "--json")
    assert json.loads(dry.stdout) == json.loads(real.stdout)
    assert snapshot(db) != before


def test_a_network_failure_exits_1_with_its_message_and_changes_nothing(connected, db, tune):
    mikes_campaign(db, 1002)
    tune.add_offer(1001, link=False)             # needs generateTrackingLink, which fails
    tune.add_offer(1002, payout="9.99", status="paused")
    tune.fail_next("error", method="generateTrackingLink", detail="Offer 1001 is not available to you")
    before = snapshot(db)

    result = console(connected.config["DATABASE"], "sync-tune", "--json", **tune_env(tune))

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == ("Error: Tune: Affiliate_Offer.generateTrackingLink: Offer 1001 is not available"
                             " to you; nothing was changed.\n")
    assert snapshot(db) == before
    run = db.execute("SELECT outcome, message FROM tune_sync_runs").fetchone()
    assert tuple(run) == ("error", "Affiliate_Offer.generateTrackingLink: Offer 1001 is not available to you")


def test_a_wrong_key_exits_1_without_showing_any_key(app, db, tune):
    wrong_key = "wrong0123456789abcdefWRONG"
    tune.add_offer(1001)

    result = console(app.config["DATABASE"], "sync-tune", **tune_env(tune, key=wrong_key))

    assert result.returncode == 1
    assert f"Affiliate_Offer.findMyApprovedOffers: {INVALID_KEY_MESSAGE}" in result.stderr
    assert "Traceback" not in result.stderr
    for key in (wrong_key, API_KEY):
        assert key not in result.stdout + result.stderr
    assert db.execute("SELECT count(*) FROM campaigns").fetchone()[0] == 0


def test_not_configured_exits_1_and_sends_nothing(app, db, tune):
    result = console(app.config["DATABASE"], "sync-tune")
    assert (result.returncode, result.stderr) == (1, "Error: " + tune_jobs.NOT_CONNECTED + "\n")
    assert tune.calls == []


def test_settings_saved_on_the_tune_page_are_used_by_the_console_script(connected, db, tune):
    tune.add_offer(1001)
    result = console(connected.config["DATABASE"], "sync-tune", "--json")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["created"]) == 1


def test_a_sync_already_running_elsewhere_exits_1(connected, runner, db, tune):
    from popup_mgr import leases, tune_sync
    assert leases.acquire(db, tune_sync.LEASE_NAME, "the-server", 60)
    tune.add_offer(1001)
    result = runner.invoke(args=["sync-tune"])
    assert result.exit_code == 1
    assert "another Tune sync is running" in result.output
    assert db.execute("SELECT count(*) FROM campaigns").fetchone()[0] == 0


# --- reconcile -----------------------------------------------------------------------------------

def at(text):
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=ZONE).timestamp() * 1000)


def add_click(db, campaign_id, ts, n):
    with database.transaction(db):
        db.execute("INSERT INTO clicks (click_id, event_id, ts, day, campaign_id, property_id, placement, is_bot)"
                   " VALUES (?, ?, ?, ?, ?, 1, 'thankyou', 0)",
                   (f"click{n:04d}", f"event{n:04d}", ts, dt.datetime.fromtimestamp(ts / 1000, ZONE).date().isoformat(),
                    campaign_id))
    return f"click{n:04d}"


@pytest.fixture
def differing(connected, db, tune):
    """2026-11-20 with one conversion of each kind of difference."""
    campaign = mikes_campaign(db, 1001)["id"]
    clicks = [add_click(db, campaign, at(f"2026-11-20 10:0{i}:00"), i) for i in range(4)]
    with database.transaction(db):
        for transaction_id, click, status in (("tx-same", clicks[0], "approved"), ("tx-status", clicks[1], "approved"),
                                              ("tx-ours-only", clicks[2], "approved")):
            reconcile.store_conversion(db, transaction_id, click, 450, status, at("2026-11-20 11:00:00"))
    tune.add_conversion("tx-same", 1001, "2026-11-20 11:00:00", click_id=clicks[0])
    tune.add_conversion("tx-status", 1001, "2026-11-20 11:00:00", status="rejected", click_id=clicks[1])
    tune.add_conversion("tx-tune-only", 1001, "2026-11-20 12:00:00", click_id=clicks[3])
    tune.add_conversion("tx-foreign", 1001, "2026-11-20 12:30:00", payout="4.25", click_id="not-ours")
    tune.add_stat("2026-11-20", 1001, impressions=40, clicks=4, conversions=3, payout="13.25")
    return campaign


def test_reconcile_json_is_the_contracts_and_records_the_summary(connected, runner, db, tune, differing):
    result = invoke(runner, "reconcile", "--from", "2026-11-20", "--to", "2026-11-20", "--json")

    assert result.exit_code == 0
    printed = json.loads(result.stdout)
    expected = reconcile.reconcile(db, TuneClient(tune.url, NETWORK_ID, API_KEY, retries=0), "2026-11-20",
                                   "2026-11-20", TZ)
    assert printed == expected
    assert [c["transaction_id"] for c in printed["missing_in_ours"]] == ["tx-tune-only", "tx-foreign"]
    assert reconcile.last_summary(db)["missing_in_ours"] == 2


def test_reconcile_apply_twice_is_once(connected, runner, db, tune, differing):
    first = json.loads(invoke(runner, "reconcile", "--from", "2026-11-20", "--to", "2026-11-20",
                              "--apply", "--json").stdout)
    stored = snapshot(db)["conversions"]
    second = json.loads(invoke(runner, "reconcile", "--from", "2026-11-20", "--to", "2026-11-20",
                               "--apply", "--json").stdout)

    assert first["applied"] == {"recorded": ["tx-tune-only", "tx-foreign"], "updated": ["tx-status"], "unchanged": 0}
    assert second["applied"] == {"recorded": [], "updated": [], "unchanged": 0}
    assert second["missing_in_ours"] == [] and second["status_mismatches"] == []
    assert [c["transaction_id"] for c in second["missing_in_tune"]] == ["tx-ours-only"]   # for Mike to raise
    assert snapshot(db)["conversions"] == stored
    imported = db.execute("SELECT campaign_id, status FROM conversions WHERE transaction_id = 'tx-tune-only'").fetchone()
    assert tuple(imported) == (differing, "approved")                       # attributed through our click
    assert db.execute("SELECT campaign_id FROM conversions WHERE transaction_id = 'tx-foreign'").fetchone()[0] is None
    audit = sorted(tuple(row) for row in db.execute("SELECT actor, action FROM audit_log WHERE entity = 'conversion'"))
    assert audit == [("cli", "conversion.import"), ("cli", "conversion.import"), ("cli", "conversion.status")]
    assert reconcile.last_summary(db)["missing_in_ours"] == 0


def test_reconcile_in_words_through_the_console_script(connected, db, tune, differing):
    result = console(connected.config["DATABASE"], "reconcile", "--from", "2026-11-20", "--to", "2026-11-20",
                     "--apply")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ("Reconciliation with Tune, 2026-11-20 to 2026-11-20 (network days, America/New_York);"
                        " diff = Tune - ours")
    assert lines[2].split() == ["2026-11-20", "1001", str(differing), "4", "4", "+0", "3", "3", "+0",
                                "13.50", "/", "13.25", "/", "-0.25", "*"]
    assert "Missing in ours (Tune has them, we never received them): 2" in lines
    assert "Status differs: 1" in lines
    assert ("Tune reports $0.25 less than we recorded for 2026-11-20: 2 conversions we never received."
            in lines)
    assert lines[-2] == ("Applied: 2 conversion(s) recorded, 1 status(es) taken from Tune,"
                         " 0 already as Tune has them.")
    # After: Tune's 4 conversions are ours too (one now rejected); ours-only tx-ours-only is the $4.50.
    assert lines[-1] == "After: Tune reports $4.50 less than we recorded for 2026-11-20."
    assert API_KEY not in result.stdout + result.stderr


@pytest.mark.parametrize("first, last, message", [
    ("2026-11-21", "2026-11-20", "to: the last day is before the first day"),
    ("2026-02-30", "2026-03-01", "from: '2026-02-30' is not a day (YYYY-MM-DD)"),
    ("2025-01-01", "2026-11-20", "to: at most 366 days at a time"),
])
def test_reconcile_refuses_a_bad_range_before_asking_the_network(connected, runner, tune, first, last, message):
    result = runner.invoke(args=["reconcile", "--from", first, "--to", last])
    assert result.exit_code == 2 and message in result.output
    assert tune.calls == []


def test_reconcile_failure_exits_1_and_changes_nothing(connected, db, tune, differing):
    tune.fail_next("error", method="getConversions", detail="Report temporarily unavailable")
    before = snapshot(db)
    result = console(connected.config["DATABASE"], "reconcile", "--from", "2026-11-20", "--to", "2026-11-20",
                     "--apply")
    assert result.returncode == 1
    assert result.stderr == ("Error: Tune: Affiliate_Report.getConversions: Report temporarily unavailable;"
                             " nothing was changed.\n")
    assert snapshot(db) == before and reconcile.last_summary(db) is None
