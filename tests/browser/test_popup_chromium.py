"""The popup in Chromium on a publisher page served from another origin than the app."""
import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.popup_support import (  # noqa: F401  (fixtures)
    DESKTOP_UA, DIALOG, attributes_tag, page_html, popup_app, publisher, route_offer_assets, snippet,
    visitor)

AXE_JS = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
EVENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


def open_page(visitor, publisher, popup_app, head="", body="", headers=(), embed=None, **options):
    options.setdefault("property", "mff")
    options.setdefault("debug", True)
    url = publisher.add(page_html(embed or snippet(popup_app.url, **options), head, body), headers)
    visitor.goto(url)
    return url


def impressions_sent(page):
    """Impression requests the browser sends to the app (listening from now on)."""
    sent = []
    page.on("request", lambda r: sent.append(r) if r.url.endswith("/api/impression") else None)
    return sent


def wait_for_log(page, text, timeout=5000):
    page.wait_for_function("() => true")
    deadline_ms = timeout
    step = 50
    while deadline_ms > 0:
        if any(text in line for line in page.logs):
            return
        page.wait_for_timeout(step)
        deadline_ms -= step
    raise AssertionError(f"no console log containing {text!r}; got {page.logs}")


# --- the core scenario ------------------------------------------------------------------------

def test_thankyou_popup_counts_once_links_and_closes(visitor, publisher, popup_app):
    popup_app.campaign(101, title="Free sample box")
    popup_app.property("mff", delay_ms=0)
    sent = impressions_sent(visitor)
    pixels = []
    visitor.on("request", lambda r: pixels.append(r.url) if "tune.example/aff_i" in r.url else None)
    open_page(visitor, publisher, popup_app, placement="thankyou")
    dialog = visitor.locator(DIALOG)
    expect(dialog).to_be_visible()
    expect(dialog.locator("h2")).to_have_text("Free sample box")
    assert dialog.get_attribute("aria-modal") == "true"
    assert dialog.get_attribute("aria-labelledby") == dialog.locator("h2").get_attribute("id")

    [impression] = popup_app.recorder.wait_for_impressions(1)
    assert set(impression) == {"token", "event_id", "session_id", "view"} and impression["view"] == 1
    assert EVENT_ID.fullmatch(impression["event_id"])
    [request] = sent
    if popup_app.counts_impressions():       # with the tracking endpoints: counted exactly once
        assert popup_app.ledger_impressions(1) == 1
    assert request.method == "POST" and request.headers["content-type"].startswith("text/plain")
    assert pixels == ["https://tune.example/aff_i?offer_id=101"]

    offers = json.loads(visitor.evaluate(
        f"fetch('{popup_app.url}/api/offers/mff').then(r => r.text())"))["offers"]
    cta = dialog.locator("a")
    href = cta.get_attribute("href")
    click_path = f"{popup_app.url}/c/{impression['token']}"
    assert href.startswith(click_path + "?e=")
    click_event = href.split("?e=")[1]
    assert EVENT_ID.fullmatch(click_event) and click_event != impression["event_id"]
    assert cta.get_attribute("target") == "_blank" and cta.get_attribute("rel") == "noopener"
    assert cta.evaluate("a => getComputedStyle(a).backgroundColor") == "rgb(214, 36, 110)"   # Mode pink
    assert offers[0]["click_url"].startswith(f"{popup_app.url}/c/")

    visitor.keyboard.press("Escape")
    expect(visitor.locator("mode-popup")).to_have_count(0)
    assert visitor.errors == []


def test_focus_moves_in_is_trapped_and_restored(visitor, publisher, popup_app):
    popup_app.campaign(101)
    popup_app.campaign(102)
    popup_app.property("mff", delay_ms=600)
    open_page(visitor, publisher, popup_app)
    visitor.locator("#before").focus()
    expect(visitor.locator(DIALOG)).to_be_visible()
    focused = "() => document.querySelector('mode-popup').shadowRoot.activeElement?.getAttribute('role')"
    assert visitor.evaluate(focused) == "dialog"
    inside = "() => !!document.querySelector('mode-popup').shadowRoot.activeElement"
    for _ in range(8):          # close, CTA, prev, 2 dots, next: more presses than controls
        visitor.keyboard.press("Tab")
        assert visitor.evaluate(inside)
    for _ in range(8):
        visitor.keyboard.press("Shift+Tab")
        assert visitor.evaluate(inside)
    visitor.locator("mode-popup button[aria-label=Close]").click()
    expect(visitor.locator("mode-popup")).to_have_count(0)
    assert visitor.evaluate("document.activeElement.id") == "before"


