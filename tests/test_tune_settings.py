"""Tune settings: environment first, then the database, with the saved key encrypted."""
import json

import pytest

from popup_mgr import tune_settings
from popup_mgr.tune_client import DEFAULT_API_URL
from tests.tune_standin import API_KEY, NETWORK_ID, TuneStandin

SECRET = "app-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
OTHER_SECRET = "another-app-secret-9876543210-zyxwvutsrqponmlk"


def load(db, secret=SECRET, environ=None):
    return tune_settings.load(db, secret, "America/New_York", environ or {})


def test_nothing_set_is_not_configured_with_defaults(db):
    settings = load(db)
    assert not settings.configured and settings.problem is None
    assert (settings.api_url, settings.tz, settings.sync_s) == (DEFAULT_API_URL, "America/New_York", 900)


def test_saved_settings_are_used_and_the_key_is_stored_encrypted(db):
    changes = tune_settings.save(db, SECRET, "mike", network_id=NETWORK_ID, api_key=API_KEY,
                                 tz="America/Los_Angeles")
    settings = load(db)

    assert settings.configured and settings.api_key == API_KEY and settings.tz == "America/Los_Angeles"
    assert settings.sources == {"network_id": "database", "api_key": "database", "api_url": "default",
                                "tz": "database"}
    stored = db.execute("SELECT value FROM settings WHERE key = 'tune.api_key'").fetchone()[0]
    assert API_KEY not in stored and tune_settings.decrypt_key(SECRET, stored) == API_KEY
    # The audit log and the page's JSON only ever show the masked key.
    audit_text = " ".join(row[0] for row in db.execute("SELECT changes FROM audit_log"))
    assert API_KEY not in audit_text and changes["api_key"] == [None, "••••abcd"]
    assert settings.as_json()["api_key"] == "••••abcd" and API_KEY not in json.dumps(settings.as_json())
    assert API_KEY not in repr(settings) and API_KEY not in repr(settings.client())


def test_saving_the_same_values_again_changes_nothing(db):
    tune_settings.save(db, SECRET, "mike", network_id=NETWORK_ID, api_key=API_KEY)
    assert tune_settings.save(db, SECRET, "mike", network_id=NETWORK_ID, api_key=API_KEY) == {}
    assert db.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 1


def test_environment_wins_over_the_database(db):
    tune_settings.save(db, SECRET, "mike", network_id="saved", api_key="savedkey-123456789")
    settings = load(db, environ={"POPUP_TUNE_NETWORK_ID": "envnet", "POPUP_TUNE_API_KEY": "envkey-123456789",
                                 "POPUP_TUNE_API_URL": "http://127.0.0.1:9/Apiv3/json",
                                 "POPUP_TUNE_TZ": "UTC", "POPUP_TUNE_SYNC_S": "1800"})
    assert (settings.network_id, settings.api_key, settings.api_url, settings.tz, settings.sync_s) == (
        "envnet", "envkey-123456789", "http://127.0.0.1:9/Apiv3/json", "UTC", 1800)
    assert set(settings.sources.values()) == {"environment"}


def test_a_changed_app_secret_asks_for_the_key_again(db):
    tune_settings.save(db, SECRET, "mike", network_id=NETWORK_ID, api_key=API_KEY)
    settings = load(db, secret=OTHER_SECRET)
    assert not settings.configured and settings.api_key == ""
    assert settings.problem == tune_settings.KEY_UNREADABLE and "Enter the API key again" in settings.problem
    # Entering it again under the new secret works.
    tune_settings.save(db, OTHER_SECRET, "mike", api_key=API_KEY)
    assert load(db, secret=OTHER_SECRET).configured


@pytest.mark.parametrize("field, value", [
    ("network_id", "has space"), ("api_key", "short"), ("api_url", "ftp://x.example/"), ("tz", "Mars/Olympus"),
])
def test_invalid_input_is_refused_field_by_field(db, field, value):
    with pytest.raises(tune_settings.SettingsInvalid) as caught:
        tune_settings.save(db, SECRET, "mike", **{field: value})
    assert list(caught.value.errors) == [field]
    assert db.execute("SELECT count(*) FROM settings WHERE key LIKE 'tune.%'").fetchone()[0] == 0


def test_empty_url_returns_to_the_default_and_forget_removes_everything(db):
    tune_settings.save(db, SECRET, "mike", network_id=NETWORK_ID, api_key=API_KEY, api_url="http://127.0.0.1:9/x")
    tune_settings.save(db, SECRET, "mike", api_url="")
    assert load(db).api_url == DEFAULT_API_URL
    tune_settings.forget(db, "mike")
    assert not load(db).configured


def test_masked():
    assert tune_settings.masked("") == ""
    assert tune_settings.masked("short-key") == "••••"
    assert tune_settings.masked("0123456789abcdef") == "••••cdef"


def test_saved_settings_reach_the_network(db, httpserver):
    tune = TuneStandin(httpserver)
    tune.add_offer(1001)
    tune_settings.save(db, SECRET, "mike", network_id=NETWORK_ID, api_key=API_KEY, api_url=tune.url)
    ok, message = load(db).client(retries=0).test_connection()
    assert ok and message == f"Connected to network {NETWORK_ID}. 1 approved offer."
