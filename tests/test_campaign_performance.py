"""Campaigns and their analytics joined up: the campaign list shows the last 7 days (impressions,
CTR, revenue, EPC) and a thumbnail; a campaign's page shows its status, priority and properties,
an Edit link, only the properties it runs on, and "no traffic yet" instead of rows of zeros;
KPI tiles hold back rates from too few events, as the tables do."""
import datetime as dt
import random
import re

import pytest

from popup_mgr import db as database
from popup_mgr import reports, timeutil
from tests.helpers import TZ, add_campaign, property_id

NOW_MS = timeutil.now_ms()
TODAY = dt.date.fromisoformat(timeutil.business_day(NOW_MS, TZ))


def put_day(db, day, campaign_id, prop, impressions, clicks, conversions=0, revenue_cents=0):
    with database.transaction(db):
        db.execute("INSERT INTO daily_stats (day, property_id, campaign_id, placement, impressions, clicks,"
                   " conversions, revenue_cents) VALUES (?, ?, ?, 'thankyou', ?, ?, ?, ?)",
                   (day.isoformat(), property_id(db, prop), campaign_id, impressions, clicks, conversions,
                    revenue_cents))


def reference(rows, campaign_id, first, last):
    """Sums and rates computed straight from the rows written, for one campaign and day range."""
    mine = [r for r in rows if r[1] == campaign_id and first <= r[0] <= last]
    imps, clicks = sum(r[3] for r in mine), sum(r[4] for r in mine)
    revenue = sum(r[6] for r in mine)
    return {"impressions": imps, "clicks": clicks, "revenue_cents": revenue,
            "ctr": clicks / imps if imps else 0.0,
            "epc_cents": int(revenue / clicks + 0.5) if clicks else 0}


