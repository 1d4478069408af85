"""Popup views: the embed flags the first impression of each popup display ("view": 1); the server
counts those as views next to impressions, and the analytics show revenue per 1,000 views."""
import csv
import datetime as dt
import io
import json
import sqlite3
from decimal import ROUND_HALF_UP, Decimal

import pytest

from popup_mgr import db as database
from popup_mgr import reports, rollups
from tests.helpers import (add_campaign, add_click, add_conversion, add_impression, all_differences, beacon_body,
                           count, ms, new_event_id, rebuild, stats, token_for)

BOT_UA = "Googlebot/2.1 (+http://www.google.com/bot.html)"
HUMAN_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"


def views(db):
    return stats(db)["views"]


def post(client, body, agent=HUMAN_UA):
    return client.post("/api/impression", data=body, content_type="text/plain;charset=UTF-8",
                       headers={"User-Agent": agent})


@pytest.fixture
def token(app, db):
    return token_for(app, add_campaign(db, tune_id=101, app=app))


# --- ingest -------------------------------------------------------------------------------------

def test_a_popup_display_counts_one_view_however_many_offers_it_shows(client, db, token):
    assert post(client, beacon_body(token, view=1)).status_code == 204
    for _ in range(3):                      # the visitor pages through three more offers
        assert post(client, beacon_body(token, view=0)).status_code == 204
    assert post(client, beacon_body(token)).status_code == 204      # an older popup.js: no key
    assert count(db, "impressions") == 5
    assert count(db, "impressions", "is_view = 1") == 1
    assert views(db) == 1
    row = db.execute("SELECT impressions, views FROM daily_stats").fetchone()
    assert tuple(row) == (5, 1)
    assert all_differences(db) == []        # the writer's increments equal the ledger's definition


def test_a_replayed_view_counts_once(client, db, token):
    event_id = new_event_id()
    for _ in range(3):
        assert post(client, beacon_body(token, event_id, view=1)).status_code == 204
    assert views(db) == 1 and count(db, "impressions") == 1


def test_a_bot_view_is_stored_but_not_counted(client, db, token):
    assert post(client, beacon_body(token, view=1), agent=BOT_UA).status_code == 204
    row = db.execute("SELECT is_bot, is_view FROM impressions").fetchone()
    assert tuple(row) == (1, 1)
    assert tuple(db.execute("SELECT impressions, bot_impressions, views FROM daily_stats").fetchone()) == (0, 1, 0)
    assert all_differences(db) == []


@pytest.mark.parametrize("value", ["1", 2, -1, None, [1], {"v": 1}, 0.5])
def test_a_bad_view_is_refused_and_changes_nothing(client, db, token, value):
    response = post(client, json.dumps({"token": token, "event_id": new_event_id(), "view": value}))
    assert response.status_code == 400
    assert response.json["error"] == "view must be 0 or 1"
    assert count(db, "impressions") == 0 and views(db) == 0


def test_true_and_false_are_taken_as_1_and_0(client, db, token):
    assert post(client, beacon_body(token, view=True)).status_code == 204
    assert post(client, beacon_body(token, view=False)).status_code == 204
    assert views(db) == 1


def test_rebuilt_rollups_keep_the_views(client, db, token):
    for flag in (1, 0, 1, 0, 0):
        post(client, beacon_body(token, view=flag))
    before = [dict(r) for r in db.execute("SELECT * FROM daily_stats")]
    rebuild(db)
    assert [dict(r) for r in db.execute("SELECT * FROM daily_stats")] == before
    assert before[0]["views"] == 2
    db.execute("UPDATE daily_stats SET views = views + 1")       # a rollup drifting from the ledger
    db.commit()
    assert [source for source, _ in rollups.differences(db, "2000-01-01", "2100-12-31")] == ["ledger", "daily_stats"]


def test_the_migration_adds_the_columns_with_every_old_row_at_0(tmp_path):
    legacy = tmp_path / "legacy.db"
    conn = sqlite3.connect(legacy)
    conn.executescript("CREATE TABLE impressions (id INTEGER PRIMARY KEY, is_bot INTEGER NOT NULL DEFAULT 0);"
                       "CREATE TABLE daily_stats (day TEXT PRIMARY KEY, impressions INTEGER) WITHOUT ROWID;"
                       "INSERT INTO impressions (is_bot) VALUES (0); INSERT INTO daily_stats VALUES ('2026-01-01', 1);")
    migration = next(p for n, p in database.migration_files() if n == 10)
    conn.executescript(migration.read_text())
    assert conn.execute("SELECT is_view FROM impressions").fetchone() == (0,)
    assert conn.execute("SELECT views FROM daily_stats").fetchone() == (0,)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO impressions (is_bot, is_view) VALUES (0, 2)")
    conn.close()


# --- analytics ----------------------------------------------------------------------------------

