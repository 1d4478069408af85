"""The admin on a phone (375×667, touch): no admin page scrolls sideways, and the navigation takes
a small share of the screen. Every GET page under /admin (from the app's url_map, so a new page
is measured without editing this file) plus / is loaded with demo data and sample ids."""
import pytest

from popup_mgr import demo
from tests.browser.conftest import admin_session_cookie
from tests.helpers import add_campaign

PHONE = {"viewport": {"width": 375, "height": 667}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True}
# Files, not pages.
NOT_PAGES = (".csv", ".pdf", "/fragment")
# The navigation may take at most this share of the first screen.
NAV_SHARE = 0.15


def admin_page_paths(app, samples):
    """Every GET route under /admin, plus /, with its arguments filled from samples (else 1)."""
    paths = set()
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if "GET" not in rule.methods or not (rule.rule == "/" or rule.rule.startswith("/admin")):
                continue
            if rule.rule.endswith(NOT_PAGES) or "table" in rule.arguments:
                continue
            values = {name: samples.get(name, 1) for name in rule.arguments}
            paths.add(rule.build(values)[1])
    return sorted(paths)


@pytest.fixture
def phone(chromium, live_server):
    context = chromium.new_context(**PHONE)
    context.add_cookies([admin_session_cookie(live_server)])
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def samples(live_server):
    db = live_server.db()
    try:
        demo.generate(db, days=10, impressions=4_000, seed=3, tz=live_server.app.config["BUSINESS_TZ"])
        long_name = add_campaign(db, tune_id=98765, name="A campaign with a long internal name – US only",
                                 title="Win a $500 Holiday Gift Card from our favourite stores",
                                 properties=("mff", "mmm", "mcad", "mmd"))
    finally:
        db.close()
    return {"campaign_id": long_name}


def measure(page):
    return page.evaluate("""() => {
        const nav = document.querySelector('.topbar');
        return {width: document.documentElement.scrollWidth, viewport: window.innerWidth,
                navHeight: nav ? nav.getBoundingClientRect().height : 0, screen: window.innerHeight};
    }""")


def test_no_admin_page_scrolls_sideways_on_a_phone(phone, live_server, samples):
    paths = admin_page_paths(live_server.app, samples)
    assert {"/admin/campaigns", "/admin/dashboard", "/admin/audit"} <= set(paths)
    wide, tall_nav = {}, {}
    for path in paths:
        phone.goto(live_server.url + path)
        phone.wait_for_load_state("load")
        figures = measure(phone)
        print(f"\n{path}: {figures['width']} px wide at {figures['viewport']} px,"
              f" nav {figures['navHeight']:.0f} px ({figures['navHeight'] / figures['screen']:.0%})")
        # A mobile browser widens its layout viewport (innerWidth) to fit wide content, so the
        # page is measured against the phone's own width too.
        if figures["width"] > min(figures["viewport"], PHONE["viewport"]["width"]):
            wide[path] = figures["width"]
        if figures["navHeight"] > NAV_SHARE * figures["screen"]:
            tall_nav[path] = round(figures["navHeight"])
    assert wide == {}
    assert tall_nav == {}


def test_phone_nav_is_one_strip_that_reaches_every_page(phone, live_server):
    """The compact nav is one line that scrolls sideways inside itself: every page stays one tap
    away (after a swipe), and the page behind it does not scroll sideways."""
    phone.goto(live_server.url + "/admin/campaigns")
    nav = phone.locator("nav[aria-label=Main]")
    box = nav.bounding_box()
    assert box["height"] <= 44                        # one row of links
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375
    current = nav.locator("a[aria-current=page]")
    assert current.inner_text() == "Campaigns"
    audit = nav.locator("a", has_text="Audit")
    audit.scroll_into_view_if_needed()                # what a swipe along the strip does
    audit.tap()
    phone.wait_for_url("**/admin/audit")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
