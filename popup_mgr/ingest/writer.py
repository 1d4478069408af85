"""The group-commit writer: the only writer of the impressions and clicks ledger and of their
daily_stats increments.

Request threads queue events and wait; one long-lived thread per database, with its own
connection, takes everything queued and writes it in one BEGIN IMMEDIATE transaction, the ledger
rows and their rollup increments together, then wakes the waiters after COMMIT. Under load many
events share one commit; alone, an event is committed at once. Returning from submit() means "on
disk" (WAL, synchronous=NORMAL: survives a process crash).

A rollup row changes only when the ledger insert was new (duplicates are recognised by event_id),
so daily_stats always equals rollups.rebuild()'s definition.
"""
import queue
import threading
import time

from popup_mgr import db as database
from popup_mgr import storage
from popup_mgr.ingest.errors import IngestUnavailable

WRITE_TIMEOUT_S = 10.0                   # a request waits this long for its batch's commit
MAX_BATCH = 512
WRITER_IDLE_EXIT_S = 5.0                 # an idle writer closes its connection; restarted lazily


# --- SQL of the writer (run inside its batch transaction) ---------------------------------------

_ROLLUP_UPSERT = """/* writer.{label} */ INSERT INTO daily_stats
    (day, property_id, campaign_id, placement, variant, {column}) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (day, property_id, campaign_id, placement, variant)
    DO UPDATE SET {column} = {column} + excluded.{column}"""
_ROLLUP_SQL = {
    (kind, is_bot): _ROLLUP_UPSERT.format(label=f"count_{kind}", column=column)
    for (kind, is_bot), column in {("impression", 0): "impressions", ("impression", 1): "bot_impressions",
                                   ("click", 0): "clicks", ("click", 1): "bot_clicks",
                                   ("view", 0): "views"}.items()
}


def _insert_impression(db, row, counts):
    cursor = db.execute(
        "/* writer.insert_impression */ INSERT INTO impressions"
        " (event_id, ts, day, campaign_id, property_id, placement, variant, session_id, visitor_hash, is_bot,"
        " is_view) VALUES (:event_id, :ts, :day, :campaign_id, :property_id, :placement, :variant, :session_id,"
        " :visitor_hash, :is_bot, :is_view) ON CONFLICT (event_id) DO NOTHING", row)
    counted = cursor.rowcount == 1
    if counted:
        _count(counts, "impression", row)
        if row["is_view"] and not row["is_bot"]:
            _count(counts, "view", row)
    return counted


def _insert_click(db, row, counts):
    cursor = db.execute(
        "/* writer.insert_click */ INSERT INTO clicks"
        " (click_id, event_id, ts, day, campaign_id, property_id, placement, variant, session_id,"
        " visitor_hash, is_bot, campaign_paused)"
        " VALUES (:click_id, :event_id, :ts, :day, :campaign_id, :property_id, :placement, :variant,"
        " :session_id, :visitor_hash, :is_bot, :campaign_paused) ON CONFLICT (event_id) DO NOTHING", row)
    if cursor.rowcount == 1:
        _count(counts, "click", row)
        return {key: row[key] for key in ("click_id", "campaign_id", "property_id", "campaign_paused")} \
            | {"counted": True}
    stored = db.execute("/* writer.insert_click */ SELECT click_id, campaign_id, property_id,"
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
        # on_batch(size, commit_seconds) after every group commit (the app's metrics).
        self.on_batch = None
        # Events refused (not committed in time, or failed): /api/health reports them.
        self.failures = storage.RecentFailures()

    def queue_depth(self):
        """Events waiting for the next group commit."""
        return self._queue.qsize()

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
            self.failures.record()
            raise IngestUnavailable("timed out waiting for the database")
        if pending.error is not None:
            self.failures.record()
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
        with database.connection(self.database_path) as db:
            while True:
                batch, stop = self._next_batch()
                if batch:
                    self._commit(db, batch)
                if stop:
                    self._checkpoint(db)
                    return

    @staticmethod
    def _checkpoint(db):
        """Leaving after an idle spell (or at stop): fold the WAL into the database and truncate
        it, unless someone is reading or writing (then it returns at once; the next idle spell
        tries again). Between such spells SQLite's automatic checkpoints keep the WAL small."""
        try:
            database.checkpoint_without_waiting(db)
        except Exception:
            pass        # a checkpoint is housekeeping: never worth failing the writer for

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
        started = time.perf_counter()
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
        if self.on_batch is not None:
            self.on_batch(len(batch), time.perf_counter() - started)
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
