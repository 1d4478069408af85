"""Reconciliation against the stand-in network: every kind of difference, the repair, and the
per-day figures checked against a plain reference computation."""
import datetime as dt
import itertools
import json
import random
from zoneinfo import ZoneInfo

import pytest

from popup_mgr import campaigns, reconcile, rollups
from popup_mgr import db as database
from popup_mgr.tune_client import TuneClient, TuneError
from tests.tune_standin import API_KEY, NETWORK_ID

TZ = "America/New_York"
ZONE = ZoneInfo(TZ)
_serial = itertools.count(1)


@pytest.fixture
def client(tune):
    return TuneClient(tune.url, NETWORK_ID, API_KEY, timeout_s=2, retries=0)


@pytest.fixture
def offers(db):
    """Tune offer id -> campaign id for two campaigns."""
    made = {}
    for offer_id in (1001, 1002):
        made[offer_id] = campaigns.create(db, {
            "tune_campaign_id": offer_id, "name": f"Offer {offer_id}", "display_title": f"Offer {offer_id}",
            "click_url": f"https://modenet.go2cloud.org/aff_c?offer_id={offer_id}&aff_id=2002"}, "mike")["id"]
    return made


def at(text):
    """'2026-11-20 13:00:00' in the network's time zone -> Unix ms."""
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=ZONE).timestamp() * 1000)


def add_click(db, campaign_id, ts, is_bot=0):
    n = next(_serial)
    click_id = f"click{n:06d}"
    with database.transaction(db):
        db.execute("INSERT INTO clicks (click_id, event_id, ts, day, campaign_id, property_id, placement, is_bot)"
                   " VALUES (?, ?, ?, ?, ?, 1, 'thankyou', ?)",
                   (click_id, f"event{n:06d}", ts, dt.datetime.fromtimestamp(ts / 1000, ZONE).date().isoformat(),
                    campaign_id, is_bot))
    return click_id


def add_conversion(db, transaction_id, click_id, payout, status, ts):
    """Through the ingest module's own writer, as a postback would arrive."""
    with database.transaction(db):
        reconcile.store_conversion(db, transaction_id, click_id, int(round(float(payout) * 100)), status, ts)


# --- every kind of difference ------------------------------------------------------------------------

@pytest.fixture
def differing(db, tune, offers):
    """One network day, offer 1001, with one conversion of each kind of difference."""
    clicks = [add_click(db, offers[1001], at(f"2026-11-20 10:0{i}:00")) for i in range(4)]
    add_click(db, offers[1001], at("2026-11-20 10:30:00"), is_bot=1)                  # never counted
    add_click(db, offers[1002], at("2026-11-20 23:59:59"))
    add_click(db, offers[1002], at("2026-11-21 00:00:00"))                             # the next day
    add_conversion(db, "tx-same", clicks[0], "4.50", "approved", at("2026-11-20 11:00:00"))
    add_conversion(db, "tx-status", clicks[1], "4.50", "approved", at("2026-11-20 11:05:00"))
    add_conversion(db, "tx-ours-only", clicks[2], "4.50", "approved", at("2026-11-20 11:10:00"))
    tune.add_conversion("tx-same", 1001, "2026-11-20 10:59:58", click_id=clicks[0])
    tune.add_conversion("tx-status", 1001, "2026-11-20 11:04:59", status="rejected", click_id=clicks[1])
    tune.add_conversion("tx-tune-only", 1001, "2026-11-20 12:00:00", click_id=clicks[3])
    tune.add_conversion("tx-foreign", 1001, "2026-11-20 12:30:00", payout="4.25", status="pending",
                        click_id="not-one-of-ours")
    tune.add_stat("2026-11-20", 1001, impressions=40, clicks=4, conversions=3, payout="13.25")
    tune.add_stat("2026-11-20", 1002, impressions=7, clicks=2, conversions=0, payout="0.00")
    return clicks


