"""Tracking: the only writer of the ledger (impressions, clicks, conversions) and of the
incremental daily_stats rollups.

HTTP code (track.py) only parses requests and answers; everything that decides what is counted
lives here:

* parse_beacon() validates a beacon body; resolve_offer() checks its signed token against an
  in-memory snapshot of the catalog (no per-request query).
* record_impression() / record_click() hand the event to the app's group-commit writer: one
  long-lived thread with its own connection that commits every queued event in one BEGIN
  IMMEDIATE transaction, the ledger row and its daily_stats increment together. The caller
  waits until its batch is committed, so returning means "on disk" (WAL, synchronous=NORMAL:
  survives a process crash).
* record_conversion() writes money on its own connection with synchronous=FULL (survives power
  loss); postbacks are few, so they do not need the queue.

Duplicates are recognised by event_id (per kind) and transaction_id only. A rollup row changes
only when the ledger insert was new, and by the exact difference when a conversion changes, so
daily_stats always equals rollups.rebuild()'s definition.
"""
import atexit
import contextlib
import hmac
import json
import queue
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote, unquote_plus

from popup_mgr import bots, money, privacy, signals, timeutil, tokens
from popup_mgr import db as database

MAX_BEACON_BYTES = 4096
_EVENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
CLICK_ID_BYTES = 15                      # 20 URL-safe characters
WRITE_TIMEOUT_S = 10.0                   # a request waits this long for its batch's commit
MAX_BATCH = 512
WRITER_IDLE_EXIT_S = 5.0                 # an idle writer closes its connection; restarted lazily
CATALOG_TTL_S = 5.0                      # also rebuilt at once on signals.catalog_changed
CATALOG_MISS_RELOAD_S = 1.0              # an unknown id reloads the snapshot at most this often
MAX_PAYOUT_CENTS = 100_000_00            # $100,000: far above any CPL payout, below nonsense
MAX_POSTBACK_ID_LENGTH = 128
_POSTBACK_ID = re.compile(r"[\x21-\x7e]+")   # printable ASCII, no spaces or control characters
STATUSES = ("approved", "pending", "rejected")
POSTBACK_SECRET_SETTING = "postback_secret"


class EventError(ValueError):
    """A beacon, click or postback that is rejected; the message is the reason (4xx)."""


class IngestUnavailable(RuntimeError):
    """The event could not be committed (timeout, database error); nothing was acknowledged."""


class ClickNotConfirmed(IngestUnavailable):
    """The click was queued but its commit was not confirmed in time (or failed). redirect_url
    carries the queued click id, so a visitor sent on still matches the click if it lands."""

    def __init__(self, message, redirect_url):
        super().__init__(message)
        self.redirect_url = redirect_url


@dataclass(frozen=True)
class Beacon:
    token: str
    event_id: str
    session_id: str | None = None


@dataclass(frozen=True)
class Visitor:
    ip: str
    user_agent: str


@dataclass(frozen=True)
class CampaignTarget:
    id: int
    click_url: str
    subid_param: str
    active: bool
    start_ms: int | None
    end_ms: int | None

    def paused(self, now_ms):
        return (not self.active or (self.start_ms is not None and now_ms < self.start_ms)
                or (self.end_ms is not None and now_ms >= self.end_ms))


@dataclass(frozen=True)
class Offer:
    """A verified token resolved against the catalog."""
    token: tokens.OfferToken
    property_id: int
    campaign: CampaignTarget


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
    return Beacon(token, event_id, session_id or None)


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
    return _state(app).catalog.resolve(token)


# --- recording beacons and clicks --------------------------------------------------------------

def record_impression(app, beacon, visitor, now_ms=None):
    """Count one impression (once per event_id). Returns True when new, False for a replay.
    Returns only after the commit; raises EventError (4xx) or IngestUnavailable (503)."""
    with _database_errors_as_unavailable():
        offer = resolve_offer(app, beacon.token, now_ms)
        row = _event_row(app, offer, beacon, visitor, now_ms)
    return _state(app).writer.submit(("impression", row))


