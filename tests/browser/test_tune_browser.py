"""Mike connects Tune in a real Chromium against the real server and the stand-in network (a real
HTTP server on 127.0.0.1): save the settings, test the connection, sync now, review and activate
the new offer, open yesterday's reconciliation and apply it; the pages fit a 375 px phone."""
import json
import urllib.request

from playwright.sync_api import expect

from popup_mgr import tune_jobs
from tests.browser.test_admin_campaigns import collect_problems
from tests.tune_standin import API_KEY, NETWORK_ID, TuneStandin

PHONE = {"width": 375, "height": 812}


def offers_served(server, property_code="mff"):
    with urllib.request.urlopen(f"{server.url}/api/offers/{property_code}", timeout=10) as response:
        return [offer["title"] for offer in json.load(response)["offers"]]


def no_sideways_scrolling(page):
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_connect_sync_activate_and_reconcile(admin_page, live_server, httpserver):
    page = admin_page
    problems = collect_problems(page)
    tune = TuneStandin(httpserver)
    tune.add_offer(1001, "Auto Insurance CPL - US")
    yesterday = tune_jobs.yesterday(live_server.app)
    tune.add_stat(yesterday, 1001, impressions=120, clicks=0, conversions=1, payout="4.50")
    tune.add_conversion("tx-browser-1", 1001, f"{yesterday} 12:00:00", click_id="not-one-of-ours")

    # Settings: the key goes in once and never comes back in full.
    page.goto(live_server.url + "/admin/tune")
    expect(page.locator("#tune-settings .tn-status")).to_contain_text("Not connected")
    page.fill("#tune-network-id", NETWORK_ID)
    page.fill("#tune-api-key", API_KEY)
    page.click("#tune-settings summary")
    page.fill("#tune-api-url", tune.url)
    page.click("#tune-settings button:has-text('Save')")
    expect(page.locator("#tune-settings .tn-status")).to_contain_text(
        f"Connected to network {NETWORK_ID} with the API key ••••abcd")
    assert page.input_value("#tune-api-key") == ""
    assert API_KEY not in page.content()

    page.click("#tune-settings button:has-text('Test connection')")
    expect(page.locator("#tune-test-result")).to_have_text(f"Connected to network {NETWORK_ID}. 1 approved offer.")

    # Sync now: the new offer waits for review and is not served yet.
    page.click("#tune-sync button:has-text('Sync now')")
    expect(page.locator("#tune-sync-outcome")).to_have_text(
        "Tune sync: 1 created, 0 updated, 0 held, 0 released, 0 unchanged.")
    expect(page.locator("#tune-review .tn-count")).to_have_text("1")
    expect(page.locator("#tune-last-outcome")).to_contain_text("Done: 1 created")
    assert offers_served(live_server) == []

    # Review (the campaign form, with the network's texts) and activate.
    review = page.locator("#tune-review li.tn-review").first
    expect(review).to_contain_text("Auto Insurance CPL - US")
    expect(review).to_contain_text("$4.50")
    review.locator("button:has-text('Activate')").click()
    expect(page.locator("#tune-review")).to_contain_text("“Auto Insurance CPL - US” is active and shown from now on.")
    expect(page.locator("#tune-review .tn-count")).to_have_text("0")
    assert offers_served(live_server) == ["Auto Insurance CPL - US"]

    # Yesterday's reconciliation: one conversion only Tune has.
    page.click("nav >> text=Reconciliation")
    sentence = page.locator("#reconciliation-sentence")
    expect(sentence).to_have_text("Tune reports $4.50 more than we recorded yesterday: 1 conversion we never received.")
    expect(page.locator("#reconciliation-days tr.tn-differs")).to_have_count(1)
    expect(page.locator("#missing_in_ours")).to_have_text("Missing in ours: 1")
    page.once("dialog", lambda dialog: dialog.accept())          # hx-confirm asks first
    page.click("#reconciliation-apply")
    expect(page.locator("#reconciliation-notice")).to_have_text(
        "Applied: 1 conversion(s) recorded from Tune, 0 status(es) taken from Tune.")
    expect(sentence).to_have_text("Tune and we recorded the same revenue yesterday.")
    expect(page.locator("#missing_in_ours")).to_have_text("Missing in ours: 0")

    # The dashboard says the last reconciliation's gap where Mike looks every day.
    page.goto(live_server.url + "/admin/dashboard")
    expect(page.locator("#tune-gap")).to_contain_text("Tune and we recorded the same revenue yesterday.")

    # A phone: nothing scrolls sideways.
    page.set_viewport_size(PHONE)
    for path in ("/admin/tune", f"/admin/tune/reconciliation?from={yesterday}&to={yesterday}"):
        page.goto(live_server.url + path)
        assert no_sideways_scrolling(page), path
    assert API_KEY not in page.content()
    assert problems == []