def test_overlay_click_closes(visitor, publisher, popup_app):
    popup_app.campaign(101)
    popup_app.property("mff", delay_ms=0)
    open_page(visitor, publisher, popup_app)
    expect(visitor.locator(DIALOG)).to_be_visible()
    visitor.mouse.click(5, 5)
    expect(visitor.locator("mode-popup")).to_have_count(0)


# --- placements --------------------------------------------------------------------------------

def test_timed_waits_for_its_seconds(visitor, publisher, popup_app):
    popup_app.campaign(101)
    open_page(visitor, publisher, popup_app, placement="timed", seconds=1.5)
    wait_for_log(visitor, "offers 1 timed")
    visitor.wait_for_timeout(700)
    expect(visitor.locator("mode-popup")).to_have_count(0)
    expect(visitor.locator(DIALOG)).to_be_visible(timeout=3000)


def test_exit_intent_top_leave_not_first_second_not_twice(visitor, publisher, popup_app):
    popup_app.campaign(101)
    sent = impressions_sent(visitor)
    open_page(visitor, publisher, popup_app, placement="exit-intent", frequency="always")
    wait_for_log(visitor, "offers 1 exit-intent")

    def leave_through_top():
        # A real pointer: Chromium fires mouseout with relatedTarget null and clientY < 0.
        visitor.mouse.move(400, 300)
        visitor.mouse.move(400, 5, steps=3)
        visitor.mouse.move(400, -10)

    leave_through_top()                        # within the first second: ignored
    visitor.wait_for_timeout(300)
    expect(visitor.locator("mode-popup")).to_have_count(0)
    visitor.wait_for_timeout(900)
    visitor.mouse.move(5, 450)
    visitor.mouse.move(-10, 450)               # leaving through the side is not exit intent
    visitor.mouse.move(400, 450)
    visitor.wait_for_timeout(200)
    expect(visitor.locator("mode-popup")).to_have_count(0)
    leave_through_top()
    expect(visitor.locator(DIALOG)).to_be_visible()
    visitor.keyboard.press("Escape")
    expect(visitor.locator("mode-popup")).to_have_count(0)
    leave_through_top()
    visitor.wait_for_timeout(300)
    expect(visitor.locator("mode-popup")).to_have_count(0)   # not twice per page view
    assert len(sent) == 1


def test_show_opens_on_demand(visitor, publisher, popup_app):
    popup_app.campaign(101)
    open_page(visitor, publisher, popup_app, placement="exit-intent")
    wait_for_log(visitor, "offers 1")
    visitor.evaluate("ModePopup.show()")
    expect(visitor.locator(DIALOG)).to_be_visible()


def test_init_twice_and_attributes_make_one_popup(visitor, publisher, popup_app):
    popup_app.campaign(101)
    popup_app.property("mff", delay_ms=0)
    embed = attributes_tag(popup_app.url, property="mff", debug="true") + snippet(popup_app.url, property="mff")
    open_page(visitor, publisher, popup_app, embed=embed)
    expect(visitor.locator(DIALOG)).to_be_visible()
    visitor.evaluate("ModePopup.init({property: 'mff'}); ModePopup.q.push({property: 'mmm'})")
    wait_for_log(visitor, "init called again")
    expect(visitor.locator("mode-popup")).to_have_count(1)


