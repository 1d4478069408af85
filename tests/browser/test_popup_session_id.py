"""The embed sends its session id on the offers request (`GET /api/offers/<property>?sid=…`), the
unit of the server's experiment assignment: valid, the same across reloads of the tab, the same
as the beacons' session_id, and new in a new browser session. Chromium."""
import re
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import expect

from tests.browser.popup_support import (  # noqa: F401  (fixtures)
    DESKTOP_UA, DIALOG, page_html, popup_app, publisher, route_offer_assets, snippet)

SID = re.compile(r"[A-Za-z0-9_-]{8,64}")
BLOCK_STORAGE = """for (const name of ['localStorage', 'sessionStorage']) {
    Object.defineProperty(window, name, {get() { throw new DOMException('blocked', 'SecurityError'); }});
}"""


def offers_queries(page):
    """Query parameters of every offers request the page sends (listening from now on)."""
    sent = []
    page.on("request", lambda r: sent.append(parse_qs(urlsplit(r.url).query, keep_blank_values=True))
            if "/api/offers/" in r.url else None)
    return sent


def visitor_context(chromium, init_script=None):
    context = chromium.new_context(user_agent=DESKTOP_UA)
    route_offer_assets(context)
    if init_script:
        context.add_init_script(init_script)
    return context


def test_offers_request_carries_a_session_id_stable_across_reloads(chromium, publisher, popup_app):
    popup_app.campaign(101)
    popup_app.property("mff", delay_ms=0)
    url = publisher.add(page_html(snippet(popup_app.url, property="mff", placement="thankyou",
                                          frequency="always")))
    context = visitor_context(chromium)
    try:
        page = context.new_page()
        sent = offers_queries(page)
        page.goto(url)
        expect(page.locator(DIALOG)).to_be_visible()
        page.reload()
        expect(page.locator(DIALOG)).to_be_visible()
        [first, second] = sent
        assert SID.fullmatch(first["sid"][0])
        assert first["placement"] == ["thankyou"]
        assert second["sid"] == first["sid"]               # the same tab session after a reload
        impressions = popup_app.recorder.wait_for_impressions(2)
        assert {i["session_id"] for i in impressions} == set(first["sid"])   # the beacons' id
        # The server answers the offers with sid as without it.
        answer = page.evaluate(f"fetch('{popup_app.url}/api/offers/mff?sid={first['sid'][0]}').then(r => r.json())")
        assert [o["title"] for o in answer["offers"]] == ["Free sample box"]
    finally:
        context.close()
    other = visitor_context(chromium)                     # another browser session: another id
    try:
        page = other.new_page()
        again = offers_queries(page)
        page.goto(url)
        expect(page.locator(DIALOG)).to_be_visible()
        assert SID.fullmatch(again[0]["sid"][0]) and again[0]["sid"] != first["sid"]
        assert "placement" in again[0]
    finally:
        other.close()


def test_without_placement_only_sid_is_sent(chromium, publisher, popup_app):
    popup_app.campaign(101)
    popup_app.property("mff", delay_ms=0)
    context = visitor_context(chromium)
    try:
        page = context.new_page()
        sent = offers_queries(page)
        page.goto(publisher.add(page_html(snippet(popup_app.url, property="mff"))))
        expect(page.locator(DIALOG)).to_be_visible()
        assert list(sent[0]) == ["sid"]
    finally:
        context.close()


def test_a_tampered_stored_id_is_replaced(chromium, publisher, popup_app):
    """The host page shares sessionStorage: a value the server would refuse is not sent."""
    popup_app.campaign(101)
    popup_app.property("mff", delay_ms=0)
    context = visitor_context(chromium, "sessionStorage.setItem('modepopup:sid', 'bad id <script>')")
    try:
        page = context.new_page()
        sent = offers_queries(page)
        page.goto(publisher.add(page_html(snippet(popup_app.url, property="mff"))))
        expect(page.locator(DIALOG)).to_be_visible()
        sid = sent[0]["sid"][0]
        assert SID.fullmatch(sid)
        assert page.evaluate("sessionStorage.getItem('modepopup:sid')") == sid
    finally:
        context.close()


def test_storage_blocked_still_one_id_per_page_view(chromium, publisher, popup_app):
    """Without storage nothing survives a reload, but the offers call and the beacons of one page
    view still carry the same id."""
    for tune_id in (101, 102):
        popup_app.campaign(tune_id, title=f"Offer {tune_id}")
    popup_app.property("mff", delay_ms=0)
    context = visitor_context(chromium, BLOCK_STORAGE)
    try:
        page = context.new_page()
        sent = offers_queries(page)
        page.goto(publisher.add(page_html(snippet(popup_app.url, property="mff"))))
        expect(page.locator(DIALOG)).to_be_visible()
        page.keyboard.press("ArrowRight")
        impressions = popup_app.recorder.wait_for_impressions(2)
        assert len(impressions) == 2
        [sid] = sent[0]["sid"]
        assert SID.fullmatch(sid) and {i["session_id"] for i in impressions} == {sid}
    finally:
        context.close()
