"""In Chromium, the point still in progress (the current hour of "Today", today in "Last 7 days")
is drawn pale and reached by a dashed line, so a partial hour never reads as a fall; the rest is
drawn as before."""
import pytest

from popup_mgr import demo

SEGMENT_DASH = """([id, dataset, index]) => {
  const ds = window.popupCharts[id].data.datasets[dataset];
  return ds.segment ? (ds.segment.borderDash({p1DataIndex: index}) || null) : null;
}"""
BAR_COLOURS = "(id) => window.popupCharts[id].data.datasets[0].backgroundColor"


@pytest.fixture
def history(live_server):
    db = live_server.db()
    try:
        demo.generate(db, days=10, impressions=8_000, seed=5, tz=live_server.app.config["BUSINESS_TZ"])
    finally:
        db.close()


@pytest.mark.parametrize("preset", ["today", "7d"])
def test_the_point_in_progress_is_pale_and_dashed(admin_page, live_server, history, preset):
    errors = []
    admin_page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    admin_page.goto(f"{live_server.url}/admin/dashboard?range={preset}")
    admin_page.wait_for_function("() => window.popupCharts && window.popupCharts['chart-traffic']")
    labels = admin_page.evaluate("window.popupCharts['chart-revenue'].data.labels")
    last = len(labels) - 1
    colours = admin_page.evaluate(BAR_COLOURS, "chart-revenue")
    assert colours[last] != colours[0] and len(set(colours[:last])) == 1
    for chart, dataset in (("chart-revenue", 1), ("chart-traffic", 0), ("chart-traffic", 1)):
        assert admin_page.evaluate(SEGMENT_DASH, [chart, dataset, last]) == [6, 4]
        if last > 0:
            assert admin_page.evaluate(SEGMENT_DASH, [chart, dataset, last - 1]) is None
    assert "still in progress" in admin_page.locator(".an-partial-note").inner_text()
    assert errors == []


def test_finished_days_are_drawn_plainly(admin_page, live_server, history):
    admin_page.goto(f"{live_server.url}/admin/dashboard?range=yesterday")
    admin_page.wait_for_function("() => window.popupCharts && window.popupCharts['chart-revenue']")
    assert len(set(admin_page.evaluate(BAR_COLOURS, "chart-revenue"))) == 1
    assert admin_page.locator(".an-partial-note").count() == 0
