"""image_check against a real local HTTP server (pytest-httpserver): what passes and what fails,
the size cap and the timeout, redirects, the stored results, and that only image_url is fetched."""
import datetime as dt
import time

import pytest
from werkzeug import Response

from tests.helpers import add_campaign
from popup_mgr import db as database
from popup_mgr import image_check

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 300
LIMITS = image_check.Limits(timeout_s=2.0, max_bytes=10_000, max_redirects=3)
NOW = dt.datetime(2026, 11, 28, 15, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def client():
    with image_check.new_client(LIMITS) as c:
        yield c


def check(client, httpserver, path, limits=LIMITS):
    return image_check.check_url(client, httpserver.url_for(path), limits)


def test_an_image_passes(client, httpserver):
    httpserver.expect_request("/a.png").respond_with_data(PNG, content_type="image/png")
    result = check(client, httpserver, "/a.png")
    assert (result.ok, result.status, result.content_type, result.bytes, result.error) == \
        (True, 200, "image/png", len(PNG), "")
    request, _ = httpserver.log[0]
    assert request.headers["User-Agent"] == image_check.USER_AGENT


@pytest.mark.parametrize("respond, error", [
    (lambda r: r.respond_with_data(PNG, status=404, content_type="image/png"), "HTTP 404"),
    (lambda r: r.respond_with_data(PNG, status=500, content_type="image/png"), "HTTP 500"),
    (lambda r: r.respond_with_data("<html>gone</html>", content_type="text/html"),
     "not an image (Content-Type text/html)"),
    (lambda r: r.respond_with_response(Response(PNG, headers={"Content-Type": ""})),
     "not an image (Content-Type missing)"),
    (lambda r: r.respond_with_data(b"", content_type="image/png"), "empty answer"),
    (lambda r: r.respond_with_data(b"x" * 10_001, content_type="image/jpeg"), "larger than 10000 bytes (10001)"),
])
def test_broken_images_fail_with_the_reason(client, httpserver, respond, error):
    respond(httpserver.expect_request("/img"))
    result = check(client, httpserver, "/img")
    assert not result.ok
    assert result.error == error


def test_an_endless_image_is_cut_at_the_size_cap(client, httpserver):
    def endless():
        while True:
            yield b"\xff" * 4096
    # A generator body is sent chunked, without Content-Length: only counting while reading can stop it.
    httpserver.expect_request("/endless.jpg").respond_with_handler(
        lambda request: Response(endless(), content_type="image/jpeg"))
    result = check(client, httpserver, "/endless.jpg")
    assert not result.ok and result.error == "larger than 10000 bytes"
    assert 10_000 < result.bytes <= 10_000 + 64 * 1024


def test_a_slow_server_times_out(client, httpserver):
    def slow(request):
        time.sleep(1.0)
        return Response(PNG, content_type="image/png")
    httpserver.expect_request("/slow.png").respond_with_handler(slow)
    limits = image_check.Limits(timeout_s=0.3, max_bytes=10_000, max_redirects=3)
    with image_check.new_client(limits) as quick:
        result = image_check.check_url(quick, httpserver.url_for("/slow.png"), limits)
    assert not result.ok and result.error == "no answer within 0.3 s"
    assert result.elapsed_ms < 1000


def test_redirects_are_followed_to_http_urls_only(client, httpserver):
    httpserver.expect_request("/old.png").respond_with_data("", status=301, headers={"Location": "/mid.png"})
    httpserver.expect_request("/mid.png").respond_with_data(
        "", status=302, headers={"Location": httpserver.url_for("/new.png")})
    httpserver.expect_request("/new.png").respond_with_data(PNG, content_type="image/png")
    httpserver.expect_request("/to-file").respond_with_data("", status=302, headers={"Location": "file:///etc/passwd"})
    httpserver.expect_request("/loop").respond_with_data("", status=307, headers={"Location": "/loop"})

    assert check(client, httpserver, "/old.png").ok
    assert check(client, httpserver, "/to-file").error == "redirected to a non-http(s) URL: file:///etc/passwd"
    assert check(client, httpserver, "/loop").error == "more than 3 redirects"
    # /loop was asked once, then followed 3 times: nothing more.
    assert sum(1 for request, _ in httpserver.log if request.path == "/loop") == 4


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/a.png", "javascript:alert(1)", "http:///a.png"])
def test_only_http_urls_are_fetched(client, url):
    result = image_check.check_url(client, url, LIMITS)
    assert not result.ok and result.error == "not an http(s) URL"


def test_nobody_listening(client):
    result = image_check.check_url(client, "http://127.0.0.1:9/a.png", LIMITS)
    assert not result.ok and result.error.startswith("cannot load:")


# --- every campaign ----------------------------------------------------------------------------

def set_urls(db, campaign_id, **urls):
    with database.transaction(db):
        for column, value in urls.items():
            db.execute(f"UPDATE campaigns SET {column} = ? WHERE id = ?", (value, campaign_id))


def config(app, **extra):
    return {**app.config, "IMAGE_CHECK_TIMEOUT_S": 2.0, "IMAGE_CHECK_MAX_BYTES": 10_000, **extra}


def test_only_image_urls_of_active_campaigns_are_fetched(app, db, httpserver):
    """Click and pixel URLs would count at the network: the checker must never request them."""
    for path in ("/image.png", "/paused.png"):
        httpserver.expect_request(path).respond_with_data(PNG, content_type="image/png")
    active, paused, imageless = (add_campaign(db, name="active"), add_campaign(db, name="paused", active=0),
                                 add_campaign(db, name="no image"))
    for campaign_id, image in ((active, "/image.png"), (paused, "/paused.png"), (imageless, None)):
        set_urls(db, campaign_id, image_url=httpserver.url_for(image) if image else "",
                 click_url=httpserver.url_for(f"/aff_c?offer_id={campaign_id}"),
                 impression_pixel_url=httpserver.url_for(f"/aff_i?offer_id={campaign_id}"))

    results = image_check.check_all(db, config(app), NOW)

    assert [request.path for request, _ in httpserver.log] == ["/image.png"]
    assert set(results) == {active} and results[active].ok


def test_results_are_stored_with_consecutive_failures(app, db, httpserver):
    campaign_id = add_campaign(db, name="flaky")
    set_urls(db, campaign_id, image_url=httpserver.url_for("/a.png"))
    answers = iter([(PNG, 200), (b"", 404), (b"", 404), (PNG, 200)])
    httpserver.expect_request("/a.png").respond_with_handler(
        lambda request: Response(*next(answers), content_type="image/png"))
    httpserver.expect_request("/b.png").respond_with_data("", status=410)

    def run(hour):
        image_check.check_all(db, config(app), NOW.replace(hour=hour))
        [row] = image_check.latest_results(db)
        return row["ok"], row["failures"], row["last_ok_at"], row["error"]

    assert run(10) == (1, 0, "2026-11-28T10:00:00Z", "")
    assert run(11) == (0, 1, "2026-11-28T10:00:00Z", "HTTP 404")
    assert run(12) == (0, 2, "2026-11-28T10:00:00Z", "HTTP 404")
    assert run(13) == (1, 0, "2026-11-28T13:00:00Z", "")
    # A new URL starts its own count, and the old URL's last success says nothing about it.
    set_urls(db, campaign_id, image_url=httpserver.url_for("/b.png"))
    assert run(14) == (0, 1, None, "HTTP 410")
    [row] = image_check.latest_results(db)
    assert row["url"] == row["current_url"] == httpserver.url_for("/b.png")
    assert row["checked_at"] == "2026-11-28T14:00:00Z" and row["name"] == "flaky"


def test_job_reports_one_line(app, db, httpserver):
    good, bad = add_campaign(db, name="good"), add_campaign(db, name="bad")
    httpserver.expect_request("/good.png").respond_with_data(PNG, content_type="image/png")
    httpserver.expect_request("/bad.png").respond_with_data("nope", content_type="text/plain")
    set_urls(db, good, image_url=httpserver.url_for("/good.png"))
    set_urls(db, bad, image_url=httpserver.url_for("/bad.png"))

    line = image_check.job(config(app), NOW)

    assert line == (f"checked 2 images: 1 ok, 1 failing (campaign {bad}: not an image (Content-Type text/plain))")
