"""reports.py against hand-computed expectations on a real database: business-day boundaries
around midnight New York, both DST changes, bots, pending/test/unattributed conversions."""
import datetime as dt

import pytest

from tests.helpers import TZ, add_campaign, add_click, add_conversion, add_impression, ms, rebuild
from popup_mgr import reports

D = dt.date.fromisoformat


def scope(db, first, last, prop="all", campaign_id=None):
    property_id, code = reports.resolve_property(db, prop)
    return reports.Scope(D(first), D(last), property_id, code, campaign_id)


@pytest.fixture
def march(db):
    """Events around the spring-forward day (2026-03-08 is 23 hours long in New York)."""
    a = add_campaign(db, name="alpha", payout_cents=450)
    b = add_campaign(db, name="beta", payout_cents=175)
    add_impression(db, ms("2026-03-08 04:59:59.999"), a, "mff")   # 23:59:59.999 EST Mar 7 -> 03-07
    add_impression(db, ms("2026-03-08 05:00:00"), a, "mff")       # 00:00 EST Mar 8 -> 03-08
    add_impression(db, ms("2026-03-08 16:00:00"), b, "mmm")       # noon EDT -> 03-08
    add_impression(db, ms("2026-03-08 16:00:01"), b, "mmm", is_bot=1)
    add_impression(db, ms("2026-03-09 03:59:59"), a, "mff")       # 23:59:59 EDT Mar 8 -> 03-08
    add_impression(db, ms("2026-03-09 04:00:00"), a, "mff")       # 00:00 EDT Mar 9 -> 03-09
    late_click = add_click(db, ms("2026-03-09 03:59:30"), a, "mff")   # 23:59:30 EDT -> 03-08
    noon_click = add_click(db, ms("2026-03-08 16:00:20"), b, "mmm")
    add_click(db, ms("2026-03-08 16:00:30"), b, "mmm", is_bot=1)
    # Arrives the next morning but counts on the click's day, 03-08.
    add_conversion(db, late_click, ms("2026-03-09 14:00:00"), 450)
    add_conversion(db, noon_click, ms("2026-03-08 18:00:00"), 175, status="pending")
    add_conversion(db, noon_click, ms("2026-03-08 18:30:00"), 175, is_test=1)
    add_conversion(db, None, ms("2026-03-08 20:00:00"), 300)          # unknown click id
    rebuild(db)
    return {"alpha": a, "beta": b}


def test_days_follow_new_york_midnight_across_spring_forward(db, march):
    days = {d["date"]: (d["impressions"], d["clicks"], d["conversions"], d["revenue_cents"])
            for d in reports.by_day(db, scope(db, "2026-03-07", "2026-03-09"))}
    assert days == {"2026-03-07": (1, 0, 0, 0), "2026-03-08": (3, 2, 1, 450), "2026-03-09": (1, 0, 0, 0)}


def test_totals_and_derived_money(db, march):
    totals = reports.api_measures(reports.totals(db, scope(db, "2026-03-07", "2026-03-09")))
    # rpm = 450 cents * 1000 / 5 impressions = 90000 cents; epc = 450 / 2 clicks = 225 cents.
    assert totals == {"impressions": 5, "clicks": 2, "ctr": 0.4, "conversions": 1, "revenue": "4.50",
                      "rpm": "900.00", "epc": "2.25"}


def test_campaign_rows_with_property_split(db, march):
    rows = reports.by_campaign(db, scope(db, "2026-03-08", "2026-03-08"))
    assert [(r["name"], r["impressions"], r["clicks"], r["conversions"], r["revenue_cents"]) for r in rows] == [
        ("alpha", 2, 1, 1, 450), ("beta", 1, 1, 0, 0)]
    assert [(p["property"], p["impressions"]) for p in rows[0]["properties"]] == [("mff", 2)]


@pytest.mark.parametrize("prop, expected", [("all", 5), ("mff", 4), ("mmm", 1), ("mcad", 0)])
def test_property_filter(db, march, prop, expected):
    assert reports.totals(db, scope(db, "2026-03-07", "2026-03-09", prop))["impressions"] == expected


def test_property_comparison_lists_every_property(db, march):
    rows = reports.by_property(db, scope(db, "2026-03-08", "2026-03-08"))
    assert [(r["property"], r["impressions"], r["revenue_cents"]) for r in rows] == [
        ("mff", 2, 450), ("mmm", 1, 0), ("mcad", 0, 0), ("mmd", 0, 0)]


def test_unattributed_conversions_are_apart(db, march):
    assert reports.unattributed(db, scope(db, "2026-03-08", "2026-03-08"), TZ) == {
        "conversions": 1, "revenue_cents": 300}
    assert reports.unattributed(db, scope(db, "2026-03-09", "2026-03-09"), TZ)["conversions"] == 0


def test_hourly_series_of_a_dst_day_has_23_hours_and_sums_to_the_day(db, march):
    day = scope(db, "2026-03-08", "2026-03-08")
    hours = reports.hourly_today(db, day, TZ, ms("2026-03-10 00:00:00"))
    # 02:00 does not exist on the spring-forward day.
    assert [h["label"] for h in hours[:3]] == ["00:00", "01:00", "03:00"] and len(hours) == 23
    total = reports.totals(db, day)
    for key in reports.COUNTS:
        assert sum(h[key] for h in hours) == total[key], key