def test_snippet_after_script_loaded_still_works(visitor, publisher, popup_app):
    """The init block running after popup.js (not before) uses the real init, not the queue."""
    popup_app.campaign(101)
    popup_app.property("mff", delay_ms=0)
    embed = (f'<script src="{popup_app.url}/popup.js"></script>'
             "<script>window.ModePopup = window.ModePopup || {q: []};"
             "ModePopup.init = ModePopup.init || function (o) { ModePopup.q.push(o); };"
             "ModePopup.init({property: 'mff', debug: true});</script>")
    open_page(visitor, publisher, popup_app, embed=embed)
    expect(visitor.locator(DIALOG)).to_be_visible()


# --- frequency memory --------------------------------------------------------------------------

@pytest.mark.parametrize("frequency, action, shown_again", [
    ("session", "close", False),
    ("session", "click", False),
    ("daily", "close", False),
    ("daily", "click", False),
    ("always", "close", True),
    ("always", "click", False),
])
def test_frequency_across_reloads(visitor, publisher, popup_app, frequency, action, shown_again):
    popup_app.campaign(101)
    popup_app.property("mff", delay_ms=0)
    url = open_page(visitor, publisher, popup_app, frequency=frequency)
    dialog = visitor.locator(DIALOG)
    expect(dialog).to_be_visible()
    if action == "close":
        visitor.keyboard.press("Escape")
    else:
        with visitor.context.expect_page() as new_tab:
            dialog.locator("a").click()
        new_tab.value.close()
    expect(visitor.locator("mode-popup")).to_have_count(0)
    visitor.logs.clear()
    visitor.goto(url)
    if shown_again:
        expect(dialog).to_be_visible()
    else:
        wait_for_log(visitor, "not shown: already " + ("closed" if action == "close" else "clicked"))
        expect(visitor.locator("mode-popup")).to_have_count(0)
    storage = visitor.evaluate("JSON.stringify([Object.keys(localStorage), Object.keys(sessionStorage)])")
    assert "modepopup:mff:" + ("closed" if action == "close" else "clicked") in storage
    assert visitor.context.cookies() == []


def test_daily_memory_survives_a_new_session(chromium, publisher, popup_app):
    """`daily` lives in localStorage: a new tab (new sessionStorage) still remembers it."""
    popup_app.campaign(101)
    popup_app.property("mff", delay_ms=0)
    context = chromium.new_context(user_agent=DESKTOP_UA)
    route_offer_assets(context)
    try:
        url = publisher.add(page_html(snippet(popup_app.url, property="mff", frequency="daily", debug=True)))
        first = context.new_page()
        first.goto(url)
        expect(first.locator(DIALOG)).to_be_visible()
        first.keyboard.press("Escape")
        first.close()
        second = context.new_page()
        logs = []
        second.on("console", lambda m: logs.append(m.text))
        second.goto(url)
        second.wait_for_function("() => true")
        second.wait_for_timeout(800)
        assert any("not shown: already closed" in line for line in logs), logs
    finally:
        context.close()


def test_storage_blocked_shows_once_per_page_view(chromium, publisher, popup_app):
    popup_app.campaign(101)
    popup_app.property("mff", delay_ms=0)
    context = chromium.new_context(user_agent=DESKTOP_UA)
    route_offer_assets(context)
    context.add_init_script("""for (const name of ['localStorage', 'sessionStorage']) {
        Object.defineProperty(window, name, {get() { throw new DOMException('blocked', 'SecurityError'); }});
    }""")
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        url = publisher.add(page_html(snippet(popup_app.url, property="mff", placement="exit-intent",
                                              frequency="session", debug=True)))
        page.goto(url)
        page.wait_for_timeout(1200)
        leave = "() => document.documentElement.dispatchEvent(new MouseEvent('mouseout'," \
                " {bubbles: true, clientY: -1, relatedTarget: null}))"
        page.evaluate(leave)
        expect(page.locator(DIALOG)).to_be_visible()
        page.keyboard.press("Escape")
        page.evaluate(leave)
        page.wait_for_timeout(300)
        expect(page.locator("mode-popup")).to_have_count(0)     # once per page view
        page.reload()
        page.wait_for_timeout(1200)
        page.evaluate(leave)
        expect(page.locator(DIALOG)).to_be_visible()             # nothing could be remembered
        assert errors == []
    finally:
        context.close()


