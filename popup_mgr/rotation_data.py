"""What the auto rotation learns from, read from the database: a property's per-offer rollups and
the click-to-conversion delays it has seen. The math is in bandit.py; this module only reads.

Two queries per refresh (at most every POPUP_ROTATION_REFRESH_S per property), none per request.
"""
import numpy as np

from popup_mgr import bandit, timeutil
from popup_mgr import db as database

LEARNING_DAYS = 28          # offers change (creatives, payouts): four weeks of history, no more
DELAY_SAMPLES = 2000        # the most recent conversions' delays: plenty for the CDF, quick to read


def rollup_rows(db, property_id, first_day, last_day):
    """Per business day and campaign: impressions, clicks, conversions, revenue_cents (all
    placements and variants together), days first_day..last_day inclusive."""
    return db.execute(
        "/* rotation_data.rollup_rows */"
        " SELECT day, campaign_id, sum(impressions) AS impressions, sum(clicks) AS clicks,"
        "        sum(conversions) AS conversions, sum(revenue_cents) AS revenue_cents"
        " FROM daily_stats WHERE property_id = ? AND day BETWEEN ? AND ?"
        " GROUP BY day, campaign_id ORDER BY day, campaign_id",
        (property_id, first_day, last_day)).fetchall()


def recent_delays_ms(db, property_id, limit=DELAY_SAMPLES):
    """Click-to-conversion delays (ms) of the property's latest approved, human, non-test
    conversions, newest first."""
    return [row[0] for row in db.execute(
        "/* rotation_data.recent_delays_ms */"
        " SELECT conversions.ts - clicks.ts FROM conversions"
        " JOIN clicks ON clicks.id = conversions.click_row_id"
        " WHERE conversions.property_id = ? AND conversions.status = 'approved'"
        "   AND conversions.is_test = 0 AND clicks.is_bot = 0 AND conversions.ts >= clicks.ts"
        " ORDER BY conversions.ts DESC LIMIT ?",
        (property_id, limit))]


def payouts_cents(db, campaign_ids):
    """{campaign id: stated payout in cents, or None} for these campaigns."""
    ids = list(campaign_ids)
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    return dict(db.execute(
        f"/* rotation_data.payouts_cents */ SELECT id, payout_cents FROM campaigns WHERE id IN ({marks})",
        ids).fetchall())


def with_payouts(db, offers):
    """The offers as build_state takes them: [{"id", "priority", "payout_cents"}]."""
    payouts = payouts_cents(db, [offer["id"] for offer in offers])
    return [{"id": offer["id"], "priority": offer["priority"], "payout_cents": payouts.get(offer["id"])}
            for offer in offers]


def rollups_from_rows(rows, tz):
    """bandit.Rollups from rollup_rows(): one column per day present, UTC second bounds."""
    days = sorted({row["day"] for row in rows})
    offer_ids = tuple(sorted({row["campaign_id"] for row in rows}))
    column = {day: i for i, day in enumerate(days)}
    line = {offer_id: i for i, offer_id in enumerate(offer_ids)}
    measures = {name: np.zeros((len(offer_ids), len(days)))
                for name in ("impressions", "clicks", "conversions", "revenue_cents")}
    for row in rows:
        for name, matrix in measures.items():
            matrix[line[row["campaign_id"]], column[row["day"]]] = row[name]
    bounds = np.array([timeutil.day_bounds_ms(day, tz) for day in days], dtype=float).reshape(-1, 2) / 1000
    return bandit.Rollups(offer_ids, bounds[:, 0], bounds[:, 1], **measures)


def learned_state(db, property_id, offers, now_ms, tz, floor=bandit.DEFAULT_FLOOR,
                  days=LEARNING_DAYS):
    """The property's bandit.RotationState for its servable offers
    ([{"id", "priority", "payout_cents"}]) as of now_ms."""
    last_day = timeutil.business_day(now_ms, tz)
    first_day = timeutil.business_day(now_ms - (days - 1) * 86_400_000, tz)
    rollups = rollups_from_rows(rollup_rows(db, property_id, first_day, last_day), tz)
    delays_s = np.asarray(recent_delays_ms(db, property_id), dtype=float) / 1000
    return bandit.build_state(offers, rollups, delays_s, now_ms / 1000, floor=floor)


def learned_state_from(path, property_id, offers, now_ms, tz, floor=bandit.DEFAULT_FLOOR):
    """learned_state() on a connection of its own (for the background refresher)."""
    db = database.connect(path)
    try:
        return learned_state(db, property_id, offers, now_ms, tz, floor)
    finally:
        db.close()
