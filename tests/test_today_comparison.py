"""A range that ends today is compared with the same hours before it, and the charts mark what is
still in progress. Checked against a reference computed from the seeded events themselves."""
import datetime as dt
import random
import re

import pytest

from popup_mgr import reports
from tests.helpers import TZ, add_campaign, add_click, add_conversion, add_impression, ms, property_id, rebuild

TODAY = dt.date(2026, 11, 18)                 # a Wednesday, no DST change around it
NOW = ms("2026-11-18 14:05:00", TZ)           # 14:05 business time


def D(offset):
    return TODAY + dt.timedelta(days=offset)


@pytest.fixture
def seeded(app, db):
    """Random events over the 15 days up to now, seeded; returns the events for the reference."""
    rng = random.Random(13)
    campaigns = [add_campaign(db, app=app, tune_id=700 + i) for i in range(2)]
    events = []                               # (kind, ts, campaign, property, payout, arrived)
    for day in range(-14, 1):
        date = D(day)
        for _ in range(40):
            ts = ms(f"{date} {rng.randrange(24):02d}:{rng.randrange(60):02d}:00", TZ)
            if ts >= NOW:
                continue
            campaign, prop = rng.choice(campaigns), rng.choice(("mff", "mmm"))
            add_impression(db, ts, campaign, prop)
            events.append(("impression", ts, campaign, prop, 0, ts))
            if rng.random() < 0.4:
                click = add_click(db, ts + 1000, campaign, prop)
                events.append(("click", ts + 1000, campaign, prop, 0, ts + 1000))
                if rng.random() < 0.5:
                    arrived = ts + rng.randrange(60_000, 12 * 3_600_000)
                    if arrived < NOW:
                        add_conversion(db, click, arrived, 250)
                        events.append(("conversion", ts + 1000, campaign, prop, 250, arrived))
    rebuild(db)
    return events


def reference(events, start_ms, end_ms, prop=None, arrived_by=None):
    """Counts of events whose (click) time is in [start, end) and, with arrived_by, that had
    arrived by then (whole days count every conversion of their clicks, as daily_stats does)."""
    chosen = [e for e in events if start_ms <= e[1] < end_ms and (arrived_by is None or e[5] < arrived_by)
              and (prop is None or e[3] == prop)]
    return {"impressions": sum(e[0] == "impression" for e in chosen), "clicks": sum(e[0] == "click" for e in chosen),
            "conversions": sum(e[0] == "conversion" for e in chosen),
            "revenue_cents": sum(e[4] for e in chosen if e[0] == "conversion")}


def figures(m):
    return {key: m[key] for key in ("impressions", "clicks", "conversions", "revenue_cents")}


def test_today_is_compared_with_the_same_hours_of_yesterday(db, seeded):
    previous, until = reports.previous_totals(db, reports.Scope(TODAY, TODAY), TZ, NOW, TODAY)
    assert until == "14:05"
    cut = ms(f"{D(-1)} 14:05:00", TZ)
    expected = reference(seeded, ms(f"{D(-1)} 00:00:00", TZ), cut, arrived_by=cut)
    assert figures(previous) == expected
    whole_day = reference(seeded, ms(f"{D(-1)} 00:00:00", TZ), ms(f"{TODAY} 00:00:00", TZ))
    assert expected["impressions"] < whole_day["impressions"]        # the test can tell them apart


def test_seven_days_are_compared_with_seven_days_cut_at_the_same_hour(db, seeded):
    scope = reports.Scope(D(-6), TODAY)
    previous, until = reports.previous_totals(db, scope, TZ, NOW, TODAY)
    # D(-13)..D(-8) whole, D(-7) until 14:05.
    expected = reference(seeded, ms(f"{D(-13)} 00:00:00", TZ), ms(f"{D(-7)} 00:00:00", TZ))
    cut = reference(seeded, ms(f"{D(-7)} 00:00:00", TZ), ms(f"{D(-7)} 14:05:00", TZ),
                    arrived_by=ms(f"{D(-7)} 14:05:00", TZ))
    assert until == "14:05"
    assert figures(previous) == {key: expected[key] + cut[key] for key in expected}


def test_one_property_is_compared_on_its_own(db, seeded):
    scope = reports.Scope(TODAY, TODAY, property_id(db, "mmm"), "mmm")
    previous, _ = reports.previous_totals(db, scope, TZ, NOW, TODAY)
    cut = ms(f"{D(-1)} 14:05:00", TZ)
    assert figures(previous) == reference(seeded, ms(f"{D(-1)} 00:00:00", TZ), cut, "mmm", arrived_by=cut)


def test_a_past_range_is_compared_with_whole_days(db, seeded):
    scope = reports.Scope(D(-1), D(-1))
    previous, until = reports.previous_totals(db, scope, TZ, NOW, TODAY)
    assert until is None
    assert figures(previous) == figures(reports.totals(db, scope.previous()))


@pytest.mark.parametrize("scope, partial_labels", [
    (reports.Scope(TODAY, TODAY), ["14:00"]),                 # the current hour only
    (reports.Scope(D(-6), TODAY), ["Nov 18"]),                # today only
    (reports.Scope(D(-7), D(-1)), []),                        # all finished
    (reports.Scope(D(-200), TODAY), ["Wk Nov 16"]),           # the current week
])
def test_points_still_in_progress_are_marked(db, seeded, scope, partial_labels):
    _, points = reports.series(db, scope, TZ, TODAY, NOW)
    assert [p["label"] for p in points if p["partial"]] == partial_labels
    payload = reports.chart_payload("x", points, [])
    assert payload["partial"] == [p["partial"] for p in points]


def test_the_dashboard_says_what_today_is_compared_with(admin_client, db, app):
    html = admin_client.get("/admin/dashboard?range=today").get_data(as_text=True)
    assert re.search(r"compared with the same hours of the previous day \(until \d\d:\d\d\)", html)
    assert re.search(r"\d\d:00 is still in progress: drawn pale and dashed", html)
    seven = admin_client.get("/admin/dashboard?range=7d").get_data(as_text=True)
    assert re.search(r"compared with the previous 7 days, the last of them until \d\d:\d\d", seven)
    past = admin_client.get("/admin/dashboard?range=yesterday").get_data(as_text=True)
    assert "compared with the whole previous day" in past and "still in progress" not in past