# --- rotation ----------------------------------------------------------------------------------

def test_rotation_by_keyboard_counts_each_offer_once(visitor, publisher, popup_app):
    for tune_id in (101, 102, 103):
        popup_app.campaign(tune_id, title=f"Offer {tune_id}")
    popup_app.property("mff", delay_ms=0)
    open_page(visitor, publisher, popup_app)
    dialog = visitor.locator(DIALOG)
    expect(dialog).to_be_visible()
    title = dialog.locator("h2")
    seen = [title.text_content()]
    for _ in range(2):
        visitor.keyboard.press("ArrowRight")
        seen.append(title.text_content())
    assert sorted(seen) == ["Offer 101", "Offer 102", "Offer 103"]
    visitor.keyboard.press("ArrowRight")
    assert title.text_content() == seen[0]              # wraps around
    visitor.keyboard.press("ArrowLeft")
    assert title.text_content() == seen[2]
    assert dialog.locator("button[aria-current=true]").get_attribute("aria-label") == "Offer 3 of 3"
    dialog.locator("button[aria-label='Offer 2 of 3']").click()
    assert title.text_content() == seen[1]
    impressions = popup_app.recorder.wait_for_impressions(3)
    assert len(impressions) == 3                        # one per offer, none repeated on revisit
    assert len({i["token"] for i in impressions}) == 3
    assert len({i["event_id"] for i in impressions}) == 3
    assert len({i["session_id"] for i in impressions}) == 1


def test_auto_advance_respects_reduced_motion(chromium, publisher, popup_app):
    for tune_id in (101, 102):
        popup_app.campaign(tune_id, title=f"Offer {tune_id}")
    popup_app.property("mff", delay_ms=0)
    for motion, advances in (("no-preference", True), ("reduce", False)):
        context = chromium.new_context(user_agent=DESKTOP_UA, reduced_motion=motion)
        route_offer_assets(context)
        try:
            page = context.new_page()
            page.goto(publisher.add(page_html(snippet(popup_app.url, property="mff", autoAdvance=3))))
            title = page.locator(f"{DIALOG} h2")
            expect(title).to_be_visible()
            first = title.text_content()
            page.wait_for_timeout(3800)
            assert (title.text_content() != first) is advances, motion
        finally:
            context.close()


# --- hostile host pages ------------------------------------------------------------------------

HOSTILE_CSS = """<style>
html { font-size: 40px !important; color: #ff0000 !important; line-height: 7 !important; }
* { font-size: 31px !important; color: #00ff00 !important; line-height: 5 !important; letter-spacing: 9px !important;
    box-sizing: content-box !important; }
div, a, button, h2, p, img { display: none !important; opacity: 0 !important; }
mode-popup { display: none !important; visibility: hidden !important; opacity: 0 !important; }
</style>"""
CLOBBER = '<img name="currentScript"><form name="body"></form><img name="activeElement"><img name="createElement">' \
          '<img name="readyState"><img name="visibilityState"><img name="addEventListener">'


def test_hostile_css_and_dom_clobbering(visitor, publisher, popup_app):
    popup_app.campaign(101, title="Styled title")
    popup_app.property("mff", delay_ms=0)
    open_page(visitor, publisher, popup_app, head=HOSTILE_CSS, body=CLOBBER)
    dialog = visitor.locator(DIALOG)
    expect(dialog).to_be_visible()
    style = visitor.evaluate("""() => {
        const h2 = document.querySelector('mode-popup').shadowRoot.querySelector('h2');
        const s = getComputedStyle(h2);
        return {size: s.fontSize, color: s.color, lineHeight: s.lineHeight, spacing: s.letterSpacing};
    }""")
    assert style == {"size": "22px", "color": "rgb(27, 31, 36)", "lineHeight": "27.5px", "spacing": "normal"}
    assert visitor.errors == []


