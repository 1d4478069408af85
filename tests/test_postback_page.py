"""The Postback page through the test client: the test postback for the campaign Mike picks,
told in words with names, and the unattributed conversions in pages with a filter."""
import re
from urllib.parse import urlencode

from popup_mgr.web import setup_pages
from tests.helpers import BROWSER_UA, add_campaign, beacon_body, csrf_token, token_for

SECRET = "postback-test-secret"
HX = {"HX-Request": "true"}


def _click(app, client, campaign_id, prop="mmm"):
    token = token_for(app, campaign_id, prop, "thankyou", "")
    return client.post("/api/click", data=beacon_body(token), headers={"User-Agent": BROWSER_UA}).json["click_id"]


def _test(admin_client, campaign_id):
    token = csrf_token(admin_client, "/admin/settings/postback")
    return admin_client.post("/admin/settings/postback/test", data={"campaign_id": str(campaign_id)},
                             headers={"X-CSRFToken": token, **HX}).get_data(as_text=True)


def test_the_test_uses_the_picked_campaigns_click_and_says_so_by_name(app, admin_client, client, db):
    first = add_campaign(db, name="Holiday Sweeps", app=app)
    second = add_campaign(db, name="Beauty Box", app=app)
    _click(app, client, first, "mff")
    picked = _click(app, client, second, "mmm")        # the older click is the picked campaign's
    _click(app, client, first, "mff")
    html = _test(admin_client, second)
    assert ("Campaign “Beauty Box” on ModeMarketMunchies: a test conversion of $1.00 was recorded"
            " and will not count as revenue.") in html
    result = html.split('class="postback-test-result')[1].split("</div>")[0]
    assert "campaign_id" not in result and "property_id" not in result      # no raw dump of ids
    row = db.execute("SELECT campaign_id, click_id, is_test FROM conversions").fetchone()
    assert (row["campaign_id"], row["click_id"], row["is_test"]) == (second, picked, 1)
    assert re.search(rf'<option value="{second}" selected>', html)     # the pick is kept for the next test


def test_a_campaign_without_clicks_is_explained(app, admin_client, db):
    campaign = add_campaign(db, name="New Offer", app=app)
    html = _test(admin_client, campaign)
    assert "campaign “New Offer” has no click yet" in html and "Playground" in html


def test_a_refused_test_says_why():
    result = setup_pages.describe_test_result(403, {"error": "wrong secret"}, {"name": "X"}, {}, has_click=True)
    assert not result["ok"] and "refused the test (403: wrong secret)" in result["sentence"]


def _stray(client, n, status="approved"):
    for i in range(n):
        client.get("/api/postback?" + urlencode({"secret": SECRET, "click_id": f"stray-{status}-{i}",
                                                  "transaction_id": f"tx-{status}-{i:03d}", "payout": "2.00",
                                                  "status": status}))


def test_unattributed_conversions_come_in_pages(admin_client, client):
    _stray(client, 30)
    first = admin_client.get("/admin/settings/postback").get_data(as_text=True)
    assert 'class="unattributed-count">30<' in first
    assert first.count("<td>tx-approved-") == setup_pages.UNATTRIBUTED_PAGE_SIZE
    assert "Page 1 of 2" in first and 'rel="next"' in first
    second = admin_client.get("/admin/settings/postback?page=2").get_data(as_text=True)
    assert second.count("<td>tx-approved-") == 30 - setup_pages.UNATTRIBUTED_PAGE_SIZE
    assert "Page 2 of 2" in second and 'rel="prev"' in second
    shown = set(re.findall(r"<td>(tx-approved-\d+)</td>", first + second))
    assert len(shown) == 30                            # every one once across the pages


def test_unattributed_conversions_filter_by_id_and_status(admin_client, client):
    _stray(client, 3)
    _stray(client, 2, status="rejected")
    by_status = admin_client.get("/admin/settings/postback?status=rejected").get_data(as_text=True)
    assert 'class="unattributed-count">2<' in by_status and "tx-approved-" not in by_status
    by_id = admin_client.get("/admin/settings/postback?q=approved-001").get_data(as_text=True)
    assert re.findall(r"<td>(tx-[a-z]+-\d+)</td>", by_id) == ["tx-approved-001"]
    nothing = admin_client.get("/admin/settings/postback?q=zzz").get_data(as_text=True)
    assert "No unattributed conversion matches this filter." in nothing
    percent = admin_client.get("/admin/settings/postback?q=%25").get_data(as_text=True)
    assert 'class="unattributed-count">0<' in percent    # % is searched for, not a wildcard


def test_the_url_is_shown_whole_with_a_copy_button(admin_client):
    html = admin_client.get("/admin/settings/postback").get_data(as_text=True)
    assert re.search(r'<code id="postback-url">http://popup\.test/api/postback\?[^<]*secret=postback-test-secret</code>', html)
    assert 'data-copy-target="postback-url"' in html and "embed_admin.js" in html


def test_rotate_comes_after_the_test_and_the_list(stored_secret_admin_client):
    html = stored_secret_admin_client.get("/admin/settings/postback").get_data(as_text=True)
    assert html.index("Send test postback") < html.index("Unattributed conversions") < html.index("Rotate secret")
    assert 'hx-confirm="Rotate the secret?' in html
