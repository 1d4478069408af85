"""Experiments (popup_mgr/experiments.py, experiment_serving.py): assignment by sid, the offers
answer per arm, results read from the ledger, the split check, stopping and applying a winner.
Real SQLite file; ledger rows written straight into the schema with their arm (variant) and
session, as ingest stores them."""
import datetime as dt
import itertools
import json
import random
import sqlite3
from collections import Counter

import numpy as np
import pytest
from scipy import stats as scipy_stats

from popup_mgr import experiments, stats, timeutil
from popup_mgr import db as database
from popup_mgr.ingest import tokens
from tests.helpers import add_campaign, flask_alone, property_id

_serial = itertools.count(1)


def start(db, app, arms, prop="mff", metric="rpm", name="test"):
    with app.app_context():
        return experiments.create(db, {"name": name, "property": prop, "metric": metric, "arms": arms}, "mike")


def offers(client, prop="mff", sid=None):
    query = f"?sid={sid}" if sid is not None else ""
    return client.get(f"/api/offers/{prop}{query}").json["offers"]


def variant_of(offer):
    return tokens.verify("test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz", offer["token"],
                         timeutil.now_ms() // 1000).variant


def sids(n, seed=7):
    rng = random.Random(seed)
    return ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789_-") for _ in range(16)) for _ in range(n)]


# --- ledger rows ------------------------------------------------------------------------------------

def visit(db, prop, campaign_id, variant, session, ts, clicked=False, payout_cents=None, is_bot=0,
          status="approved"):
    """One impression (and optionally its click and the click's conversion) of one session."""
    n = next(_serial)
    day = timeutil.business_day(ts, "America/New_York")
    pid = property_id(db, prop)
    with database.transaction(db):
        db.execute("INSERT INTO impressions (event_id, ts, day, campaign_id, property_id, placement, variant,"
                   " session_id, is_bot) VALUES (?, ?, ?, ?, ?, 'thankyou', ?, ?, ?)",
                   (f"ximp-{n:08d}", ts, day, campaign_id, pid, variant, session, is_bot))
        if not clicked:
            return
        click_row = db.execute(
            "INSERT INTO clicks (click_id, event_id, ts, day, campaign_id, property_id, placement, variant,"
            " session_id, is_bot) VALUES (?, ?, ?, ?, ?, ?, 'thankyou', ?, ?, ?)",
            (f"xclick-{n:08d}", f"xclk-{n:08d}", ts, day, campaign_id, pid, variant, session, is_bot)).lastrowid
        if payout_cents is None:
            return
        db.execute("INSERT INTO conversions (transaction_id, click_id, click_row_id, ts, updated_ts, day,"
                   " campaign_id, property_id, placement, variant, payout_cents, status)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'thankyou', ?, ?, ?)",
                   (f"xtx-{n:08d}", f"xclick-{n:08d}", click_row, ts + 60_000, ts + 60_000, day, campaign_id,
                    pid, variant, payout_cents, status))


def started_ms(experiment):
    return int(timeutil.parse_iso_utc(experiment["started_at"]).timestamp() * 1000)


def backdate(db, experiment, hours=6):
    """Move the start back, as if the experiment had run for `hours`; returns the new start (ms),
    so that ledger rows written in its window are in the past."""
    start_ms = started_ms(experiment) - hours * 3_600_000
    db.execute("UPDATE experiments SET started_at = ? WHERE id = ?",
               (timeutil.iso_utc(dt.datetime.fromtimestamp(start_ms / 1000, dt.timezone.utc)), experiment["id"]))
    return start_ms


@pytest.fixture
def two_campaigns(db, app):
    return add_campaign(db, title="Sample box", app=app), add_campaign(db, title="Gift card", app=app)


# --- assignment ----------------------------------------------------------------------------------------

def test_assignment_is_deterministic_and_follows_the_weights_over_thousands_of_sids():
    experiment = {"id": 12, "arms": [{"key": "a", "weight": 20}, {"key": "b", "weight": 30},
                                     {"key": "c", "weight": 50}]}
    visitors = sids(20_000)
    first = [experiments.arm_for(experiment, sid) for sid in visitors]
    assert first == [experiments.arm_for(experiment, sid) for sid in visitors]     # sticky
    counts = Counter(first)
    observed = [counts[key] for key in "abc"]
    # Chi-square against the weights: a hash that favoured an arm would fail this at 20,000 sids.
    assert scipy_stats.chisquare(observed, [4000, 6000, 10000]).pvalue > 0.001
    assert all(abs(o / 20_000 - w) < 0.015 for o, w in zip(observed, (0.2, 0.3, 0.5)))


def test_assignment_is_independent_between_experiments():
    arms = [{"key": "a", "weight": 50}, {"key": "b", "weight": 50}]
    visitors = sids(10_000, seed=3)
    one = [experiments.arm_for({"id": 1, "arms": arms}, sid) for sid in visitors]
    two = [experiments.arm_for({"id": 2, "arms": arms}, sid) for sid in visitors]
    same = sum(x == y for x, y in zip(one, two)) / len(visitors)
    assert 0.47 < same < 0.53        # a visitor's arm in one test says nothing about the next


@pytest.mark.parametrize("sid, valid", [("abcdefgh", True), ("a" * 64, True), ("A-b_9" * 3, True),
                                        ("abcdefg", False), ("a" * 65, False), ("abc def gh", False),
                                        ("abcdefgh!", False), ("", False), (None, False)])
def test_sid_validation(sid, valid):
    assert experiments.valid_sid(sid) == (sid if valid else None)


# --- the offers answer ------------------------------------------------------------------------------------

def test_each_visitor_gets_their_arm_first_and_never_the_other_arm(db, app, client, two_campaigns):
    sample, gift = two_campaigns
    other = add_campaign(db, title="Outside the test", app=app)
    experiment = start(db, app, [{"campaign_id": sample, "weight": 50}, {"campaign_id": gift, "weight": 50}])
    campaign_of = {"a": sample, "b": gift}
    seen = Counter()
    for sid in sids(200):
        answer = offers(client, sid=sid)
        key = experiments.arm_for(experiment, sid)
        seen[key] += 1
        assert [o["id"] for o in answer] == [campaign_of[key], other]
        assert variant_of(answer[0]) == key and variant_of(answer[1]) == ""
        assert offers(client, sid=sid) == answer or [o["id"] for o in offers(client, sid=sid)] == \
            [campaign_of[key], other]                                             # sticky
    assert seen["a"] > 70 and seen["b"] > 70


def test_fast_path_and_flask_answer_the_same_arm(db, app, client, two_campaigns):
    sample, gift = two_campaigns
    start(db, app, [{"campaign_id": sample, "weight": 50}, {"campaign_id": gift, "weight": 50}])
    for sid in sids(30, seed=11):
        fast = [(o["id"], variant_of(o)) for o in offers(client, sid=sid)]
        with flask_alone(app):
            slow = [(o["id"], variant_of(o)) for o in offers(client, sid=sid)]
        assert fast == slow


def test_overrides_are_shown_only_to_their_arms_visitors(db, app, client):
    campaign = add_campaign(db, title="Original title", tagline="Original tagline", app=app)
    experiment = start(db, app, [
        {"campaign_id": campaign, "weight": 50},
        {"campaign_id": campaign, "weight": 50,
         "overrides": {"display_title": "New title", "cta_text": "Get it", "image_url": "https://img.example/b.jpg"}}])
    for sid in sids(100, seed=5):
        [offer] = offers(client, sid=sid)
        if experiments.arm_for(experiment, sid) == "b":
            assert (offer["title"], offer["cta_text"], offer["image_url"]) == \
                ("New title", "Get it", "https://img.example/b.jpg")
            assert offer["tagline"] == "Original tagline"              # fields not overridden stay
        else:
            assert (offer["title"], offer["cta_text"]) == ("Original title", "Claim now")
    # Another property is outside the experiment: the campaign as it is, with no arm.
    [elsewhere] = offers(client, prop="mmm", sid=sids(1)[0])
    assert elsewhere["title"] == "Original title" and variant_of(elsewhere) == ""


def test_without_a_valid_sid_every_answer_draws_an_arm_afresh(db, app, client, two_campaigns):
    sample, gift = two_campaigns
    start(db, app, [{"campaign_id": sample, "weight": 80}, {"campaign_id": gift, "weight": 20}])
    random.seed(80)                 # the offers' default generator: the draws below are repeatable
    for sid in (None, "bad sid!", "short"):
        firsts = Counter(offers(client, sid=sid)[0]["id"] for _ in range(300))
        assert set(firsts) == {sample, gift}                  # both arms, never both in one answer
        assert 0.7 < firsts[sample] / 300 < 0.9               # in the proportions of the weights
        assert all(len(offers(client, sid=sid)) == 1 for _ in range(5))


def test_the_snapshot_holds_the_experiment_no_query_per_request(db, app, client, two_campaigns):
    sample, gift = two_campaigns
    experiment = start(db, app, [{"campaign_id": sample, "weight": 50}, {"campaign_id": gift, "weight": 50}])
    sid = sids(1)[0]
    expected = [{"a": sample, "b": gift}[experiments.arm_for(experiment, sid)]]
    assert [o["id"] for o in offers(client, sid=sid)] == expected
    # Changed behind the app's back (no change signal): requests keep answering from the snapshot.
    db.execute("UPDATE experiments SET status = 'stopped'")
    assert [o["id"] for o in offers(client, sid=sid)] == expected


def test_a_paused_arm_campaign_leaves_its_visitors_with_the_rest(db, app, client, two_campaigns):
    sample, gift = two_campaigns
    other = add_campaign(db, title="Outside", app=app)
    experiment = start(db, app, [{"campaign_id": sample, "weight": 50}, {"campaign_id": gift, "weight": 50}])
    db.execute("UPDATE campaigns SET active = 0 WHERE id = ?", (gift,))
    from popup_mgr import signals
    signals.notify_catalog_changed(app)
    for sid in sids(40, seed=9):
        ids = [o["id"] for o in offers(client, sid=sid)]
        assert ids == ([sample, other] if experiments.arm_for(experiment, sid) == "a" else [other])


def test_only_one_running_experiment_per_property_even_in_sql(db, app, two_campaigns):
    start(db, app, [{"campaign_id": c, "weight": 50} for c in two_campaigns])
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO experiments (name, property_id, started_at) VALUES ('x', ?, '2026-01-01T00:00:00Z')",
                   (property_id(db, "mff"),))


