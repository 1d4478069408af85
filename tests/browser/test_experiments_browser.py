"""A creative test end to end in Chromium: Mike starts it on the Experiments page (with the live
preview of each arm), a visitor on a publisher page (another origin) sees their arm's creative on
every reload, and the experiment's card counts that traffic without a reload of the admin page."""
import re

from playwright.sync_api import expect

from popup_mgr import experiments
from tests.browser.conftest import admin_session_cookie
from tests.browser.popup_support import (  # noqa: F401  (fixtures)
    DESKTOP_UA, DIALOG, page_html, popup_app, publisher, route_offer_assets, snippet)

SESSION_KEY = "modepopup:sid"           # where the embed keeps its session id (embed/popup.js)


def sid_in_arm(experiment_id, key, arms=({"key": "a", "weight": 50}, {"key": "b", "weight": 50})):
    """A session id the server assigns to arm `key` (found by trying, as any visitor's would be)."""
    experiment = {"id": experiment_id, "arms": list(arms)}
    return next(sid for sid in (f"visitor-{n:06d}" for n in range(1000))
                if experiments.arm_for(experiment, sid) == key)


def visitor_with_sid(chromium, sid):
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, user_agent=DESKTOP_UA)
    route_offer_assets(context)
    context.add_init_script(f"try {{ sessionStorage.setItem('{SESSION_KEY}', '{sid}'); }} catch (e) {{}}")
    return context


def popup_title(page):
    dialog = page.locator(DIALOG)
    expect(dialog).to_be_visible()
    return dialog.locator("[id$=title], h2").first.inner_text().strip()


def test_mike_starts_a_creative_test_and_visitors_see_their_arm(chromium, publisher, popup_app):
    popup_app.app.config["EXPERIMENT_CARD_REFRESH_S"] = 1
    popup_app.campaign(301, name="Sample box", title="Original title")
    popup_app.property("mff", delay_ms=0, popup_frequency="always")

    admin = chromium.new_context(viewport={"width": 1280, "height": 900})
    admin.add_cookies([admin_session_cookie(popup_app.server)])
    route_offer_assets(admin)
    mike = admin.new_page()
    try:
        mike.goto(popup_app.url + "/admin/experiments")
        mike.get_by_role("link", name="Start an experiment").click()
        mike.get_by_label("Name").fill("Shorter title")
        mike.get_by_label("alternative creatives of one campaign").check()
        mike.locator("select[name=campaign_id]").select_option(label="Sample box — Original title")
        arm_b = mike.locator("fieldset.arm[data-slot='1']")
        expect(arm_b.locator("details.arm-creative")).to_have_attribute("open", "")   # opened for this mode
        arm_b.locator("input[name='arm-1-display_title']").fill("Arm B title")
        # The live preview: A is the campaign as it is, B with its own title.
        expect(mike.locator("fieldset.arm[data-slot='0'] [data-preview=display_title]")).to_have_text("Original title")
        expect(arm_b.locator("[data-preview=display_title]")).to_have_text("Arm B title")
        expect(mike.locator("fieldset.arm[data-slot='2'] .arm-preview")).to_be_hidden()   # C unused so far
        expect(mike.locator("fieldset.arm[data-slot='1'] select[name='arm-1-campaign_id']")).to_be_hidden()
        mike.get_by_role("button", name="Start experiment").click()
        expect(mike.locator("h1")).to_have_text(re.compile(r"Experiment #\d+"))
        experiment_id = int(re.search(r"/admin/experiments/(\d+)", mike.url).group(1))
        card = mike.locator(f"#experiment-{experiment_id}")
        expect(card.locator("[data-verdict]")).to_contain_text("Not enough data yet")
        expect(card.locator("tr[data-arm=b] [data-impressions]")).to_have_text("0")

        url = publisher.add(page_html(snippet(popup_app.url, property="mff", placement="thankyou",
                                              frequency="always")))
        for key, title in (("b", "Arm B title"), ("a", "Original title")):
            context = visitor_with_sid(chromium, sid_in_arm(experiment_id, key))
            try:
                page = context.new_page()
                page.goto(url)
                seen = [popup_title(page)]
                for _ in range(2):
                    page.reload()
                    seen.append(popup_title(page))
                assert seen == [title] * 3            # the same arm on every reload
            finally:
                context.close()

        assert popup_app.ledger_impressions(6) == 6
        # The card refreshes itself: three impressions from one visitor in each arm.
        expect(card.locator("tr[data-arm=b] [data-impressions]")).to_have_text("3", timeout=10_000)
        expect(card.locator("tr[data-arm=b] [data-visitors]")).to_have_text("1")
        expect(card.locator("tr[data-arm=a] [data-impressions]")).to_have_text("3")
    finally:
        admin.close()