def test_strict_csp_page(visitor, publisher, popup_app):
    popup_app.campaign(101)
    popup_app.property("mff", delay_ms=0)
    csp = (f"default-src 'none'; script-src {popup_app.url}; connect-src {popup_app.url}; "
           "img-src https:; style-src 'none'")
    violations = []
    visitor.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    embed = attributes_tag(popup_app.url, property="mff", debug="true")
    open_page(visitor, publisher, popup_app, embed=embed, headers=[("Content-Security-Policy", csp)])
    dialog = visitor.locator(DIALOG)
    expect(dialog).to_be_visible()
    # Styled (constructable stylesheet applied) despite style-src 'none'.
    assert visitor.evaluate("() => getComputedStyle(document.querySelector('mode-popup')"
                            ".shadowRoot.querySelector('a')).borderRadius") == "10px"
    assert popup_app.recorder.wait_for_impressions(1)
    assert violations == []


XSS = '<img src=x onerror="window.__xss=1">"\'><script>window.__xss=2</script>'


def test_xss_payloads_are_shown_as_text(visitor, publisher, popup_app):
    popup_app.campaign(101, title=XSS + "t", tagline=XSS + "g", description=XSS + "d", cta_text=XSS + "c")
    popup_app.property("mff", delay_ms=0)
    open_page(visitor, publisher, popup_app)
    dialog = visitor.locator(DIALOG)
    expect(dialog).to_be_visible()
    assert dialog.locator("h2").text_content() == XSS + "t"
    assert dialog.locator(".tg").text_content() == XSS + "g"
    assert dialog.locator(".ds").text_content() == XSS + "d"
    assert dialog.locator("a").text_content() == XSS + "c"
    assert dialog.locator("script").count() == 0 and dialog.locator("h2 img").count() == 0
    visitor.wait_for_timeout(200)
    assert visitor.evaluate("window.__xss") is None


def test_tampered_offers_with_javascript_urls_are_ignored(visitor, publisher, popup_app):
    popup_app.campaign(101, title="Good")
    popup_app.campaign(102, title="Evil")

    def tamper(route):
        body = route.fetch().json()
        for offer in body["offers"]:
            offer["image_url"] = "javascript:window.__img=1"
            offer["impression_pixel_url"] = "javascript:window.__px=1"
            if offer["title"] == "Evil":
                offer["click_url"] = "javascript:window.__click=1"
        body["theme"]["logo_url"] = "javascript:window.__logo=1"
        body["theme"]["primary"] = "red;} :host{display:none"
        route.fulfill(json=body, headers={"Access-Control-Allow-Origin": "*"})

    visitor.route(f"{popup_app.url}/api/offers/**", tamper)
    popup_app.property("mff", delay_ms=0)
    open_page(visitor, publisher, popup_app)
    dialog = visitor.locator(DIALOG)
    expect(dialog).to_be_visible()
    expect(dialog.locator("h2")).to_have_text("Good")
    assert dialog.locator("button[aria-label='Next offer']").count() == 0     # Evil was dropped
    assert dialog.locator("a").get_attribute("href").startswith(popup_app.url + "/c/")
    assert visitor.evaluate("() => [...document.querySelector('mode-popup').shadowRoot"
                            ".querySelectorAll('img')].map(i => i.getAttribute('src'))") == [None]
    assert visitor.evaluate("[window.__img, window.__px, window.__click, window.__logo]") == [None] * 4


# --- phones ------------------------------------------------------------------------------------

