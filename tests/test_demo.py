"""demo.generate and `popup-mgr demo-data`: real ledger rows that the rollups reconcile with."""
import pytest

from popup_mgr import demo, rollups, timeutil
from popup_mgr.urls import url_problem

TZ = "America/New_York"


@pytest.fixture
def history(db):
    return demo.generate(db, days=5, impressions=6000, seed=3, tz=TZ)


def count(db, sql):
    return db.execute(sql).fetchone()[0]


def test_writes_exactly_the_impressions_asked_for_and_reconciles(db, history):
    assert count(db, "SELECT count(*) FROM impressions") == history["impressions"] == 6000
    assert history["clicks"] > 50 and history["conversions"] > 0
    assert rollups.differences(db, history["first_day"], history["last_day"]) == []
    assert count(db, "SELECT sum(impressions) + sum(bot_impressions) FROM daily_stats") == 6000
    assert count(db, "SELECT count(*) FROM impressions WHERE is_bot = 1") > 0     # a few bot rows


def test_campaigns_look_like_tune_offers(db, history):
    rows = db.execute("SELECT click_url, payout_cents, priority, active FROM campaigns").fetchall()
    assert 18 <= len(rows) <= 22
    assert all(url_problem(r["click_url"]) is None and r["click_url"].startswith("https://") for r in rows)
    assert all(80 <= r["payout_cents"] <= 600 for r in rows)
    assert sum(1 for r in rows if not r["active"]) == 1
    assert count(db, "SELECT count(DISTINCT campaign_id) FROM campaign_properties") >= 3
    # The paused campaign gets no traffic; a campaign targeted at mff only appears only there.
    assert count(db, "SELECT count(*) FROM impressions i JOIN campaigns c ON c.id = i.campaign_id"
                     " WHERE c.active = 0") == 0


def test_conversions_arrive_after_their_clicks_in_the_past(db, history):
    assert count(db, "SELECT count(*) FROM conversions v JOIN clicks k ON k.id = v.click_row_id"
                     " WHERE v.ts <= k.ts OR v.day != k.day OR v.campaign_id != k.campaign_id") == 0
    now = timeutil.now_ms()
    for table in ("impressions", "clicks", "conversions"):
        assert count(db, f"SELECT count(*) FROM {table} WHERE ts > {now}") == 0, table
    assert count(db, "SELECT count(*) FROM conversions v JOIN clicks k ON k.id = v.click_row_id"
                     " WHERE k.is_bot = 1") == 0


def test_rates_differ_by_campaign(db, history):
    ctrs = [r[0] for r in db.execute("SELECT 1.0 * sum(clicks) / sum(impressions) FROM daily_stats"
                                     " GROUP BY campaign_id HAVING sum(impressions) > 200")]
    assert max(ctrs) > 2 * min(ctrs)


def test_same_seed_same_history(tmp_path):
    from popup_mgr import db as database
    results = []
    for name in ("a.db", "b.db"):
        database.migrate(str(tmp_path / name))
        conn = database.connect(str(tmp_path / name))
        now = timeutil.now_ms() - timeutil.now_ms() % 86_400_000   # a fixed "now" for both runs
        summary = demo.generate(conn, days=2, impressions=1500, seed=11, tz=TZ, now_ms=now)
        results.append((summary["clicks"], summary["conversions"],
                        conn.execute("SELECT group_concat(click_id) FROM clicks").fetchone()[0]))
        conn.close()
    assert results[0] == results[1]


def test_running_twice_adds_history_without_conflicts(db, history):
    again = demo.generate(db, days=5, impressions=1000, seed=4, tz=TZ)
    assert count(db, "SELECT count(*) FROM impressions") == 7000
    assert count(db, "SELECT count(*) FROM campaigns") == history["campaigns"]    # reused, not duplicated
    assert rollups.differences(db, again["first_day"], again["last_day"]) == []


def test_demo_data_command(runner, db):
    result = runner.invoke(args=["demo-data", "--days", "2", "--impressions", "800", "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert "800 impressions" in result.output
    assert count(db, "SELECT count(*) FROM impressions") == 800


@pytest.mark.parametrize("args", [["--days", "0"], ["--impressions", "-5"], ["--days", "x"]])
def test_demo_data_refuses_bad_options(runner, db, args):
    result = runner.invoke(args=["demo-data", *args])
    assert result.exit_code != 0
    assert count(db, "SELECT count(*) FROM impressions") == 0


def test_a_fresh_demo_runs_a_creative_test_with_figures(db):
    """The Experiments page has something to show after `make run`: a test on mff whose arm b
    (a reworded title) draws more clicks, with a split that passes the SRM check."""
    from popup_mgr import experiments
    demo.generate(db, days=20, impressions=60_000, seed=3, tz=TZ)
    [test] = experiments.list_experiments(db)
    assert test["status"] == "running" and test["property"] == "mff"
    arms = {arm["key"]: arm for arm in test["arms"]}
    assert arms["b"]["overrides"] == demo.EXPERIMENT["overrides"] and arms["a"]["overrides"] == {}
    assert min(arms["a"]["impressions"], arms["b"]["impressions"]) > 300
    assert arms["b"]["ctr"] > arms["a"]["ctr"]
    assert test["results"]["srm"]["mismatch"] is False
    # Only the test's window, offer and property carry arms; every other row is as before.
    started_ms = int(timeutil.parse_iso_utc(test["started_at"]).timestamp() * 1000)
    outside = count(db, "SELECT count(*) FROM impressions WHERE variant <> '' AND"
                        f" (ts < {started_ms} OR property_id != (SELECT id FROM properties WHERE code = 'mff'))")
    assert outside == 0
    assert rollups.differences(db, "2000-01-01", "2100-12-31") == []


def test_no_test_is_started_in_a_database_that_already_has_campaigns(db, history):
    from popup_mgr import experiments
    [test] = experiments.list_experiments(db)            # the one from the first run
    demo.generate(db, days=5, impressions=1000, seed=4, tz=TZ)
    assert [t["id"] for t in experiments.list_experiments(db)] == [test["id"]]
