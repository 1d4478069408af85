"""Beacons and the click redirect through the Flask app on a real SQLite file."""
import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from popup_mgr.ingest import tokens
from tests.helpers import (BOT_UA, BROWSER_UA, add_campaign, all_differences, beacon_body, count, flask_alone,
                              new_event_id, set_campaign_active, stats, token_for)

HEADERS = {"User-Agent": BROWSER_UA, "Content-Type": "text/plain;charset=UTF-8"}


@pytest.fixture
def campaign(app, db):
    return add_campaign(db, click_url="https://track.example.com/aff_c?offer_id=12&aff_id=3", app=app)


@pytest.fixture
def token(app, campaign):
    return token_for(app, campaign)


def post(client, path, body, headers=HEADERS):
    return client.post(path, data=body, headers=headers)


@pytest.mark.parametrize("content_type", ["text/plain;charset=UTF-8", "application/json", None])
def test_impression_is_counted_once_per_event_id(client, db, token, content_type):
    headers = {"User-Agent": BROWSER_UA} | ({"Content-Type": content_type} if content_type else {})
    body = beacon_body(token, "evt-0000001", session_id="sess_1")
    for _ in range(3):       # replays answer 204 and count once
        response = post(client, "/api/impression", body, headers)
        assert response.status_code == 204, response.data
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    row = db.execute("SELECT * FROM impressions").fetchone()
    assert count(db, "impressions") == 1
    assert (row["event_id"], row["session_id"], row["placement"], row["is_bot"]) == \
        ("evt-0000001", "sess_1", "thankyou", 0)
    assert len(row["visitor_hash"]) == 32
    assert stats(db)["impressions"] == 1 and all_differences(db) == []


def test_bots_are_stored_flagged_and_kept_out_of_human_counts(client, db, token):
    for ua in (BOT_UA, ""):
        assert post(client, "/api/impression", beacon_body(token), {"User-Agent": ua}).status_code == 204
    assert post(client, "/api/impression", beacon_body(token), HEADERS).status_code == 204
    assert count(db, "impressions", "is_bot = 1") == 2
    assert stats(db)["impressions"] == 1 and stats(db)["bot_impressions"] == 2
    assert all_differences(db) == []


def test_event_day_and_variant_come_from_the_token(app, client, db, campaign):
    token = token_for(app, campaign, "mmm", "exit-intent", "B")
    assert post(client, "/api/impression", beacon_body(token)).status_code == 204
    row = db.execute("SELECT i.*, p.code FROM impressions i JOIN properties p ON p.id = i.property_id").fetchone()
    assert (row["code"], row["placement"], row["variant"]) == ("mmm", "exit-intent", "B")
    from popup_mgr import timeutil
    assert row["day"] == timeutil.business_day(row["ts"], "America/New_York")


def _forged_tokens(app, campaign):
    secret = app.config["SECRET_KEY"]
    good = token_for(app, campaign)
    return {
        "missing token": json.dumps({"event_id": new_event_id()}),
        "malformed token": beacon_body("not-a-token"),
        "bad token signature": beacon_body(good[:-2] + ("AA" if not good.endswith("AA") else "BB")),
        "altered campaign": beacon_body(good.replace(f"v1.{campaign}.", f"v1.{campaign + 1}.", 1)),
        "foreign secret": beacon_body(tokens.sign("another-apps-secret-0123456789abcdef", campaign, "mff",
                                                  "thankyou", "", 1_900_000_000)),
        "token expired": beacon_body(token_for(app, campaign, issued_s=1_000_000_000)),
        "unknown campaign": beacon_body(tokens.sign(secret, 999_999, "mff", "thankyou", "", _now_s())),
        "unknown property": beacon_body(tokens.sign(secret, campaign, "zzz", "thankyou", "", _now_s())),
    }


def _now_s():
    from popup_mgr import timeutil
    return timeutil.now_ms() // 1000


BAD_BODIES = {
    "empty": b"",
    "not json": b"token=abc&event_id=12345678",
    "json array": b"[1, 2]",
    "json string": b'"x"',
    "invalid utf-8": b'{"token": "\xff\xfe", "event_id": "12345678"}',
    "deep nesting": b"[" * 2000 + b"]" * 2000,
    "event_id short": None, "event_id long": None, "event_id bad chars": None,
    "event_id number": None, "session_id bad": None, "token number": None,
}


