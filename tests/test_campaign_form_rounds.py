"""The campaign form tells Mike everything in one round, in the label's words, and takes a payout
as people paste it."""
import html

import pytest

from popup_mgr import campaigns
from tests.helpers import csrf_token

FORM = {
    "tune_campaign_id": "777", "aff_id": "12", "name": "Holiday", "display_title": "Win a holiday",
    "click_url": "https://advertiser.example/landing", "payout": "4.50", "subid_param": "aff_click_id",
    "cta_text": "Enter now", "properties_present": "1", "active_present": "1", "active": "1",
}


@pytest.fixture
def token(admin_client):
    return csrf_token(admin_client, "/admin/campaigns")


def post(client, token, data, path="/admin/campaigns/new"):
    return client.post(path, data=data, headers={"X-CSRFToken": token})


def existing(app, db, tune_id=777, name="Sweeps"):
    with app.app_context():
        return campaigns.create(db, {"tune_campaign_id": tune_id, "name": name, "display_title": "Win",
                                     "click_url": "https://advertiser.example/a", "payout": "2.00"}, "seed")


def test_a_taken_tune_offer_id_is_reported_with_the_other_errors(app, admin_client, db, token):
    taken = existing(app, db)
    response = post(admin_client, token, {**FORM, "display_title": "", "priority": "0"})
    body = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 422
    # All three problems in the same answer: before, the taken id showed only once the others were fixed.
    for field in ("display_title", "priority", "tune_campaign_id"):
        assert f'id="{field}-error"' in body, field
    assert "Fix the 3 fields marked below" in body
    assert f"Tune offer id 777 is already used by campaign #{taken['id']} “Sweeps”." in body


def test_the_api_reports_every_error_at_once_too(app, db):
    existing(app, db)
    with app.app_context(), pytest.raises(campaigns.CampaignInvalid) as caught:
        campaigns.create(db, {"tune_campaign_id": 777, "name": "", "display_title": "T",
                              "click_url": "https://advertiser.example/a", "properties": ["zzz"]}, "api")
    assert set(caught.value.errors) == {"tune_campaign_id", "name", "properties"}


def test_an_update_reports_a_taken_id_with_the_other_errors(app, db):
    existing(app, db, tune_id=1, name="One")
    second = existing(app, db, tune_id=2, name="Two")
    with app.app_context(), pytest.raises(campaigns.CampaignInvalid) as caught:
        campaigns.update(db, second["id"], {"tune_campaign_id": 1, "priority": 99}, "api")
    assert set(caught.value.errors) == {"tune_campaign_id", "priority"}
    assert caught.value.errors["tune_campaign_id"].startswith("Tune offer id 1 ")


def test_label_and_error_use_the_same_words(app, admin_client, db, token):
    existing(app, db)
    body = html.unescape(post(admin_client, token, FORM).get_data(as_text=True))
    assert "Tune offer id" in body.split('id="tune_campaign_id-error"')[0]      # the label
    assert "Tune campaign" not in body


@pytest.mark.parametrize("pasted, stored", [
    ("$4.50", "4.50"), (" $4.50 ", "4.50"), ("4.50 USD", "4.50"), ("$1,250.00", "1250.00"),
    ("4,50", "4.50"), ("4,5", "4.50"), ("12", "12.00"),
])
def test_payout_is_accepted_as_pasted(admin_client, db, token, pasted, stored):
    response = post(admin_client, token, {**FORM, "payout": pasted})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    [campaign] = campaigns.list_campaigns(db)
    assert campaign["payout"] == stored


@pytest.mark.parametrize("pasted", ["1,250", "-4.50", "4.505", "four"])
def test_ambiguous_or_wrong_payouts_are_still_refused(admin_client, db, token, pasted):
    response = post(admin_client, token, {**FORM, "payout": pasted})
    assert response.status_code == 422
    assert 'id="payout-error"' in response.get_data(as_text=True)


def test_the_api_keeps_taking_plain_decimals_only(app, db):
    with app.app_context(), pytest.raises(campaigns.CampaignInvalid) as caught:
        campaigns.create(db, {"tune_campaign_id": 5, "name": "N", "display_title": "T",
                              "click_url": "https://advertiser.example/a", "payout": "$4.50"}, "api")
    assert "payout" in caught.value.errors


def test_a_payout_of_zero_saves_with_a_warning(admin_client, db, token):
    response = post(admin_client, token, {**FORM, "payout": "0"})
    assert response.status_code == 302
    listing = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'class="flash flash-warning"' in listing and "Payout is $0.00" in listing
    [campaign] = campaigns.list_campaigns(db)
    edit = admin_client.get(f"/admin/campaigns/{campaign['id']}/edit").get_data(as_text=True)
    assert 'id="payout-warning"' in edit


def test_a_real_payout_saves_without_a_warning(admin_client, db, token):
    response = post(admin_client, token, FORM)
    listing = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "flash-warning" not in listing
    [campaign] = campaigns.list_campaigns(db)
    assert 'id="payout-warning"' not in admin_client.get(f"/admin/campaigns/{campaign['id']}/edit").get_data(as_text=True)


def test_the_form_says_revenue_comes_from_the_postback_payout(admin_client):
    page = admin_client.get("/admin/campaigns/new").get_data(as_text=True)
    assert "Revenue in the reports is the payout each postback reports" in page
    assert 'id="payout-warning"' not in page        # a new form is not scolded before anything is typed
