"""The offers snapshot: what is servable, its shape, ordering, and when it is rebuilt."""
import random
import time
from collections import Counter

import pytest

from popup_mgr import catalog, offers, rotation, timeutil
from popup_mgr.ingest import tokens
from popup_mgr.signals import notify_catalog_changed
from tests.helpers import add_campaign, set_property

OFFER_KEYS = {"id", "title", "tagline", "description", "cta_text", "image_url",
              "impression_pixel_url", "click_url", "token"}


def fetch(client, code="mff", **params):
    return client.get(f"/api/offers/{code}", query_string=params)


def test_offers_shape_token_and_click_url(app, client, db):
    cid = add_campaign(db, tune_id=101, title="Free sample box")
    response = fetch(client)
    assert response.status_code == 200
    body = response.json
    assert set(body) == {"property", "placement", "frequency", "delay_ms", "theme", "offers"}
    assert (body["property"], body["placement"], body["frequency"], body["delay_ms"]) == \
        ("mff", "thankyou", "session", 1000)
    assert body["theme"]["primary"] == "#d6246e"
    [offer] = body["offers"]
    assert set(offer) == OFFER_KEYS
    assert offer["id"] == cid and offer["title"] == "Free sample box"
    assert offer["click_url"] == f"http://popup.test/c/{offer['token']}"
    parsed = tokens.verify(app.config["SECRET_KEY"], offer["token"], now_s=int(time.time()))
    assert (parsed.campaign_id, parsed.property_code, parsed.placement) == (cid, "mff", "thankyou")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Cache-Control"] == "no-store"


def test_requested_placement_is_signed_into_the_token(app, client, db):
    add_campaign(db, tune_id=101)
    body = fetch(client, placement="exit-intent").json
    assert body["placement"] == "exit-intent"
    assert tokens.verify(app.config["SECRET_KEY"], body["offers"][0]["token"], now_s=int(time.time())).placement == "exit-intent"
    assert fetch(client, placement="bogus").json["placement"] == "thankyou"


def test_unknown_property_is_404_json_with_cors(client):
    response = fetch(client, "nope")
    assert response.status_code == 404
    assert "error" in response.json
    assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("fields", [{"popup_enabled": 0}, {"active": 0}])
def test_disabled_or_inactive_property_answers_empty_offers(client, db, fields):
    add_campaign(db, tune_id=101)
    set_property(db, "mff", **fields)
    response = fetch(client)
    assert response.status_code == 200 and response.json["offers"] == []
    assert fetch(client, "mmm").json["offers"] != []     # other properties unaffected


@pytest.mark.parametrize("campaign, served", [
    ({}, True),
    ({"active": 0}, False),
    ({"start_at": "2000-01-01T00:00:00Z"}, True),
    ({"start_at": "2999-01-01T00:00:00Z"}, False),
    ({"end_at": "2999-01-01T00:00:00Z"}, True),
    ({"end_at": "2000-01-01T00:00:00Z"}, False),
    ({"properties": ("mff",)}, True),
    ({"properties": ("mmm", "mcad")}, False),
    ({"properties": ("mmm", "mff")}, True),
    ({"click_url": "javascript:alert(1)"}, False),
])
def test_schedule_targeting_and_validity(client, db, campaign, served):
    add_campaign(db, tune_id=101, **campaign)
    assert bool(fetch(client).json["offers"]) is served


def test_unsafe_image_and_pixel_urls_are_blanked(client, db):
    add_campaign(db, tune_id=101, image_url="javascript:alert(1)", impression_pixel_url="data:text/html,x")
    [offer] = fetch(client).json["offers"]
    assert offer["image_url"] == "" and offer["impression_pixel_url"] == ""


def test_theme_overrides_and_property_settings(client, db):
    set_property(db, "mmm", theme={"primary": "#112233", "logo_url": "https://mode.example/l.png"},
                 popup_placement="timed", popup_frequency="daily", delay_ms=0)
    body = fetch(client, "mmm").json
    assert body["theme"]["primary"] == "#112233" and body["theme"]["accent"] == "#1f5fbf"
    assert body["theme"]["logo_url"] == "https://mode.example/l.png"
    assert (body["placement"], body["frequency"], body["delay_ms"]) == ("timed", "daily", 0)


def test_admin_change_shows_on_next_request_after_signal(app, client, db):
    assert fetch(client).json["offers"] == []
    add_campaign(db, tune_id=101)
    # Without the signal the catalog still answers from memory (until its TTL), not per request.
    assert fetch(client).json["offers"] == []
    notify_catalog_changed(app)
    assert len(fetch(client).json["offers"]) == 1
    db.execute("UPDATE campaigns SET display_title = 'Renamed'")
    notify_catalog_changed(app)
    assert fetch(client).json["offers"][0]["title"] == "Renamed"


def test_snapshot_expires_after_ttl(app, db):
    clock = [1000.0]
    snapshot = catalog.Catalog(app, ttl_s=30, clock=lambda: clock[0])
    assert snapshot.current().properties["mff"].offers_by_placement["thankyou"] == []
    add_campaign(db, tune_id=101)
    clock[0] += 29
    assert snapshot.current().properties["mff"].offers_by_placement["thankyou"] == []
    clock[0] += 1
    assert len(snapshot.current().properties["mff"].offers_by_placement["thankyou"]) == 1


