"""Checks that every active campaign's image still loads, the way a visitor's browser would need it.

Only `image_url` is ever fetched. Click URLs and impression pixel URLs are never requested by the
server: the network would count those requests as clicks and impressions.

A check passes when the URL answers 200 with a `Content-Type: image/...` and a non-empty body no
larger than IMAGE_CHECK_MAX_BYTES, within IMAGE_CHECK_TIMEOUT_S for the whole check. The body is
streamed and reading stops at the cap, so a huge or endless answer costs at most the cap.
Redirects are followed by hand, at most IMAGE_CHECK_MAX_REDIRECTS of them, and only to http(s)
URLs. The latest result per campaign is kept in `image_checks` (with the count of consecutive
failures of the same URL) for the alert rule and the admin.
"""
import dataclasses
import datetime as dt
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import httpx

from popup_mgr import alert_settings, timeutil
from popup_mgr import db as database

REDIRECTS = {301, 302, 303, 307, 308}
# Checks run a few at a time: one slow host should not hold up the rest, and the box is small.
PARALLEL_CHECKS = 4
USER_AGENT = "popup_mgr image check"


@dataclasses.dataclass(frozen=True)
class Result:
    url: str
    ok: bool
    status: int | None = None
    content_type: str = ""
    bytes: int = 0
    elapsed_ms: int = 0
    error: str = ""


@dataclasses.dataclass(frozen=True)
class Limits:
    timeout_s: float
    max_bytes: int
    max_redirects: int

    @classmethod
    def from_config(cls, config):
        return cls(timeout_s=alert_settings.get(config, "IMAGE_CHECK_TIMEOUT_S"),
                   max_bytes=alert_settings.get(config, "IMAGE_CHECK_MAX_BYTES"),
                   max_redirects=alert_settings.get(config, "IMAGE_CHECK_MAX_REDIRECTS"))


# --- one URL -----------------------------------------------------------------------------------

def check_url(client, url, limits):
    """Result of fetching one image URL with `client` (an httpx.Client that does not follow
    redirects on its own)."""
    started = time.monotonic()
    deadline = started + limits.timeout_s
    try:
        result = _follow(client, url, limits, deadline)
    except httpx.TimeoutException:
        result = Result(url, False, error=f"no answer within {limits.timeout_s:g} s")
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
        result = Result(url, False, error=f"cannot load: {_short(exc)}")
    return dataclasses.replace(result, elapsed_ms=int((time.monotonic() - started) * 1000))


def _follow(client, url, limits, deadline):
    if not _is_http(url):
        return Result(url, False, error="not an http(s) URL")
    current = url
    for _ in range(limits.max_redirects + 1):
        with client.stream("GET", current) as response:
            if response.status_code not in REDIRECTS or "location" not in response.headers:
                return _judge(url, response, limits, deadline)
            current = urllib.parse.urljoin(current, response.headers["location"])
        if not _is_http(current):
            return Result(url, False, error=f"redirected to a non-http(s) URL: {current[:200]}")
        if time.monotonic() > deadline:
            return Result(url, False, error=f"no answer within {limits.timeout_s:g} s")
    return Result(url, False, error=f"more than {limits.max_redirects} redirects")


def _judge(url, response, limits, deadline):
    status = response.status_code
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    failed = _failure(url, status, content_type)
    if status != 200:
        return failed(f"HTTP {status}")
    if not content_type.startswith("image/"):
        return failed(f"not an image (Content-Type {content_type or 'missing'})")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        return failed(f"larger than {limits.max_bytes} bytes ({declared})")
    size = 0
    for chunk in response.iter_raw():
        size += len(chunk)
        if size > limits.max_bytes:
            return failed(f"larger than {limits.max_bytes} bytes", size)
        if time.monotonic() > deadline:
            return failed(f"not complete within {limits.timeout_s:g} s", size)
    if size == 0:
        return failed("empty answer")
    return Result(url, True, status, content_type, size)