# --- results from the ledger ---------------------------------------------------------------------------------

def test_results_count_the_arms_traffic_in_the_window_and_match_the_reference(db, app, two_campaigns):
    sample, gift = two_campaigns
    experiment = start(db, app, [{"campaign_id": sample, "weight": 50}, {"campaign_id": gift, "weight": 50}])
    t0 = backdate(db, experiment) + 1000
    rng = np.random.default_rng(42)
    per_impression = {"a": [], "b": []}
    sessions = {"a": set(), "b": set()}
    for i in range(400):
        key = "a" if i % 2 else "b"
        campaign = sample if key == "a" else gift
        session = f"s-{key}-{i % 150:04d}"                       # sessions see several impressions
        clicked = rng.random() < (0.08 if key == "a" else 0.12)
        payout = int(rng.choice([250, 400, 1000])) if clicked and rng.random() < 0.4 else None
        visit(db, "mff", campaign, key, session, t0 + i, clicked, payout)
        per_impression[key].append(payout or 0)
        sessions[key].add(session)
    # None of these count: before the start, a bot, another property, no arm, a rejected sale.
    visit(db, "mff", sample, "a", "early-session", t0 - 10_000, True, 999)
    visit(db, "mff", sample, "a", "bot-session", t0, True, 999, is_bot=1)
    visit(db, "mmm", sample, "a", "elsewhere", t0, True, 999)
    visit(db, "mff", sample, "", "no-arm", t0, True, 999)
    visit(db, "mff", gift, "b", "rejected", t0, True, 999, status="rejected")
    per_impression["b"].append(0)
    sessions["b"].add("rejected")

    result = experiments.get(db, experiment["id"])
    arms = {arm["key"]: arm for arm in result["arms"]}
    for key in "ab":
        revenue = np.array(per_impression[key])
        assert arms[key]["impressions"] == len(revenue)
        assert arms[key]["visitors"] == len(sessions[key])
        assert arms[key]["conversions"] == int((revenue > 0).sum())
        assert arms[key]["revenue"] == f"{revenue.sum() / 100:.2f}"
        assert arms[key]["rpm"] == f"{round(revenue.sum() * 1000 / len(revenue)) / 100:.2f}"
        assert arms[key]["clicks"] / arms[key]["impressions"] == pytest.approx(arms[key]["ctr"])
        # The variance stats sees from (total, sum of squares) is numpy's on the per-impression values.
        data = stats.ArmData(key, 50, arms[key]["visitors"], len(revenue), revenue.sum(), (revenue ** 2).sum())
        assert stats.arm_moments(data, "rpm").variance == pytest.approx(revenue.var(ddof=1))
    reference = stats.analyse(
        [stats.ArmData(k, 50, len(sessions[k]), len(per_impression[k]), sum(per_impression[k]),
                       sum(p * p for p in per_impression[k])) for k in "ab"],
        "rpm", days_running=result["days_running"] or None)
    assert result["results"]["arms"] == reference["arms"]
    assert result["results"]["srm"] == reference["srm"]
    json.dumps(result)                                         # JSON-safe throughout


