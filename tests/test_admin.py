"""Admin pages and htmx fragments through the test client: campaigns, properties, audit log, XSS."""
import html
import json
import re

import pytest

from popup_mgr import audit, campaigns, properties
from tests.helpers import csrf_token

XSS = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>']
HX = {"HX-Request": "true"}


def make(app, db, **fields):
    data = {"tune_campaign_id": 100, "name": "Sweeps", "display_title": "Win big",
            "click_url": "https://mode.go2cloud.org/aff_c?offer_id=100&aff_id=5", **fields}
    with app.app_context():
        return campaigns.create(db, data, "seed")


@pytest.fixture
def token(admin_client):
    return csrf_token(admin_client, "/admin/campaigns")


def form_post(client, path, token, data, htmx=False):
    headers = {"X-CSRFToken": token, **(HX if htmx else {})}
    return client.post(path, data=data, headers=headers)


def audit_actions(db):
    return [(r["actor"], r["action"], json.loads(r["changes"])) for r in
            db.execute("SELECT actor, action, changes FROM audit_log WHERE entity != 'user' ORDER BY id")]


# --- campaigns table ------------------------------------------------------------------------------

def test_campaigns_page_lists_and_filters(app, admin_client, db):
    make(app, db, tune_campaign_id=1, name="Alpha", properties=["mff"])
    paused = make(app, db, tune_campaign_id=2, name="Bravo", properties=["mmm"])
    with app.app_context():
        campaigns.set_active(db, paused["id"], False, "seed")
    page = admin_client.get("/admin/campaigns")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "Alpha" in body and "Bravo" in body and "<html" in body
    assert "HX-Request" in page.headers["Vary"]

    fragment = admin_client.get("/admin/campaigns?status=paused", headers=HX).get_data(as_text=True)
    assert fragment.startswith('<tbody id="campaign-rows">') and "Bravo" in fragment and "Alpha" not in fragment
    fragment = admin_client.get("/admin/campaigns?property=mff&q=alp", headers=HX).get_data(as_text=True)
    assert "Alpha" in fragment and "Bravo" not in fragment
    assert "No campaigns match" in admin_client.get("/admin/campaigns?q=zzz", headers=HX).get_data(as_text=True)
    # A history restore wants the whole page, not the fragment.
    restore = admin_client.get("/admin/campaigns", headers={**HX, "HX-History-Restore-Request": "true"})
    assert "<html" in restore.get_data(as_text=True)


def test_toggle_and_priority_return_the_row_and_are_audited(app, admin_client, db, token):
    c = make(app, db)
    row = form_post(admin_client, f"/admin/campaigns/{c['id']}/toggle", token, {"active": "0"}, htmx=True)
    assert row.status_code == 200 and row.get_data(as_text=True).startswith(f'<tr id="campaign-{c["id"]}"')
    assert 'aria-checked="false"' in row.get_data(as_text=True)
    row = form_post(admin_client, f"/admin/campaigns/{c['id']}/priority", token, {"priority": "9"}, htmx=True)
    assert '<option value="9" selected>' in row.get_data(as_text=True)
    bad = form_post(admin_client, f"/admin/campaigns/{c['id']}/priority", token, {"priority": "11"}, htmx=True)
    assert "Must be between 1 and 10" in bad.get_data(as_text=True)
    stored = campaigns.get(db, c["id"])
    assert stored["active"] is False and stored["priority"] == 9
    assert [a[:2] for a in audit_actions(db)] == [("seed", "campaign.create"), ("mike", "campaign.toggle"),
                                                 ("mike", "campaign.update")]
    assert audit_actions(db)[2][2] == {"priority": [5, 9]}


def test_toggle_without_htmx_redirects_back_and_bad_value_is_400(app, admin_client, db, token):
    c = make(app, db)
    response = form_post(admin_client, f"/admin/campaigns/{c['id']}/toggle", token, {"active": "0"})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/campaigns"
    assert form_post(admin_client, f"/admin/campaigns/{c['id']}/toggle", token, {"active": "x"}).status_code == 400
    assert form_post(admin_client, "/admin/campaigns/999/toggle", token, {"active": "1"}).status_code == 404


