"""Campaign domain: validation tables, Tune paste parsing, storage and audit rows on a real SQLite file."""
import json

import pytest
from werkzeug.datastructures import MultiDict

from popup_mgr import campaigns, signals

GOOD = {
    "tune_campaign_id": 1234, "aff_id": 55, "name": "Holiday sweeps", "display_title": "Win a $500 gift card",
    "tagline": "Ends Friday", "description": "Enter in 30 seconds.", "cta_text": "Enter now",
    "image_url": "https://cdn.example.com/a.png", "click_url": "https://mode.go2cloud.org/aff_c?offer_id=1234&aff_id=55",
    "impression_pixel_url": "http://mode.go2cloud.org/aff_i?offer_id=1234&aff_id=55", "active": True,
    "priority": 7, "notes": "CPL $4.50", "payout": "4.50", "subid_param": "aff_sub2", "properties": ["mff"],
    "start_at": "2026-12-01T00:00:00Z", "end_at": "2026-12-31T23:59:59Z",
}

BAD_URLS = [
    "javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,<script>alert(1)</script>", "//evil.example/x",
    "http://user:pw@host.example/", "http://a\r\nb", "ftp://files.example/x", "/relative/path", "https://",
    "http://exa mple.com/", "https:\\\\evil.example",
]


def test_good_campaign_validates_clean():
    clean, errors = campaigns.validate(GOOD)
    assert errors == {}
    assert clean == GOOD


def test_multi_line_fields_keep_line_breaks_and_text_is_stored_verbatim():
    clean, errors = campaigns.validate({**GOOD, "description": "a\r\nb\tc", "notes": "x\ny",
                                        "display_title": "  <b>Bold</b> & \"quoted\"  "})
    assert errors == {}
    assert clean["description"] == "a\r\nb\tc" and clean["notes"] == "x\ny"
    assert clean["display_title"] == "<b>Bold</b> & \"quoted\""     # only surrounding spaces go


def test_defaults_fill_optional_fields():
    minimal = {k: GOOD[k] for k in campaigns.REQUIRED}
    clean, errors = campaigns.validate(minimal)
    assert errors == {}
    assert clean["cta_text"] == "View Offer" and clean["priority"] == 5 and clean["properties"] == []
    assert clean["payout"] == "0.00" and clean["active"] is True and clean["aff_id"] is None


@pytest.mark.parametrize("field, value", [
    ("tune_campaign_id", 0), ("tune_campaign_id", -3), ("tune_campaign_id", "123"), ("tune_campaign_id", True),
    ("tune_campaign_id", 1.5), ("aff_id", "x"), ("aff_id", 0),
    ("name", ""), ("name", "   "), ("name", 5), ("name", "x" * 201), ("display_title", ""), ("cta_text", ""),
    ("priority", 0), ("priority", 11), ("priority", "5"), ("priority", 5.0), ("priority", None),
    ("payout", "4.505"), ("payout", 4.5), ("payout", "-1.00"), ("payout", "1,50"), ("payout", "abc"), ("payout", "1e3"),
    ("active", 1), ("active", "true"), ("properties", "mff"), ("properties", [1]), ("subid_param", "a b"),
    ("subid_param", "sub&x=1"), ("start_at", "next tuesday"), ("start_at", 1700000000),
    ("click_url", ""), ("click_url", None), ("display_title", "two\nlines"), ("name", "nul\x00"),
    ("description", "bell\x07"), ("cta_text", "tab\there"),
] + [("click_url", url) for url in BAD_URLS] + [("image_url", url) for url in BAD_URLS]
  + [("impression_pixel_url", url) for url in BAD_URLS])
def test_bad_values_are_rejected_with_a_message(field, value):
    clean, errors = campaigns.validate({**GOOD, field: value})
    assert set(errors) == {field}
    assert isinstance(errors[field], str) and errors[field]


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/x", "https://example.com/a?b=c&d=%20", "HTTPS://EXAMPLE.COM"])
def test_http_and_https_urls_are_accepted(url):
    assert campaigns.validate({**GOOD, "click_url": url, "image_url": url})[1] == {}


@pytest.mark.parametrize("payout, stored", [("4.5", "4.50"), ("4.50", "4.50"), ("4.5000", "4.50"), ("12", "12.00"), ("0", "0.00")])
def test_payout_is_exact(payout, stored):
    clean, errors = campaigns.validate({**GOOD, "payout": payout})
    assert errors == {} and clean["payout"] == stored


def test_end_before_start_is_rejected():
    _, errors = campaigns.validate({**GOOD, "start_at": "2026-12-02T00:00:00Z", "end_at": "2026-12-01T00:00:00Z"})
    assert set(errors) == {"end_at"}