@pytest.mark.parametrize("width", [320, 375])
@pytest.mark.parametrize("offers", [2, 8])        # 8: more offers than dots fit on a phone
def test_phone_widths_fit_without_overflow(chromium, publisher, popup_app, width, offers):
    for tune_id in range(101, 101 + offers):
        popup_app.campaign(tune_id, title="A rather long offer title that has to wrap on a small phone",
                           description="Supercalifragilisticexpialidocious-without-any-spaces-at-all " * 3)
    popup_app.property("mff", delay_ms=0, max_offers=offers)     # every offer in the carousel
    context = chromium.new_context(viewport={"width": width, "height": 640}, user_agent=DESKTOP_UA,
                                   is_mobile=True, has_touch=True, device_scale_factor=2)
    route_offer_assets(context)
    try:
        page = context.new_page()
        page.goto(publisher.add(page_html(snippet(popup_app.url, property="mff"))))
        dialog = page.locator(DIALOG)
        expect(dialog).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        box = dialog.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width
        assert dialog.evaluate("d => d.scrollWidth <= d.clientWidth")   # nothing cut off sideways
        for button in dialog.locator("button, a").all():
            b = button.bounding_box()
            assert b["width"] >= 44 and b["height"] >= 44, button.get_attribute("aria-label")
            assert box["x"] <= b["x"] and b["x"] + b["width"] <= box["x"] + box["width"]
        if offers > 3:
            assert dialog.locator(".cnt").text_content() == f"1 / {offers}"
            dialog.locator("button[aria-label='Next offer']").click()
            assert dialog.locator(".cnt").text_content() == f"2 / {offers}"
        image = dialog.locator(".fig").bounding_box()
        assert image["height"] > 0.5 * image["width"]       # 16:9 space reserved
    finally:
        context.close()


# --- accessibility, bots -----------------------------------------------------------------------

def test_axe_finds_no_serious_violations(visitor, publisher, popup_app):
    popup_app.campaign(101)
    popup_app.campaign(102)
    popup_app.property("mff", delay_ms=0)
    open_page(visitor, publisher, popup_app)
    expect(visitor.locator(DIALOG)).to_be_visible()
    visitor.add_script_tag(path=str(AXE_JS))
    result = visitor.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]])
               for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == []


@pytest.mark.parametrize("agent", [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
])
def test_bot_user_agent_sends_nothing(chromium, publisher, popup_app, agent):
    popup_app.campaign(101)
    popup_app.property("mff", delay_ms=0)
    context = chromium.new_context(user_agent=agent)
    try:
        page = context.new_page()
        to_app = []
        page.on("request", lambda r: to_app.append(r.url) if r.url.startswith(popup_app.url) else None)
        logs = []
        page.on("console", lambda m: logs.append(m.text))
        page.goto(publisher.add(page_html(snippet(popup_app.url, property="mff", debug=True))))
        page.wait_for_function("() => window.ModePopup && !Array.isArray(window.ModePopup.q)")
        assert any("bot user agent" in line for line in logs)
        page.evaluate("ModePopup.show()")
        page.wait_for_timeout(300)
        assert to_app == [f"{popup_app.url}/popup.js"]
        assert popup_app.recorder.impressions() == []
    finally:
        context.close()


def test_no_offers_or_unknown_property_is_quiet(visitor, publisher, popup_app):
    open_page(visitor, publisher, popup_app, property="nope")
    wait_for_log(visitor, "offers failed")
    open_page(visitor, publisher, popup_app, property="mff")
    wait_for_log(visitor, "no offers to show")
    expect(visitor.locator("mode-popup")).to_have_count(0)
    assert visitor.errors == []


# --- touch devices -----------------------------------------------------------------------------

def phone(chromium):
    context = chromium.new_context(viewport={"width": 375, "height": 667}, user_agent=DESKTOP_UA,
                                   is_mobile=True, has_touch=True)
    route_offer_assets(context)
    return context


def test_touch_exit_intent_on_return_to_tab(chromium, publisher, popup_app):
    popup_app.campaign(101)
    context = phone(chromium)
    # Headless tabs never really hide: drive Document.prototype.visibilityState (what the popup
    # reads, immune to clobbering) and fire the events a tab switch fires.
    context.add_init_script("""(() => {
        let state = 'visible';
        Object.defineProperty(Document.prototype, 'visibilityState', {get: () => state, configurable: true});
        window.__setVisibility = s => { state = s; document.dispatchEvent(new Event('visibilitychange')); };
    })()""")
    try:
        page = context.new_page()
        logs = []
        page.on("console", lambda m: logs.append(m.text))
        page.goto(publisher.add(page_html(snippet(popup_app.url, property="mff", placement="exit-intent",
                                                  debug=True))))
        page.wait_for_function("() => window.ModePopup && window.ModePopup.loaded")
        page.wait_for_timeout(1200)
        expect(page.locator("mode-popup")).to_have_count(0)
        page.evaluate("__setVisibility('hidden')")
        expect(page.locator("mode-popup")).to_have_count(0)
        page.evaluate("__setVisibility('visible')")
        expect(page.locator(DIALOG)).to_be_visible()
        assert popup_app.recorder.wait_for_impressions(1)
    finally:
        context.close()


