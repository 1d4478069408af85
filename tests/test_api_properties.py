"""The Properties API (DESIGN.md "Properties API"): list, read, partial update; 401 without a
session or token, 422 with nothing changed, every change audited and in /api/offers at once."""
import json

import pytest

from tests.helpers import add_campaign, count, csrf_token

FIELDS = {"code", "name", "domain", "active", "popup_enabled", "popup_placement", "popup_frequency",
          "delay_ms", "theme", "rotation", "max_offers"}


@pytest.fixture
def bearer(api_token):
    return {"Authorization": f"Bearer {api_token}"}


def put(client, headers, body, code="mff"):
    return client.put(f"/api/properties/{code}", data=json.dumps(body), content_type="application/json",
                      headers=headers)


def stored(db, code="mff"):
    return dict(db.execute("SELECT * FROM properties WHERE code = ?", (code,)).fetchone())


def test_list_and_read_have_the_contract_fields(client, bearer):
    listed = client.get("/api/properties", headers=bearer)
    assert listed.status_code == 200
    codes = [prop["code"] for prop in listed.json["properties"]]
    assert codes == ["mff", "mmm", "mcad", "mmd"]
    assert all(set(prop) == FIELDS for prop in listed.json["properties"])
    one = client.get("/api/properties/mff", headers=bearer).json
    assert one == listed.json["properties"][0]
    # A fresh property: the defaults of the schema, the theme as an object of every value.
    assert (one["rotation"], one["max_offers"], one["active"], one["popup_enabled"]) == ("priority", 5, True, True)
    assert one["theme"]["primary"] == "#d6246e" and set(one["theme"]) >= {"accent", "logo_url"}


def test_put_changes_only_the_given_fields_and_is_audited(client, db, bearer):
    before = stored(db)
    response = put(client, bearer, {"rotation": "auto", "max_offers": 3, "theme": {"primary": "#112233"}})
    assert response.status_code == 200
    assert (response.json["rotation"], response.json["max_offers"]) == ("auto", 3)
    after = stored(db)
    assert (after["rotation"], after["max_offers"]) == ("auto", 3)
    assert json.loads(after["theme"]) == {"primary": "#112233"}
    untouched = set(before) - {"rotation", "max_offers", "theme", "updated_at"}
    assert {k: after[k] for k in untouched} == {k: before[k] for k in untouched}
    entry = db.execute("SELECT actor, action, entity, changes FROM audit_log ORDER BY id DESC").fetchone()
    assert (entry["actor"], entry["action"], entry["entity"]) == ("token:tests", "property.update", "property")
    assert set(json.loads(entry["changes"])) == {"rotation", "max_offers", "theme"}


def test_a_partial_theme_keeps_the_other_theme_values(client, db, bearer):
    put(client, bearer, {"theme": {"primary": "#112233", "accent": "#445566"}})
    assert put(client, bearer, {"theme": {"accent": "#778899"}}).status_code == 200
    assert json.loads(stored(db)["theme"]) == {"primary": "#112233", "accent": "#778899"}


def test_what_was_read_can_be_sent_back(client, db, bearer):
    """A client that GETs, edits one field and PUTs the whole object back (code included)."""
    prop = client.get("/api/properties/mmm", headers=bearer).json
    response = put(client, bearer, {**prop, "name": "ModeMobileMoney"}, "mmm")
    assert response.status_code == 200 and response.json == {**prop, "name": "ModeMobileMoney"}


@pytest.mark.parametrize("body, fields", [
    ({"rotation": "best"}, {"rotation"}),
    ({"max_offers": 0}, {"max_offers"}),
    ({"max_offers": 21}, {"max_offers"}),
    ({"max_offers": "5"}, {"max_offers"}),
    ({"max_offers": True}, {"max_offers"}),
    ({"code": "other"}, {"code"}),
    ({"color": "red"}, {"color"}),
    ({"active": "yes"}, {"active"}),
    ({"delay_ms": -1}, {"delay_ms"}),
    ({"popup_placement": "sidebar"}, {"popup_placement"}),
    ({"theme": {"primary": "pink"}}, {"theme_primary"}),
    ({"theme": {"font": "Comic Sans"}}, {"theme"}),
    ({"theme": "dark"}, {"theme"}),
    # All errors in one answer, and the valid field beside them is not applied either.
    ({"rotation": "even", "name": "", "max_offers": 99}, {"name", "max_offers"}),
])
def test_invalid_put_is_422_and_changes_nothing(client, db, bearer, body, fields):
    before, audits = stored(db), count(db, "audit_log")
    response = put(client, bearer, body)
    assert response.status_code == 422
    assert response.json["error"] and set(response.json["errors"]) == fields
    assert stored(db) == before and count(db, "audit_log") == audits


@pytest.mark.parametrize("body", [[1, 2], "auto", 5])
def test_a_body_that_is_not_an_object_is_422(client, db, bearer, body):
    before = stored(db)
    response = put(client, bearer, body)
    assert response.status_code == 422 and set(response.json["errors"]) == {"_body"}
    assert stored(db) == before


def test_non_json_put_is_400(client, db, bearer):
    before = stored(db)
    response = client.put("/api/properties/mff", data="rotation=auto", headers=bearer,
                          content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and stored(db) == before


@pytest.mark.parametrize("method", ["get", "put"])
def test_unknown_property_is_404(client, bearer, method):
    response = client.open("/api/properties/nope", method=method.upper(), json={"name": "x"}, headers=bearer)
    assert response.status_code == 404 and response.json["error"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer pm_wrong"}, {"Authorization": "Basic bWlrZTp4"}])
def test_every_call_needs_a_session_or_token(client, db, headers):
    before = stored(db)
    assert client.get("/api/properties", headers=headers).status_code == 401
    assert client.get("/api/properties/mff", headers=headers).status_code == 401
    # 401, not a CSRF 400: without a session there is nothing for CSRF to protect.
    response = put(client, headers, {"rotation": "even"})
    assert response.status_code == 401 and response.json["error"]
    assert stored(db) == before


def test_the_admin_session_writes_with_the_csrf_header(admin_client, db):
    assert put(admin_client, {}, {"rotation": "even"}).status_code == 400       # no CSRF token
    assert stored(db)["rotation"] == "priority"
    token = csrf_token(admin_client, "/admin/properties")
    response = put(admin_client, {"X-CSRFToken": token}, {"rotation": "even"})
    assert response.status_code == 200 and stored(db)["rotation"] == "even"
    assert db.execute("SELECT actor FROM audit_log ORDER BY id DESC").fetchone()[0] == "mike"


def test_a_change_shows_in_the_offers_on_the_next_request(app, client, db, bearer):
    for number in range(8):
        add_campaign(db, tune_id=900 + number)
    assert len(client.get("/api/offers/mff").json["offers"]) == 5          # the default maximum
    put(client, bearer, {"max_offers": 2, "delay_ms": 2500, "theme": {"primary": "#010203"}})
    body = client.get("/api/offers/mff").json
    assert (len(body["offers"]), body["delay_ms"], body["theme"]["primary"]) == (2, 2500, "#010203")
    put(client, bearer, {"popup_enabled": False})
    assert client.get("/api/offers/mff").json["offers"] == []
