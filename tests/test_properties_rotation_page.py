"""The Properties page's Rotation section: each mode explained, the mode and the most offers per
popup saved from the form, each offer's share of first position, and auto's learned revenue."""
import re

import pytest

from popup_mgr import rotation
from tests.helpers import add_campaign, csrf_token, set_property
from tests.test_rotation import add_days

HX = {"HX-Request": "true"}
FORM = {"name": "ModeFreeFinds", "domain": "modefreefinds.com", "popup_enabled": "1", "active": "1",
        "popup_placement": "thankyou", "popup_frequency": "session", "delay_ms": "1000",
        "theme_primary": "#d6246e", "theme_accent": "#1f5fbf", "theme_background": "#ffffff",
        "theme_text": "#1b1f24", "theme_cta_text": "#ffffff", "theme_logo_url": ""}


def card(html, code):
    """The property's form (one card) out of the page."""
    return re.search(rf'<form class="card property-card" id="property-{code}".*?</form>', html, re.S).group(0)


def shares_shown(html):
    """{offer title: share of first position in %} from a card's table."""
    rows = re.findall(r'<td class="rotation-offer">([^<]+)</td>.*?([\d.]+) %</td>', html, re.S)
    return {title: float(share) for title, share in rows}


def test_each_mode_is_explained_and_the_saved_one_is_selected(admin_client, db):
    set_property(db, "mmm", rotation="even")
    page = admin_client.get("/admin/properties").get_data(as_text=True)
    for mode, help_line in rotation.MODE_HELP.items():
        assert help_line in page
    assert re.search(r'value="priority" checked', card(page, "mff"))
    assert re.search(r'value="even" checked', card(page, "mmm"))
    assert 'name="max_offers" type="number" min="1" max="20" step="1" value="5"' in card(page, "mff")


def test_shares_of_first_position_are_shown_per_mode(admin_client, db):
    for priority in (1, 3, 6):
        add_campaign(db, priority=priority, title=f"Priority {priority}")
    set_property(db, "mmm", rotation="even")
    page = admin_client.get("/admin/properties").get_data(as_text=True)
    assert shares_shown(card(page, "mff")) == {"Priority 6": 60.0, "Priority 3": 30.0, "Priority 1": 10.0}
    assert shares_shown(card(page, "mmm")) == pytest.approx(dict.fromkeys(["Priority 1", "Priority 3", "Priority 6"], 33.3))
    # No learned revenue outside auto mode.
    assert "Revenue / 1,000 impressions" not in card(page, "mff")


def test_auto_shows_the_learned_revenue_with_its_range(app, admin_client, db):
    good = add_campaign(db, priority=1, title="Earner", payout_cents=500)
    poor = add_campaign(db, priority=10, title="Favourite", payout_cents=500)
    add_days(app, db, good, 7, 2000, 60, 15, 500)
    add_days(app, db, poor, 7, 2000, 60, 1, 500)
    set_property(db, "mff", rotation="auto")
    html = card(admin_client.get("/admin/properties").get_data(as_text=True), "mff")
    assert "Revenue / 1,000 impressions" in html
    shares = shares_shown(html)
    assert shares["Earner"] > 90 and shares["Favourite"] < 10
    revenue = {title: (float(mid), float(low), float(high)) for title, mid, low, high in re.findall(
        r'<td class="rotation-offer">([^<]+)</td>.*?\$([\d.]+)\s*<span class="muted[^"]*">\(\$([\d.]+)–\$([\d.]+)\)',
        html, re.S)}
    # 15 conversions x $5 per 2,000 impressions is $37.50 per 1,000 impressions; 1 conversion is $2.50.
    mid, low, high = revenue["Earner"]
    assert low < mid < high and low < 37.5 < high and 30 < mid < 45
    assert revenue["Favourite"][0] < 6


def test_the_form_saves_the_mode_and_the_maximum(admin_client, db):
    token = csrf_token(admin_client, "/admin/properties")
    response = admin_client.post("/admin/properties/mff", data={**FORM, "rotation": "auto", "max_offers": "3"},
                                 headers={"X-CSRFToken": token, **HX})
    assert response.status_code == 200 and "Saved" in response.get_data(as_text=True)
    assert re.search(r'value="auto" checked', response.get_data(as_text=True))
    row = db.execute("SELECT rotation, max_offers FROM properties WHERE code = 'mff'").fetchone()
    assert tuple(row) == ("auto", 3)
    changes = db.execute("SELECT changes FROM audit_log ORDER BY id DESC").fetchone()[0]
    assert '"rotation"' in changes and '"max_offers"' in changes


@pytest.mark.parametrize("field, value", [("rotation", "random"), ("max_offers", "0"), ("max_offers", "21"),
                                          ("max_offers", "three")])
def test_a_bad_mode_or_maximum_is_refused_with_nothing_changed(admin_client, db, field, value):
    token = csrf_token(admin_client, "/admin/properties")
    before = tuple(db.execute("SELECT * FROM properties WHERE code = 'mff'").fetchone())
    response = admin_client.post("/admin/properties/mff", data={**FORM, "rotation": "even", "max_offers": "4",
                                                                field: value},
                                 headers={"X-CSRFToken": token, **HX})
    html = response.get_data(as_text=True)
    assert "Not saved" in html and '<span class="error">' in html
    assert tuple(db.execute("SELECT * FROM properties WHERE code = 'mff'").fetchone()) == before


def test_a_property_serving_nothing_says_so(admin_client, db):
    add_campaign(db, priority=5)
    set_property(db, "mff", popup_enabled=0)
    html = card(admin_client.get("/admin/properties").get_data(as_text=True), "mff")
    assert "No offers are served here now" in html and "rotation-table" not in html