@pytest.fixture
def history(db):
    """Ten days of random daily rows for three campaigns on two properties (seeded)."""
    rng = random.Random(13)
    ids = [add_campaign(db, tune_id=8800 + n, name=f"Perf {n}", image_url=f"https://img.example/{n}.jpg")
           for n in range(3)]
    rows = []
    for back in range(10):
        day = TODAY - dt.timedelta(days=back)
        for campaign_id in ids:
            for prop in ("mff", "mmm"):
                imps = rng.randint(50, 400)
                clicks = rng.randint(0, imps // 8)
                conversions = rng.randint(0, clicks // 3)
                revenue = conversions * rng.choice((150, 450, 1200))
                put_day(db, day, campaign_id, prop, imps, clicks, conversions, revenue)
                rows.append((day, campaign_id, prop, imps, clicks, conversions, revenue))
    return ids, rows


def test_recent_by_campaign_matches_a_reference(db, history):
    ids, rows = history
    recent = reports.recent_by_campaign(db, TZ, NOW_MS)
    first = TODAY - dt.timedelta(days=6)
    for campaign_id in ids:
        expected = reference(rows, campaign_id, first, TODAY)
        got = recent[campaign_id]
        assert {key: got[key] for key in expected if key != "ctr"} == \
            {key: value for key, value in expected.items() if key != "ctr"}
        assert got["ctr"] == pytest.approx(expected["ctr"])
    # Days 7-9 back are outside the window: their rows change nothing.
    assert sum(r[3] for r in rows if r[1] == ids[0]) > recent[ids[0]]["impressions"]


def test_campaign_list_shows_the_last_7_days_and_a_thumbnail(admin_client, db, history):
    ids, rows = history
    quiet = add_campaign(db, tune_id=8899, name="Quiet one", image_url="")
    page = admin_client.get("/admin/campaigns").get_data(as_text=True)
    assert "Last 7 days" in page
    expected = reference(rows, ids[1], TODAY - dt.timedelta(days=6), TODAY)
    row = re.search(rf'<tr id="campaign-{ids[1]}".*?</tr>', page, re.S).group(0)
    assert f"<b>{expected['impressions']:,}</b> imp." in row
    assert f"CTR <b>{expected['ctr'] * 100:.2f}%</b>" in row
    assert f"<b>{reports.display_money(expected['revenue_cents'])}</b>" in row
    epc = reports.display_money(expected["epc_cents"]) if expected["clicks"] >= reports.MIN_CLICKS_TO_JUDGE else "—"
    assert f"EPC <b>{epc}</b>" in row
    assert 'class="campaign-thumb" src="https://img.example/1.jpg"' in row
    assert f'href="/admin/analytics/campaigns/{ids[1]}"' in row
    quiet_row = re.search(rf'<tr id="campaign-{quiet}".*?</tr>', page, re.S).group(0)
    assert "no traffic" in quiet_row and "campaign-thumb-none" in quiet_row


def test_rows_returned_by_quick_actions_keep_the_figures(admin_client, db, history):
    ids, _ = history
    from tests.helpers import csrf_token
    token = csrf_token(admin_client, "/admin/campaigns")
    answer = admin_client.post(f"/admin/campaigns/{ids[0]}/toggle", data={"active": "0"},
                               headers={"HX-Request": "true", "X-CSRFToken": token})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "imp.</span>" in html and "Paused" in html
    assert 'class="saved-note" role="status">Saved<' in html


def test_campaign_page_shows_status_priority_properties_and_an_edit_link(admin_client, db):
    campaign_id = add_campaign(db, name="Only on mff", priority=8, properties=("mff",), active=0)
    other = add_campaign(db, name="Everywhere")
    put_day(db, TODAY, campaign_id, "mff", 300, 12, 2, 900)
    put_day(db, TODAY, other, "mmm", 500, 20, 1, 450)               # another campaign's traffic
    page = admin_client.get(f"/admin/analytics/campaigns/{campaign_id}").get_data(as_text=True)
    facts = re.search(r'<p class="campaign-facts".*?</p>', page, re.S).group(0)
    assert "Paused" in facts and "Priority <b>8</b>" in facts
    assert '<span class="chip">mff</span>' in facts and "mmm" not in facts
    assert f'href="/admin/campaigns/{campaign_id}/edit"' in facts
    per_property = re.search(r"<h2>Per property</h2>.*?</table>", page, re.S).group(0)
    assert re.findall(r"<tr><td>(\w+) ", per_property) == ["mff"]


def test_campaign_on_every_property_lists_every_property(admin_client, db):
    campaign_id = add_campaign(db, name="All of them")
    put_day(db, TODAY, campaign_id, "mff", 300, 12)
    page = admin_client.get(f"/admin/analytics/campaigns/{campaign_id}").get_data(as_text=True)
    per_property = re.search(r"<h2>Per property</h2>.*?</table>", page, re.S).group(0)
    assert re.findall(r"<tr><td>(\w+) ", per_property) == ["mff", "mmm", "mcad", "mmd"]


def test_new_campaign_page_says_no_traffic_yet(admin_client, db):
    campaign_id = add_campaign(db, name="Brand new")
    page = admin_client.get(f"/admin/analytics/campaigns/{campaign_id}").get_data(as_text=True)
    assert "No traffic yet — is the snippet installed?" in page
    assert 'href="/admin/install"' in page
    assert "<h2>Days</h2>" not in page and page.count("$0.00") == 0


def test_kpi_tiles_hold_back_rates_from_too_few_events(admin_client, db):
    campaign_id = add_campaign(db, name="Three impressions")
    put_day(db, TODAY, campaign_id, "mff", 3, 2, 1, 450)
    page = admin_client.get(f"/admin/analytics/campaigns/{campaign_id}").get_data(as_text=True)
    for key in ("ctr", "rpm_cents", "conversion_rate", "epc_cents"):
        tile = re.search(rf'<div class="an-kpi[^"]*" data-kpi="{key}">.*?</div>\s*</div>', page, re.S).group(0)
        assert "too little data" in tile, key
    tiles = page[page.index('<div class="an-kpis">'):page.index('<div class="an-charts">')]
    assert "66.67%" not in tiles                         # 2 clicks of 3 impressions judged nothing
    impressions = re.search(r'data-kpi="impressions">.*?data-kpi-value>([^<]+)<', page, re.S).group(1)
    assert impressions == "3"                            # counts are always shown
