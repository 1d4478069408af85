"""The Tune offer sync against the stand-in network and a real SQLite file."""
import datetime as dt
import json
import threading

import pytest

from popup_mgr import campaigns, leases, signals, tune_sync
from popup_mgr import db as database
from popup_mgr.tune_client import TuneClient, TuneError
from tests.tune_standin import API_KEY, NETWORK_ID

TZ = "America/New_York"
NOW = dt.datetime(2026, 11, 20, 17, 0, tzinfo=dt.timezone.utc)      # 12:00 in New York


@pytest.fixture
def client(tune, sleeps):
    return TuneClient(tune.url, NETWORK_ID, API_KEY, timeout_s=2, retries=2, backoff_s=1, sleep=sleeps.append)


def run(db, client, **options):
    return tune_sync.sync(db, client, now=options.pop("now", NOW), tune_tz=TZ, **options)


def snapshot(db):
    """Everything a sync may write, to prove that a failed or dry run wrote nothing."""
    return {table: [tuple(row) for row in db.execute(f"SELECT * FROM {table} ORDER BY 1")]
            for table in ("campaigns", "tune_offers", "audit_log", "campaign_properties")}


def audit_rows(db, campaign_id):
    return [(row["actor"], row["action"], json.loads(row["changes"])) for row in db.execute(
        "SELECT * FROM audit_log WHERE entity = 'campaign' AND entity_id = ? ORDER BY id", (campaign_id,))]


def campaign_of(db, offer_id):
    row = db.execute("SELECT id FROM campaigns WHERE tune_campaign_id = ?", (offer_id,)).fetchone()
    return campaigns.get(db, row["id"])


# --- creation ------------------------------------------------------------------------------------

def test_new_offers_become_inactive_campaigns_for_review(db, tune, client):
    tune.add_offer(1001, "Auto Insurance CPL - US", payout="4.5000",
                   description="<p>Compare <b>car</b> insurance &amp; save.</p><ul><li>Fast</li><li>Free</li></ul>")
    tune.add_offer(1002, link=False, thumbnail=False)

    result = run(db, client)

    first, second = campaign_of(db, 1001), campaign_of(db, 1002)
    assert result.as_json() == {"created": [first["id"], second["id"]], "updated": [], "held": [],
                                "released": [], "unchanged": 0}
    assert tune.methods_called() == ["findMyApprovedOffers", "generateTrackingLink"]
    assert {key: first[key] for key in ("name", "display_title", "description", "payout", "active",
                                        "network_hold", "aff_id", "image_url")} == {
        "name": "Auto Insurance CPL - US", "display_title": "Auto Insurance CPL - US",
        "description": "Compare car insurance & save.\nFast\nFree", "payout": "4.50", "active": False,
        "network_hold": None, "aff_id": 2002, "image_url": "https://media.go2cloud.org/thumbs/1001.png"}
    assert first["click_url"] == "https://modenet.go2cloud.org/aff_c?offer_id=1001&aff_id=2002"
    # The pixel's src, with its HTML entity (&amp;) decoded.
    assert first["impression_pixel_url"] == "https://modenet.go2cloud.org/aff_i?offer_id=1001&aff_id=2002"
    assert second["click_url"].endswith("offer_id=1002&aff_id=2002") and second["image_url"] == ""
    actor, action, changes = audit_rows(db, first["id"])[0]
    assert (actor, action) == ("tune-sync", "campaign.create")
    assert changes["reason"][1].startswith("new approved offer") and changes["payout"] == [None, "4.50"]
    assert [row["id"] for row in tune_sync.pending_review(db)] == [second["id"], first["id"]]


def test_non_flat_payouts_are_not_taken_as_money(db, tune, client):
    tune.add_offer(1001, payout="35", payout_type="cpa_percentage")
    run(db, client)
    assert campaign_of(db, 1001)["payout"] == "0.00"


def test_an_offer_with_an_unusable_link_is_skipped_and_the_rest_synced(db, tune, client):
    tune.add_offer(1001)
    tune.add_offer(1002)
    tune.offers["1002"]["TrackingLink"]["click_url"] = "javascript:alert(1)"
    result = run(db, client)
    assert len(result.created) == 1 and result.skipped[0]["offer_id"] == 1002
    assert tune_sync.last_run(db)["result"]["skipped"][0]["offer_id"] == 1002


