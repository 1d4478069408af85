"""Accounts in a real Chromium: log in, turn two-factor on with the QR page (the code computed
with pyotp, as a phone app would), log out, log in again with the code; the Users page on a
375 px phone has no sideways scroll."""
import re

import pyotp

from tests.browser.conftest import ADMIN


def log_in(page, server):
    page.goto(f"{server.url}/login")
    page.fill("input[name=username]", ADMIN[0])
    page.fill("input[name=password]", ADMIN[1])
    page.click("button[type=submit]")


def test_enrol_two_factor_then_log_in_with_the_code(chromium, live_server):
    db = live_server.db()
    from popup_mgr import users
    users.create_user(db, *ADMIN)
    db.close()
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        log_in(page, live_server)
        page.wait_for_selector("text=Log out")
        page.goto(f"{live_server.url}/admin/account/2fa")
        qr = page.locator("img.qr")
        assert qr.evaluate("img => img.complete && img.naturalWidth > 0")    # the data: URL passed the CSP
        secret = page.locator(".totp-secret").inner_text().strip()
        page.fill("input[name=code]", pyotp.TOTP(secret).now())
        page.click("main button[type=submit]")
        page.wait_for_selector(".recovery-codes code")
        codes = page.locator(".recovery-codes code").all_inner_texts()
        assert len(codes) == users.RECOVERY_CODES and all(re.fullmatch(r"[a-z2-9-]{14}", c) for c in codes)
        page.click("text=I have saved them")
        page.click("text=Log out")
        page.wait_for_selector("input[name=password]")

        log_in(page, live_server)
        page.wait_for_selector("input[name=code]")
        assert "/login" in page.url
        page.fill("input[name=code]", pyotp.TOTP(secret).now())
        page.click("button[type=submit]")
        page.wait_for_selector("text=Log out")
        page.goto(f"{live_server.url}/admin/users")
        assert page.locator(".chip", has_text="two-factor").count() == 1
    finally:
        context.close()


def test_users_page_fits_a_phone(chromium, live_server):
    from tests.browser.conftest import admin_session_cookie
    context = chromium.new_context(viewport={"width": 375, "height": 800}, is_mobile=True)
    context.add_cookies([admin_session_cookie(live_server)])
    db = live_server.db()
    from popup_mgr import users
    users.create_user(db, "a-colleague-with-a-long-name", "a long enough password")
    users.start_session(db, 1, "203.0.113.0/24", "Firefox on Android")
    db.close()
    page = context.new_page()
    try:
        for path in ("/admin/users", "/admin/tokens"):
            page.goto(f"{live_server.url}{path}")
            assert page.locator("h1").count() == 1
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at 375 px"
    finally:
        context.close()