def record_click(app, beacon, visitor, now_ms=None):
    """Count one click (once per event_id) and return its ClickResult; the same click id and
    destination come back for a replayed event_id."""
    with _database_errors_as_unavailable():
        offer = resolve_offer(app, beacon.token, now_ms)
        row = _event_row(app, offer, beacon, visitor, now_ms)
    row["click_id"] = new_click_id()
    row["campaign_paused"] = int(offer.campaign.paused(row["ts"]))
    try:
        stored = _state(app).writer.submit(("click", row))
    except IngestUnavailable as exc:
        # The click may still be committed later: a redirect must carry this same click id.
        raise ClickNotConfirmed(str(exc), click_target_url(offer.campaign, row["click_id"],
                                                           offer.token.property_code)) from None
    state = _state(app)
    campaign = state.catalog.campaign(stored["campaign_id"]) or offer.campaign
    property_code = state.catalog.property_code(stored["property_id"]) or offer.token.property_code
    return ClickResult(stored["click_id"], click_target_url(campaign, stored["click_id"], property_code),
                       stored["counted"], bool(stored["campaign_paused"]))


def uncounted_click_url(app, token_text):
    """Destination for HEAD and prefetch requests: same link, a fresh click id, nothing stored."""
    with _database_errors_as_unavailable():
        offer = resolve_offer(app, token_text)
    return click_target_url(offer.campaign, new_click_id(), offer.token.property_code)


@contextlib.contextmanager
def _database_errors_as_unavailable():
    """Catalog reloads and new daily salts read the database; a locked or broken database is a
    503 (retry later), never a 500."""
    try:
        yield
    except sqlite3.Error as exc:
        raise IngestUnavailable(f"database unavailable ({type(exc).__name__})") from None