def _bad_body(name, token):
    custom = {
        "event_id short": {"token": token, "event_id": "1234567"},
        "event_id long": {"token": token, "event_id": "a" * 65},
        "event_id bad chars": {"token": token, "event_id": "abc def/123"},
        "event_id number": {"token": token, "event_id": 12345678},
        "session_id bad": {"token": token, "event_id": new_event_id(), "session_id": "x" * 65},
        "token number": {"token": 5, "event_id": new_event_id()},
    }
    return json.dumps(custom[name]).encode() if name in custom else BAD_BODIES[name]


@pytest.mark.parametrize("path", ["/api/impression", "/api/click"])
@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_bad_bodies_are_rejected_and_count_nothing(client, db, token, path, name):
    response = post(client, path, _bad_body(name, token))
    assert response.status_code == 400, (name, response.data)
    assert response.json["error"] and response.headers["X-Popup-Reason"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert count(db, "impressions") + count(db, "clicks") == 0 and stats(db)["impressions"] == 0


@pytest.mark.parametrize("path", ["/api/impression", "/api/click"])
def test_bad_tokens_are_rejected_with_the_reason(app, client, db, campaign, path):
    for reason, body in _forged_tokens(app, campaign).items():
        response = post(client, path, body)
        assert response.status_code == 400, reason
        expected = {"altered campaign": "bad token signature", "foreign secret": "bad token signature"}.get(reason, reason)
        assert response.headers["X-Popup-Reason"] == expected
    assert count(db, "impressions") + count(db, "clicks") == 0


@pytest.mark.parametrize("path", ["/api/impression", "/api/click"])
def test_oversized_bodies_get_413(client, db, token, path):
    body = json.dumps({"token": token, "event_id": new_event_id(), "pad": "x" * 5000})
    response = post(client, path, body)
    assert response.status_code == 413 and response.headers["X-Popup-Reason"] == "body too large"
    assert count(db, "impressions") + count(db, "clicks") == 0


def test_preflight_is_answered_with_cors(client):
    response = client.options("/api/impression", headers={"Origin": "https://modefreefinds.com",
                                                          "Access-Control-Request-Method": "POST"})
    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    # sendBeacon's text/plain needs no preflight; fetch() with JSON does, and must be allowed.
    assert {"POST", "OPTIONS"} <= {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    assert "content-type" in response.headers["Access-Control-Allow-Headers"].lower()


def test_click_beacon_returns_the_same_click_id_on_replay(client, db, token):
    body = beacon_body(token, "click-event-1")
    first = post(client, "/api/click", body)
    second = post(client, "/api/click", body)
    assert first.status_code == second.status_code == 200
    assert first.json == second.json
    click_id = first.json["click_id"]
    assert len(click_id) == 20
    query = dict(parse_qsl(urlsplit(first.json["redirect_url"]).query))
    assert query == {"offer_id": "12", "aff_id": "3", "aff_click_id": click_id, "source": "mff"}
    assert count(db, "clicks") == 1 and stats(db)["clicks"] == 1 and all_differences(db) == []


# --- /c/<token> -----------------------------------------------------------------------------------

@pytest.mark.parametrize("stored_url, expected", [
    ("https://t.example/aff_c?offer_id=1&aff_id=2", "https://t.example/aff_c?offer_id=1&aff_id=2&aff_click_id={id}&source=mff"),
    ("https://t.example/aff_c", "https://t.example/aff_c?aff_click_id={id}&source=mff"),
    ("https://t.example/aff_c?", "https://t.example/aff_c?aff_click_id={id}&source=mff"),
    ("https://t.example/x?source=news&b=%20x#frag", "https://t.example/x?source=news&b=%20x&aff_click_id={id}#frag"),
    ("https://t.example/x?aff_click_id=OLD&z=1", "https://t.example/x?aff_click_id={id}&z=1&source=mff"),
    ("http://localhost:8080/tune?a=1&a=2#x?y", "http://localhost:8080/tune?a=1&a=2&aff_click_id={id}&source=mff#x?y"),
])
def test_click_redirect_keeps_the_stored_url_and_adds_our_ids(app, client, db, stored_url, expected):
    token = token_for(app, add_campaign(db, click_url=stored_url, app=app))
    response = client.get(f"/c/{token}?e=redirect-event-1", headers={"User-Agent": BROWSER_UA})
    assert response.status_code == 302
    click_id = db.execute("SELECT click_id FROM clicks").fetchone()["click_id"]
    assert response.headers["Location"] == expected.format(id=click_id)


def test_click_redirect_uses_the_campaigns_subid_param(app, client, db):
    token = token_for(app, add_campaign(db, click_url="https://t.example/c?aff_sub=1", subid_param="aff_sub", app=app))
    location = client.get(f"/c/{token}", headers={"User-Agent": BROWSER_UA}).headers["Location"]
    click_id = db.execute("SELECT click_id FROM clicks").fetchone()["click_id"]
    assert location == f"https://t.example/c?aff_sub={click_id}&source=mff"


def test_click_redirect_counts_once_per_event_and_matches_the_beacon(client, db, token):
    locations = {client.get(f"/c/{token}?e=same-event-1", headers={"User-Agent": BROWSER_UA}).headers["Location"]
                 for _ in range(3)}
    beacon = post(client, "/api/click", beacon_body(token, "same-event-1")).json
    assert locations == {beacon["redirect_url"]}
    assert count(db, "clicks") == 1


def test_click_without_valid_event_id_gets_a_server_made_one(client, db, token):
    for query in ("", "?e=bad", "?e=" + "x" * 80, "?e=aaaaaaaa&e=bbbbbbbb"):
        assert client.get(f"/c/{token}{query}", headers={"User-Agent": BROWSER_UA}).status_code == 302
    assert count(db, "clicks") == 4 and count(db, "clicks", "event_id LIKE 'srv-%'") == 4


@pytest.mark.parametrize("method, headers", [
    ("HEAD", {}),
    ("GET", {"Purpose": "prefetch"}),
    ("GET", {"Sec-Purpose": "prefetch;prerender"}),
    ("GET", {"X-Moz": "prefetch"}),
])
def test_head_and_prefetch_redirect_without_counting(client, db, token, method, headers):
    response = client.open(f"/c/{token}?e=prefetch-event", method=method, headers=headers)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("https://track.example.com/aff_c?offer_id=12&aff_id=3&aff_click_id=")
    assert count(db, "clicks") == 0


def test_paused_campaign_still_redirects_but_is_flagged(app, client, db, campaign, token):
    set_campaign_active(db, app, campaign, 0)
    assert client.get(f"/c/{token}", headers={"User-Agent": BROWSER_UA}).status_code == 302
    assert db.execute("SELECT campaign_paused FROM clicks").fetchone()[0] == 1


@pytest.mark.parametrize("query", [
    "?url=https://evil.example", "?redirect=//evil.example", "?next=https://evil.example&e=abcdefgh",
    "?aff_click_id=mine&source=evil", "?e=abcdefgh&to=javascript:alert(1)",
])
def test_no_query_parameter_changes_the_destination(client, db, token, query):
    location = client.get(f"/c/{token}{query}", headers={"User-Agent": BROWSER_UA}).headers["Location"]
    assert location.startswith("https://track.example.com/aff_c?offer_id=12&aff_id=3&aff_click_id=")
    assert "evil" not in location and "mine" not in location and location.endswith("&source=mff")


@pytest.mark.parametrize("bad", ["garbage", "v1.1.mff.thankyou.-.1.AAAA", "%2F%2Fevil.example", "x" * 300])
def test_bad_click_tokens_get_a_400_page_and_no_redirect(client, db, bad):
    response = client.get(f"/c/{bad}", headers={"User-Agent": BROWSER_UA})
    assert "Location" not in response.headers and count(db, "clicks") == 0
    assert response.status_code == 400 and b"not valid" in response.data


def test_new_campaign_is_accepted_without_a_signal(app, client, db, monkeypatch):
    """A campaign written by another process (no in-process signal) is found on the first miss
    (misses reload the snapshot at most every CATALOG_MISS_RELOAD_S; zero here)."""
    from popup_mgr import catalog
    monkeypatch.setattr(catalog, "MISS_RELOAD_S", 0)
    client.post("/api/impression", data=beacon_body(token_for(app, add_campaign(db, app=app))), headers=HEADERS)
    late = add_campaign(db)          # no notify: like `popup-mgr` in another process
    assert post(client, "/api/impression", beacon_body(token_for(app, late))).status_code == 204


# --- the Flask views and the raw-WSGI fast path answer alike ------------------------------------

def _answer(client, method, path, body=None):
    response = client.open(path, method=method, data=body, headers=HEADERS)
    headers = {k: response.headers.get(k) for k in ("Content-Type", "X-Popup-Reason", "Cache-Control",
                                                    "Access-Control-Allow-Origin", "Access-Control-Expose-Headers")}
    location = response.headers.get("Location", "")
    body = response.get_json(silent=True) or {}
    # Values that differ per request by design (a fresh click id) are compared by shape.
    shown = {key: (len(value) if key == "click_id" else value.split("aff_click_id=")[0] if key == "redirect_url"
                   else value) for key, value in body.items()}
    return response.status_code, headers, location.split("aff_click_id=")[0], shown


def test_flask_views_answer_like_the_fast_path(app, client, db, token):
    cases = [("POST", "/api/impression", lambda: beacon_body(token)), ("POST", "/api/click", lambda: beacon_body(token)),
             ("POST", "/api/impression", lambda: b"{"), ("POST", "/api/click", lambda: beacon_body("v1.x")),
             ("POST", "/api/impression", lambda: b"x" * 5000), ("GET", f"/c/{token}", lambda: None),
             ("HEAD", f"/c/{token}", lambda: None), ("GET", "/c/bad-token", lambda: None)]
    via_fast = [_answer(client, method, path, body()) for method, path, body in cases]
    with flask_alone(app):
        via_flask = [_answer(client, method, path, body()) for method, path, body in cases]
    assert via_fast == via_flask
    assert count(db, "impressions") == 2 and count(db, "clicks") == 4 and all_differences(db) == []


def test_fast_path_reads_bodies_without_content_length(app, token, db):
    """A chunked upload has no Content-Length: the body is still read (and limited)."""
    import io
    from popup_mgr.web import fastpath
    for body, status in ((beacon_body(token).encode(), "204 No Content"), (b"x" * 5000, "413 Content Too Large")):
        answered = []
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/api/impression", "wsgi.input": io.BytesIO(body),
                   "REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": BROWSER_UA}
        fastpath.FastPath(app, None)(environ, lambda s, h: answered.append(s))
        assert answered == [status]
    assert count(db, "impressions") == 1


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/offers/mff"), ("HEAD", "/api/offers/mff"), ("GET", "/api/offers/mff?placement=timed"),
    ("GET", "/api/offers/mff?placement=exit-intent&placement=timed"), ("GET", "/api/offers/mff?placement=nope"),
    ("GET", "/api/offers/mff?placement="), ("GET", "/api/offers/unknown"), ("GET", "/api/offers/mff/extra"),
    ("GET", "/api/offers/"), ("GET", "/api/offers/caf%C3%A9")])