# --- updates keep the admin's fields --------------------------------------------------------------

def test_updates_change_network_facts_and_keep_everything_the_admin_wrote(db, tune, client):
    tune.add_offer(1001, "Auto Insurance CPL - US", payout="4.50", cap=0)
    run(db, client)
    campaign_id = campaign_of(db, 1001)["id"]
    mine = {"name": "Auto (Mike)", "display_title": "Save on car insurance", "tagline": "2 minutes",
            "description": "My words", "cta_text": "Get quotes", "image_url": "https://cdn.example/a.png",
            "priority": 9, "properties": ["mff", "mmm"], "notes": "call Ana", "active": True,
            "subid_param": "aff_sub2"}
    campaigns.update(db, campaign_id, mine, "mike")

    tune.add_offer(1001, "Auto Insurance CPL - US (renamed)", payout="5.25", cap=50,
                   description="<p>new text</p>", expiration="2031-06-30 23:59:59")
    tune.offers["1001"]["TrackingLink"]["click_url"] += "&url_id=9"
    result = run(db, client)

    after = campaign_of(db, 1001)
    assert result.as_json() == {"created": [], "updated": [campaign_id], "held": [], "released": [],
                                "unchanged": 0}
    assert {key: after[key] for key in mine} == mine
    assert after["payout"] == "5.25" and after["click_url"].endswith("&url_id=9")
    facts = db.execute("SELECT * FROM tune_offers WHERE campaign_id = ?", (campaign_id,)).fetchone()
    # 23:59:59 in New York (EDT in June) is 03:59:59 UTC the next day.
    assert (facts["conversion_cap"], facts["expires_at"]) == (50, "2031-07-01T03:59:59Z")
    actor, action, changes = audit_rows(db, campaign_id)[-1]
    assert action == "campaign.network_update" and changes["payout"] == ["4.50", "5.25"]
    assert changes["network_conversion_cap"] == [0, 50] and "reason" in changes

    assert run(db, client).as_json()["unchanged"] == 1          # nothing new: nothing written


# --- holds and their release ----------------------------------------------------------------------

HOLDS = [
    ("paused", {"status": "paused"}, "offer paused at the network"),
    ("deleted", {"status": "deleted"}, "offer deleted at the network"),
    ("expired", {"expiration": "2026-11-20 11:00:00"}, "offer expired at the network (2026-11-20T16:00:00Z)"),
    ("expired on a bare date", {"expiration": "2026-11-19"}, "offer expired at the network (2026-11-20T05:00:00Z)"),
]


@pytest.mark.parametrize("case, change, reason", HOLDS, ids=[case for case, _, _ in HOLDS])
def test_a_network_hold_stops_the_campaign_and_lifts_by_itself(db, tune, client, case, change, reason):
    tune.add_offer(1001)
    run(db, client)
    campaign_id = campaign_of(db, 1001)["id"]
    campaigns.set_active(db, campaign_id, True, "mike")

    tune.add_offer(1001, **change)
    held = run(db, client)
    assert held.held == [{"campaign_id": campaign_id, "reason": reason}]
    assert campaign_of(db, 1001)["network_hold"] == reason
    assert campaign_of(db, 1001)["active"] is True        # a hold is not a pause
    assert run(db, client).held == []                     # the same hold is not recorded twice

    tune.add_offer(1001)
    released = run(db, client)
    assert released.released == [campaign_id] and campaign_of(db, 1001)["network_hold"] is None
    actions = [action for _, action, _ in audit_rows(db, campaign_id)]
    assert actions[-1] == "campaign.network_release" and "campaign.network_hold" in actions


def test_withdrawn_approval_holds_and_a_new_approval_releases(db, tune, client):
    tune.add_offer(1001)
    tune.add_offer(1002)
    run(db, client)
    withdrawn_id = campaign_of(db, 1002)["id"]

    tune.withdraw(1002)
    result = run(db, client)
    assert result.held == [{"campaign_id": withdrawn_id, "reason": tune_sync.WITHDRAWN}]
    assert result.unchanged == 1

    tune.add_offer(1002)
    result = run(db, client)
    assert result.released == [withdrawn_id] and result.updated == [withdrawn_id]   # approved again


