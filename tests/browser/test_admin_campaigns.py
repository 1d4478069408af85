"""Mike's campaign workflow in a real Chromium against the real server: log in through the form,
add a campaign by pasting Tune's link and pixel, watch the live preview, save, edit inline with
htmx, pause, then read the result back through the JSON API."""
import datetime as dt
import json
import os
import random
import shutil
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from popup_mgr import campaigns, timeutil, users
from popup_mgr import db as database
from tests.browser.conftest import ADMIN

TUNE_LINK = "https://mode.go2cloud.org/aff_c?offer_id=123&aff_id=456&aff_sub=popup"
PIXEL_HTML = '<img src="https://mode.go2cloud.org/aff_i?offer_id=123&amp;aff_id=456" width="1" height="1" />'
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "admin-campaigns.png"


def collect_problems(page):
    """Console errors and CSP violations: the strict CSP must not block anything the page needs."""
    problems = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    return problems


def api_get(server, path):
    db = server.db()
    try:
        token = users.create_token(db, "browser-test")
    finally:
        db.close()
    request = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_add_edit_pause_campaign(page, live_server, tmp_path):
    db = live_server.db()
    users.create_user(db, *ADMIN)
    db.close()
    problems = collect_problems(page)

    # Log in through the form; the login page remembers where he was going.
    page.goto(live_server.url + "/admin/campaigns")
    assert "/login" in page.url
    page.fill("input[name=username]", ADMIN[0])
    page.fill("input[name=password]", ADMIN[1])
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/admin/campaigns")

    started = time.perf_counter()
    page.click("text=Add campaign")
    page.wait_for_selector("#campaign-form[data-helpers=ready]")

    page.fill("#tune_link", TUNE_LINK)                  # paste of the tracking link
    assert page.input_value("#tune_campaign_id") == "123"
    assert page.input_value("#aff_id") == "456"
    assert page.input_value("#click_url") == TUNE_LINK
    page.fill("#impression_pixel_url", PIXEL_HTML)      # paste of Tune's pixel HTML
    assert page.input_value("#impression_pixel_url") == "https://mode.go2cloud.org/aff_i?offer_id=123&aff_id=456"

    page.fill("#display_title", "Win a $500 gift card")
    assert page.text_content("#pp-title") == "Win a $500 gift card"      # live preview follows typing
    page.fill("#tagline", "<b>Ends Friday</b>")
    assert page.text_content("#pp-tagline") == "<b>Ends Friday</b>"      # text, never markup
    page.fill("#cta_text", "Enter now")
    assert page.text_content("#pp-cta") == "Enter now"
    image = live_server.url + "/static/favicon.svg"
    page.fill("#image_url", image)
    assert page.get_attribute("#pp-image", "src") == image and page.is_visible("#pp-image")
    page.fill("#image_url", "javascript:alert(1)")
    assert page.get_attribute("#pp-image", "src") is None               # only http(s) images
    assert not page.is_visible("#pp-figure")
    page.fill("#image_url", image)
    page.fill("#description", "Enter in 30 seconds.")
    page.fill("#payout", "4.50")
    page.fill("#priority", "8")
    page.check("input[name=properties][value=mff]")
    page.fill("#name", "Holiday gift card – US")
    page.click("text=Add campaign >> nth=-1")

    row = page.locator("tr.is-highlight")
    row.wait_for()
    seconds = time.perf_counter() - started
    print(f"\nadding a campaign (form opened -> saved row shown): {seconds:.2f} s")
    assert "Win a $500 gift card" in row.inner_text()
    campaign_id = int(row.get_attribute("id").split("-")[1])

    # Inline edit with htmx: the row turns into inputs and back.
    row_selector = f"#campaign-{campaign_id}"
    page.click(f"{row_selector} >> text=Quick edit")
    page.fill(f"{row_selector} input[name=display_title]", "Win a $750 gift card")
    page.click(f"{row_selector} >> text=Save")
    page.wait_for_selector(f"{row_selector} >> text=Win a $750 gift card")
    assert page.locator(f"{row_selector} input[name=display_title]").count() == 0

    # One-click pause.
    page.click(f"{row_selector} button[role=switch]")
    page.wait_for_selector(f"{row_selector} button[role=switch][aria-checked=false]")

    stored = api_get(live_server, f"/api/campaigns/{campaign_id}")
    assert stored["active"] is False
    assert stored["display_title"] == "Win a $750 gift card"
    assert (stored["tune_campaign_id"], stored["aff_id"]) == (123, 456)
    assert stored["impression_pixel_url"] == "https://mode.go2cloud.org/aff_i?offer_id=123&aff_id=456"
    assert stored["payout"] == "4.50" and stored["priority"] == 8 and stored["properties"] == ["mff"]
    assert stored["tagline"] == "<b>Ends Friday</b>"
    assert stored["image_url"] == image
    page.goto(live_server.url + f"/admin/campaigns/{campaign_id}/edit")
    page.screenshot(path=str(tmp_path / "campaign-form.png"), full_page=True)
    assert problems == []