def _event_row(app, offer, beacon, visitor, now_ms):
    ts = timeutil.now_ms() if now_ms is None else now_ms
    state = _state(app)
    return {
        "event_id": beacon.event_id,
        "ts": ts,
        "day": timeutil.business_day(ts, state.business_tz),
        "campaign_id": offer.campaign.id,
        "property_id": offer.property_id,
        "placement": offer.token.placement,
        "variant": offer.token.variant,
        "session_id": beacon.session_id,
        "visitor_hash": state.hasher.visitor_hash(visitor.ip, visitor.user_agent, ts),
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


# --- SQL of the writer (run inside its batch transaction) ---------------------------------------

_ROLLUP_UPSERT = """/* tracking.{label} */ INSERT INTO daily_stats
    (day, property_id, campaign_id, placement, variant, {column}) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (day, property_id, campaign_id, placement, variant)
    DO UPDATE SET {column} = {column} + excluded.{column}"""
_ROLLUP_SQL = {
    (kind, is_bot): _ROLLUP_UPSERT.format(label=f"count_{kind}", column=column)
    for (kind, is_bot), column in {("impression", 0): "impressions", ("impression", 1): "bot_impressions",
                                   ("click", 0): "clicks", ("click", 1): "bot_clicks"}.items()
}


def _insert_impression(db, row, counts):
    cursor = db.execute(
        "/* tracking.insert_impression */ INSERT INTO impressions"
        " (event_id, ts, day, campaign_id, property_id, placement, variant, session_id, visitor_hash, is_bot)"
        " VALUES (:event_id, :ts, :day, :campaign_id, :property_id, :placement, :variant, :session_id,"
        " :visitor_hash, :is_bot) ON CONFLICT (event_id) DO NOTHING", row)
    counted = cursor.rowcount == 1
    if counted:
        _count(counts, "impression", row)
    return counted


def _insert_click(db, row, counts):
    cursor = db.execute(
        "/* tracking.insert_click */ INSERT INTO clicks"
        " (click_id, event_id, ts, day, campaign_id, property_id, placement, variant, session_id,"
        " visitor_hash, is_bot, campaign_paused)"
        " VALUES (:click_id, :event_id, :ts, :day, :campaign_id, :property_id, :placement, :variant,"
        " :session_id, :visitor_hash, :is_bot, :campaign_paused) ON CONFLICT (event_id) DO NOTHING", row)
    if cursor.rowcount == 1:
        _count(counts, "click", row)
        return {key: row[key] for key in ("click_id", "campaign_id", "property_id", "campaign_paused")} \
            | {"counted": True}
    stored = db.execute("/* tracking.insert_click */ SELECT click_id, campaign_id, property_id,"
                        " campaign_paused FROM clicks WHERE event_id = ?", (row["event_id"],)).fetchone()
    return dict(stored) | {"counted": False}


def _count(counts, kind, row):
    """Add a new ledger row to the batch's rollup increments (applied once per key)."""
    key = (kind, row["is_bot"], row["day"], row["property_id"], row["campaign_id"], row["placement"], row["variant"])
    counts[key] = counts.get(key, 0) + 1


def _apply_counts(db, counts):
    """One daily_stats upsert per key of the batch, in the batch's transaction."""
    for (kind, is_bot, *key), increment in counts.items():
        db.execute(_ROLLUP_SQL[(kind, is_bot)], (*key, increment))


_WRITERS = {"impression": _insert_impression, "click": _insert_click}


# --- the group-commit writer ---------------------------------------------------------------------

class _Pending:
    """One queued event. A plain lock, taken at creation and released by the writer, is the
    cheapest wake-up the standard library has (threading.Event adds a Condition per waiter)."""
    __slots__ = ("event", "_committed", "result", "error")

    def __init__(self, event):
        self.event = event
        self._committed = threading.Lock()
        self._committed.acquire()
        self.result = None
        self.error = None

    def wait(self, timeout_s):
        return self._committed.acquire(timeout=timeout_s)

    def finish(self, result=None, error=None):
        self.result, self.error = result, error
        self._committed.release()


class GroupCommitWriter:
    """One writer thread per database: request threads queue events and wait; the thread takes
    everything queued, writes it in one BEGIN IMMEDIATE transaction and wakes the waiters after
    COMMIT. Under load many events share one commit; alone, an event is committed at once."""

    def __init__(self, database_path, timeout_s=WRITE_TIMEOUT_S):
        self.database_path = database_path
        self.timeout_s = timeout_s
        self._queue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread = None
        self._stopping = False

    def submit(self, event):
        pending = _Pending(event)
        with self._lock:
            if self._stopping:
                raise IngestUnavailable("server is shutting down")
            self._ensure_thread()
            self._queue.put(pending)
        if not pending.wait(self.timeout_s):
            # Answered 503: the client retries with the same event_id, which counts once even if
            # this event is committed after all.
            raise IngestUnavailable("timed out waiting for the database")
        if pending.error is not None:
            raise pending.error
        return pending.result

    def stop(self):
        """Commit what is queued, then end the thread (at exit and in tests)."""
        with self._lock:
            self._stopping = True
            thread = self._thread
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join(timeout=self.timeout_s)

    def _ensure_thread(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="popup-mgr-writer", daemon=True)
            self._thread.start()

    def _run(self):
        db = database.connect(self.database_path)
        try:
            while True:
                batch, stop = self._next_batch()
                if batch:
                    self._commit(db, batch)
                if stop:
                    return
        finally:
            db.close()

    def _next_batch(self):
        """([pending...], stop): everything queued (up to MAX_BATCH), waiting for the first.
        stop is True after an idle period or stop()'s sentinel (None)."""
        try:
            first = self._queue.get(timeout=WRITER_IDLE_EXIT_S)
        except queue.Empty:
            with self._lock:
                if self._queue.empty():
                    self._thread = None
                    return [], True
            first = self._queue.get()
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        stop = None in batch
        if stop:
            with self._lock:
                self._thread = None
        return [pending for pending in batch if pending is not None], stop

    def _commit(self, db, batch):
        try:
            with database.transaction(db):
                counts = {}
                results = [_WRITERS[kind](db, row, counts) for kind, row in (p.event for p in batch)]
                _apply_counts(db, counts)
        except Exception:
            # One bad event must not fail its neighbours: retry each alone.
            for pending in batch:
                self._commit_one(db, pending)
            return
        for pending, result in zip(batch, results):
            pending.finish(result)

    @staticmethod
    def _commit_one(db, pending):
        kind, row = pending.event
        try:
            with database.transaction(db):
                counts = {}
                result = _WRITERS[kind](db, row, counts)
                _apply_counts(db, counts)
        except Exception as exc:
            pending.finish(error=IngestUnavailable(f"could not store the event ({type(exc).__name__})"))
            return
        pending.finish(result)


# --- the catalog snapshot --------------------------------------------------------------------------

class Catalog:
    """Property ids and campaign link targets, held in memory so that a beacon costs no query.
    Rebuilt on signals.catalog_changed, after CATALOG_TTL_S (changes made by another process),
    and when a token names an id the snapshot does not know yet."""

    def __init__(self, database_path):
        self.database_path = database_path
        self._lock = threading.Lock()
        self._snapshot = None
        self._loaded_at = 0.0

    def invalidate(self, *_args, **_kwargs):
        self._snapshot = None

    def resolve(self, token):
        snapshot = self._current()
        if not self._knows(snapshot, token):
            snapshot = self._reload_after_miss()
        property_id = snapshot["property_ids"].get(token.property_code)
        if property_id is None:
            raise EventError("unknown property")
        campaign = snapshot["campaigns"].get(token.campaign_id)
        if campaign is None:
            raise EventError("unknown campaign")
        return Offer(token, property_id, campaign)

    def campaign(self, campaign_id):
        return self._current()["campaigns"].get(campaign_id)

    def property_code(self, property_id):
        return self._current()["property_codes"].get(property_id)

    @staticmethod
    def _knows(snapshot, token):
        return token.property_code in snapshot["property_ids"] and token.campaign_id in snapshot["campaigns"]

    def _current(self):
        snapshot = self._snapshot
        if snapshot is None or time.monotonic() - self._loaded_at > CATALOG_TTL_S:
            snapshot = self._reload()
        return snapshot

    def _reload_after_miss(self):
        if time.monotonic() - self._loaded_at < CATALOG_MISS_RELOAD_S and self._snapshot is not None:
            return self._snapshot
        return self._reload()

    def _reload(self):
        requested_at = time.monotonic()
        with self._lock:
            if self._snapshot is not None and self._loaded_at >= requested_at:
                return self._snapshot        # another thread reloaded while this one waited
            db = database.connect(self.database_path)
            try:
                snapshot = load_catalog(db)
            finally:
                db.close()
            self._snapshot, self._loaded_at = snapshot, time.monotonic()
            return snapshot


def load_catalog(db):
    properties = db.execute("/* tracking.load_catalog */ SELECT id, code FROM properties").fetchall()
    campaigns = db.execute("/* tracking.load_catalog */ SELECT id, click_url, subid_param, active,"
                           " start_at, end_at FROM campaigns").fetchall()
    return {
        "property_ids": {row["code"]: row["id"] for row in properties},
        "property_codes": {row["id"]: row["code"] for row in properties},
        "campaigns": {row["id"]: CampaignTarget(row["id"], row["click_url"], row["subid_param"] or "aff_click_id",
                                                bool(row["active"]), _iso_ms(row["start_at"]),
                                                _iso_ms(row["end_at"]))
                      for row in campaigns},
    }


def _iso_ms(text):
    if not text:
        return None
    try:
        return int(timeutil.parse_iso_utc(text).timestamp() * 1000)
    except ValueError:
        return None


# --- per-app state ---------------------------------------------------------------------------------

class _TrackingState:
    def __init__(self, app):
        path = app.config["DATABASE"]
        self.business_tz = app.config["BUSINESS_TZ"]
        self.writer = GroupCommitWriter(path)
        self.catalog = Catalog(path)
        self.hasher = privacy.VisitorHasher(path)
        self.trusted_proxies = privacy.parse_networks(app.config.get("TRUSTED_PROXIES"))
        self.postback_allowed = privacy.parse_networks(app.config.get("POSTBACK_ALLOWED_IPS"))
        self.app_ref = app
        signals.catalog_changed.connect(self._on_catalog_changed)
        atexit.register(self.writer.stop)

    def _on_catalog_changed(self, sender, **_kwargs):
        if sender is self.app_ref:
            self.catalog.invalidate()


_STATE_LOCK = threading.Lock()


def _state(app):
    state = app.extensions.get("popup_tracking")
    if state is None:
        with _STATE_LOCK:
            state = app.extensions.get("popup_tracking")
            if state is None:
                state = app.extensions["popup_tracking"] = _TrackingState(app)
    return state


def init_app(app):
    """Create the app's tracking state up front (checks the IP list settings at start-up) and
    delete expired visitor salts (also done whenever a new day's salt is made)."""
    _state(app)
    try:
        privacy.purge_expired_salts(app.config["DATABASE"], timeutil.now_ms())
    except sqlite3.Error:
        pass    # busy at start-up: the next new day's salt purges them


def stop(app):
    """Commit what is queued and stop the app's writer thread."""
    state = app.extensions.get("popup_tracking")
    if state is not None:
        state.writer.stop()


def client_ip(app, remote_addr, forwarded_for):
    return privacy.client_ip(remote_addr, forwarded_for, _state(app).trusted_proxies)


# --- postbacks and conversions -----------------------------------------------------------------------

@dataclass(frozen=True)
class Postback:
    click_id: str
    transaction_id: str
    payout_cents: int
    status: str
    is_test: bool = False


@dataclass(frozen=True)
class ConversionResult:
    outcome: str               # "recorded", "duplicate" or "updated"
    transaction_id: str
    click_id: str
    attributed: bool
    campaign_id: int | None
    property_id: int | None
    day: str | None
    payout_cents: int
    status: str
    is_test: bool

    def as_json(self):
        return {"status": "ok", "outcome": self.outcome, "transaction_id": self.transaction_id,
                "click_id": self.click_id, "attributed": self.attributed,
                "campaign_id": self.campaign_id, "property_id": self.property_id, "day": self.day,
                "payout": money.format_cents(self.payout_cents), "conversion_status": self.status,
                "test": self.is_test}


class PostbackRejected(EventError):
    """Wrong secret or caller not allowed (403)."""


def check_postback_caller(app, params, ip):
    """Raise PostbackRejected unless the caller's IP is allowed and the secret matches."""
    allowed = _state(app).postback_allowed
    if allowed and not privacy.ip_in(ip, allowed):
        raise PostbackRejected("caller IP not allowed")
    given = params.getlist("secret")
    if len(given) != 1 or not given[0]:
        raise PostbackRejected("missing secret")
    if not hmac.compare_digest(given[0].encode("utf-8", "replace"), postback_secret(app).encode()):
        raise PostbackRejected("wrong secret")


def parse_postback(params):
    """A Postback from the request's parameters (a MultiDict); EventError with the reason."""
    click_id = _single_postback_id(params, "click_id")
    transaction_id = _single_postback_id(params, "transaction_id")
    payout_text = _single(params, "payout", required=True)
    try:
        payout_cents = money.parse_cents(payout_text)
    except money.MoneyError as exc:
        raise EventError(f"payout {exc}") from None
    if payout_cents > MAX_PAYOUT_CENTS:
        raise EventError(f"payout is above {money.format_cents(MAX_PAYOUT_CENTS)}")
    status = (_single(params, "status", required=False) or "approved").strip().lower()
    if status not in STATUSES:
        raise EventError("status must be approved, pending or rejected")
    test = _single(params, "test", required=False)
    if test not in (None, "", "0", "1"):
        raise EventError("test must be 0 or 1")
    return Postback(click_id, transaction_id, payout_cents, status, test == "1")


def _single(params, name, required):
    values = params.getlist(name)
    if len(values) > 1:
        raise EventError(f"{name} given more than once")
    if not values or values[0] == "":
        if required:
            raise EventError(f"missing {name}")
        return None
    return values[0]


def _single_postback_id(params, name):
    value = _single(params, name, required=True)
    if len(value) > MAX_POSTBACK_ID_LENGTH or not _POSTBACK_ID.fullmatch(value):
        raise EventError(f"{name} must be 1-{MAX_POSTBACK_ID_LENGTH} printable characters without spaces")
    return value


def record_conversion(app, postback, now_ms=None):
    """Store one conversion per transaction_id, attributed through the click, and adjust
    daily_stats by the exact difference, in one transaction on a synchronous=FULL connection
    (fsync before returning). Raises IngestUnavailable when the write fails (answer 5xx: the
    network retries, and nothing was half-written)."""
    now_ms = timeutil.now_ms() if now_ms is None else now_ms
    try:
        db = database.connect(app.config["DATABASE"], durable=True)
    except Exception as exc:
        raise IngestUnavailable(f"database unavailable ({type(exc).__name__})") from None
    try:
        with database.transaction(db):
            return _store_conversion(db, postback, now_ms)
    except EventError:
        raise
    except Exception as exc:
        raise IngestUnavailable(f"could not store the conversion ({type(exc).__name__})") from None
    finally:
        db.close()


def _store_conversion(db, postback, now_ms):
    existing = db.execute("/* tracking.store_conversion */ SELECT * FROM conversions"
                          " WHERE transaction_id = ?", (postback.transaction_id,)).fetchone()
    if existing is None:
        row = _new_conversion_row(db, postback, now_ms)
        db.execute("/* tracking.store_conversion */ INSERT INTO conversions (transaction_id, click_id,"
                   " click_row_id, ts, updated_ts, day, campaign_id, property_id, placement, variant,"
                   " payout_cents, status, is_test) VALUES (:transaction_id, :click_id, :click_row_id,"
                   " :ts, :updated_ts, :day, :campaign_id, :property_id, :placement, :variant,"
                   " :payout_cents, :status, :is_test)", row)
        _adjust_conversion_rollup(db, row, *_revenue_of(row))
        return _result("recorded", row)
    row = dict(existing)
    if row["status"] == postback.status and row["payout_cents"] == postback.payout_cents:
        return _result("duplicate", row)
    before = _revenue_of(row)
    row.update(status=postback.status, payout_cents=postback.payout_cents, updated_ts=now_ms)
    db.execute("/* tracking.store_conversion */ UPDATE conversions SET status = ?, payout_cents = ?,"
               " updated_ts = ? WHERE id = ?", (row["status"], row["payout_cents"], now_ms, row["id"]))
    after = _revenue_of(row)
    _adjust_conversion_rollup(db, row, after[0] - before[0], after[1] - before[1])
    return _result("updated", row)


def _new_conversion_row(db, postback, now_ms):
    click = db.execute("/* tracking.new_conversion_row */ SELECT id, day, campaign_id, property_id,"
                       " placement, variant FROM clicks WHERE click_id = ?", (postback.click_id,)).fetchone()
    attribution = {"click_row_id": click["id"], "day": click["day"], "campaign_id": click["campaign_id"],
                   "property_id": click["property_id"], "placement": click["placement"],
                   "variant": click["variant"]} if click else \
        dict.fromkeys(("click_row_id", "day", "campaign_id", "property_id", "placement", "variant"))
    return {"transaction_id": postback.transaction_id, "click_id": postback.click_id, "ts": now_ms,
            "updated_ts": now_ms, "payout_cents": postback.payout_cents, "status": postback.status,
            "is_test": int(postback.is_test)} | attribution


def _revenue_of(row):
    """(conversions, revenue_cents) this conversion adds to daily_stats (rollups.py's rule)."""
    if row["campaign_id"] is None or row["status"] != "approved" or row["is_test"]:
        return 0, 0
    return 1, row["payout_cents"]


def _adjust_conversion_rollup(db, row, conversions, revenue_cents):
    if row["campaign_id"] is None or (conversions == 0 and revenue_cents == 0):
        return
    db.execute("/* tracking.adjust_conversion_rollup */ INSERT INTO daily_stats"
               " (day, property_id, campaign_id, placement, variant, conversions, revenue_cents)"
               " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (day, property_id, campaign_id, placement, variant)"
               " DO UPDATE SET conversions = conversions + excluded.conversions,"
               " revenue_cents = revenue_cents + excluded.revenue_cents",
               (row["day"], row["property_id"], row["campaign_id"], row["placement"], row["variant"],
                conversions, revenue_cents))


def _result(outcome, row):
    return ConversionResult(outcome, row["transaction_id"], row["click_id"], row["campaign_id"] is not None,
                            row["campaign_id"], row["property_id"], row["day"], row["payout_cents"],
                            row["status"], bool(row["is_test"]))


# --- postback settings -------------------------------------------------------------------------------

def postback_secret_from_environment(app):
    return bool(app.config.get("POSTBACK_SECRET"))


def postback_secret(app):
    """POPUP_POSTBACK_SECRET when set, else the stored secret (created on first use)."""
    if app.config.get("POSTBACK_SECRET"):
        return app.config["POSTBACK_SECRET"]
    db = database.connect(app.config["DATABASE"], durable=True)
    try:
        with database.transaction(db):
            db.execute("/* tracking.postback_secret */ INSERT OR IGNORE INTO settings (key, value, updated_at)"
                       " VALUES (?, ?, ?)", (POSTBACK_SECRET_SETTING, _new_secret(), timeutil.iso_now()))
            return db.execute("/* tracking.postback_secret */ SELECT value FROM settings WHERE key = ?",
                              (POSTBACK_SECRET_SETTING,)).fetchone()["value"]
    finally:
        db.close()


def rotate_postback_secret(app):
    """Replace the stored secret; the old one stops working at once. Returns the new one."""
    if postback_secret_from_environment(app):
        raise EventError("the postback secret is set by POPUP_POSTBACK_SECRET; change it there")
    secret = _new_secret()
    db = database.connect(app.config["DATABASE"], durable=True)
    try:
        with database.transaction(db):
            db.execute("/* tracking.rotate_postback_secret */ INSERT INTO settings (key, value, updated_at)"
                       " VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                       " updated_at = excluded.updated_at", (POSTBACK_SECRET_SETTING, secret, timeutil.iso_now()))
    finally:
        db.close()
    return secret


def _new_secret():
    return secrets.token_urlsafe(24)


def unattributed_conversions(db, limit=50):
    """(count, latest rows) of real conversions whose click id we do not know."""
    count = db.execute("/* tracking.unattributed_conversions */ SELECT count(*) FROM conversions"
                       " WHERE campaign_id IS NULL AND is_test = 0").fetchone()[0]
    rows = db.execute("/* tracking.unattributed_conversions */ SELECT transaction_id, click_id, ts,"
                      " payout_cents, status FROM conversions WHERE campaign_id IS NULL AND is_test = 0"
                      " ORDER BY ts DESC, id DESC LIMIT ?", (limit,)).fetchall()
    return count, [dict(row) for row in rows]


def latest_click_id(db):
    """The newest human click's id (a realistic target for a test postback), or None."""
    row = db.execute("/* tracking.latest_click_id */ SELECT click_id FROM clicks WHERE is_bot = 0"
                     " ORDER BY id DESC LIMIT 1").fetchone()
    return row["click_id"] if row else None


def ledger_day_range(db):
    """(first_day, last_day) over the ledger and daily_stats, or None when all are empty."""
    row = db.execute("/* tracking.ledger_day_range */ SELECT min(first), max(last) FROM ("
                     " SELECT min(day) AS first, max(day) AS last FROM impressions"
                     " UNION ALL SELECT min(day), max(day) FROM clicks"
                     " UNION ALL SELECT min(day), max(day) FROM conversions"
                     " UNION ALL SELECT min(day), max(day) FROM daily_stats)").fetchone()
    return None if row[0] is None else (row[0], row[1])