def reference_per_1000(revenue_cents, n):
    """Revenue per 1,000 views in dollars, rounded half up to the cent, by decimal arithmetic."""
    if not n:
        return "0.00"
    return str((Decimal(revenue_cents) / 100 * 1000 / n).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


@pytest.fixture
def traffic(db):
    """mff: 150 views over 400 impressions and $4.50 + $1.25; mmm: 7 views, no revenue."""
    a = add_campaign(db, name="alpha", payout_cents=450)
    b = add_campaign(db, name="beta", payout_cents=125)
    start = ms("2026-03-08 15:00:00")
    for n in range(400):
        add_impression(db, start + n * 1000, a if n % 2 else b, "mff", is_view=int(n % 8 < 3))
    for n in range(7):
        add_impression(db, start + n * 1000, b, "mmm", is_view=1)
    add_impression(db, start, a, "mff", is_bot=1, is_view=1)         # a bot: not a view
    add_conversion(db, add_click(db, start + 5000, a, "mff"), start + 60_000, 450)
    add_conversion(db, add_click(db, start + 6000, b, "mff"), start + 60_000, 125)
    rebuild(db)
    return {"alpha": a, "beta": b}


def test_api_reports_views_and_revenue_per_1000_views(client, api_token, traffic):
    body = client.get("/api/analytics/all?from=2026-03-08&to=2026-03-08",
                      headers={"Authorization": f"Bearer {api_token}"}).json
    assert body["popup_views"] == {"views": 157, "revenue_per_1000_views": reference_per_1000(575, 157)}
    assert body["popup_views"]["revenue_per_1000_views"] == "36.62"
    # The public contract's totals keep exactly their documented keys.
    assert set(body["totals"]) == {"impressions", "clicks", "ctr", "conversions", "revenue", "rpm", "epc"}
    mff = client.get("/api/analytics/mff?from=2026-03-08&to=2026-03-08",
                     headers={"Authorization": f"Bearer {api_token}"}).json
    assert mff["popup_views"] == {"views": 150, "revenue_per_1000_views": reference_per_1000(575, 150)}


def test_dashboard_shows_view_tiles_and_property_rows(admin_client, traffic):
    html = admin_client.get("/admin/dashboard?range=custom&from=2026-03-08&to=2026-03-08").get_data(as_text=True)
    assert 'data-kpi="views"' in html and "Popup views" in html
    assert 'data-kpi="view_rpm_cents"' in html and "Revenue / 1,000 views" in html
    assert "$36.62" in html                    # all properties: 157 views
    assert "$38.33" in html                    # mff's column: 150 views
    assert reference_per_1000(575, 150) == "38.33"
    # mmm has 7 views: too few to say what a view earns.
    assert "fewer than 100 popup views" in html


def test_a_campaign_page_has_no_view_tiles(admin_client, traffic):
    html = admin_client.get(f"/admin/analytics/campaigns/{traffic['alpha']}?range=custom&from=2026-03-08"
                            "&to=2026-03-08").get_data(as_text=True)
    assert 'data-kpi="impressions"' in html
    assert 'data-kpi="views"' not in html


def test_day_and_property_exports_carry_views(admin_client, traffic):
    query = "range=custom&from=2026-03-08&to=2026-03-08"
    days = list(csv.DictReader(io.StringIO(
        admin_client.get(f"/admin/analytics/export/days.csv?{query}").get_data(as_text=True))))
    assert [(d["date"], d["views"], d["revenue_per_1000_views"]) for d in days] == [("2026-03-08", "157", "36.62")]
    props = {p["property"]: p for p in csv.DictReader(io.StringIO(
        admin_client.get(f"/admin/analytics/export/properties.csv?{query}").get_data(as_text=True)))}
    assert (props["mff"]["views"], props["mff"]["revenue_per_1000_views"]) == ("150", "38.33")
    assert (props["mmm"]["views"], props["mmm"]["revenue_per_1000_views"]) == ("7", "0.00")


def test_today_compares_views_with_the_same_hours_before(db, app):
    """Today's view tile reads the ledger for the partial day before: views are counted there too."""
    tz = app.config["BUSINESS_TZ"]
    campaign = add_campaign(db, name="alpha", payout_cents=450)
    now = ms("2026-03-09 15:00:00", tz)
    for n in range(3):
        add_impression(db, now - 60_000 - n, campaign, "mff", is_view=1, tz=tz)
        add_impression(db, now - 86_400_000 - 60_000 - n, campaign, "mff", is_view=int(n == 0), tz=tz)
    add_impression(db, now - 86_400_000 + 60_000, campaign, "mff", is_view=1, tz=tz)   # later hours: left out
    rebuild(db)
    day = dt.date(2026, 3, 9)
    data = reports.dashboard(db, reports.Scope(day, day), tz, now)
    tile = next(k for k in data["kpis"] if k["key"] == "views")
    assert (tile["value"], tile["previous"]) == (3, 1)
    assert data["compared_until"] == "15:00"