def test_ctr_metric_compares_click_through_rates(db, app, two_campaigns):
    sample, gift = two_campaigns
    experiment = start(db, app, [{"campaign_id": sample, "weight": 50}, {"campaign_id": gift, "weight": 50}],
                       metric="ctr")
    t0 = backdate(db, experiment) + 1000
    for i in range(200):
        visit(db, "mff", sample, "a", f"a{i}", t0 + i, clicked=i % 10 == 0)
        visit(db, "mff", gift, "b", f"b{i}", t0 + i, clicked=i % 5 == 0)
    result = experiments.get(db, experiment["id"])
    [b] = result["results"]["arms"]
    assert b["lift"]["estimate"] == pytest.approx(1.0)          # 10 % vs 20 %: +100 %
    reference = stats.analyse([stats.ArmData("a", 50, 200, 200, 20, 20), stats.ArmData("b", 50, 200, 200, 40, 40)],
                              "ctr", days_running=result["days_running"])
    assert result["results"]["arms"] == reference["arms"] and b["chance_to_win"] > 0.95
    assert "click-through rate" in result["results"]["verdict"]


def test_split_mismatch_is_flagged_on_a_skewed_split(db, app, two_campaigns):
    sample, gift = two_campaigns
    experiment = start(db, app, [{"campaign_id": sample, "weight": 50}, {"campaign_id": gift, "weight": 50}])
    t0 = backdate(db, experiment) + 1000
    for i in range(300):
        visit(db, "mff", sample, "a", f"a{i}", t0 + i)
    for i in range(200):
        visit(db, "mff", gift, "b", f"b{i}", t0 + i)
    split = experiments.get(db, experiment["id"])["results"]["srm"]
    assert split["mismatch"] is True
    assert split["p_value"] == pytest.approx(scipy_stats.chisquare([300, 200]).pvalue)
    assert "Split is off" in experiments.get(db, experiment["id"])["results"]["verdict"]