def test_an_old_snapshot_is_served_while_another_request_rebuilds_it(app, db):
    """Only a change signal makes every request wait for the rebuild; age alone does not."""
    clock = [1000.0]
    snapshot = catalog.Catalog(app, ttl_s=30, clock=lambda: clock[0])
    old = snapshot.current()
    add_campaign(db, tune_id=101)
    clock[0] += 31
    with snapshot._lock:                      # another request is rebuilding
        assert snapshot.current() is old
    assert len(snapshot.current().properties["mff"].offers_by_placement["thankyou"]) == 1


def test_signal_for_another_app_does_not_invalidate(app, db, tmp_path):
    from popup_mgr import create_app
    other = create_app({"TESTING": True, "DATABASE": str(tmp_path / "other.db"), "SECRET_KEY": "x" * 40})
    snapshot = catalog.of(app)
    snapshot.current()
    notify_catalog_changed(other)
    assert snapshot._stale is False
    notify_catalog_changed(app)
    assert snapshot._stale is True


def test_order_offers_is_priority_weighted():
    rng = random.Random(1234)
    pool = [{"id": 1, "priority": 1}, {"id": 2, "priority": 3}, {"id": 3, "priority": 6}]
    runs = 20000
    firsts = Counter(rotation.priority_order(pool, rng)[0]["id"] for _ in range(runs))
    # P(first) = priority / 10; with 20k draws the standard error is <= 0.0035, so ±0.02 is > 5 sigma.
    for offer in pool:
        assert abs(firsts[offer["id"]] / runs - offer["priority"] / 10) < 0.02
    # Every ordering is a permutation of the input: nothing dropped or duplicated.
    assert sorted(o["id"] for o in rotation.priority_order(pool, rng)) == [1, 2, 3]


def test_order_offers_equal_priority_is_uniform():
    rng = random.Random(7)
    pool = [{"id": i, "priority": 5} for i in range(4)]
    firsts = Counter(rotation.priority_order(pool, rng)[0]["id"] for _ in range(20000))
    assert all(abs(count / 20000 - 0.25) < 0.02 for count in firsts.values())


def test_order_across_requests_varies(client, db):
    for tune_id in range(101, 104):
        add_campaign(db, tune_id=tune_id, priority=5)
    firsts = {fetch(client).json["offers"][0]["id"] for _ in range(60)}
    assert len(firsts) == 3


def test_a_property_code_unfit_for_tokens_does_not_break_the_others(client, db):
    add_campaign(db, tune_id=101)
    db.execute("INSERT INTO properties (code, name, created_at, updated_at) VALUES ('bad.code', 'x', '', '')")
    assert fetch(client, "bad.code").json["offers"] == []
    assert len(fetch(client, "mff").json["offers"]) == 1


def test_failed_build_is_retried_on_the_next_request(app, db, monkeypatch):
    snapshot = catalog.Catalog(app)
    calls = []

    def failing_build(*args):
        calls.append(1)
        raise RuntimeError("database gone")
    monkeypatch.setattr(catalog, "build", failing_build)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            snapshot.current()
    assert len(calls) == 2


def test_a_fresh_snapshot_answers_without_the_database(app, client, db, monkeypatch):
    add_campaign(db, tune_id=101)
    assert len(fetch(client).json["offers"]) == 1          # builds the snapshot

    def no_database():
        raise AssertionError("the database was opened for a request the snapshot can answer")
    monkeypatch.setattr("popup_mgr.db.connect", no_database)
    for _ in range(3):
        assert len(fetch(client).json["offers"]) == 1


def test_campaign_api_changes_show_on_the_next_offers_request(client, api_token):
    """End to end with the admin's campaign API: create, edit, deactivate, each seen at once."""
    auth = {"Authorization": f"Bearer {api_token}"}
    created = client.post("/api/campaigns", headers=auth, json={
        "tune_campaign_id": 555, "name": "API made", "display_title": "Made by the API",
        "click_url": "https://tune.example/aff_c?offer_id=555", "priority": 5, "payout": "2.50",
        "properties": ["mff"]})
    assert created.status_code in (200, 201), created.get_data(as_text=True)
    campaign_id = created.json["id"]
    assert [o["id"] for o in fetch(client).json["offers"]] == [campaign_id]
    assert fetch(client, "mmm").json["offers"] == []
    assert client.put(f"/api/campaigns/{campaign_id}", headers=auth,
                      json={"display_title": "Edited"}).status_code == 200
    assert fetch(client).json["offers"][0]["title"] == "Edited"
    assert client.delete(f"/api/campaigns/{campaign_id}", headers=auth).status_code == 200
    assert fetch(client).json["offers"] == []


def test_a_campaign_the_network_holds_is_not_served_and_its_clicks_are_flagged(app, client, db):
    served = add_campaign(db, tune_id=101, app=app)
    held = add_campaign(db, tune_id=102, network_hold="the network paused the offer", app=app)
    assert [offer["id"] for offer in fetch(client).json["offers"]] == [served]
    token = tokens.sign(app.config["SECRET_KEY"], held, "mff", "thankyou", "", timeutil.now_ms() // 1000)
    assert client.get(f"/c/{token}?e=held-click-1").status_code == 302
    assert db.execute("SELECT campaign_paused FROM clicks").fetchone()[0] == 1