def _failure(url, status, content_type):
    """A function making failed Results for this answer."""
    def failed(error, size=0):
        return Result(url, False, status, content_type, size, error=error)
    return failed


def _is_http(url):
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _short(exc):
    return (str(exc) or type(exc).__name__)[:200]


def new_client(limits):
    return httpx.Client(follow_redirects=False, timeout=httpx.Timeout(limits.timeout_s),
                        headers={"User-Agent": USER_AGENT, "Accept": "image/*"})


# --- every active campaign -----------------------------------------------------------------------

def campaigns_to_check(db):
    """Active campaigns with an image, as (id, image_url)."""
    return [(r["id"], r["image_url"]) for r in db.execute(
        "/* image_check.campaigns_to_check */ SELECT id, image_url FROM campaigns"
        " WHERE active = 1 AND image_url != '' ORDER BY id")]


def check_all(db, config, now=None):
    """Check every active campaign's image and store the results; returns {campaign_id: Result}.

    The network requests run outside any transaction; only storing the results writes.
    """
    now = now or dt.datetime.now(timeutil.UTC)
    limits = Limits.from_config(config)
    targets = campaigns_to_check(db)
    with new_client(limits) as client, ThreadPoolExecutor(PARALLEL_CHECKS) as pool:
        results = dict(zip([c for c, _ in targets],
                           pool.map(lambda target: check_url(client, target[1], limits), targets)))
    store_results(db, results, timeutil.iso_utc(now))
    return results


def store_results(db, results, checked_at):
    """Keep each campaign's latest result; failures counts consecutive failures of one URL."""
    with database.transaction(db):
        for campaign_id, result in results.items():
            db.execute(
                "/* image_check.store_results */ INSERT INTO image_checks (campaign_id, url, checked_at, ok,"
                " status, content_type, bytes, elapsed_ms, error, failures, last_ok_at)"
                " VALUES (:campaign_id, :url, :checked_at, :ok, :status, :content_type, :bytes, :elapsed_ms,"
                "  :error, 1 - :ok, CASE WHEN :ok THEN :checked_at END)"
                " ON CONFLICT (campaign_id) DO UPDATE SET"
                "  failures = CASE WHEN excluded.ok THEN 0 WHEN url = excluded.url THEN failures + 1 ELSE 1 END,"
                "  last_ok_at = CASE WHEN excluded.ok THEN excluded.checked_at"
                "                    WHEN url = excluded.url THEN last_ok_at END,"
                "  url = excluded.url, checked_at = excluded.checked_at, ok = excluded.ok,"
                "  status = excluded.status, content_type = excluded.content_type, bytes = excluded.bytes,"
                "  elapsed_ms = excluded.elapsed_ms, error = excluded.error",
                {"campaign_id": campaign_id, "checked_at": checked_at, **dataclasses.asdict(result),
                 "ok": int(result.ok)})


def latest_results(db):
    """The latest check of every campaign that has one, with the campaign's current image_url and
    active flag (a result for an older URL is stale), failing ones first."""
    return [dict(r) for r in db.execute(
        "/* image_check.latest_results */ SELECT i.campaign_id, c.name, c.active, c.image_url AS current_url,"
        " i.url, i.checked_at, i.ok, i.status, i.content_type, i.bytes, i.elapsed_ms, i.error, i.failures,"
        " i.last_ok_at FROM image_checks i JOIN campaigns c ON c.id = i.campaign_id"
        " ORDER BY i.ok, i.campaign_id")]


def job(app_config, now=None):
    """Scheduled job: check every image; one line saying how it went."""
    with database.connection(app_config["DATABASE"]) as db:
        results = check_all(db, app_config, now)
    failing = {cid: r for cid, r in results.items() if not r.ok}
    line = f"checked {len(results)} images: {len(results) - len(failing)} ok, {len(failing)} failing"
    if failing:
        line += " (" + "; ".join(f"campaign {cid}: {r.error}" for cid, r in sorted(failing.items())[:5]) + ")"
    return line