SAMPLE = [
    (9101, "Holiday Gift Card Sweeps – US", "Win a $500 Holiday Gift Card", "Enter in 30 seconds", ["mff", "mmm"], 9, "4.50", True),
    (9102, "Grocery Coupons Bundle", "Save $250 on Groceries", "New coupons every week", ["mmm"], 7, "2.10", True),
    (9103, "Free Sample Box – Beauty", "Claim Your Free Beauty Box", "Limited boxes left today", [], 6, "3.75", True),
    (9104, "Auto Insurance Quote", "Drivers Could Save $610", "Compare quotes in 2 minutes", ["mcad"], 5, "12.00", False),
    (9105, "Streaming Trial", "30 Days of Movies, Free", "Cancel anytime", ["mff", "mmd"], 4, "1.25", True),
]


def add_recent_traffic(db, campaign_id, seed):
    """A week of daily figures, so the list's "last 7 days" column has something to show."""
    rng = random.Random(seed)
    today = dt.date.fromisoformat(timeutil.today("America/New_York"))
    with database.transaction(db):
        for back in range(7):
            impressions = rng.randint(300, 900)
            clicks = rng.randint(impressions // 40, impressions // 12)
            conversions = rng.randint(0, clicks // 4)
            db.execute("INSERT INTO daily_stats (day, property_id, campaign_id, placement, impressions, clicks,"
                       " conversions, revenue_cents) VALUES (?, 1, ?, 'thankyou', ?, ?, ?, ?)",
                       ((today - dt.timedelta(days=back)).isoformat(), campaign_id, impressions, clicks,
                        conversions, conversions * 250))


def test_campaigns_page_screenshot(admin_page, live_server, tmp_path):
    """The README's picture of the campaigns page. Rendered on every run; written to docs/ with
    POPUP_UPDATE_SCREENSHOTS=1."""
    db = live_server.db()
    with live_server.app.app_context():
        for tune_id, name, title, tagline, props, priority, payout, active in SAMPLE:
            c = campaigns.create(db, {"tune_campaign_id": tune_id, "aff_id": 1042, "name": name, "display_title": title,
                                      "tagline": tagline, "properties": props, "priority": priority, "payout": payout,
                                      "click_url": f"https://mode.go2cloud.org/aff_c?offer_id={tune_id}&aff_id=1042"},
                                 "mike")
            if not active:
                campaigns.set_active(db, c["id"], False, "mike")
            add_recent_traffic(db, c["id"], tune_id)
    db.close()
    admin_page.set_viewport_size({"width": 1280, "height": 620})
    admin_page.goto(live_server.url + "/admin/campaigns")
    assert admin_page.locator("tr.campaign-row").count() == len(SAMPLE)
    shot = tmp_path / "admin-campaigns.png"
    admin_page.screenshot(path=str(shot), full_page=True)

    # The filter narrows the table as he types (htmx swaps the rows and updates the URL).
    admin_page.fill("input[name=q]", "grocery")
    expect(admin_page.locator("tr.campaign-row")).to_have_count(1)    # (wait_for_function needs eval: CSP)
    assert "Save $250 on Groceries" in admin_page.inner_text("#campaign-rows")
    assert "q=grocery" in admin_page.url
    admin_page.fill("input[name=q]", "")
    admin_page.select_option("select[name=status]", "paused")
    expect(admin_page.locator("#campaign-rows")).to_contain_text("Drivers Could Save $610")
    expect(admin_page.locator("tr.campaign-row")).to_have_count(1)
    assert shot.stat().st_size > 10_000
    if os.environ.get("POPUP_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)


@pytest.mark.parametrize("path", ["/admin/campaigns/new", "/admin/properties", "/admin/audit"])
def test_admin_pages_load_without_csp_violations(admin_page, live_server, path):
    problems = collect_problems(admin_page)
    admin_page.goto(live_server.url + path)
    admin_page.wait_for_load_state("load")
    assert admin_page.evaluate("typeof htmx") == "object"       # the vendored htmx loaded under the CSP
    assert problems == []


AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


@pytest.mark.slow
def test_admin_pages_have_no_accessibility_violations(chromium, live_server):
    """axe-core on every admin page, the inline row editor included. The context bypasses the
    CSP only so that axe itself can be injected."""
    from tests.browser.conftest import admin_session_cookie
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    context.add_cookies([admin_session_cookie(live_server)])
    page = context.new_page()
    db = live_server.db()
    with live_server.app.app_context():
        campaigns.create(db, {"tune_campaign_id": 1, "name": "Sweeps", "display_title": "Win",
                              "click_url": "https://t.example/aff_c?offer_id=1"}, "mike")
    db.close()
    try:
        found = {}
        for path in ["/admin/campaigns", "/admin/campaigns/new", "/admin/campaigns/1/edit",
                     "/admin/properties", "/admin/audit", "/admin/campaigns#row-editor"]:
            page.goto(live_server.url + path)
            if path.endswith("#row-editor"):
                page.click("text=Quick edit")
                page.wait_for_selector("input[name=display_title]")
            page.add_script_tag(path=str(AXE))
            result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
            found[path] = [(v["id"], [n["target"] for n in v["nodes"]]) for v in result["violations"]]
        assert found == {path: [] for path in found}
    finally:
        context.close()