def test_a_hand_entered_campaign_that_the_network_does_not_list_is_held(db, tune, client):
    mine = campaigns.create(db, {"tune_campaign_id": 555, "name": "Hand", "display_title": "Hand",
                                 "click_url": "https://modenet.go2cloud.org/aff_c?offer_id=555"}, "mike")
    result = run(db, client)
    assert result.held == [{"campaign_id": mine["id"], "reason": tune_sync.WITHDRAWN}]


def test_the_daily_cap_holds_until_the_networks_next_day(db, tune, client):
    tune.add_offer(1001, cap=2)
    tune.add_offer(1002, cap=5)
    tune.add_conversion("t1", 1001, "2026-11-20 08:00:00")
    tune.add_conversion("t2", 1001, "2026-11-20 11:59:00")
    tune.add_conversion("t3", 1001, "2026-11-20 11:59:30", status="rejected")   # not counted
    tune.add_conversion("t4", 1002, "2026-11-19 23:59:59")                       # yesterday
    result = run(db, client)
    capped = campaign_of(db, 1001)["id"]
    assert result.held == [{"campaign_id": capped, "reason": "today's conversion cap reached (2 a day)"}]
    assert tune.calls[-1][1]["filters[Stat.datetime][values][]"] == ["2026-11-20 00:00:00", "2026-11-20 23:59:59"]

    # 23:30 in New York is still the same network day; 00:30 is the next one.
    assert run(db, client, now=dt.datetime(2026, 11, 21, 4, 30, tzinfo=dt.timezone.utc)).released == []
    next_day = run(db, client, now=dt.datetime(2026, 11, 21, 5, 30, tzinfo=dt.timezone.utc))
    assert next_day.released == [capped]


def test_the_cap_also_counts_our_own_postbacks_before_the_networks_report(db, tune, client):
    tune.add_offer(1001, cap=1)
    run(db, client)
    campaign_id = campaign_of(db, 1001)["id"]
    stamp = int(NOW.timestamp() * 1000) - 60_000
    db.execute("INSERT INTO clicks (click_id, event_id, ts, day, campaign_id, property_id, placement)"
               " VALUES ('clk-1', 'evt-00001', ?, '2026-11-20', ?, 1, 'thankyou')", (stamp, campaign_id))
    db.execute("INSERT INTO conversions (transaction_id, click_id, click_row_id, ts, updated_ts, day,"
               " campaign_id, property_id, placement, variant, payout_cents, status)"
               " VALUES ('tx-1', 'clk-1', 1, ?, ?, '2026-11-20', ?, 1, 'thankyou', '', 450, 'approved')",
               (stamp, stamp, campaign_id))
    assert run(db, client).held == [{"campaign_id": campaign_id, "reason": "today's conversion cap reached (1 a day)"}]


def test_campaign_json_shows_the_hold_and_can_be_sent_back_as_it_is(db, tune, client):
    tune.add_offer(1001, status="paused")
    run(db, client)
    campaign = campaign_of(db, 1001)
    assert campaign["network_hold"] == "offer paused at the network"
    # network_hold is read-only: a fetched campaign PUT back is accepted and keeps the hold.
    campaign["network_hold"] = None
    assert campaigns.update(db, campaign["id"], campaign, "mike")["network_hold"] == "offer paused at the network"
    assert [a for _, a, c in audit_rows(db, campaign["id"]) if a == "campaign.create"
            and c["network_hold"] == [None, "offer paused at the network"]]


def test_the_admins_pause_is_never_lifted(db, tune, client):
    tune.add_offer(1001, status="paused")
    run(db, client)
    campaign_id = campaign_of(db, 1001)["id"]
    assert campaign_of(db, 1001)["network_hold"] == "offer paused at the network"

    tune.add_offer(1001, payout="9.99")
    result = run(db, client)

    after = campaign_of(db, 1001)
    assert result.released == [campaign_id] and after["network_hold"] is None
    assert after["active"] is False                       # still waiting for Mike's review


# --- failures change nothing ------------------------------------------------------------------------

def test_rate_limits_are_retried_and_the_run_succeeds(db, tune, client, sleeps):
    tune.add_offer(1001)
    tune.fail_next("rate_limit", method="findMyApprovedOffers", times=2)
    assert len(run(db, client).created) == 1
    assert sleeps == [1, 2]