def test_each_kind_of_difference(db, client, offers, differing):
    report = reconcile.reconcile(db, client, "2026-11-20", "2026-11-20", TZ)

    assert report["days"] == [
        {"date": "2026-11-20", "offer_id": 1001, "campaign_id": offers[1001],
         "ours": {"clicks": 4, "conversions": 3, "revenue": "13.50"},
         "tune": {"impressions": 40, "clicks": 4, "conversions": 3, "revenue": "13.25"},
         "diff": {"clicks": 0, "conversions": 0, "revenue": "-0.25"}},
        {"date": "2026-11-20", "offer_id": 1002, "campaign_id": offers[1002],
         "ours": {"clicks": 1, "conversions": 0, "revenue": "0.00"},
         "tune": {"impressions": 7, "clicks": 2, "conversions": 0, "revenue": "0.00"},
         "diff": {"clicks": 1, "conversions": 0, "revenue": "0.00"}},
    ]
    assert report["missing_in_ours"] == [
        {"transaction_id": "tx-tune-only", "click_id": differing[3], "offer_id": 1001, "payout": "4.50",
         "status": "approved", "datetime": "2026-11-20 12:00:00"},
        {"transaction_id": "tx-foreign", "click_id": "not-one-of-ours", "offer_id": 1001, "payout": "4.25",
         "status": "pending", "datetime": "2026-11-20 12:30:00"}]
    assert report["missing_in_tune"] == [
        {"transaction_id": "tx-ours-only", "click_id": differing[2], "offer_id": 1001, "payout": "4.50",
         "status": "approved", "datetime": "2026-11-20 11:10:00"}]
    assert report["status_mismatches"] == [
        {"transaction_id": "tx-status", "click_id": differing[1], "offer_id": 1001, "payout": "4.50",
         "status": "rejected", "datetime": "2026-11-20 11:04:59", "ours_status": "approved", "ours_payout": "4.50"}]
    assert report["totals"] == {"ours": {"clicks": 5, "conversions": 3, "revenue": "13.50"},
                                "tune": {"impressions": 47, "clicks": 6, "conversions": 3, "revenue": "13.25"}}
    assert set(report) == {"from", "to", "days", "missing_in_ours", "missing_in_tune", "status_mismatches", "totals"}
    json.dumps(report)                    # the answer is plain JSON


def test_apply_repairs_what_the_network_knows_and_twice_is_once(db, client, offers, differing):
    report = reconcile.reconcile(db, client, "2026-11-20", "2026-11-20", TZ)
    rollups.rebuild(db, "2026-11-01", "2026-11-30")   # the clicks above were written without rollups
    durable = database.connect(db.execute("PRAGMA database_list").fetchone()["file"], durable=True)
    try:
        first = reconcile.apply(durable, report, TZ, actor="mike")
        again = reconcile.apply(durable, report, TZ, actor="mike")
    finally:
        durable.close()

    assert first == {"recorded": ["tx-tune-only", "tx-foreign"], "updated": ["tx-status"], "unchanged": 0}
    assert again == {"recorded": [], "updated": [], "unchanged": 3}
    rows = {row["transaction_id"]: row for row in db.execute("SELECT * FROM conversions")}
    # Attributed through affiliate_click_id when it is one of our click ids, else kept unattributed.
    assert rows["tx-tune-only"]["campaign_id"] == offers[1001] and rows["tx-tune-only"]["click_id"] == differing[3]
    assert rows["tx-foreign"]["campaign_id"] is None and rows["tx-foreign"]["status"] == "pending"
    assert rows["tx-tune-only"]["ts"] == at("2026-11-20 12:00:00")     # the network's conversion time
    assert rows["tx-status"]["status"] == "rejected" and rows["tx-status"]["payout_cents"] == 450
    assert rollups.differences(db, "2026-11-01", "2026-11-30") == []  # rollups moved with the ledger
    actions = [row[0] for row in db.execute("SELECT action FROM audit_log WHERE entity = 'conversion' ORDER BY id")]
    assert actions == ["conversion.import", "conversion.import", "conversion.status"]

    after = reconcile.reconcile(db, client, "2026-11-20", "2026-11-20", TZ)
    assert after["missing_in_ours"] == [] and after["status_mismatches"] == []
    assert [c["transaction_id"] for c in after["missing_in_tune"]] == ["tx-ours-only"]   # for Mike to raise
    # tx-foreign has no click of ours, yet it counts under the offer the network names.
    assert after["days"][0]["ours"] == {"clicks": 4, "conversions": 4, "revenue": "17.75"}


def test_rejected_conversions_count_as_neither_conversions_nor_revenue(db, tune, client, offers):
    click = add_click(db, offers[1001], at("2026-11-20 09:00:00"))
    add_conversion(db, "tx-r", click, "4.50", "rejected", at("2026-11-20 09:30:00"))
    tune.add_conversion("tx-r", 1001, "2026-11-20 09:29:00", status="rejected", click_id=click)
    report = reconcile.reconcile(db, client, "2026-11-20", "2026-11-20", TZ)
    assert report["days"][0]["ours"] == {"clicks": 1, "conversions": 0, "revenue": "0.00"}
    assert report["missing_in_ours"] == report["missing_in_tune"] == report["status_mismatches"] == []


