"""In Chromium: choosing "Custom" keeps the days on screen, and choosing a preset afterwards
leaves no stale from/to in the address bar."""
from urllib.parse import parse_qs, urlsplit


def _query(page):
    return parse_qs(urlsplit(page.url).query)


def _wait_for_range(page, text):
    page.wait_for_function("(t) => document.querySelector('#dashboard-body').dataset.range === t", arg=text)


def test_custom_from_today_keeps_the_day_and_presets_drop_from_and_to(admin_page, live_server):
    admin_page.goto(f"{live_server.url}/admin/dashboard?range=today")
    today = admin_page.locator("#dashboard-body").get_attribute("data-range").split("/")[0]
    admin_page.select_option("select[data-range-select]", "custom")
    admin_page.wait_for_function("() => location.search.includes('range=custom')")
    _wait_for_range(admin_page, f"{today}/{today}")          # not the last 30 days
    assert _query(admin_page)["from"] == [today] and _query(admin_page)["to"] == [today]
    admin_page.select_option("select[data-range-select]", "7d")
    admin_page.wait_for_function("() => location.search.includes('range=7d')")
    query = _query(admin_page)
    assert "from" not in query and "to" not in query
    assert admin_page.locator("input[name=from]").is_disabled()
