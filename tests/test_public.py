"""GET /popup.js headers and caching, and the admin Install and Playground pages."""
import gzip

import pytest

from tests.helpers import add_campaign, set_property


def test_popup_js_content_type_cache_and_cors(client):
    response = client.get("/popup.js")
    assert response.status_code == 200
    assert response.mimetype == "application/javascript"
    assert "max-age" in response.headers["Cache-Control"]
    assert response.headers["ETag"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Encoding" not in response.headers
    assert b"ModePopup" in response.data


def test_popup_js_etag_304(client):
    etag = client.get("/popup.js").headers["ETag"]
    again = client.get("/popup.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["Access-Control-Allow-Origin"] == "*"
    assert client.get("/popup.js", headers={"If-None-Match": '"other"'}).status_code == 200


def test_popup_js_gzip_when_accepted(client):
    plain = client.get("/popup.js")
    zipped = client.get("/popup.js", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    assert gzip.decompress(zipped.data) == plain.data
    # Different bodies, different validators.
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    not_wanted = client.get("/popup.js", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in not_wanted.headers


def test_popup_js_preflight_and_head(client):
    assert client.head("/popup.js").status_code == 200
    options = client.options("/popup.js", headers={"Origin": "https://publisher.example",
                                                   "Access-Control-Request-Method": "GET"})
    assert options.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("path", ["/admin/install", "/admin/playground"])
def test_admin_pages_need_login(client, path):
    response = client.get(path)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert b"ModePopup.init" not in response.data


def test_install_page_has_exact_snippet_per_property(app, admin_client, db):
    set_property(db, "mmm", popup_placement="exit-intent", popup_frequency="daily")
    html = admin_client.get("/admin/install?property=mmm").get_data(as_text=True)
    assert "http://popup.test/popup.js" in html
    assert "ModePopup.init({property: &#39;mmm&#39;, placement: &#39;exit-intent&#39;," \
           " frequency: &#39;daily&#39;, debug: false});" in html
    assert 'data-copy-target="embed-snippet"' in html
    assert "embed_admin.js" in html
    # Default tab: the first property.
    assert "property: &#39;mff&#39;" in admin_client.get("/admin/install").get_data(as_text=True)


def test_install_page_warns_when_popup_disabled(admin_client, db):
    set_property(db, "mcad", popup_enabled=0)
    assert "switched off" in admin_client.get("/admin/install?property=mcad").get_data(as_text=True)


def test_playground_loads_the_script_with_chosen_options(admin_client, db):
    add_campaign(db, tune_id=101)
    html = admin_client.get("/admin/playground?property=mmm&placement=timed&frequency=daily&seconds=5")\
        .get_data(as_text=True)
    assert 'src="/popup.js"' in html
    for attribute in ('data-property="mmm"', 'data-placement="timed"', 'data-frequency="daily"',
                      'data-seconds="5"', 'data-debug="true"', 'data-preview="true"'):
        assert attribute in html
    live = admin_client.get("/admin/playground?live=1").get_data(as_text=True)
    assert "data-preview" not in live


def test_playground_rejects_unknown_choices(admin_client):
    html = admin_client.get("/admin/playground?property=<x>&placement=evil&frequency=no&seconds=-1")\
        .get_data(as_text=True)
    assert 'data-property="mff"' in html and 'data-placement="thankyou"' in html
    assert 'data-frequency="always"' in html and 'data-seconds="3"' in html
