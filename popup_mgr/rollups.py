"""daily_stats: the rollups of the ledger, and the check that they equal it.

Definitions (one place; ingest, bulk loads, reports and `verify` all rely on them):
  impressions / clicks      rows with is_bot = 0, by (day, property, campaign, placement, variant)
  bot_impressions / clicks  rows with is_bot = 1
  views                     impressions with is_bot = 0 and is_view = 1: popup displays, each
                            counted once, under the campaign of the first offer seen
  conversions, revenue      approved, non-test conversions attributed to a click, counted on the
                            click's business day (conversions.day) with its payout_cents
"""
from popup_mgr import db as database

# Which conversions count as conversions and revenue, written once: approved, not a test, and
# attributed to a click (so to a campaign, property and day). Unattributed conversions that pass
# the same rule are real money too, shown apart (they have no campaign or day).
COUNTED_STATUS = "approved"


def counted_sql(alias="", attributed=True):
    """The rule as a WHERE fragment on the conversions table (columns qualified by alias)."""
    prefix = f"{alias}." if alias else ""
    return (f"{prefix}campaign_id IS {'NOT ' if attributed else ''}NULL"
            f" AND {prefix}status = '{COUNTED_STATUS}' AND {prefix}is_test = 0")


def counts(conversion):
    """(conversions, revenue_cents) that a conversion row adds to daily_stats."""
    if conversion["campaign_id"] is None or conversion["status"] != COUNTED_STATUS or conversion["is_test"]:
        return 0, 0
    return 1, conversion["payout_cents"]


KEY = ("day", "property_id", "campaign_id", "placement", "variant")
MEASURES = ("impressions", "clicks", "conversions", "revenue_cents", "bot_impressions", "bot_clicks", "views")

# Expected daily_stats rows for days in [?, ?], computed from the ledger.
_FROM_LEDGER = """
SELECT day, property_id, campaign_id, placement, variant,
       sum(impressions) AS impressions, sum(clicks) AS clicks, sum(conversions) AS conversions,
       sum(revenue_cents) AS revenue_cents, sum(bot_impressions) AS bot_impressions,
       sum(bot_clicks) AS bot_clicks, sum(views) AS views
FROM (
    SELECT day, property_id, campaign_id, placement, variant,
           sum(is_bot = 0) AS impressions, 0 AS clicks, 0 AS conversions, 0 AS revenue_cents,
           sum(is_bot = 1) AS bot_impressions, 0 AS bot_clicks, sum(is_bot = 0 AND is_view = 1) AS views
    FROM impressions WHERE day BETWEEN :first AND :last
    GROUP BY day, property_id, campaign_id, placement, variant
    UNION ALL
    SELECT day, property_id, campaign_id, placement, variant,
           0, sum(is_bot = 0), 0, 0, 0, sum(is_bot = 1), 0
    FROM clicks WHERE day BETWEEN :first AND :last
    GROUP BY day, property_id, campaign_id, placement, variant
    UNION ALL
    SELECT day, property_id, campaign_id, placement, variant,
           0, 0, count(*), sum(payout_cents), 0, 0, 0
    FROM conversions
    WHERE day BETWEEN :first AND :last AND {counted}
    GROUP BY day, property_id, campaign_id, placement, variant
)
GROUP BY day, property_id, campaign_id, placement, variant
""".replace("{counted}", counted_sql())


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


def ledger_day_range(db):
    """(first_day, last_day) over the ledger and daily_stats, or None when all are empty."""
    row = db.execute("/* rollups.ledger_day_range */ SELECT min(first), max(last) FROM ("
                     " SELECT min(day) AS first, max(day) AS last FROM impressions"
                     " UNION ALL SELECT min(day), max(day) FROM clicks"
                     " UNION ALL SELECT min(day), max(day) FROM conversions"
                     " UNION ALL SELECT min(day), max(day) FROM daily_stats)").fetchone()
    return None if row[0] is None else (row[0], row[1])