def test_unknown_fields_and_missing_required_fields():
    _, errors = campaigns.validate({"name": "x", "colour": "red"})
    assert errors["colour"] == "Unknown field."
    assert {"tune_campaign_id", "display_title", "click_url"} <= set(errors)


def test_partial_checks_only_given_fields_and_read_only_fields_are_ignored():
    clean, errors = campaigns.validate({"priority": 3, "id": 99, "created_at": "x"}, partial=True)
    assert errors == {} and clean == {"priority": 3}


@pytest.mark.parametrize("link, expected", [
    ("https://mode.go2cloud.org/aff_c?offer_id=123&aff_id=456", (123, 456)),
    ("http://track.example.com/aff_c?offer_id=9&aff_id=1&aff_sub=x&source=mff", (9, 1)),
    ("  https://mode.go2cloud.org/aff_c?aff_id=456&offer_id=123  ", (123, 456)),
    ("https://mode.go2cloud.org/aff_c?offer_id=77", (77, None)),
    ("https://mode.go2cloud.org/aff_c?offer_id=abc&aff_id=1", None),
    ("https://mode.go2cloud.org/aff_c?offer_id=0", None),
    ("https://mode.go2cloud.org/aff_c?offer_id=²", None),
    ("javascript:alert('offer_id=1')", None),
    ("mode.go2cloud.org/aff_c?offer_id=1", None),
    ("", None),
])
def test_parse_tune_link(link, expected):
    parsed = campaigns.parse_tune_link(link)
    if expected is None:
        assert parsed is None
    else:
        assert (parsed["tune_campaign_id"], parsed["aff_id"]) == expected
        assert parsed["click_url"] == link.strip()


@pytest.mark.parametrize("html, expected", [
    ('<img src="https://mode.go2cloud.org/aff_i?offer_id=123&amp;aff_id=456" width="1" height="1" />',
     "https://mode.go2cloud.org/aff_i?offer_id=123&aff_id=456"),
    ("<IMG width='1' SRC='http://t.example/aff_i?offer_id=1&amp;aff_id=2&amp;aff_sub=x'>",
     "http://t.example/aff_i?offer_id=1&aff_id=2&aff_sub=x"),
    ('<img height="1" src=https://t.example/p?a=1 >', "https://t.example/p?a=1"),
    ('<img\n  src="https://t.example/p?a=1&amp;b=2"\n  width="1">', "https://t.example/p?a=1&b=2"),
    ("https://t.example/pixel?a=1", "https://t.example/pixel?a=1"),
    ('<img data-src="https://wrong.example/" src="https://t.example/p">', "https://t.example/p"),
    ('<img src="javascript:alert(1)">', None),
    ('<img src="data:image/gif;base64,R0lGOD">', None),
    ('<script src="https://t.example/x.js"></script>', None),
    ("", None),
])
def test_parse_pixel_html(html, expected):
    assert campaigns.parse_pixel_html(html) == expected


def test_from_form_applies_paste_helpers_and_types():
    form = MultiDict([
        ("tune_link", "https://mode.go2cloud.org/aff_c?offer_id=321&aff_id=654"), ("tune_campaign_id", ""),
        ("aff_id", ""), ("click_url", ""), ("name", "N"), ("display_title", "T"), ("priority", "8"),
        ("impression_pixel_url", '<img src="https://p.example/i?o=1&amp;a=2" width="1">'),
        ("properties_present", "1"), ("properties", "mff"), ("properties", "mmm"), ("active_present", "1"),
    ])
    data = campaigns.from_form(form)
    assert data["tune_campaign_id"] == 321 and data["aff_id"] == 654
    assert data["click_url"] == "https://mode.go2cloud.org/aff_c?offer_id=321&aff_id=654"
    assert data["impression_pixel_url"] == "https://p.example/i?o=1&a=2"
    assert data["priority"] == 8 and data["properties"] == ["mff", "mmm"] and data["active"] is False


def test_from_form_keeps_typed_ids_over_the_link():
    form = MultiDict([("tune_link", "https://x.example/aff_c?offer_id=1&aff_id=2"), ("tune_campaign_id", "5"),
                      ("click_url", "https://other.example/c")])
    data = campaigns.from_form(form)
    assert data["tune_campaign_id"] == 5 and data["click_url"] == "https://other.example/c"


# --- storage -------------------------------------------------------------------------------------

def audit_rows(db, campaign_id):
    return [dict(r, changes=json.loads(r["changes"])) for r in db.execute(
        "SELECT actor, action, changes FROM audit_log WHERE entity = 'campaign' AND entity_id = ? ORDER BY id",
        (campaign_id,))]


