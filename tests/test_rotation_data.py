"""The auto rotation's inputs read from a real database file: rollups and conversion delays."""
import numpy as np
import pytest

from popup_mgr import bandit, rotation_data, timeutil
from popup_mgr import db as database

TZ = "America/New_York"
HOUR_MS = 3_600_000


def add_campaign(db, tune_id, priority=5):
    now = timeutil.iso_now()
    with database.transaction(db):
        return db.execute(
            "INSERT INTO campaigns (tune_campaign_id, name, display_title, click_url, priority,"
            " payout_cents, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 500, ?, ?)",
            (tune_id, f"Offer {tune_id}", f"Offer {tune_id}", "https://track.example.com/c", priority,
             now, now)).lastrowid


def property_id(db, code="mff"):
    return db.execute("SELECT id FROM properties WHERE code = ?", (code,)).fetchone()[0]


def add_rollup(db, day, prop, campaign, impressions, clicks, conversions, revenue, placement="thankyou"):
    with database.transaction(db):
        db.execute("INSERT INTO daily_stats (day, property_id, campaign_id, placement, impressions,"
                   " clicks, conversions, revenue_cents) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (day, prop, campaign, placement, impressions, clicks, conversions, revenue))


def add_conversion(db, prop, campaign, click_ts, delay_ms, number, status="approved", is_test=0, is_bot=0):
    day = timeutil.business_day(click_ts, TZ)
    with database.transaction(db):
        click_row = db.execute(
            "INSERT INTO clicks (click_id, event_id, ts, day, campaign_id, property_id, placement, is_bot)"
            " VALUES (?, ?, ?, ?, ?, ?, 'thankyou', ?)",
            (f"click{number:06d}", f"event{number:06d}", click_ts, day, campaign, prop, is_bot)).lastrowid
        db.execute(
            "INSERT INTO conversions (transaction_id, click_id, click_row_id, ts, updated_ts, day,"
            " campaign_id, property_id, placement, payout_cents, status, is_test)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'thankyou', 500, ?, ?)",
            (f"tx{number:06d}", f"click{number:06d}", click_row, click_ts + delay_ms, click_ts + delay_ms,
             day, campaign, prop, status, is_test))


def test_rollups_sum_placements_and_span_dst_days(db):
    prop, first, second = property_id(db), add_campaign(db, 1), add_campaign(db, 2)
    add_rollup(db, "2026-03-07", prop, first, 1000, 30, 3, 1500)
    add_rollup(db, "2026-03-08", prop, first, 800, 20, 2, 1000)
    add_rollup(db, "2026-03-08", prop, first, 200, 5, 1, 500, placement="exit-intent")
    add_rollup(db, "2026-03-08", prop, second, 400, 12, 0, 0)
    add_rollup(db, "2026-03-08", property_id(db, "mmm"), second, 999, 99, 9, 999)   # another property
    rows = rotation_data.rollup_rows(db, prop, "2026-03-01", "2026-03-31")
    rollups = rotation_data.rollups_from_rows(rows, TZ)
    assert rollups.offer_ids == (first, second)
    assert rollups.impressions.tolist() == [[1000, 1000], [0, 400]]
    assert rollups.clicks.tolist() == [[30, 25], [0, 12]]
    assert rollups.conversions.tolist() == [[3, 3], [0, 0]]
    assert rollups.revenue_cents.tolist() == [[1500, 1500], [0, 0]]
    # 8 March 2026 is the spring-forward day in New York: 23 hours.
    assert (rollups.day_ends - rollups.day_starts).tolist() == [24 * 3600, 23 * 3600]


def test_recent_delays_keep_approved_human_conversions_newest_first(db):
    prop, campaign = property_id(db), add_campaign(db, 1)
    start = timeutil.now_ms() - 72 * HOUR_MS
    for number, delay_h in enumerate([1, 2, 3, 5, 8]):
        add_conversion(db, prop, campaign, start + number * HOUR_MS, delay_h * HOUR_MS, number)
    add_conversion(db, prop, campaign, start, 7 * HOUR_MS, 10, status="rejected")
    add_conversion(db, prop, campaign, start, 7 * HOUR_MS, 11, is_test=1)
    add_conversion(db, prop, campaign, start, 7 * HOUR_MS, 12, is_bot=1)
    assert rotation_data.recent_delays_ms(db, prop) == [h * HOUR_MS for h in (8, 5, 3, 2, 1)]
    assert rotation_data.recent_delays_ms(db, prop, limit=2) == [8 * HOUR_MS, 5 * HOUR_MS]
    assert rotation_data.recent_delays_ms(db, property_id(db, "mmm")) == []


def test_learned_state_from_the_database_prefers_the_earner(app):
    path = app.config["DATABASE"]
    db = database.connect(path)
    prop, loser, earner = property_id(db), add_campaign(db, 1, priority=9), add_campaign(db, 2, priority=3)
    now_ms = timeutil.now_ms()
    for back in range(1, 15):
        day = timeutil.business_day(now_ms - back * 86_400_000, TZ)
        add_rollup(db, day, prop, loser, 1500, 45, 1, 500)
        add_rollup(db, day, prop, earner, 1500, 45, 6, 3000)
    # Older than the learning window: would make the loser look great if it were read.
    old_day = timeutil.business_day(now_ms - 60 * 86_400_000, TZ)
    add_rollup(db, old_day, prop, loser, 1000, 500, 400, 200_000)
    db.close()
    offers = [{"id": loser, "priority": 9, "payout_cents": 500},
              {"id": earner, "priority": 3, "payout_cents": 500}]
    state = rotation_data.learned_state_from(path, prop, offers, now_ms, TZ)
    shares = bandit.first_position_shares(offers, "auto", state, np.random.default_rng(1))
    assert shares[earner] > 0.9
    rpm = bandit.learned_rpm(offers, state)
    # 14 days x 3000 cents over 14 x 1500 impressions: 2000 cents per 1,000 impressions.
    assert rpm[earner]["rpm"] == pytest.approx(2000, rel=0.15)
