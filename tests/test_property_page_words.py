"""The Properties page in plain words: the delay in seconds, the two switches explained, and a
preview of each theme."""
import re

import pytest

from popup_mgr import properties
from tests.helpers import csrf_token

HX = {"HX-Request": "true"}


def _form(**fields):
    return {"name": "ModeFreeFinds", "domain": "modefreefinds.com", "popup_enabled": "1", "active": "1",
            "popup_placement": "thankyou", "popup_frequency": "session", "delay_s": "1",
            "theme_primary": "#d6246e", "theme_accent": "#1f5fbf", "theme_background": "#ffffff",
            "theme_text": "#1b1f24", "theme_cta_text": "#ffffff", "theme_logo_url": "", **fields}


def test_the_delay_is_shown_in_seconds(admin_client):
    page = admin_client.get("/admin/properties").get_data(as_text=True)
    assert "Opens after (seconds)" in page and "(ms)" not in page
    assert re.search(r'name="delay_s" inputmode="decimal" value="1"', page)     # the default 1000 ms


@pytest.mark.parametrize("typed, stored", [("2.5", 2500), ("0", 0), ("1,5", 1500), ("0.25", 250), ("600", 600_000)])
def test_seconds_are_stored_as_milliseconds(admin_client, db, typed, stored):
    token = csrf_token(admin_client, "/admin/properties")
    answer = admin_client.post("/admin/properties/mff", data=_form(delay_s=typed), headers={"X-CSRFToken": token, **HX})
    assert 'role="status">Saved' in answer.get_data(as_text=True)
    assert properties.get(db, "mff")["delay_ms"] == stored
    assert f'value="{properties.ms_to_seconds(stored)}"' in answer.get_data(as_text=True)


@pytest.mark.parametrize("typed", ["abc", "-1", "601", "1.2345"])
def test_a_bad_delay_is_refused_in_seconds_and_kept_as_typed(admin_client, db, typed):
    token = csrf_token(admin_client, "/admin/properties")
    body = admin_client.post("/admin/properties/mff", data=_form(delay_s=typed),
                             headers={"X-CSRFToken": token, **HX}).get_data(as_text=True)
    assert "Enter seconds from 0 to 600, e.g. 1.5." in body and "milliseconds" not in body
    assert properties.get(db, "mff")["delay_ms"] == 1000


def test_the_switches_say_what_they_do(admin_client):
    page = admin_client.get("/admin/properties").get_data(as_text=True)
    assert "Show the popup on this site" in page and "the snippet stays on the page and shows nothing" in page
    assert "This site is in use" in page and "Property active" not in page and "Popup enabled" not in page


def test_each_property_has_a_theme_preview(admin_client):
    page = admin_client.get("/admin/properties").get_data(as_text=True)
    assert page.count('class="popup-preview theme-preview"') == 4
    assert "properties.js" in page and "style=" not in page


def test_the_api_keeps_milliseconds(app, db):
    with app.app_context():
        properties.update(db, "mmm", {"delay_ms": 1234}, "api")
    assert properties.get(db, "mmm")["delay_ms"] == 1234