def test_create_stores_everything_and_audits(app, db):
    with app.app_context():
        created = campaigns.create(db, GOOD, "mike")
    row = db.execute("SELECT * FROM campaigns WHERE id = ?", (created["id"],)).fetchone()
    assert row["payout_cents"] == 450 and row["tune_campaign_id"] == 1234 and row["created_by"] == "mike"
    assert {k: created[k] for k in GOOD} == GOOD
    [entry] = audit_rows(db, created["id"])
    assert entry["actor"] == "mike" and entry["action"] == "campaign.create"
    assert entry["changes"]["payout"] == [None, "4.50"] and entry["changes"]["properties"] == [None, ["mff"]]


def test_update_records_field_level_changes_only(app, db):
    with app.app_context():
        created = campaigns.create(db, GOOD, "mike")
        campaigns.update(db, created["id"], {"priority": 2, "payout": "5", "name": GOOD["name"]}, "token:ci")
        campaigns.update(db, created["id"], {"properties": ["mmm", "mff"]}, "cli")
        campaigns.update(db, created["id"], {"properties": ["mff", "mmm"]}, "cli")    # same set: no change
    rows = audit_rows(db, created["id"])
    assert [r["action"] for r in rows] == ["campaign.create", "campaign.update", "campaign.update"]
    assert rows[1]["changes"] == {"priority": [7, 2], "payout": ["4.50", "5.00"]} and rows[1]["actor"] == "token:ci"
    assert rows[2]["changes"] == {"properties": [["mff"], ["mff", "mmm"]]}


def test_duplicate_tune_id_and_unknown_property_are_rejected_and_nothing_changes(app, db):
    with app.app_context():
        first = campaigns.create(db, GOOD, "mike")
        with pytest.raises(campaigns.CampaignInvalid) as exc:
            campaigns.create(db, {**GOOD, "properties": ["nope"]}, "mike")
        assert set(exc.value.errors) == {"tune_campaign_id", "properties"}
        second = campaigns.create(db, {**GOOD, "tune_campaign_id": 999}, "mike")
        with pytest.raises(campaigns.CampaignInvalid):
            campaigns.update(db, second["id"], {"tune_campaign_id": 1234}, "mike")
    assert db.execute("SELECT count(*) FROM campaigns").fetchone()[0] == 2
    assert campaigns.get(db, second["id"])["tune_campaign_id"] == 999
    assert len(audit_rows(db, first["id"])) == 1


def test_update_checks_schedule_against_stored_values(app, db):
    with app.app_context():
        created = campaigns.create(db, GOOD, "mike")
        with pytest.raises(campaigns.CampaignInvalid) as exc:
            campaigns.update(db, created["id"], {"end_at": "2026-11-01T00:00:00Z"}, "mike")
    assert set(exc.value.errors) == {"end_at"}


def test_set_active_deactivate_and_notify(app, db):
    seen = []
    receiver = lambda sender: seen.append(sender)     # noqa: E731
    signals.catalog_changed.connect(receiver)
    try:
        with app.app_context():
            created = campaigns.create(db, GOOD, "mike")
            paused = campaigns.set_active(db, created["id"], False, "mike")
            gone = campaigns.deactivate(db, created["id"], "mike")     # already inactive: no change
            with pytest.raises(campaigns.CampaignNotFound):
                campaigns.deactivate(db, 424242, "mike")
    finally:
        signals.catalog_changed.disconnect(receiver)
    assert paused["active"] is False and gone["active"] is False
    assert [r["action"] for r in audit_rows(db, created["id"])] == ["campaign.create", "campaign.toggle"]
    assert seen == [app, app]      # one notification per committed change


def test_list_filters(app, db):
    with app.app_context():
        a = campaigns.create(db, {**GOOD, "tune_campaign_id": 1, "name": "Alpha 100%", "properties": ["mff"]}, "m")
        b = campaigns.create(db, {**GOOD, "tune_campaign_id": 2, "name": "Beta", "properties": [], "priority": 9}, "m")
        c = campaigns.create(db, {**GOOD, "tune_campaign_id": 3, "name": "Gamma", "properties": ["mmm"]}, "m")
        campaigns.set_active(db, c["id"], False, "m")
    ids = lambda **kw: [x["id"] for x in campaigns.list_campaigns(db, **kw)]   # noqa: E731
    assert ids() == [b["id"], a["id"], c["id"]]             # active first, then priority
    assert ids(status="paused") == [c["id"]]
    assert ids(property_code="mff") == [b["id"], a["id"]]  # "all properties" runs on mff too
    assert ids(text="100%") == [a["id"]]                    # LIKE wildcards are literal
    assert ids(text="_") == []                            # "_" is not "any character"
    assert ids(text="2") == [b["id"]]                       # Tune id
