"""Admin analytics pages, exports and the PDF report; and the one check that the dashboard, the
JSON API, the CSV exports and the PDF all show the ledger's numbers."""
import csv
import datetime as dt
import io
import re

import pytest
from pypdf import PdfReader

from tests.helpers import TZ, add_campaign, add_click, add_conversion, add_impression, rebuild
from popup_mgr import demo, reports, timeutil

KPI = re.compile(r'data-kpi="(\w+)">\s*<div class="an-kpi-label">[^<]*</div>\s*'
                 r'<div class="an-kpi-value" data-kpi-value>([^<]+)</div>')


def today():
    return dt.date.fromisoformat(timeutil.today(TZ))


def kpis(html):
    return dict(KPI.findall(html))


def pdf_text(body):
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)


def csv_rows(response):
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


@pytest.fixture
def demo_history(db):
    return demo.generate(db, days=3, impressions=4000, seed=7, tz=TZ)


def ledger_truth(db, first, last):
    """The figures straight from the raw events, by the rules rollups.py states."""
    one = lambda sql: db.execute(sql, (first, last)).fetchone()[0]  # noqa: E731
    return {
        "impressions": one("SELECT count(*) FROM impressions WHERE is_bot = 0 AND day BETWEEN ? AND ?"),
        "clicks": one("SELECT count(*) FROM clicks WHERE is_bot = 0 AND day BETWEEN ? AND ?"),
        "conversions": one("SELECT count(*) FROM conversions WHERE status = 'approved' AND is_test = 0"
                           " AND campaign_id IS NOT NULL AND day BETWEEN ? AND ?"),
        "revenue_cents": one("SELECT coalesce(sum(payout_cents), 0) FROM conversions WHERE status = 'approved'"
                             " AND is_test = 0 AND campaign_id IS NOT NULL AND day BETWEEN ? AND ?"),
    }


def test_dashboard_json_csv_pdf_and_ledger_agree(admin_client, db, demo_history):
    first, last = (today() - dt.timedelta(days=2)).isoformat(), today().isoformat()
    truth = ledger_truth(db, first, last)
    assert truth["impressions"] > 3000 and truth["conversions"] > 0      # a real test, not zeros
    query = f"property=all&range=custom&from={first}&to={last}"

    api = admin_client.get(f"/api/analytics/all?from={first}&to={last}").json["totals"]
    assert (api["impressions"], api["clicks"], api["conversions"]) == (
        truth["impressions"], truth["clicks"], truth["conversions"])
    assert api["revenue"] == f"{truth['revenue_cents'] // 100}.{truth['revenue_cents'] % 100:02d}"

    rows = csv_rows(admin_client.get(f"/api/analytics/all?from={first}&to={last}&format=csv"))
    assert sum(int(r["impressions"]) for r in rows) == truth["impressions"]
    assert sum(int(r["clicks"]) for r in rows) == truth["clicks"]
    assert sum(int(r["conversions"]) for r in rows) == truth["conversions"]
    assert sum(round(float(r["revenue"]) * 100) for r in rows) == truth["revenue_cents"]

    for table in ("days", "campaigns", "campaign-properties", "properties"):
        export = csv_rows(admin_client.get(f"/admin/analytics/export/{table}.csv?{query}"))
        assert sum(int(r["impressions"]) for r in export) == truth["impressions"], table
        assert sum(round(float(r["revenue"]) * 100) for r in export) == truth["revenue_cents"], table

    shown = kpis(admin_client.get(f"/admin/dashboard?{query}").get_data(as_text=True))
    assert shown["impressions"] == f"{truth['impressions']:,}"
    assert shown["clicks"] == f"{truth['clicks']:,}"
    assert shown["conversions"] == f"{truth['conversions']:,}"
    assert shown["revenue_cents"] == reports.display_money(truth["revenue_cents"])
    assert shown["rpm_cents"] == reports.display_money(
        reports.div_half_up(truth["revenue_cents"] * 1000, truth["impressions"]))

    text = pdf_text(admin_client.get(f"/admin/analytics/report.pdf?{query}").data)
    for key in ("impressions", "clicks", "conversions", "revenue_cents", "rpm_cents", "epc_cents", "ctr"):
        assert shown[key] in text, key


def test_page_and_fragment(admin_client, demo_history):
    page = admin_client.get("/admin/dashboard")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html and 'id="chart-data"' in html
    assert "HX-Request" in page.headers["Vary"]
    assert 'hx-get="/admin/dashboard"' in html and "vendor/chart.umd.min.js" in html
    fragment = admin_client.get("/admin/dashboard?range=7d&property=mff", headers={"HX-Request": "true"})
    body = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in body
    assert body.lstrip().startswith('<section id="dashboard-body"') and 'data-property="mff"' in body


@pytest.mark.parametrize("preset, days", [("today", 1), ("yesterday", 1), ("7d", 7), ("30d", 30)])
def test_presets(admin_client, demo_history, preset, days):
    html = admin_client.get(f"/admin/dashboard?range={preset}").get_data(as_text=True)
    first, last = re.search(r'data-range="([\d-]+)/([\d-]+)"', html).groups()
    assert (dt.date.fromisoformat(last) - dt.date.fromisoformat(first)).days + 1 == days


def test_this_month_starts_on_the_first(admin_client):
    html = admin_client.get("/admin/dashboard?range=month").get_data(as_text=True)
    assert f'data-range="{today().replace(day=1)}/{today()}"' in html


def test_today_is_charted_per_hour(admin_client, demo_history):
    html = admin_client.get("/admin/dashboard?range=today").get_data(as_text=True)
    assert '"unit": "hour"' in html and "per hour" in html