def test_inline_edit_row(app, admin_client, db, token):
    c = make(app, db, properties=["mff"])
    edit = admin_client.get(f"/admin/campaigns/{c['id']}/row/edit", headers=HX).get_data(as_text=True)
    assert 'name="display_title"' in edit and 'hx-include="closest tr"' in edit
    data = {"display_title": "New title", "name": "Sweeps", "priority": "3", "payout": "2.5",
            "properties_present": "1", "properties": ["mmm", "mcad"], "active_present": "1", "active": "1"}
    saved = form_post(admin_client, f"/admin/campaigns/{c['id']}/row", token, data, htmx=True)
    assert saved.status_code == 200 and "New title" in saved.get_data(as_text=True)
    stored = campaigns.get(db, c["id"])
    assert (stored["display_title"], stored["priority"], stored["payout"], stored["properties"]) == \
        ("New title", 3, "2.50", ["mmm", "mcad"])

    bad = form_post(admin_client, f"/admin/campaigns/{c['id']}/row", token,
                    {**data, "display_title": "", "payout": "1.234"}, htmx=True)
    body = bad.get_data(as_text=True)
    assert bad.status_code == 200 and 'aria-invalid="true"' in body      # htmx swaps only 2xx
    assert "Required." in body and "more than two decimal places" in body
    assert campaigns.get(db, c["id"])["display_title"] == "New title"
    cancel = admin_client.get(f"/admin/campaigns/{c['id']}/row", headers=HX).get_data(as_text=True)
    assert "Quick edit" in cancel


FULL_FORM = {
    "tune_link": "", "tune_campaign_id": "777", "aff_id": "12", "name": "Holiday", "display_title": "Win a gift card",
    "tagline": "Today only", "description": "Two lines\nof text", "cta_text": "Enter", "image_url": "https://cdn.example/a.png",
    "click_url": "https://mode.go2cloud.org/aff_c?offer_id=777&aff_id=12", "impression_pixel_url": "https://mode.go2cloud.org/aff_i?x=1",
    "payout": "4.50", "subid_param": "aff_sub", "properties_present": "1", "properties": ["mff"], "priority": "6",
    "start_at": "2026-12-01T09:30", "end_at": "", "active_present": "1", "active": "1", "notes": "Net 30",
}


def test_add_campaign_form_with_every_field(admin_client, db, token):
    page = admin_client.get("/admin/campaigns/new").get_data(as_text=True)
    for field in campaigns.FIELDS:
        assert f'name="{field}"' in page, field
    assert "campaign_form.js" in page and 'id="popup-preview"' in page
    response = form_post(admin_client, "/admin/campaigns/new", token, FULL_FORM)
    assert response.status_code == 302 and response.headers["Location"].startswith("/admin/campaigns?saved=")
    [c] = campaigns.list_campaigns(db)
    assert c["tune_campaign_id"] == 777 and c["aff_id"] == 12 and c["description"] == "Two lines\nof text"
    # Entered in the business zone (New York), stored as UTC.
    assert c["start_at"] == "2026-12-01T14:30:00Z" and c["end_at"] is None and c["properties"] == ["mff"]
    listing = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "is-highlight" in listing and "Campaign “Holiday” added." in listing


def test_add_form_fills_from_pasted_tune_link_and_pixel_html(admin_client, db, token):
    data = {**FULL_FORM, "tune_link": "https://mode.go2cloud.org/aff_c?offer_id=888&aff_id=44&aff_sub=x",
            "tune_campaign_id": "", "aff_id": "", "click_url": "",
            "impression_pixel_url": '<img src="https://mode.go2cloud.org/aff_i?offer_id=888&amp;aff_id=44" width="1" height="1" />'}
    assert form_post(admin_client, "/admin/campaigns/new", token, data).status_code == 302
    [c] = campaigns.list_campaigns(db)
    assert (c["tune_campaign_id"], c["aff_id"]) == (888, 44)
    assert c["click_url"] == "https://mode.go2cloud.org/aff_c?offer_id=888&aff_id=44&aff_sub=x"
    assert c["impression_pixel_url"] == "https://mode.go2cloud.org/aff_i?offer_id=888&aff_id=44"


