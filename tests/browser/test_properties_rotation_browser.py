"""The Properties page's Rotation section in a real Chromium against the real server, on a 375 px
phone: Mike switches a property to auto and caps its popup at three offers; the page never
scrolls sideways (long offer titles, the learned-revenue column) and breaks no CSP rule."""
import json
import urllib.request

from playwright.sync_api import expect

from tests.browser.conftest import admin_session_cookie
from tests.helpers import add_campaign

PHONE = {"width": 375, "height": 667}
LONG_TITLE = "Walmart $500 Gift Card Holiday Season Sweepstakes — enter today, winners every hour"


def assert_no_sideways_scroll(page):
    scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert inner_width == PHONE["width"]
    assert scroll_width <= inner_width, f"page is {scroll_width} px wide in a {inner_width} px window"


def test_switching_to_auto_on_a_phone(chromium, live_server):
    db = live_server.db()
    try:
        for number, priority in enumerate((10, 7, 5, 3, 2, 1)):
            add_campaign(db, priority=priority, title=LONG_TITLE if number == 0 else f"Offer {number}",
                         payout_cents=450)
    finally:
        db.close()
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.add_cookies([admin_session_cookie(live_server)])
    page = context.new_page()
    problems = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    try:
        page.goto(live_server.url + "/admin/properties")
        card = page.locator("#property-mff")
        expect(card.locator(".rotation-table tbody tr")).to_have_count(6)
        expect(card.locator(".rotation-table tbody tr").first).to_contain_text("35.7 %")   # 10 of 28
        assert_no_sideways_scroll(page)

        card.get_by_label("Auto").check()
        card.get_by_label("Most offers in one popup").fill("3")
        card.get_by_role("button", name="Save mff").click()
        card = page.locator("#property-mff")
        expect(card.locator(".saved")).to_have_text("Saved")
        expect(card.locator(".rotation-table thead")).to_contain_text("Revenue / 1,000 impressions")
        expect(card.get_by_label("Auto")).to_be_checked()
        assert_no_sideways_scroll(page)
        # Nothing inside the card is cut off either: the table fits or scrolls in its own box.
        assert card.evaluate("c => c.scrollWidth <= c.clientWidth")
        assert problems == []
    finally:
        context.close()
    with urllib.request.urlopen(live_server.url + "/api/offers/mff") as response:
        assert len(json.load(response)["offers"]) == 3
