"""The network's postback: secret, strict payouts, one conversion per transaction, attribution,
status changes reflected in daily_stats, and the admin setup page."""
import threading
from urllib.parse import urlencode

import pytest

from popup_mgr import create_app
from popup_mgr.ingest import conversions
from tests.helpers import (BROWSER_UA, add_campaign, all_differences, beacon_body, count, csrf_token, stats,
                              token_for)

SECRET = "postback-test-secret"


@pytest.fixture
def click_id(app, client, db):
    token = token_for(app, add_campaign(db, app=app), "mmm", "thankyou", "B")
    response = client.post("/api/click", data=beacon_body(token), headers={"User-Agent": BROWSER_UA})
    return response.json["click_id"]


def postback(client, method="GET", **params):
    params = {"secret": SECRET, "transaction_id": "tx-1", "payout": "4.50"} | params
    params = {k: v for k, v in params.items() if v is not None}
    if method == "GET":
        return client.get("/api/postback?" + urlencode(params, doseq=True))
    return client.post("/api/postback", data=params)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_postback_attributes_the_conversion_through_the_click(client, db, click_id, method):
    response = postback(client, method, click_id=click_id)
    assert response.status_code == 200, response.data
    assert response.json["outcome"] == "recorded" and response.json["attributed"] is True
    row = db.execute("SELECT c.*, p.code FROM conversions c JOIN properties p ON p.id = c.property_id").fetchone()
    click = db.execute("SELECT * FROM clicks").fetchone()
    assert (row["code"], row["variant"], row["day"], row["campaign_id"], row["payout_cents"]) == \
        ("mmm", "B", click["day"], click["campaign_id"], 450)
    assert stats(db)["conversions"] == 1 and stats(db)["revenue_cents"] == 450
    assert all_differences(db) == []


def test_duplicates_count_once_and_status_changes_adjust_revenue(client, db, click_id):
    steps = [("approved", "4.50", "recorded", 1, 450), ("approved", "4.5000", "duplicate", 1, 450),
             ("approved", "6.00", "updated", 1, 600), ("rejected", "6.00", "updated", 0, 0),
             ("pending", "6.00", "updated", 0, 0), ("approved", "6.0", "updated", 1, 600)]
    for status, payout, outcome, conversions, revenue in steps:
        response = postback(client, click_id=click_id, status=status, payout=payout)
        assert response.status_code == 200 and response.json["outcome"] == outcome, (status, payout)
        assert (stats(db)["conversions"], stats(db)["revenue_cents"]) == (conversions, revenue)
        assert all_differences(db) == []
    assert count(db, "conversions") == 1


def test_unknown_click_is_kept_unattributed(client, db):
    response = postback(client, click_id="not-one-of-ours")
    assert response.status_code == 200 and response.json["attributed"] is False
    assert count(db, "conversions", "campaign_id IS NULL") == 1
    assert stats(db)["revenue_cents"] == 0 and all_differences(db) == []
    assert conversions.unattributed_conversions(db)[0] == 1


def test_test_postbacks_are_stored_but_never_revenue(client, db, click_id):
    assert postback(client, click_id=click_id, test="1").json["test"] is True
    assert count(db, "conversions", "is_test = 1") == 1 and stats(db)["revenue_cents"] == 0
    assert all_differences(db) == []


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x", SECRET[:-1], SECRET.upper(), ["a", SECRET]])
def test_missing_or_wrong_secret_is_403_and_writes_nothing(client, db, click_id, secret):
    response = postback(client, click_id=click_id, secret=secret)
    assert response.status_code == 403 and response.headers["X-Popup-Reason"]
    assert count(db, "conversions") == 0


@pytest.mark.parametrize("payout", ["-1.00", "NaN", "nan", "inf", "Infinity", "1e3", "4,50", "1,000.00",
                                    "4.505", "9999999999", "100000.01", "", " ", "0x10", "$4.50", "4.5.0", "٣"])
def test_bad_payouts_are_400_and_write_nothing(client, db, click_id, payout):
    response = postback(client, click_id=click_id, payout=payout)
    assert response.status_code == 400, payout
    assert "payout" in response.json["error"] and count(db, "conversions") == 0


@pytest.mark.parametrize("params", [
    {"click_id": None}, {"transaction_id": None}, {"transaction_id": "has space"},
    {"transaction_id": "x" * 129}, {"status": "paid"}, {"test": "yes"}, {"payout": ["1.00", "2.00"]},
    {"click_id": "bad\nline"},
])
def test_bad_postback_fields_are_400(client, db, params):
    response = postback(client, **({"click_id": "c-1"} | params))
    assert response.status_code == 400 and count(db, "conversions") == 0


