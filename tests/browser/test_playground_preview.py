"""The admin playground: a preview counts nothing (no impression, no pixel, no click: its offer
button never goes through /c/), a live test does count, and a browser the popup takes for a bot
gets a visible explanation instead of an empty page. Chromium."""
import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import admin_session_cookie
from tests.browser.popup_support import DESKTOP_UA, DIALOG, popup_app, route_offer_assets  # noqa: F401

PLAYGROUND = "/admin/playground?property=mff&placement=exit-intent&frequency=always"
HEADLESS_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
               "HeadlessChrome/156.0.0.0 Safari/537.36")


def admin_context(chromium, popup_app, user_agent=DESKTOP_UA):
    context = chromium.new_context(user_agent=user_agent)
    context.add_cookies([admin_session_cookie(popup_app.server)])
    route_offer_assets(context)
    return context


def ledger_clicks(popup_app, expected=0, timeout=3.0):
    """Click rows on disk, waiting up to timeout for `expected` of them."""
    deadline = time.monotonic() + timeout
    while True:
        db = popup_app.server.db()
        try:
            count = db.execute("SELECT count(*) FROM clicks").fetchone()[0]
        finally:
            db.close()
        if count >= expected or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def open_playground(page, popup_app, query=""):
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(popup_app.url + PLAYGROUND + query)
    page.wait_for_function("() => window.ModePopup && window.ModePopup.loaded")
    page.get_by_role("button", name="Show now").click()
    expect(page.locator(f"{DIALOG} h2")).to_have_text("Live campaign")
    return requests


def test_preview_offer_button_counts_no_click(chromium, popup_app):
    popup_app.campaign(101, title="Live campaign")
    context = admin_context(chromium, popup_app)
    try:
        page = context.new_page()
        requests = open_playground(page, popup_app)
        cta = page.locator(f"{DIALOG} a")
        assert "/c/" not in cta.get_attribute("href")
        cta.click()
        page.wait_for_timeout(300)
        assert len(context.pages) == 1                      # no new tab towards the campaign
        expect(page.locator(DIALOG)).to_be_visible()
        expect(page.locator("#embed-log")).to_contain_text("preview: not counted click")
        expect(page.locator("#embed-log")).to_contain_text("preview: not counted /api/impression")
        # Nothing reached the tracking endpoints, no pixel fired, and the ledger has no click.
        assert popup_app.recorder.events == []
        assert not [url for url in requests if "/c/" in url or "tune.example" in url or "/api/click" in url]
        assert ledger_clicks(popup_app, timeout=0.3) == 0
    finally:
        context.close()


def test_live_test_counts_the_click(chromium, popup_app):
    """The same button in a live test goes through /c/ and is counted: the preview's silence is
    not a broken button."""
    popup_app.campaign(101, title="Live campaign")
    context = admin_context(chromium, popup_app)
    try:
        page = context.new_page()
        open_playground(page, popup_app, "&live=1")
        cta = page.locator(f"{DIALOG} a")
        assert cta.get_attribute("href").startswith(popup_app.url + "/c/")
        with context.expect_page() as new_tab:
            cta.click()
        new_tab.value.close()
        assert any(e["path"].startswith("/c/") for e in popup_app.recorder.events)
        if any(rule.rule == "/c/<path:token>" for rule in popup_app.app.url_map.iter_rules()):
            assert ledger_clicks(popup_app, expected=1) == 1
    finally:
        context.close()


@pytest.mark.parametrize("agent", [HEADLESS_UA, "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"])
def test_a_bot_browser_is_told_why_nothing_shows(chromium, popup_app, agent):
    popup_app.campaign(101, title="Live campaign")
    context = admin_context(chromium, popup_app, user_agent=agent)
    try:
        page = context.new_page()
        page.goto(popup_app.url + PLAYGROUND)
        notice = page.locator("#embed-bot")
        expect(notice).to_be_visible()
        expect(notice).to_contain_text("looks like a bot")
        expect(notice).to_contain_text(agent)
        expect(page.locator("#embed-log")).to_contain_text("bot user agent: nothing shown or sent")
        page.get_by_role("button", name="Show now").click()
        expect(page.locator("#embed-log")).to_contain_text("show() before init()")
        expect(page.locator("mode-popup")).to_have_count(0)
    finally:
        context.close()


def test_an_ordinary_browser_sees_no_bot_notice(chromium, popup_app):
    popup_app.campaign(101, title="Live campaign")
    context = admin_context(chromium, popup_app)
    try:
        page = context.new_page()
        open_playground(page, popup_app)
        expect(page.locator("#embed-log")).to_contain_text("shown")
        expect(page.locator("#embed-bot")).to_be_hidden()
    finally:
        context.close()