def test_a_healthy_split_is_not_flagged(db, app, two_campaigns):
    sample, gift = two_campaigns
    experiment = start(db, app, [{"campaign_id": sample, "weight": 30}, {"campaign_id": gift, "weight": 70}])
    t0 = backdate(db, experiment) + 1000
    for i in range(300):
        visit(db, "mff", sample, "a", f"a{i}", t0 + i)
    for i in range(690):
        visit(db, "mff", gift, "b", f"b{i}", t0 + i)
    result = experiments.get(db, experiment["id"])["results"]
    assert result["srm"]["mismatch"] is False and "Split looks healthy" in result["verdict"]


# --- stopping ---------------------------------------------------------------------------------------------------

def audit_actions(db):
    return [(r["action"], r["entity"], r["entity_id"]) for r in
            db.execute("SELECT action, entity, entity_id FROM audit_log ORDER BY id")]


def test_stop_applying_a_creative_winner_makes_it_the_campaigns(db, app, client):
    campaign = add_campaign(db, title="Original title", app=app)
    experiment = start(db, app, [
        {"campaign_id": campaign, "weight": 50},
        {"campaign_id": campaign, "weight": 50, "overrides": {"display_title": "Winning title", "tagline": ""}}])
    with app.app_context():
        stopped = experiments.stop(db, experiment["id"], "mike", winner="b")
    assert (stopped["status"], stopped["winner"]) == ("stopped", "b") and stopped["stopped_at"]
    row = db.execute("SELECT display_title, tagline FROM campaigns WHERE id = ?", (campaign,)).fetchone()
    assert tuple(row) == ("Winning title", "")
    assert audit_actions(db)[-2:] == [("experiment.stop", "experiment", experiment["id"]),
                                      ("experiment.apply", "campaign", campaign)]
    # Served at once, to everyone, with no arm any more.
    for sid in sids(10):
        [offer] = offers(client, sid=sid)
        assert offer["title"] == "Winning title" and variant_of(offer) == ""


