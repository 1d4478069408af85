"""daily_stats: the rollups of the ledger, and the check that they equal it.

Definitions (one place; ingest, bulk loads, reports and `verify` all rely on them):
  impressions / clicks      rows with is_bot = 0, by (day, property, campaign, placement, variant)
  bot_impressions / clicks  rows with is_bot = 1
  conversions, revenue      approved, non-test conversions attributed to a click, counted on the
                            click's business day (conversions.day) with its payout_cents
"""
from popup_mgr import db as database

KEY = ("day", "property_id", "campaign_id", "placement", "variant")
MEASURES = ("impressions", "clicks", "conversions", "revenue_cents", "bot_impressions", "bot_clicks")

# Expected daily_stats rows for days in [?, ?], computed from the ledger.
_FROM_LEDGER = """
SELECT day, property_id, campaign_id, placement, variant,
       sum(impressions) AS impressions, sum(clicks) AS clicks, sum(conversions) AS conversions,
       sum(revenue_cents) AS revenue_cents, sum(bot_impressions) AS bot_impressions,
       sum(bot_clicks) AS bot_clicks
FROM (
    SELECT day, property_id, campaign_id, placement, variant,
           sum(is_bot = 0) AS impressions, 0 AS clicks, 0 AS conversions, 0 AS revenue_cents,
           sum(is_bot = 1) AS bot_impressions, 0 AS bot_clicks
    FROM impressions WHERE day BETWEEN :first AND :last
    GROUP BY day, property_id, campaign_id, placement, variant
    UNION ALL
    SELECT day, property_id, campaign_id, placement, variant,
           0, sum(is_bot = 0), 0, 0, 0, sum(is_bot = 1)
    FROM clicks WHERE day BETWEEN :first AND :last
    GROUP BY day, property_id, campaign_id, placement, variant
    UNION ALL
    SELECT day, property_id, campaign_id, placement, variant,
           0, 0, count(*), sum(payout_cents), 0, 0
    FROM conversions
    WHERE day BETWEEN :first AND :last AND campaign_id IS NOT NULL
      AND status = 'approved' AND is_test = 0
    GROUP BY day, property_id, campaign_id, placement, variant
)
GROUP BY day, property_id, campaign_id, placement, variant
"""


def rebuild(db, first_day, last_day):
    """Recompute daily_stats for the days first_day..last_day (inclusive) from the ledger."""
    params = {"first": first_day, "last": last_day}
    with database.transaction(db):
        db.execute("/* rollups.rebuild */ DELETE FROM daily_stats WHERE day BETWEEN :first AND :last",
                   params)
        db.execute("/* rollups.rebuild */ INSERT INTO daily_stats"
                   f" ({', '.join(KEY + MEASURES)}) {_FROM_LEDGER}", params)


def differences(db, first_day, last_day):
    """Rows where daily_stats and the ledger disagree, as (source, row) pairs; [] when equal.

    source is "ledger" for a row the ledger implies but daily_stats lacks or has otherwise,
    "daily_stats" for a row daily_stats has that the ledger does not imply. All-zero rollup
    rows are ignored (a row may exist with nothing left in it after a status change).
    """
    params = {"first": first_day, "last": last_day}
    columns = ", ".join(KEY + MEASURES)
    nonzero = " OR ".join(f"{m} != 0" for m in MEASURES)
    stored = (f"SELECT {columns} FROM daily_stats"
              f" WHERE day BETWEEN :first AND :last AND ({nonzero})")
    expected = f"SELECT {columns} FROM ({_FROM_LEDGER})"
    missing = db.execute(f"/* rollups.differences */ {expected} EXCEPT {stored}", params).fetchall()
    extra = db.execute(f"/* rollups.differences */ {stored} EXCEPT {expected}", params).fetchall()
    return [("ledger", dict(r)) for r in missing] + [("daily_stats", dict(r)) for r in extra]