@pytest.mark.parametrize("failing_method", ["findMyApprovedOffers", "generateTrackingLink", "getConversions"])
def test_a_network_error_at_any_step_changes_nothing(db, tune, client, failing_method):
    tune.add_offer(1001)
    run(db, client)
    campaigns.set_active(db, campaign_of(db, 1001)["id"], True, "mike")
    before = snapshot(db)
    tune.add_offer(1001, payout="7.00", status="paused", cap=3)
    tune.add_offer(1002, link=False)
    tune.fail_next("rate_limit" if failing_method == "getConversions" else "error", method=failing_method,
                   detail="Internal error", times=10)

    with pytest.raises(TuneError):
        run(db, client)

    assert snapshot(db) == before
    assert tune_sync.last_run(db)["outcome"] == "error"
    assert leases.current_holder(db, tune_sync.LEASE_NAME) is None       # released


def test_wrong_key_fails_with_the_networks_message_and_no_key(db, tune):
    wrong = "wrongkey-0000000000000000000000000000"
    client = TuneClient(tune.url, NETWORK_ID, wrong, retries=0)
    tune.add_offer(1001)
    with pytest.raises(TuneError) as caught:
        run(db, client)
    last = tune_sync.last_run(db)
    assert "Invalid api key" in last["message"] and wrong not in last["message"]
    assert wrong not in str(caught.value)
    assert db.execute("SELECT count(*) FROM campaigns").fetchone()[0] == 0


def test_dry_run_reports_what_a_run_would_do_and_writes_nothing(db, tune, client):
    tune.add_offer(1001)
    tune.add_offer(1002)
    run(db, client)
    tune.add_offer(1001, payout="8.00")
    tune.withdraw(1002)
    tune.add_offer(1003)
    before = snapshot(db)
    runs_before = db.execute("SELECT count(*) FROM tune_sync_runs").fetchone()[0]

    preview = run(db, client, dry_run=True)

    assert snapshot(db) == before
    assert db.execute("SELECT count(*) FROM tune_sync_runs").fetchone()[0] == runs_before
    assert run(db, client).as_json() == preview.as_json()


# --- one run at a time --------------------------------------------------------------------------------

def test_a_run_is_refused_while_another_holds_the_lease(db, tune, client):
    assert leases.acquire(db, tune_sync.LEASE_NAME, "other-process", 60)
    with pytest.raises(tune_sync.SyncBusy):
        run(db, client)
    assert tune.calls == []                                # refused before asking the network
    # An expired lease (its holder died) does not block.
    db.execute("UPDATE leases SET expires_ms = 0")
    tune.add_offer(1001)
    assert len(run(db, client).created) == 1


def test_concurrent_runs_from_two_connections_create_each_offer_once(app, tune, client):
    for offer_id in range(1001, 1006):
        tune.add_offer(offer_id)
    tune.fail_next("slow", method="findMyApprovedOffers", detail=0.5)   # keeps the first run busy
    outcomes, barrier = [], threading.Barrier(2)

    def one_run():
        conn = database.connect(app.config["DATABASE"])
        try:
            barrier.wait()
            outcomes.append(len(run(conn, client).created))
        except tune_sync.SyncBusy:
            outcomes.append("busy")
        finally:
            conn.close()

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert sorted(outcomes, key=str) == [5, "busy"]
    conn = database.connect(app.config["DATABASE"])
    assert conn.execute("SELECT count(*) FROM campaigns").fetchone()[0] == 5
    conn.close()


def test_changes_tell_the_app_to_rebuild_its_offers(app, db, tune, client):
    heard = []
    receiver = lambda sender, **_: heard.append(sender)      # noqa: E731
    signals.catalog_changed.connect(receiver)
    try:
        tune.add_offer(1001)
        run(db, client, app=app)
        run(db, client, app=app)                          # no change: no rebuild
    finally:
        signals.catalog_changed.disconnect(receiver)
    assert heard == [app]


def test_last_run_keeps_the_result(db, tune, client):
    tune.add_offer(1001)
    result = run(db, client, actor="mike")
    last = tune_sync.last_run(db)
    assert (last["outcome"], last["actor"]) == ("ok", "mike")
    assert last["result"]["created"] == result.created and last["message"].startswith("1 created")
    assert tune_sync.last_success(db) == last["finished_at"]


def test_plain_text_of_offer_descriptions():
    assert tune_sync.plain_text("<div>One&nbsp;two<br>three</div><script>x</script>\x07") == "One two\nthree"