def test_stop_applying_a_campaign_winner_takes_the_losers_off_the_property(db, app, client):
    winner = add_campaign(db, title="Winner", app=app)
    everywhere = add_campaign(db, title="Loser on all properties", app=app)
    only_here = add_campaign(db, title="Loser only on mff", properties=("mff",), app=app)
    two_sites = add_campaign(db, title="Loser on mff and mmm", properties=("mff", "mmm"), app=app)
    experiment = start(db, app, [{"campaign_id": c, "weight": 25} for c in (winner, everywhere, only_here, two_sites)])
    with app.app_context():
        experiments.stop(db, experiment["id"], "mike", winner="a")

    def codes(campaign_id):
        return [r[0] for r in db.execute("SELECT p.code FROM campaign_properties cp JOIN properties p"
                                         " ON p.id = cp.property_id WHERE cp.campaign_id = ? ORDER BY p.id",
                                         (campaign_id,))]
    assert codes(winner) == []                                           # untouched: all properties
    assert codes(everywhere) == ["mmm", "mcad", "mmd"]
    assert codes(two_sites) == ["mmm"]
    assert db.execute("SELECT active FROM campaigns WHERE id = ?", (only_here,)).fetchone()[0] == 0
    assert [o["id"] for o in offers(client, sid=sids(1)[0])] == [winner]
    assert {o["id"] for o in offers(client, prop="mmm")} == {winner, everywhere, two_sites}
    applied = [r for r in audit_actions(db) if r[0] == "experiment.apply"]
    assert sorted(r[2] for r in applied) == sorted([everywhere, only_here, two_sites])


def test_stop_without_a_winner_changes_no_campaign(db, app, two_campaigns):
    experiment = start(db, app, [{"campaign_id": c, "weight": 50} for c in two_campaigns])
    before = db.execute("SELECT * FROM campaigns ORDER BY id").fetchall()
    with app.app_context():
        stopped = experiments.stop(db, experiment["id"], "mike")
    assert stopped["status"] == "stopped" and stopped["winner"] is None
    assert [tuple(r) for r in db.execute("SELECT * FROM campaigns ORDER BY id")] == [tuple(r) for r in before]
    # The property is free for the next experiment.
    assert start(db, app, [{"campaign_id": c, "weight": 50} for c in two_campaigns])["status"] == "running"


