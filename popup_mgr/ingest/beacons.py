"""Beacons and clicks: parse them, check their signed offer token against the catalog, and hand
them to the group-commit writer (writer.py); the click's destination URL.

Duplicates are recognised by event_id (per kind) only. record_impression() and record_click()
return only after the event's batch is committed: returning means "on disk".
"""
import contextlib
import json
import re
import secrets
import sqlite3
from dataclasses import dataclass
from urllib.parse import quote, unquote_plus

from popup_mgr import catalog, timeutil
from popup_mgr.ingest import bots, state, tokens
from popup_mgr.ingest.errors import ClickNotConfirmed, EventError, IngestUnavailable

MAX_BEACON_BYTES = 4096
_EVENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
CLICK_ID_BYTES = 15                      # 20 URL-safe characters


@dataclass(frozen=True)
class Beacon:
    token: str
    event_id: str
    session_id: str | None = None
    # An impression beacon's "view": 1 marks the first offer seen in a popup display (so views
    # can be counted next to impressions); absent or 0 for the others and for clicks.
    is_view: bool = False


@dataclass(frozen=True)
class Visitor:
    ip: str
    user_agent: str


@dataclass(frozen=True)
class ClickResult:
    click_id: str
    redirect_url: str
    counted: bool          # False for a replayed event_id
    campaign_paused: bool


# --- parsing -----------------------------------------------------------------------------------

def parse_beacon(body):
    """Validate a beacon body (bytes) and return a Beacon; raise EventError with the reason."""
    if len(body) > MAX_BEACON_BYTES:
        raise EventError("body too large")
    if not body:
        raise EventError("empty body")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise EventError("body is not JSON") from None
    if not isinstance(data, dict):
        raise EventError("body must be a JSON object")
    token = data.get("token")
    if not isinstance(token, str) or not token:
        raise EventError("missing token")
    event_id = check_event_id(data.get("event_id"))
    session_id = data.get("session_id")
    if session_id is not None and (not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id)):
        raise EventError("session_id must be up to 64 characters of A-Z a-z 0-9 _ -")
    view = data.get("view", 0)
    if isinstance(view, str) or view not in (0, 1):
        raise EventError("view must be 0 or 1")
    return Beacon(token, event_id, session_id or None, bool(view))


def check_event_id(value):
    if not isinstance(value, str) or not _EVENT_ID.fullmatch(value):
        raise EventError("event_id must be 8-64 characters of A-Z a-z 0-9 _ -")
    return value


def new_event_id():
    return "srv-" + secrets.token_urlsafe(16)


def new_click_id():
    return secrets.token_urlsafe(CLICK_ID_BYTES)


def resolve_offer(app, token_text, now_ms=None):
    """Verify a signed offer token and look up its property and campaign (EventError if not)."""
    now_ms = timeutil.now_ms() if now_ms is None else now_ms
    try:
        token = tokens.verify(app.config["SECRET_KEY"], token_text, now_ms // 1000)
    except tokens.TokenError as exc:
        raise EventError(str(exc)) from None
    return catalog.of(app).resolve(token)


# --- recording beacons and clicks --------------------------------------------------------------

def record_impression(app, beacon, visitor, now_ms=None):
    """Count one impression (once per event_id). Returns True when new, False for a replay.
    Returns only after the commit; raises EventError (4xx) or IngestUnavailable (503)."""
    now_ms = timeutil.now_ms() if now_ms is None else now_ms
    with _database_errors_as_unavailable(app):
        offer = resolve_offer(app, beacon.token, now_ms)
        if offer.campaign.paused(now_ms):
            # Tokens live 7 days: without this a deactivated, ended or held campaign would keep
            # gaining impressions from old or replayed tokens. (A click on it still redirects and
            # is stored flagged: the visitor is real and must reach the offer.)
            raise EventError("campaign not active")
        row = _event_row(app, offer, beacon, visitor, now_ms)
    row["is_view"] = int(beacon.is_view)
    return state.of(app).writer.submit(("impression", row))


def record_click(app, beacon, visitor, now_ms=None):
    """Count one click (once per event_id) and return its ClickResult; the same click id and
    destination come back for a replayed event_id."""
    with _database_errors_as_unavailable(app):
        offer = resolve_offer(app, beacon.token, now_ms)
        row = _event_row(app, offer, beacon, visitor, now_ms)
    row["click_id"] = new_click_id()
    row["campaign_paused"] = int(offer.campaign.paused(row["ts"]))
    try:
        stored = state.of(app).writer.submit(("click", row))
    except IngestUnavailable as exc:
        # The click may still be committed later: a redirect must carry this same click id.
        raise ClickNotConfirmed(str(exc), click_target_url(offer.campaign, row["click_id"],
                                                           offer.token.property_code)) from None
    snapshot = catalog.of(app)
    campaign = snapshot.campaign(stored["campaign_id"]) or offer.campaign
    property_code = snapshot.property_code(stored["property_id"]) or offer.token.property_code
    return ClickResult(stored["click_id"], click_target_url(campaign, stored["click_id"], property_code),
                       stored["counted"], bool(stored["campaign_paused"]))


def uncounted_click_url(app, token_text):
    """Destination for HEAD and prefetch requests: same link, a fresh click id, nothing stored."""
    with _database_errors_as_unavailable(app):
        offer = resolve_offer(app, token_text)
    return click_target_url(offer.campaign, new_click_id(), offer.token.property_code)


@contextlib.contextmanager
def _database_errors_as_unavailable(app):
    """Catalog reloads and new daily salts read the database; a locked or broken database is a
    503 (retry later), never a 500, and counts as a refused write in /api/health."""
    try:
        yield
    except sqlite3.Error as exc:
        state.of(app).failures.record()
        raise IngestUnavailable(f"database unavailable ({type(exc).__name__})") from None


def _event_row(app, offer, beacon, visitor, now_ms):
    ts = timeutil.now_ms() if now_ms is None else now_ms
    ingest = state.of(app)
    return {
        "event_id": beacon.event_id,
        "ts": ts,
        "day": timeutil.business_day(ts, ingest.business_tz),
        "campaign_id": offer.campaign.id,
        "property_id": offer.property_id,
        "placement": offer.token.placement,
        "variant": offer.token.variant,
        "session_id": beacon.session_id,
        "visitor_hash": ingest.hasher.visitor_hash(visitor.ip, visitor.user_agent, ts),
        "is_bot": int(bots.is_bot(visitor.user_agent)),
    }


def click_target_url(campaign, click_id, property_code):
    """The campaign's stored click URL with our click id in its sub-id parameter (replacing any
    value already there) and source=<property> when the URL has no source. Everything else (other
    parameters, their order and encoding, the fragment) is kept byte for byte."""
    base, hash_mark, fragment = campaign.click_url.partition("#")
    path, _, query = base.partition("?")
    subid = campaign.subid_param or "aff_click_id"
    parts, has_subid, has_source = [], False, False
    for part in query.split("&") if query else []:
        name = unquote_plus(part.split("=", 1)[0])
        if name == subid:
            part, has_subid = f"{part.split('=', 1)[0]}={quote(click_id, safe='')}", True
        has_source = has_source or name == "source"
        parts.append(part)
    if not has_subid:
        parts.append(f"{quote(subid, safe='')}={quote(click_id, safe='')}")
    if not has_source:
        parts.append(f"source={quote(property_code, safe='')}")
    return f"{path}?{'&'.join(parts)}{hash_mark}{fragment}"
