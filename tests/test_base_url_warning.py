"""The admin warns, where it hands out URLs, when POPUP_BASE_URL would not reach the world."""
import pytest

from popup_mgr import config as settings
from popup_mgr import create_app, urls
from popup_mgr.ingest import state as ingest
from tests.helpers import TEST_SECRET, log_in_session

PAGES = ("/admin/install", "/admin/settings/postback", "/admin/dashboard")


@pytest.mark.parametrize("url, configured, production, fragment", [
    ("http://127.0.0.1:8000", False, False, "POPUP_BASE_URL is not set"),
    ("http://127.0.0.1:8000", True, False, "loopback"),
    ("http://localhost:8000", True, False, "local name"),
    ("http://[::1]:8000", True, False, "loopback"),
    ("http://192.168.1.20", True, False, "private address"),
    ("https://10.0.0.5", True, True, "private address"),
    ("https://popup.local", True, False, "local name"),
    ("https://offers.test", True, False, "local name"),
    ("http://popupbox", True, False, "single-label"),
    ("http://offers.modefreefinds.com", True, True, "plain http"),
])
def test_unreachable_base_urls_are_named_with_the_fix(url, configured, production, fragment):
    warning = urls.base_url_warning(url, configured, production)
    assert fragment in warning
    assert "POPUP_BASE_URL=https://" in warning      # always says what to set


@pytest.mark.parametrize("url, production", [
    ("https://offers.modefreefinds.com", True),
    ("http://offers.modefreefinds.com", False),      # staging on plain http is allowed outside production
    ("https://8.8.8.8", True),
])
def test_public_base_urls_raise_no_warning(url, production):
    assert urls.base_url_warning(url, True, production) is None


def test_configured_comes_from_the_environment():
    assert settings.from_environment({})["BASE_URL_CONFIGURED"] is False
    assert settings.from_environment({"POPUP_BASE_URL": "https://x.example.org"})["BASE_URL_CONFIGURED"] is True


def _admin_client(tmp_path, **config):
    from popup_mgr import users
    from popup_mgr import db as database
    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "popup.db"), "SECRET_KEY": TEST_SECRET,
                      "POSTBACK_SECRET": "postback-test-secret", **config})
    conn = database.connect(app.config["DATABASE"])
    client = app.test_client()
    try:
        user_id = users.create_user(conn, "mike", "a-long-test-password-1")
        with client.session_transaction() as session:
            log_in_session(conn, session, user_id)
    finally:
        conn.close()
    return app, client


@pytest.mark.parametrize("path", PAGES)
def test_pages_that_hand_out_urls_warn_when_base_url_is_unset(tmp_path, path):
    app, client = _admin_client(tmp_path, BASE_URL="http://127.0.0.1:8000", BASE_URL_CONFIGURED=False)
    try:
        page = client.get(path).get_data(as_text=True)
        assert 'class="flash flash-error base-url-warning"' in page
        assert "POPUP_BASE_URL is not set" in page
        assert "POPUP_BASE_URL=https://offers.example.com" in page
    finally:
        ingest.stop(app)


@pytest.mark.parametrize("path", PAGES)
def test_no_warning_with_a_public_https_base_url(tmp_path, path):
    app, client = _admin_client(tmp_path, BASE_URL="https://offers.modefreefinds.com",
                                BASE_URL_CONFIGURED=True, ENV_NAME="production")
    try:
        response = client.get(path)
        assert response.status_code == 200
        assert "base-url-warning" not in response.get_data(as_text=True)
    finally:
        ingest.stop(app)