@pytest.mark.parametrize("winner, field", [("e", "winner"), ("x", "winner")])
def test_stop_refuses_an_unknown_winner_and_changes_nothing(db, app, two_campaigns, winner, field):
    experiment = start(db, app, [{"campaign_id": c, "weight": 50} for c in two_campaigns])
    with pytest.raises(experiments.ExperimentInvalid) as refused, app.app_context():
        experiments.stop(db, experiment["id"], "mike", winner=winner)
    assert field in refused.value.errors
    assert experiments.get(db, experiment["id"])["status"] == "running"


def test_results_of_a_stopped_experiment_end_at_the_stop(db, app, two_campaigns):
    sample, gift = two_campaigns
    experiment = start(db, app, [{"campaign_id": sample, "weight": 50}, {"campaign_id": gift, "weight": 50}])
    with app.app_context():
        stopped = experiments.stop(db, experiment["id"], "mike")
    after = int(timeutil.parse_iso_utc(stopped["stopped_at"]).timestamp() * 1000) + 5000
    visit(db, "mff", sample, "a", "late-visitor", after)
    assert experiments.get(db, experiment["id"])["arms"][0]["impressions"] == 0


def test_served_arms_are_counted_through_the_real_beacons_and_postback(db, app, client, two_campaigns):
    """The whole chain over HTTP: the arm's token -> impression and click beacons -> the network's
    postback -> the experiment's figures for that arm."""
    from tests.helpers import BROWSER_UA, beacon_body
    sample, gift = two_campaigns
    experiment = start(db, app, [{"campaign_id": sample, "weight": 50}, {"campaign_id": gift, "weight": 50}])
    headers = {"User-Agent": BROWSER_UA, "Content-Type": "text/plain"}
    served = Counter()
    for n, sid in enumerate(sids(12, seed=21)):
        [offer] = offers(client, sid=sid)
        key = variant_of(offer)
        served[key] += 1
        assert client.post("/api/impression", data=beacon_body(offer["token"], session_id=sid),
                           headers=headers).status_code == 204
        if n % 3 == 0:
            click = client.post("/api/click", data=beacon_body(offer["token"], session_id=sid), headers=headers)
            assert click.status_code == 200
            postback = client.get("/api/postback", query_string={
                "click_id": click.json["click_id"], "transaction_id": f"tx-{n}", "payout": "4.50",
                "secret": "postback-test-secret"})
            assert postback.status_code == 200
            served[key + "-sale"] += 1
    rows = db.execute("SELECT DISTINCT variant FROM impressions").fetchall()
    assert {r[0] for r in rows} <= {"a", "b"}
    arms = {arm["key"]: arm for arm in experiments.get(db, experiment["id"])["arms"]}
    for key in "ab":
        assert arms[key]["impressions"] == arms[key]["visitors"] == served[key]
        assert arms[key]["conversions"] == arms[key]["clicks"] == served[key + "-sale"]
        assert arms[key]["revenue"] == f"{4.5 * served[key + '-sale']:.2f}"


def test_a_disabled_popup_shows_nothing_even_during_an_experiment(db, app, client, two_campaigns):
    from popup_mgr import signals
    start(db, app, [{"campaign_id": c, "weight": 50} for c in two_campaigns])
    db.execute("UPDATE properties SET popup_enabled = 0 WHERE code = 'mff'")
    signals.notify_catalog_changed(app)
    assert all(offers(client, sid=sid) == [] for sid in sids(10))


def test_the_arm_counts_within_the_propertys_offer_limit(db, app, client, two_campaigns):
    from popup_mgr import signals
    sample, gift = two_campaigns
    others = [add_campaign(db, title=f"Outside {n}", priority=10, app=app) for n in range(3)]
    experiment = start(db, app, [{"campaign_id": sample, "weight": 50}, {"campaign_id": gift, "weight": 50}])
    db.execute("UPDATE properties SET max_offers = 2 WHERE code = 'mff'")
    signals.notify_catalog_changed(app)
    for sid in sids(30, seed=4):
        ids = [o["id"] for o in offers(client, sid=sid)]
        assert len(ids) == 2 and ids[0] == {"a": sample, "b": gift}[experiments.arm_for(experiment, sid)]
        assert ids[1] in others
