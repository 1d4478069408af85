"""Deliberate answers to odd input (issue 14): bad /c/ links, beacon content types and unknown
fields, postback payouts and ids, impressions of paused campaigns, conversions on bot clicks."""
import json

import pytest

from popup_mgr import reports, rollups
from tests.helpers import (BOT_UA, BROWSER_UA, add_campaign, all_differences, beacon_body, count, flask_alone,
                           set_campaign_active, stats, token_for)

SECRET = "postback-test-secret"


@pytest.fixture
def campaign(app, db):
    return add_campaign(db, app=app)


@pytest.fixture
def token(app, campaign):
    return token_for(app, campaign)


# --- /c/ links that are no token: the 400 bad-link page, on both fronts ------------------------------

BAD_LINKS = ["/c//evil.com", "/c/%2F%2Fevil.com", "/c/%0D%0ALocation:%20https://evil.com", "/c/", "/c/%0A",
             "/c//", "/c/..%2F..%2Fadmin"]


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "flask alone"])
@pytest.mark.parametrize("link", BAD_LINKS)
def test_links_that_are_no_token_get_the_bad_link_page(app, client, db, link, fast):
    def get():
        return client.get(link, headers={"User-Agent": BROWSER_UA})

    if fast:
        response = get()
    else:
        with flask_alone(app):
            response = get()
    assert response.status_code == 400 and b"not valid" in response.data, (response.status_code, response.data[:200])
    assert response.mimetype == "text/html" and "Location" not in response.headers
    assert count(db, "clicks") == 0


# --- beacons: content types and unknown fields ---------------------------------------------------------

@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                          "text/html", "image/png"])
@pytest.mark.parametrize("path", ["/api/impression", "/api/click"])
def test_beacons_refuse_bodies_that_are_neither_text_nor_json(client, db, token, content_type, path):
    response = client.post(path, data=beacon_body(token),
                           headers={"User-Agent": BROWSER_UA, "Content-Type": content_type})
    assert response.status_code == 415 and response.headers["Access-Control-Allow-Origin"] == "*"
    assert count(db, "impressions") + count(db, "clicks") == 0


@pytest.mark.parametrize("content_type", ["text/plain;charset=UTF-8", "TEXT/PLAIN", "application/json; charset=utf-8"])
def test_beacons_accept_text_and_json_bodies(client, db, token, content_type):
    response = client.post("/api/impression", data=beacon_body(token),
                           headers={"User-Agent": BROWSER_UA, "Content-Type": content_type})
    assert response.status_code == 204 and count(db, "impressions") == 1


def test_unknown_beacon_fields_are_ignored(client, db, token):
    """A newer popup.js may send more keys than this server knows: the event still counts (its
    known keys are checked as strictly as ever) and nothing else is stored."""
    body = json.loads(beacon_body(token)) | {"screen": "1920x1080", "extra": {"nested": [1, 2]}}
    response = client.post("/api/impression", data=json.dumps(body),
                           headers={"User-Agent": BROWSER_UA, "Content-Type": "text/plain"})
    assert response.status_code == 204 and count(db, "impressions") == 1


# --- impressions of campaigns that are no longer active ------------------------------------------------

def test_an_impression_of_a_deactivated_campaign_is_refused(app, client, db, campaign, token):
    set_campaign_active(db, app, campaign, 0)
    response = client.post("/api/impression", data=beacon_body(token),
                           headers={"User-Agent": BROWSER_UA, "Content-Type": "text/plain"})
    assert response.status_code == 400 and response.headers["X-Popup-Reason"] == "campaign not active"
    assert count(db, "impressions") == 0
    # A click on it still reaches the offer and is kept, flagged.
    assert client.get(f"/c/{token}", headers={"User-Agent": BROWSER_UA}).status_code == 302
    assert db.execute("SELECT campaign_paused FROM clicks").fetchone()[0] == 1


def test_an_impression_of_an_ended_campaign_is_refused(app, client, db):
    ended = add_campaign(db, app=app, end_at="2020-01-01T00:00:00Z")
    response = client.post("/api/impression", data=beacon_body(token_for(app, ended)),
                           headers={"User-Agent": BROWSER_UA, "Content-Type": "text/plain"})
    assert response.status_code == 400 and count(db, "impressions") == 0


# --- postback parameters ----------------------------------------------------------------------------

@pytest.mark.parametrize("payout", ["4.50%0D%0A", "4.50%0A", "%204.50", "4.50%20", "4.50%09"])
def test_a_payout_with_spaces_or_line_breaks_is_refused(client, db, payout):
    response = client.get(f"/api/postback?click_id=c1&transaction_id=t1&payout={payout}&secret={SECRET}")
    assert response.status_code == 400 and "payout" in response.json["error"]
    assert count(db, "conversions") == 0


@pytest.mark.parametrize("field", ["click_id", "transaction_id"])
@pytest.mark.parametrize("value", ["%FF", "abc%FFdef", "%C3%A9", "a%00b", "%25FF%0A"])
def test_ids_that_are_not_printable_ascii_are_refused(client, db, field, value):
    params = {"click_id": "c1", "transaction_id": "t1"} | {field: value}
    response = client.get(f"/api/postback?click_id={params['click_id']}&transaction_id={params['transaction_id']}"
                          f"&payout=1.00&secret={SECRET}")
    assert response.status_code == 400 and count(db, "conversions") == 0


def test_a_literal_percent_sequence_is_kept_as_sent(client, db):
    """%25FF is the text "%FF" (printable ASCII): an id the network may really use, kept as is."""
    response = client.get(f"/api/postback?click_id=%25FF&transaction_id=t1&payout=1.00&secret={SECRET}")
    assert response.status_code == 200
    assert db.execute("SELECT click_id FROM conversions").fetchone()[0] == "%FF"


# --- conversions on bot clicks --------------------------------------------------------------------

def test_a_conversion_on_a_bot_click_is_revenue_in_rollups_reports_and_the_ledger_check(app, client, db, token):
    """The network paid for it, and our bot rule is a user-agent heuristic: hiding paid money would
    make the reports disagree with Tune. The click itself stays a bot click (not in CTR)."""
    location = client.get(f"/c/{token}", headers={"User-Agent": BOT_UA}).headers["Location"]
    click_id = location.split("aff_click_id=")[1].split("&")[0]
    response = client.get(f"/api/postback?click_id={click_id}&transaction_id=t-bot&payout=4.50&secret={SECRET}")
    assert response.status_code == 200 and response.json["attributed"] is True
    assert stats(db) | {"bot_impressions": 0} == {"impressions": 0, "clicks": 0, "conversions": 1,
                                                  "revenue_cents": 450, "bot_impressions": 0, "bot_clicks": 1,
                                                  "views": 0}
    assert all_differences(db) == []          # rollups.rebuild's one rule agrees with ingest
    counted = db.execute(f"SELECT count(*) FROM conversions WHERE {rollups.counted_sql()}").fetchone()[0]
    assert counted == 1