def test_fall_back_day_is_25_hours(db):
    a = add_campaign(db, name="gamma")
    add_impression(db, ms("2026-11-01 03:59:59"), a, "mff")   # 23:59:59 EDT Oct 31 -> 10-31
    add_impression(db, ms("2026-11-01 04:00:00"), a, "mff")   # 00:00 EDT Nov 1 -> 11-01
    add_impression(db, ms("2026-11-01 06:30:00"), a, "mff")   # 01:30 EST (second 01:30) -> 11-01
    add_impression(db, ms("2026-11-02 04:59:59"), a, "mff")   # 23:59:59 EST Nov 1 -> 11-01
    add_impression(db, ms("2026-11-02 05:00:00"), a, "mff")   # 00:00 EST Nov 2 -> 11-02
    rebuild(db)
    days = [(d["date"], d["impressions"]) for d in reports.by_day(db, scope(db, "2026-10-31", "2026-11-02"))]
    assert days == [("2026-10-31", 1), ("2026-11-01", 3), ("2026-11-02", 1)]
    hours = reports.hourly_today(db, scope(db, "2026-11-01", "2026-11-01"), TZ, ms("2026-11-03 00:00:00"))
    assert len(hours) == 25 and [h["label"] for h in hours[1:3]] == ["01:00", "01:00"]
    assert sum(h["impressions"] for h in hours) == 3


def test_previous_period_has_equal_length(db):
    current = reports.Scope(D("2026-03-08"), D("2026-03-14"))
    previous = current.previous()
    assert (previous.first, previous.last, previous.days) == (D("2026-03-01"), D("2026-03-07"), 7)


def test_live_counts_last_hour_per_minute(db):
    a = add_campaign(db, name="delta")
    now = ms("2026-06-01 12:00:30")
    add_impression(db, now - 10_000, a, "mff")
    add_impression(db, now - 5 * 60_000, a, "mff")
    add_impression(db, now - 20_000, a, "mff", is_bot=1)         # bots are not counted
    add_impression(db, now - 61 * 60_000, a, "mff")              # older than the window
    click = add_click(db, now - 2 * 60_000, a, "mmm")
    add_conversion(db, click, now - 60_000, 450)
    live = reports.live(db, now)
    assert len(live["minutes"]) == 60
    assert live["total"] == {"impressions": 2, "clicks": 1, "conversions": 1, "revenue_cents": 450}
    assert live["minutes"][-1]["impressions"] == 1 and live["minutes"][-2]["conversions"] == 1


@pytest.mark.parametrize("numerator, denominator, expected", [
    (1000, 2000, 1),      # exactly half a cent rounds up
    (999, 2000, 0),
    (450_000, 3, 150_000),
    (5, 2, 3),
    (7, 0, 0),            # no impressions/clicks: zero, not an error
])
def test_div_half_up(numerator, denominator, expected):
    assert reports.div_half_up(numerator, denominator) == expected


@pytest.mark.parametrize("successes, trials, low, high", [
    (0, 0, 0.0, 0.0),
    (10, 100, 0.0552, 0.1744),
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),
])
def test_wilson_interval(successes, trials, low, high):
    got = reports.wilson_interval(successes, trials)
    assert got == pytest.approx((low, high), abs=1e-4)


@pytest.mark.parametrize("first, last, error", [
    ("2026-02-30", "2026-03-01", "from"),
    ("yesterday", "2026-03-01", "from"),
    ("2026-03-01", "3/4/2026", "to"),
    ("2026-03-02", "2026-03-01", "from"),
    ("2016-01-01", "2026-01-01", "from"),
])
def test_bad_ranges_are_refused(first, last, error):
    with pytest.raises(reports.ReportError) as info:
        reports.parse_range(first, last, D("2026-03-10"))
    assert info.value.field == error


def test_future_end_and_defaults_are_allowed():
    assert reports.parse_range("2026-03-01", "2099-12-31", D("2026-03-10")) == (D("2026-03-01"), D("2099-12-31"))
    assert reports.parse_range(None, None, D("2026-03-10")) == (D("2026-02-09"), D("2026-03-10"))


@pytest.mark.parametrize("days, unit", [(1, "day"), (30, "day"), (92, "day"), (93, "week"), (365, "week"),
                                        (401, "month")])
def test_granularity(days, unit):
    today = D("2026-06-30")
    assert reports.granularity(reports.Scope(today - dt.timedelta(days=days), today - dt.timedelta(days=1)),
                               today) == unit
    assert reports.granularity(reports.Scope(today, today), today) == "hour"


def test_weekly_buckets_start_on_monday_and_keep_totals(db, march):
    days = reports.by_day(db, scope(db, "2026-03-01", "2026-03-15"))
    weeks = reports.bucket(days, "week")
    assert [w["date"] for w in weeks] == ["2026-02-23", "2026-03-02", "2026-03-09"]
    assert [w["impressions"] for w in weeks] == [0, 4, 1]


@pytest.mark.parametrize("prop", ["all", "mff", "mmm"])
def test_hourly_series_respects_the_property_filter(db, march, prop):
    day = scope(db, "2026-03-08", "2026-03-08", prop)
    hours = reports.hourly_today(db, day, TZ, ms("2026-03-10 00:00:00"))
    total = reports.totals(db, day)
    assert {key: sum(h[key] for h in hours) for key in reports.COUNTS} == {key: total[key] for key in reports.COUNTS}