@pytest.mark.parametrize("field, value, message", [
    ("click_url", "javascript:alert(1)", "Only http:// and https://"),
    ("image_url", "//evil.example/a.png", "protocol-relative"),
    ("impression_pixel_url", "http://user:pw@evil.example/", "user name or password"),
    ("priority", "0", "between 1 and 10"),
    ("payout", "4.505", "more than two decimal places"),
    ("tune_campaign_id", "", "Required."),          # with a click URL that is not a Tune link (below)
    ("end_at", "2026-11-01T00:00", "after the start"),
    ("properties", "nope", "Unknown property"),
])
def test_add_form_shows_clear_inline_errors_and_stores_nothing(admin_client, db, token, field, value, message):
    data = {**FULL_FORM, field: value}
    if field == "tune_campaign_id":
        data["click_url"] = "https://advertiser.example/landing"    # else the link's offer_id fills it
    response = form_post(admin_client, "/admin/campaigns/new", token, data)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'id="{field}-error"' in body and html.escape(message, quote=False) in body
    assert "The campaign was not saved" in body
    assert 'value="Holiday"' in body                     # what was typed is kept
    assert db.execute("SELECT count(*) FROM campaigns").fetchone()[0] == 0


def test_edit_page_updates_and_audits(app, admin_client, db, token):
    c = make(app, db)
    page = admin_client.get(f"/admin/campaigns/{c['id']}/edit").get_data(as_text=True)
    assert 'value="Sweeps"' in page and "Save changes" in page
    data = {**FULL_FORM, "tune_campaign_id": "100"}
    assert form_post(admin_client, f"/admin/campaigns/{c['id']}/edit", token, data).status_code == 302
    actor, action, changes = audit_actions(db)[-1]
    assert (actor, action) == ("mike", "campaign.update")
    assert changes["name"] == ["Sweeps", "Holiday"] and "tune_campaign_id" not in changes
    assert admin_client.get("/admin/campaigns/999/edit").status_code == 404


# --- XSS ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("payload", XSS)
def test_xss_payloads_are_stored_verbatim_and_rendered_escaped_everywhere(app, admin_client, db, token, payload):
    text_fields = {f: payload for f in ("name", "display_title", "tagline", "description", "cta_text", "notes")}
    c = make(app, db, **{**text_fields, "cta_text": payload[:40]})
    with app.app_context():
        properties.update(db, "mff", {"name": payload}, "mike")
    row = db.execute("SELECT name, display_title, description FROM campaigns").fetchone()
    assert tuple(row) == (payload, payload, payload)                 # stored verbatim
    pages = [admin_client.get(p, headers=h) for p, h in [
        ("/admin/campaigns", {}), ("/admin/campaigns?q=" + payload, {}), ("/admin/campaigns", HX),
        (f"/admin/campaigns/{c['id']}/edit", {}), (f"/admin/campaigns/{c['id']}/row", HX),
        (f"/admin/campaigns/{c['id']}/row/edit", HX), ("/admin/properties", {}), ("/admin/audit", {})]]
    pages.append(form_post(admin_client, "/admin/campaigns/new", token, {**FULL_FORM, "name": payload, "priority": "0"}))
    for response in pages:
        body = response.get_data(as_text=True)
        assert payload not in body, response.request.path
        assert "<script>alert(1)" not in body and "<img src=x" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[0].get_data(as_text=True) or \
        "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in pages[0].get_data(as_text=True)


# --- properties -----------------------------------------------------------------------------------

PROPERTY_FORM = {"name": "ModeFreeFinds", "domain": "modefreefinds.com www.modefreefinds.com", "popup_enabled": "1",
                 "active": "1", "popup_placement": "exit-intent", "popup_frequency": "daily", "delay_ms": "2500",
                 "theme_primary": "#112233", "theme_accent": "#1f5fbf", "theme_background": "#ffffff",
                 "theme_text": "#1b1f24", "theme_cta_text": "#ffffff", "theme_logo_url": "https://cdn.example/logo.png"}


def test_properties_page_edits_every_field(admin_client, db, token):
    page = admin_client.get("/admin/properties").get_data(as_text=True)
    for code in ("mff", "mmm", "mcad", "mmd"):
        assert f'id="property-{code}"' in page
    response = form_post(admin_client, "/admin/properties/mff", token, PROPERTY_FORM, htmx=True)
    assert response.status_code == 200 and "Saved" in response.get_data(as_text=True)
    row = db.execute("SELECT * FROM properties WHERE code = 'mff'").fetchone()
    assert (row["domain"], row["popup_placement"], row["popup_frequency"], row["delay_ms"]) == \
        ("modefreefinds.com www.modefreefinds.com", "exit-intent", "daily", 2500)
    # Only overrides of the Mode defaults are stored.
    assert json.loads(row["theme"]) == {"primary": "#112233", "logo_url": "https://cdn.example/logo.png"}
    actor, action, changes = audit_actions(db)[-1]
    assert (actor, action) == ("mike", "property.update") and changes["delay_ms"] == [1000, 2500]
    # Unticked boxes switch the popup off.
    form_post(admin_client, "/admin/properties/mff", token,
              {k: v for k, v in PROPERTY_FORM.items() if k != "popup_enabled"}, htmx=True)
    assert db.execute("SELECT popup_enabled FROM properties WHERE code = 'mff'").fetchone()[0] == 0