@pytest.mark.parametrize("query", ["range=custom&from=2026-02-31&to=2026-03-01",
                                   "range=custom&from=2026-03-05&to=2026-03-01", "range=fortnight"])
def test_bad_range_is_400_with_the_reason(admin_client, query):
    response = admin_client.get(f"/admin/dashboard?{query}")
    assert response.status_code == 400 and 'role="alert"' in response.get_data(as_text=True)
    # From the htmx form the reason must be swapped in, and htmx does not swap 4xx answers.
    fragment = admin_client.get(f"/admin/dashboard?{query}", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and 'role="alert"' in fragment.get_data(as_text=True)


def test_unknown_property_is_404(admin_client):
    assert admin_client.get("/admin/dashboard?property=nope").status_code == 404


def test_campaign_table_marks_thin_data_and_links_to_campaign_page(admin_client, db):
    thin = add_campaign(db, name="thin one")
    now = timeutil.now_ms()
    add_impression(db, now - 1000, thin, "mff")
    add_conversion(db, add_click(db, now - 500, thin, "mff"), now, 450)
    rebuild(db)
    html = admin_client.get("/admin/dashboard?range=today").get_data(as_text=True)
    assert "too little data" in html
    assert f'/admin/analytics/campaigns/{thin}?property=all&amp;range=today' in html
    page = admin_client.get(f"/admin/analytics/campaigns/{thin}?range=7d")
    assert page.status_code == 200 and "thin one" in page.get_data(as_text=True)
    fragment = admin_client.get(f"/admin/analytics/campaigns/{thin}?range=7d", headers={"HX-Request": "true"})
    assert "<html" not in fragment.get_data(as_text=True)
    assert admin_client.get("/admin/analytics/campaigns/99999").status_code == 404


def test_unattributed_conversions_show_as_a_separate_line(admin_client, db):
    add_conversion(db, None, timeutil.now_ms(), 725)
    html = admin_client.get("/admin/dashboard?range=today").get_data(as_text=True)
    assert 'id="unattributed"' in html and "$7.25" in html
    # They belong to no property, so a one-property view does not claim them.
    assert 'id="unattributed"' not in admin_client.get("/admin/dashboard?range=today&property=mff").get_data(
        as_text=True)


def test_property_comparison_page(admin_client, demo_history):
    html = admin_client.get("/admin/analytics/properties?range=7d").get_data(as_text=True)
    assert all(code in html for code in ("mff", "mmm", "mcad", "mmd"))


def test_live_page_and_fragment(admin_client, db):
    campaign = add_campaign(db, name="live one")
    add_impression(db, timeutil.now_ms() - 1000, campaign, "mff")
    page = admin_client.get("/admin/live").get_data(as_text=True)
    assert 'hx-trigger="every 5s"' in page and 'hx-get="/admin/live/fragment"' in page
    fragment = admin_client.get("/admin/live/fragment")
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and fragment.headers["Cache-Control"] == "no-store"
    assert re.search(r'data-live="impressions">1<', body)
    rows = csv_rows(admin_client.get("/admin/live.csv"))
    assert len(rows) == 60 and sum(int(r["impressions"]) for r in rows) == 1


@pytest.mark.parametrize("table", ["days", "campaigns", "campaign-properties", "properties", "grid"])
def test_every_table_exports_as_csv(admin_client, demo_history, table):
    response = admin_client.get(f"/admin/analytics/export/{table}.csv?range=7d")
    assert "attachment" in response.headers["Content-Disposition"]
    assert csv_rows(response)


def test_campaign_page_exports_only_that_campaign(admin_client, db, demo_history):
    campaign_id = db.execute("SELECT min(id) FROM campaigns").fetchone()[0]
    rows = csv_rows(admin_client.get(f"/admin/analytics/export/days.csv?range=7d&campaign={campaign_id}"))
    total = reports.totals(db, reports.Scope(today() - dt.timedelta(days=6), today(), campaign_id=campaign_id))
    assert sum(int(r["impressions"]) for r in rows) == total["impressions"]


def test_unknown_export_is_404(admin_client):
    assert admin_client.get("/admin/analytics/export/secrets.csv").status_code == 404


def test_pdf_report_renders(admin_client, demo_history):
    response = admin_client.get("/admin/analytics/report.pdf?range=7d&property=mff")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    text = pdf_text(response.data)
    assert "revenue report" in text and "property mff" in text and "Campaigns" in text


def test_campaign_names_are_escaped_and_pdf_survives_any_text(admin_client, db):
    hostile = add_campaign(db, name='<script>alert("x")</script> 🎁 Подарок')
    now = timeutil.now_ms()
    for offset in range(3):
        add_impression(db, now - 1000 - offset, hostile, "mff")
    rebuild(db)
    html = admin_client.get("/admin/dashboard?range=today").get_data(as_text=True)
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html
    response = admin_client.get("/admin/analytics/report.pdf?range=today")
    assert response.status_code == 200 and '<script>alert("x")</script>' in pdf_text(response.data)


@pytest.mark.parametrize("path", ["/admin/dashboard", "/admin/live", "/admin/live/fragment", "/admin/live.csv",
                                  "/admin/analytics/properties", "/admin/analytics/campaigns/1",
                                  "/admin/analytics/export/grid.csv", "/admin/analytics/report.pdf"])
def test_admin_pages_need_a_login(client, path):
    response = client.get(path)
    assert response.status_code in (302, 401) and b"Impressions" not in response.data