def test_swipe_pages_offers(chromium, publisher, popup_app):
    for tune_id in (101, 102):
        popup_app.campaign(tune_id, title=f"Offer {tune_id}")
    popup_app.property("mff", delay_ms=0)
    context = phone(chromium)
    try:
        page = context.new_page()
        page.goto(publisher.add(page_html(snippet(popup_app.url, property="mff"))))
        title = page.locator(f"{DIALOG} h2")
        expect(title).to_be_visible()
        first = title.text_content()
        page.evaluate("""() => {
            const dlg = document.querySelector('mode-popup').shadowRoot.querySelector('[role=dialog]');
            const touch = x => new Touch({identifier: 1, target: dlg, clientX: x, clientY: 300});
            dlg.dispatchEvent(new TouchEvent('touchstart', {touches: [touch(300)], changedTouches: [touch(300)], bubbles: true}));
            dlg.dispatchEvent(new TouchEvent('touchend', {touches: [], changedTouches: [touch(120)], bubbles: true}));
        }""")
        assert title.text_content() != first
    finally:
        context.close()


# --- the admin playground ----------------------------------------------------------------------

def test_playground_previews_live_campaigns_without_counting(chromium, popup_app):
    from tests.browser.conftest import admin_session_cookie
    popup_app.campaign(101, title="Live campaign")
    context = chromium.new_context(user_agent=DESKTOP_UA)
    context.add_cookies([admin_session_cookie(popup_app.server)])
    route_offer_assets(context)
    try:
        page = context.new_page()
        pixels = []
        page.on("request", lambda r: pixels.append(r.url) if "tune.example" in r.url else None)
        page.goto(popup_app.url + "/admin/playground?property=mff&placement=exit-intent&frequency=always")
        page.wait_for_function("() => window.ModePopup && window.ModePopup.loaded")
        page.get_by_role("button", name="Show now").click()
        dialog = page.locator(DIALOG)
        expect(dialog.locator("h2")).to_have_text("Live campaign")
        # Styled under the admin's own strict CSP (style-src 'self').
        assert dialog.locator("a").evaluate("a => getComputedStyle(a).backgroundColor") == "rgb(214, 36, 110)"
        page.keyboard.press("Escape")
        page.wait_for_timeout(300)
        assert popup_app.recorder.impressions() == [] and pixels == []
    finally:
        context.close()


def test_install_page_copy_button_copies_the_exact_snippet(chromium, popup_app):
    from popup_mgr.web.setup_pages import snippet as make_snippet
    from tests.browser.conftest import admin_session_cookie
    context = chromium.new_context()
    context.add_cookies([admin_session_cookie(popup_app.server)])
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=popup_app.url)
    try:
        page = context.new_page()
        page.goto(popup_app.url + "/admin/install?property=mmm")
        page.get_by_role("button", name="Copy snippet").click()
        expect(page.locator(".embed-copy-status")).to_have_text("Copied.")
        copied = page.evaluate("navigator.clipboard.readText()")
        prop = {"code": "mmm", "popup_placement": "thankyou", "popup_frequency": "session"}
        assert copied == make_snippet(popup_app.url, prop)
        assert f'<script src="{popup_app.url}/popup.js" async></script>' in copied
    finally:
        context.close()


def test_the_install_page_snippet_works_as_pasted(visitor, publisher, popup_app):
    from popup_mgr.web.setup_pages import snippet as make_snippet
    popup_app.campaign(101, title="Pasted")
    popup_app.property("mcad", delay_ms=0)
    prop = {"code": "mcad", "popup_placement": "thankyou", "popup_frequency": "session"}
    visitor.goto(publisher.add(page_html(make_snippet(popup_app.url, prop))))
    expect(visitor.locator(f"{DIALOG} h2")).to_have_text("Pasted")