@pytest.mark.parametrize("field, value, error_key", [
    ("theme_primary", "pink", "theme_primary"), ("theme_logo_url", "javascript:alert(1)", "theme_logo_url"),
    ("delay_ms", "-5", "delay_ms"), ("delay_ms", "700000", "delay_ms"), ("popup_placement", "banner", "popup_placement"),
    ("popup_frequency", "hourly", "popup_frequency"), ("domain", "evil.example/<x>", "domain"), ("name", "", "name"),
])
def test_property_validation(admin_client, db, token, field, value, error_key):
    before = db.execute("SELECT * FROM properties WHERE code = 'mff'").fetchone()
    response = form_post(admin_client, "/admin/properties/mff", token, {**PROPERTY_FORM, field: value}, htmx=True)
    assert response.status_code == 200 and "Not saved" in response.get_data(as_text=True)
    assert 'aria-invalid="true"' in response.get_data(as_text=True)
    assert tuple(db.execute("SELECT * FROM properties WHERE code = 'mff'").fetchone()) == tuple(before)
    full = form_post(admin_client, "/admin/properties/mff", token, {**PROPERTY_FORM, field: value})
    assert full.status_code == 422 and 'id="property-mmd"' in full.get_data(as_text=True)


def test_unknown_property_is_404(admin_client, token):
    assert form_post(admin_client, "/admin/properties/nope", token, PROPERTY_FORM).status_code == 404


# --- audit log ------------------------------------------------------------------------------------

def test_audit_page_paginates_newest_first_and_filters(app, admin_client, db):
    c = make(app, db)
    with app.app_context():
        for priority in list(range(1, 11)) * 6:
            campaigns.update(db, c["id"], {"priority": priority}, "mike")
        properties.update(db, "mmm", {"delay_ms": 1234}, "cli")
    total = db.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    first = admin_client.get("/admin/audit").get_data(as_text=True)
    assert first.count("<tr>") - 1 == audit.PER_PAGE           # minus the header row
    assert first.index("property.update") < first.index("campaign.update")    # newest first
    assert "page=2" in first and "Older" in first
    second = admin_client.get("/admin/audit?page=2").get_data(as_text=True)
    assert second.count("<tr>") - 1 == total - audit.PER_PAGE and "Newer" in second
    only_props = admin_client.get("/admin/audit?entity=property").get_data(as_text=True)
    assert "property.update" in only_props and "campaign.update" not in only_props
    one = admin_client.get(f"/admin/audit?entity=campaign&entity_id={c['id']}").get_data(as_text=True)
    assert "campaign.update" in one and "property.update" not in one


def test_admin_pages_are_documented(app):
    """Every admin page (a GET route without arguments) is named in the README."""
    from pathlib import Path
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    pages = [rule.rule for rule in app.url_map.iter_rules()
             if rule.endpoint.startswith(("admin.", "auth.")) and "GET" in rule.methods and not rule.arguments]
    assert len(pages) >= 6
    for page in pages:
        assert f"`{page}`" in readme, f"{page} is not in README.md"


def test_rows_show_schedule_outside_the_window(app, admin_client, db):
    make(app, db, tune_campaign_id=1, name="Later", start_at="2999-01-01T00:00:00Z")
    make(app, db, tune_campaign_id=2, name="Over", start_at="2001-01-01T00:00:00Z", end_at="2002-01-01T00:00:00Z")
    body = admin_client.get("/admin/campaigns").get_data(as_text=True)
    # Shown in the business zone (New York), labelled.
    assert "Starts 2998-12-31 19:00 EST" in body and "Ended 2001-12-31 19:00 EST" in body


def test_audit_filter_offers_entities_other_modules_log(admin_client, db):
    from popup_mgr import db as database
    with database.transaction(db):
        audit.record(db, "mike", "settings.update", "settings", None, {"postback_secret": ["***", "***"]})
    page = admin_client.get("/admin/audit?entity=settings").get_data(as_text=True)
    assert "<option value=\"settings\" selected>" in page and "settings.update" in page and "#None" not in page
