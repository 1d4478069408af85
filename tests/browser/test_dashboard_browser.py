"""The dashboard in Chromium: charts are drawn, and switching property and range swaps in new
numbers and redraws the charts without a page load."""
import pytest

from popup_mgr import db as database
from popup_mgr import demo, timeutil

CANVAS_INK = """(id) => {
  const canvas = document.querySelector(`canvas[data-chart="${id}"]`);
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let ink = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) ink++;
  return ink;
}"""
CHART_POINTS = "(id) => window.popupCharts[id] ? window.popupCharts[id].data.labels.length : -1"
# The admin pages' policy: no inline script or style anywhere (a violation shows as a console error).
STRICT_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:"


@pytest.fixture(autouse=True)
def strict_csp(live_server):
    """Serve the pages under a strict CSP even where no other part of the app sets one yet."""
    live_server.app.after_request(
        lambda response: response.headers.setdefault("Content-Security-Policy", STRICT_CSP) and response)


@pytest.fixture
def history(live_server):
    db = live_server.db()
    try:
        demo.generate(db, days=40, impressions=30_000, seed=9, tz=live_server.app.config["BUSINESS_TZ"])
    finally:
        db.close()


def kpi(page, key):
    return page.locator(f'[data-kpi="{key}"] [data-kpi-value]').inner_text()


def test_dashboard_draws_charts_and_follows_the_filters(admin_page, live_server, history):
    problems = []
    admin_page.on("pageerror", lambda exc: problems.append(str(exc)))
    admin_page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    # Console errors catch CSP violations; failed loads are checked by URL above (the browser's
    # own favicon request is not the page's business).
    admin_page.on("console", lambda msg: problems.append(msg.text)
                  if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    admin_page.goto(live_server.url + "/admin/dashboard")
    admin_page.wait_for_function("() => window.popupCharts && window.popupCharts['chart-revenue']")
    assert admin_page.evaluate(CHART_POINTS, "chart-revenue") == 30
    for chart in ("chart-revenue", "chart-traffic", "chart-properties"):
        assert admin_page.evaluate(CANVAS_INK, chart) > 500, chart
    all_impressions = kpi(admin_page, "impressions")

    # Per-property rows of a campaign open on demand (all properties: campaigns run on several).
    group = admin_page.locator("tbody.an-group", has=admin_page.locator("button[data-toggle-split]")).first
    assert group.locator("tr.an-split").count() > 1
    assert group.locator("tr.an-split").first.is_hidden()
    group.locator("button[data-toggle-split]").click()
    assert group.locator("tr.an-split").first.is_visible()

    admin_page.select_option('select[name="property"]', "mff")
    admin_page.wait_for_selector('#dashboard-body[data-property="mff"]')
    admin_page.wait_for_function("() => window.popupCharts['chart-revenue']")
    mff_impressions = kpi(admin_page, "impressions")
    assert int(mff_impressions.replace(",", "")) < int(all_impressions.replace(",", ""))
    assert "property=mff" in admin_page.url           # the view is bookmarkable

    revenue_before = kpi(admin_page, "revenue_cents")
    admin_page.select_option('select[name="range"]', "7d")
    admin_page.wait_for_function("() => window.popupCharts['chart-revenue']"
                                 " && window.popupCharts['chart-revenue'].data.labels.length === 7")
    assert kpi(admin_page, "revenue_cents") != revenue_before
    assert admin_page.evaluate(CANVAS_INK, "chart-revenue") > 500

    admin_page.locator('button[data-sort="impressions"]').click()
    values = admin_page.locator("tbody.an-group").evaluate_all(
        "groups => groups.map(g => Number(g.dataset.impressions))")
    assert values == sorted(values, reverse=True) and len(values) > 3

    assert problems == []


def test_custom_range_inputs_appear_only_for_custom(admin_page, live_server):
    admin_page.goto(live_server.url + "/admin/dashboard")
    custom = admin_page.locator("[data-custom-range]")
    assert not custom.is_visible()
    admin_page.select_option('select[name="range"]', "custom")
    assert custom.is_visible()


@pytest.mark.slow
def test_live_view_refreshes_itself_without_reloading(admin_page, live_server):
    admin_page.goto(live_server.url + "/admin/live")
    assert admin_page.locator('[data-live="impressions"]').inner_text() == "0"
    admin_page.evaluate("() => { window.sameDocument = true; }")
    db = live_server.db()
    try:
        with database.transaction(db):
            campaign = db.execute(
                "INSERT INTO campaigns (tune_campaign_id, name, display_title, click_url, created_at, updated_at)"
                " VALUES (1, 'live', 'Live', 'https://example.com/', '', '')").lastrowid
            now = timeutil.now_ms()
            db.execute("INSERT INTO impressions (event_id, ts, day, campaign_id, property_id, placement)"
                       " VALUES ('live-event-1', ?, ?, ?, 1, 'thankyou')",
                       (now, timeutil.business_day(now, live_server.app.config["BUSINESS_TZ"]), campaign))
    finally:
        db.close()
    # The fragment polls every 5 s; allow two rounds.
    admin_page.wait_for_function(
        "() => document.querySelector('[data-live=\"impressions\"]').textContent === '1'", timeout=12_000)
    assert admin_page.evaluate("() => window.sameDocument") is True