def test_a_postback_just_after_midnight_is_not_reported_missing(db, tune, client, offers):
    click = add_click(db, offers[1001], at("2026-11-20 23:50:00"))
    add_conversion(db, "tx-edge", click, "4.50", "approved", at("2026-11-21 00:00:03"))
    tune.add_conversion("tx-edge", 1001, "2026-11-20 23:59:58", click_id=click)
    report = reconcile.reconcile(db, client, "2026-11-20", "2026-11-20", TZ)
    assert report["missing_in_ours"] == report["missing_in_tune"] == []


def test_an_unreachable_or_refusing_network_raises(db, tune, offers):
    client = TuneClient(tune.url, NETWORK_ID, "wrongkey-000000000000", retries=0)
    with pytest.raises(TuneError, match="Invalid api key"):
        reconcile.reconcile(db, client, "2026-11-20", "2026-11-21", TZ)


# --- the per-day figures against a reference ------------------------------------------------------------

def reference_days(clicks, conversions, first_day, last_day):
    """Ours per (network day, offer), one event at a time with zoneinfo: the plain definition."""
    ours = {}
    for offer_id, ts, is_bot in clicks:
        day = dt.datetime.fromtimestamp(ts / 1000, ZONE).date().isoformat()
        if first_day <= day <= last_day and not is_bot:
            ours.setdefault((day, offer_id), [0, 0, 0])[0] += 1
    for offer_id, ts, cents, status in conversions:
        day = dt.datetime.fromtimestamp(ts / 1000, ZONE).date().isoformat()
        if first_day <= day <= last_day:
            entry = ours.setdefault((day, offer_id), [0, 0, 0])
            if status != "rejected":
                entry[1] += 1
                entry[2] += cents
    return ours


def test_days_match_a_reference_across_a_dst_change(db, tune, client, offers):
    # 2026-11-01 is the day New York leaves daylight saving time: a 25-hour network day.
    rng = random.Random(20261101)
    start, end = at("2026-10-31 00:00:00") - 3_600_000, at("2026-11-03 00:00:00") + 3_600_000
    clicks, conversions = [], []
    for n in range(600):
        offer_id = rng.choice((1001, 1002))
        ts, is_bot = rng.randrange(start, end), int(rng.random() < 0.1)
        click_id = add_click(db, offers[offer_id], ts, is_bot)
        clicks.append((offer_id, ts, is_bot))
        if rng.random() < 0.15:
            status = rng.choice(("approved", "approved", "pending", "rejected"))
            cents = rng.choice((450, 425, 1000, 1))
            conv_ts = min(ts + rng.randrange(0, 7_200_000), end)
            add_conversion(db, f"tx{n}", click_id, f"{cents // 100}.{cents % 100:02d}", status, conv_ts)
            conversions.append((offer_id, conv_ts, cents, status))
    tune.add_stat("2026-11-01", 1001, clicks=9, conversions=1, payout="4.50")

    report = reconcile.reconcile(db, client, "2026-10-31", "2026-11-02", TZ)

    expected = reference_days(clicks, conversions, "2026-10-31", "2026-11-02")
    got = {(d["date"], d["offer_id"]): [d["ours"]["clicks"], d["ours"]["conversions"],
                                        int(d["ours"]["revenue"].replace(".", ""))] for d in report["days"]}
    assert got == expected
    assert sum(v[0] for v in expected.values()) > 400          # the sample is not trivially small
    tune_day = next(d for d in report["days"] if (d["date"], d["offer_id"]) == ("2026-11-01", 1001))
    assert tune_day["diff"]["clicks"] == 9 - expected[("2026-11-01", 1001)][0]


# --- the dashboard's record -------------------------------------------------------------------------------

def test_summary_is_recorded_and_said_in_one_sentence(db, client, offers, differing):
    report = reconcile.reconcile(db, client, "2026-11-20", "2026-11-20", TZ)
    reconcile.record(db, report)
    last = reconcile.last_summary(db)
    assert (last["missing_in_ours"], last["missing_in_tune"], last["status_mismatches"]) == (2, 1, 1)
    assert last["missing_revenue"] == "8.75"
    assert reconcile.gap_sentence(last) == ("Tune reports $0.25 less than we recorded for 2026-11-20:"
                                            " 2 conversions we never received.")


def test_gap_sentence_when_both_agree():
    totals = {"ours": {"revenue": "9.00"}, "tune": {"revenue": "9.00"}}
    assert reconcile.gap_sentence({"from": "2026-11-19", "to": "2026-11-20", "totals": totals,
                                   "missing_in_ours": 0, "status_mismatches": 0}) == \
        "Tune and we recorded the same revenue for 2026-11-19 to 2026-11-20."
