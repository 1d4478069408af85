"""The Alerts page in a real Chromium against the real server: readable at desktop and phone
widths without sideways scrolling, with long summaries and URLs, no CSP violation, and the test
e-mail sent with the button (htmx) reaching a real SMTP server on 127.0.0.1."""
import urllib.parse

import pytest
from playwright.sync_api import expect

from popup_mgr import alerts, image_check
from tests.browser.conftest import admin_session_cookie
from tests.helpers import add_campaign
from tests.mail_support import Credentials, Inbox, start_server

USER, PASSWORD = "alerts@mode.example", "Zq7-secret/p@ss word"
LONG_URL = ("https://cdn.network-images.example/creatives/2026/11/walmart-gift-card-500-dollars-"
            "holiday-season-variant-b-1200x628-final-final.png?cache=0123456789abcdef0123456789")
SIZES = [(1280, 800), (375, 667)]


@pytest.fixture
def inbox(live_server):
    inbox = Inbox()
    controller = start_server(inbox, authenticator=Credentials(USER, PASSWORD), auth_required=True,
                              auth_require_tls=False)
    live_server.app.config.update(
        SMTP_URL=(f"smtp://{urllib.parse.quote(USER, safe='')}:{urllib.parse.quote(PASSWORD, safe='')}"
                  f"@127.0.0.1:{controller.port}?from=alerts@mode.example&timeout=10"),
        ALERT_TO="mike@example.com, operations-team-with-a-long-name@mode-marketing.example")
    yield inbox
    controller.stop()


@pytest.fixture
def incidents(live_server):
    """Open and past incidents and image checks, with the long words real ones carry."""
    db = live_server.db()
    try:
        broken = add_campaign(db, name="Walmart $500 Gift Card Holiday Season Sweepstakes", image_url=LONG_URL)
        fine = add_campaign(db, name="Sweeps", image_url="https://cdn.example/sweeps.png")
        image_check.store_results(db, {
            broken: image_check.Result(LONG_URL, False, 404, "text/html", 0, 40, "HTTP 404"),
            fine: image_check.Result("https://cdn.example/sweeps.png", True, 200, "image/png", 48_213, 85)},
            "2026-11-28T20:00:00Z")
        summary = f"campaign 'Walmart $500 Gift Card Holiday Season Sweepstakes': image does not load (HTTP 404)"
        alerts.apply(db, {"image_broken": [alerts.Finding(
            "image_broken", f"campaign:{broken}", alerts.FIRING, summary,
            f"{LONG_URL} failed 2 checks in a row, the last at 2026-11-28T20:00:00Z: HTTP 404.")]},
            "2026-11-28T20:00:00Z")
        for day in range(1, 4):
            at = f"2026-11-{day:02d}T10:00:00Z"
            alerts.apply(db, {"backup_failed": [alerts.Finding("backup_failed", "backup", alerts.FIRING,
                                                               "backup failed: disk full", "The last backup failed")]}, at)
            alerts.apply(db, {"backup_failed": [alerts.Finding("backup_failed", "backup", alerts.CLEAR,
                                                               details="a backup worked")]}, at.replace("10:", "11:"))
    finally:
        db.close()


def open_alerts(chromium, server, width, height):
    context = chromium.new_context(viewport={"width": width, "height": height})
    context.add_cookies([admin_session_cookie(server)])
    page = context.new_page()
    problems = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.goto(server.url + alerts.ALERTS_PATH)
    return context, page, problems


def assert_no_sideways_scroll(page, width):
    scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert inner_width == width
    assert scroll_width <= inner_width, f"page is {scroll_width} px wide in a {inner_width} px window"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("width, height", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_the_alerts_page_fits_and_sends_a_test_email(chromium, live_server, inbox, incidents, width, height):
    context, page, problems = open_alerts(chromium, live_server, width, height)
    try:
        expect(page.locator("#open-incidents .incident-summary")).to_have_text(
            ["campaign 'Walmart $500 Gift Card Holiday Season Sweepstakes': image does not load (HTTP 404)"])
        expect(page.locator("#past-incidents .incident")).to_have_count(3)
        expect(page.locator("tr.image-check .chip")).to_have_text(["failing", "loads"])
        expect(page.locator("#mail-panel .alerts-facts")).to_contain_text("smtp://alerts%40mode.example:••••••@127.0.0.1:")
        assert PASSWORD not in page.content() and "Zq7" not in page.content()
        assert_no_sideways_scroll(page, width)

        button = page.get_by_role("button", name="Send a test e-mail")
        button.scroll_into_view_if_needed()
        assert button.bounding_box()["x"] + button.bounding_box()["width"] <= width
        button.click()
        result = page.locator("#mail-panel .test-email-result")
        expect(result).to_have_text("Sent to mike@example.com, operations-team-with-a-long-name@mode-marketing.example."
                                    " If it has not arrived in a few minutes, look in the spam folder and at the"
                                    " server's log.", timeout=15_000)
        assert inbox.received.wait(5)
        [received] = inbox.messages
        assert received["message"]["Subject"] == "[popup_mgr] Test e-mail" and received["login"] == USER.encode()
        # The panel swapped itself (one panel, still the whole page around it) and still fits.
        expect(page.locator("#mail-panel")).to_have_count(1)
        expect(page.locator("h1")).to_have_text("Alerts")
        assert_no_sideways_scroll(page, width)
        assert problems == []
    finally:
        context.close()
