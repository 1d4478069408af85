"""Smaller things a new user tripped on, in Chromium: a new campaign lands in view and marked,
the Tune-link paste box does not look like an error, error pages are styled with a way back."""
import os
import shutil
from pathlib import Path

import pytest

from popup_mgr import demo
from tests.browser.conftest import admin_session_cookie
from tests.helpers import add_campaign

SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 375, "height": 667}}


def reddish(rgb_text):
    """True for a red or pink colour (how errors and the brand's pink look)."""
    r, g, b = (int(float(part)) for part in rgb_text[rgb_text.index("(") + 1:rgb_text.index(")")].split(",")[:3])
    return r > g + 40 and r > b + 40


@pytest.fixture(params=sorted(SIZES))
def sized_admin(request, chromium, live_server):
    phone = request.param == "phone"
    context = chromium.new_context(viewport=SIZES[request.param], is_mobile=phone, has_touch=phone)
    context.add_cookies([admin_session_cookie(live_server)])
    page = context.new_page()
    yield page
    context.close()


def test_new_campaign_lands_in_view_and_marked(sized_admin, live_server):
    db = live_server.db()
    try:
        for n in range(25):                     # a long list: priority 9 sorts above the new one
            add_campaign(db, tune_id=600 + n, name=f"Existing {n}", priority=9)
    finally:
        db.close()
    page = sized_admin
    page.goto(live_server.url + "/admin/campaigns/new")
    page.fill("#tune_link", "https://mode.go2cloud.org/aff_c?offer_id=777&aff_id=1")
    page.fill("#display_title", "Brand new offer")
    page.fill("#name", "Brand new")
    page.fill("#priority", "1")
    page.click("text=Add campaign >> nth=-1")
    row = page.locator("tr.is-highlight")
    row.wait_for()
    assert "Brand new offer" in row.inner_text()
    page.wait_for_timeout(200)
    box = row.bounding_box()
    viewport = page.viewport_size
    print(f"\nnew row at y={box['y']:.0f}..{box['y'] + box['height']:.0f} of {viewport['height']}")
    assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"]
    assert row.locator(".saved-note").inner_text() == "Saved"
    shadow = row.evaluate("el => getComputedStyle(el).boxShadow")
    assert "inset" in shadow                     # the pink bar at its left edge


def test_empty_tune_link_box_does_not_look_like_an_error(admin_page, live_server):
    admin_page.goto(live_server.url + "/admin/campaigns/new")
    style = admin_page.locator("#tune_link").evaluate(
        "el => { const s = getComputedStyle(el); return [s.borderTopColor, s.backgroundColor]; }")
    print(f"\npaste box border {style[0]}, background {style[1]}")
    assert not reddish(style[0]) and not reddish(style[1])
    background = [int(float(p)) for p in style[1][style[1].index("(") + 1:-1].split(",")[:3]]
    assert background[0] <= background[2]        # no pink tint either


def test_admin_404_is_styled_with_a_way_back(admin_page, live_server):
    admin_page.goto(live_server.url + "/admin/campaigns")
    response = admin_page.goto(live_server.url + "/admin/campaigns/99999/edit",
                               referer=live_server.url + "/admin/campaigns")
    assert response.status == 404
    assert admin_page.locator("h1").inner_text() == "Page not found"
    assert admin_page.locator("nav[aria-label=Main]").is_visible()          # the admin's own frame
    assert "serif" not in admin_page.evaluate("getComputedStyle(document.body).fontFamily").replace("sans-serif", "")
    admin_page.click("text=Go to the dashboard")
    admin_page.wait_for_url("**/admin/dashboard")


def test_bad_offer_link_is_a_clean_public_page_with_a_way_back(page, live_server):
    response = page.goto(live_server.url + "/c/not-a-token", referer="https://modefreefinds.example/thanks")
    assert response.status == 400
    assert page.locator("h1").inner_text() == "This offer link is not valid"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(247, 248, 250)"
    back = page.locator("a.back")
    assert back.inner_text() == "Back to modefreefinds.example"
    assert back.get_attribute("href") == "https://modefreefinds.example/thanks"


DOCS = Path(__file__).resolve().parents[2] / "docs"


def screenshot_for_docs(chromium, live_server, tmp_path, url_path, name, width, ready):
    """Render an admin page as Mike sees it, check it with ready(page), and save it full-page as
    tmp_path/name; copied to docs/name (the README's pictures) with POPUP_UPDATE_SCREENSHOTS=1.
    Returns the file's size."""
    context = chromium.new_context(viewport={"width": width, "height": 900})
    context.add_cookies([admin_session_cookie(live_server)])
    page = context.new_page()
    try:
        page.goto(live_server.url + url_path)
        ready(page)
        shot = tmp_path / name
        page.screenshot(path=str(shot), full_page=True)
        if os.environ.get("POPUP_UPDATE_SCREENSHOTS") == "1":
            shutil.copyfile(shot, DOCS / name)
        return shot.stat().st_size
    finally:
        context.close()


def demo_history(live_server, **options):
    db = live_server.db()
    try:
        demo.generate(db, tz=live_server.app.config["BUSINESS_TZ"], **options)
        return db.execute("SELECT min(id) FROM experiments").fetchone()[0]
    finally:
        db.close()


def test_dashboard_screenshot(chromium, live_server, tmp_path):
    """The README's picture of the dashboard with demo data. Rendered on every run."""
    demo_history(live_server, days=40, impressions=60_000, seed=5)
    charts_drawn = lambda page: page.wait_for_function(  # noqa: E731
        "() => window.popupCharts && window.popupCharts['chart-revenue']")
    size = screenshot_for_docs(chromium, live_server, tmp_path, "/admin/dashboard?range=30d", "dashboard.png",
                               1360, charts_drawn)
    assert size > 50_000


def test_experiment_screenshot(chromium, live_server, tmp_path):
    """The README's picture of an experiment's card: the demo's creative test, with its figures
    and verdict. Rendered on every run."""
    experiment_id = demo_history(live_server, days=60, impressions=300_000, seed=5)

    def card_has_a_verdict(page):
        assert "chance to beat A" in page.locator(".experiment-figures").inner_text()
    size = screenshot_for_docs(chromium, live_server, tmp_path, f"/admin/experiments/{experiment_id}",
                               "experiment.png", 1280, card_has_a_verdict)
    assert size > 20_000