@pytest.mark.parametrize("payout, cents", [("4.5", 450), ("4.50", 450), ("4.5000", 450), ("0", 0), ("100000", 10_000_000)])
def test_payouts_are_stored_exactly_in_cents(client, db, payout, cents):
    assert postback(client, click_id="c-1", transaction_id=f"tx-{payout}", payout=payout).status_code == 200
    assert db.execute("SELECT payout_cents FROM conversions").fetchone()[0] == cents


def test_concurrent_duplicate_postbacks_count_once(app, db, click_id):
    """Many threads send the same transaction at once (the network retries eagerly)."""
    barrier, statuses = threading.Barrier(8), []

    def send():
        client = app.test_client()
        barrier.wait()
        statuses.append(postback(client, click_id=click_id, transaction_id="tx-race").status_code)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 8
    assert count(db, "conversions") == 1 and stats(db)["conversions"] == 1 and all_differences(db) == []


def test_ip_allow_list(tmp_path):
    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "p.db"), "SECRET_KEY": "k" * 40,
                      "POSTBACK_SECRET": SECRET, "POSTBACK_ALLOWED_IPS": "10.1.0.0/16, 192.0.2.7"})
    client = app.test_client()
    query = urlencode({"secret": SECRET, "click_id": "c-1", "transaction_id": "tx-ip", "payout": "1.00"})
    outside = client.get(f"/api/postback?{query}", environ_base={"REMOTE_ADDR": "198.51.100.1"})
    assert outside.status_code == 403 and outside.headers["X-Popup-Reason"] == "caller IP not allowed"
    for ip in ("10.1.2.3", "192.0.2.7"):
        assert client.get(f"/api/postback?{query}", environ_base={"REMOTE_ADDR": ip}).status_code == 200


def test_stored_secret_is_made_on_first_use_and_rotates(stored_secret_app):
    app = stored_secret_app
    client = app.test_client()
    first = conversions.postback_secret(app)
    assert len(first) >= 32 and conversions.postback_secret(app) == first
    query = {"click_id": "c-1", "transaction_id": "tx-r", "payout": "1.00"}
    assert client.get("/api/postback?" + urlencode(query | {"secret": first})).status_code == 200
    second = conversions.rotate_postback_secret(app)
    assert second != first
    assert client.get("/api/postback?" + urlencode(query | {"secret": first})).status_code == 403
    assert client.get("/api/postback?" + urlencode(query | {"secret": second})).status_code == 200


# --- admin page -------------------------------------------------------------------------------------

def test_settings_page_shows_the_url_to_paste_into_tune(admin_client, client):
    postback(client, click_id="stray-click", transaction_id="tx-stray")
    html = admin_client.get("/admin/settings/postback").get_data(as_text=True)
    assert ("http://popup.test/api/postback?click_id={aff_click_id}&amp;transaction_id={transaction_id}"
            f"&amp;payout={{payout}}&amp;secret={SECRET}") in html
    assert "POPUP_POSTBACK_SECRET" in html and "Rotate secret" not in html    # set by the environment
    assert 'class="unattributed-count">1<' in html and "tx-stray" in html


def test_settings_page_needs_a_login(client):
    response = client.get("/admin/settings/postback")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_send_test_postback_goes_through_the_real_endpoint(admin_client, db, click_id):
    token = csrf_token(admin_client, "/admin/settings/postback")
    response = admin_client.post("/admin/settings/postback/test", headers={"X-CSRFToken": token, "HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.startswith('<section id="postback-panel"')
    assert "a test conversion of $1.00 was recorded and will not count as revenue." in html and click_id in html
    row = db.execute("SELECT * FROM conversions").fetchone()
    assert row["is_test"] == 1 and row["click_id"] == click_id and row["campaign_id"] is not None
    assert stats(db)["revenue_cents"] == 0 and conversions.unattributed_conversions(db)[0] == 0


def test_admin_forms_need_the_csrf_token(admin_client, db):
    assert admin_client.post("/admin/settings/postback/test").status_code == 400
    assert count(db, "conversions") == 0


def test_rotate_from_the_admin_page(stored_secret_app, stored_secret_admin_client):
    app, client = stored_secret_app, stored_secret_admin_client
    old = conversions.postback_secret(app)
    response = client.post("/admin/settings/postback/rotate",
                           headers={"X-CSRFToken": csrf_token(client, "/admin/settings/postback")})
    new = conversions.postback_secret(app)
    html = response.get_data(as_text=True)
    assert new != old and f"secret={new}" in html and old not in html and "Rotate secret" in html


def test_head_never_records_a_conversion(client, db):
    query = urlencode({"secret": SECRET, "click_id": "c-1", "transaction_id": "tx-head", "payout": "1.00"})
    assert client.head(f"/api/postback?{query}").status_code == 405
    assert count(db, "conversions") == 0