def test_self_hosted_copy_with_data_base(visitor, publisher, popup_app):
    """A publisher serving its own copy of popup.js points it at the server with data-base."""
    from popup_mgr.web import public as embed
    popup_app.campaign(101, title="Via data-base")
    popup_app.property("mff", delay_ms=0)
    script = publisher.add(embed.SCRIPT_PATH.read_bytes(), name=f"copy-{id(popup_app)}.js",
                           content_type="application/javascript")
    tag = f'<script src="{script}" data-property="mff" data-base="{popup_app.url}/ignored/path" async></script>'
    visitor.goto(publisher.add(page_html(tag)))
    expect(visitor.locator(f"{DIALOG} h2")).to_have_text("Via data-base")
    [impression] = popup_app.recorder.wait_for_impressions(1)
    assert visitor.locator(f"{DIALOG} a").get_attribute("href").startswith(f"{popup_app.url}/c/{impression['token']}?e=")


def test_touch_exit_intent_on_fast_scroll_up(chromium, publisher, popup_app):
    popup_app.campaign(101)
    context = phone(chromium)
    try:
        page = context.new_page()
        tall = '<div style="height: 4000px"></div>'
        page.goto(publisher.add(page_html(snippet(popup_app.url, property="mff", placement="exit-intent",
                                                  debug=True), body=tall)))
        page.wait_for_function("() => window.ModePopup && window.ModePopup.loaded")
        page.wait_for_timeout(1200)
        scroll_to = "y => new Promise(r => { window.scrollTo(0, y); requestAnimationFrame(() => setTimeout(r, 20)); })"
        for y in (400, 800, 1200):               # reading down the page: nothing
            page.evaluate(scroll_to, y)
        page.wait_for_timeout(300)
        page.evaluate(scroll_to, 1150)           # a small, slow move up: nothing
        page.wait_for_timeout(300)
        expect(page.locator("mode-popup")).to_have_count(0)
        page.evaluate(scroll_to, 1000)           # a fast jump up towards the address bar
        expect(page.locator(DIALOG)).to_be_visible()
    finally:
        context.close()


def test_property_theme_colours_and_logo(visitor, publisher, popup_app):
    popup_app.campaign(101)
    popup_app.property("mmm", delay_ms=0, theme={"primary": "#0a7d32", "cta_text": "#ffffff",
                                                  "logo_url": "https://img.example/logo.png"})
    open_page(visitor, publisher, popup_app, property="mmm")
    dialog = visitor.locator(DIALOG)
    expect(dialog).to_be_visible()
    assert dialog.locator("a").evaluate("a => getComputedStyle(a).backgroundColor") == "rgb(10, 125, 50)"
    assert dialog.locator("img.logo").get_attribute("src") == "https://img.example/logo.png"
    # Mode's defaults on a property without a theme.
    assert popup_app.app.test_client().get("/api/offers/mff").json["theme"]["primary"] == "#d6246e"


@pytest.mark.parametrize("without_beacon", [
    "Navigator.prototype.sendBeacon = () => false",        # the queue refused the beacon
    "delete Navigator.prototype.sendBeacon",               # no sendBeacon at all
])
def test_impression_falls_back_to_keepalive_fetch(chromium, publisher, popup_app, without_beacon):
    popup_app.campaign(101)
    popup_app.property("mff", delay_ms=0)
    context = chromium.new_context(user_agent=DESKTOP_UA)
    route_offer_assets(context)
    context.add_init_script(without_beacon)
    try:
        page = context.new_page()
        sent = impressions_sent(page)
        page.goto(publisher.add(page_html(snippet(popup_app.url, property="mff"))))
        expect(page.locator(DIALOG)).to_be_visible()
        [impression] = popup_app.recorder.wait_for_impressions(1)
        assert set(impression) == {"token", "event_id", "session_id", "view"} and impression["view"] == 1
        [request] = sent
        assert request.resource_type == "fetch" and request.headers["content-type"] == "text/plain"
    finally:
        context.close()