def test_offers_fast_path_answers_exactly_like_the_flask_view(app, client, campaign, method, path):
    """Status, every header and the body byte for byte (one campaign: the order is fixed, and the
    tokens are the snapshot's, so both answers are the same bytes). Only Flask's `Vary: Cookie`
    differs: Flask adds it because its session machinery ran; the answer never reads a cookie."""
    def answer():
        response = client.open(path, method=method, headers=HEADERS)
        headers = sorted((name, value) for name, value in response.headers.items() if name != "Vary")
        return response.status_code, headers, response.data
    via_fast = answer()
    with flask_alone(app):
        via_flask = answer()
    assert via_fast == via_flask
    if path == "/api/offers/mff?placement=timed":
        assert via_fast[0] == 200 and json.loads(via_fast[2])["placement"] == "timed"


def test_offers_body_is_what_jsonify_would_send(app, client, db, campaign):
    """The pre-serialised pieces join into exactly jsonify's bytes for the same data."""
    second = add_campaign(db, app=app)
    db.execute("UPDATE campaigns SET priority = 7, tagline = 'Caf\u00e9 \"quoted\" </script>' WHERE id = ?",
               (second,))
    from popup_mgr.signals import notify_catalog_changed
    notify_catalog_changed(app)
    response = client.get("/api/offers/mff")
    assert response.status_code == 200 and len(response.json["offers"]) == 2
    with app.app_context():
        assert response.data == app.json.response(response.json).data
    assert (response.headers["Cache-Control"], response.headers["Cross-Origin-Resource-Policy"],
            response.headers["Access-Control-Allow-Origin"], response.headers["X-Content-Type-Options"]) == \
        ("no-store", "cross-origin", "*", "nosniff")


def test_unknown_property_is_a_json_404_with_reason(client):
    response = client.get("/api/offers/nope")
    assert response.status_code == 404
    assert response.json == {"error": "unknown property 'nope'"}
    assert response.headers["X-Popup-Reason"] == "unknown-property"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path, query, status", [("/api/offers/mff", "", "200 OK"),
                                                 ("/api/offers/mff", "placement=timed", "200 OK"),
                                                 ("/api/offers/nope", "", "404 Not Found")])
def test_offers_are_answered_without_flask(app, campaign, path, query, status):
    """The front answers /api/offers itself (wsgi_app None: falling through to Flask would fail)."""
    import io
    from popup_mgr.web import fastpath
    answered = []
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "wsgi.input": io.BytesIO(b""),
               "REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": BROWSER_UA}
    body = b"".join(fastpath.FastPath(app, None)(environ, lambda s, h: answered.append(s)))
    assert answered == [status]
    if status == "200 OK":
        assert json.loads(body)["placement"] == (query.split("=")[1] if query else "thankyou")
