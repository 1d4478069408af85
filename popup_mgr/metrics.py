"""Prometheus metrics for GET /metrics: what ingest and the HTTP layer count as they go, and what
is read from disk and the database when Prometheus scrapes.

Every app has its own CollectorRegistry (prometheus-client's global one would mix the many apps
of a test process and survive them). The hot paths call methods of the app's `Metrics` object;
each is a dict lookup of a pre-made child plus prometheus-client's locked increment
(bench/metrics_overhead.py measures them in ns per call). Everything that costs a system call or
a query (file sizes, last backup, job outcomes, Tune sync) is computed only at scrape time by
`StateCollector`.

Wiring: `metrics.init_app(app, backup_dir=..., queue_depth=..., tune_status=...)` once in
create_app, after the fast path is installed (its WSGI wrapper then sees every answer, fast
path and Flask alike); ingest calls `metrics_for(app).event(...)` and `.batch(...)`; the
/metrics view returns `exposition(app)`.
"""
import logging
import math
import os
import sqlite3
import time

from flask import request, request_started
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)

EXTENSION_KEY = "popup_metrics"
EVENT_KINDS = ("impression", "click", "conversion")
# What became of an event: counted, a replay (counted before), refused (4xx), unavailable (503).
EVENT_OUTCOMES = ("counted", "duplicate", "rejected", "unavailable")
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
COMMIT_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
# Fast-path routes have no Flask url_rule; their templates keep the label set small.
FAST_ROUTES = (("/c/", "/c/<token>"), ("/api/offers/", "/api/offers/<property>"))
ROUTE_ENVIRON_KEY = "popup.route"
UNMATCHED_ROUTE = "unmatched"        # 404s of arbitrary paths share one label


class Metrics:
    """One app's registry and the instruments the hot paths use."""

    def __init__(self, database_path, *, backup_dir=None, queue_depth=None, tune_status=None,
                 job_status=None):
        self.registry = CollectorRegistry(auto_describe=False)
        self._events = Counter("popup_events", "Beacons, clicks and postbacks by kind and outcome.",
                               ["kind", "outcome"], registry=self.registry)
        self._batch_size = Histogram("popup_ingest_batch_size", "Events committed per group commit.",
                                     buckets=BATCH_SIZE_BUCKETS, registry=self.registry)
        self._commit_seconds = Histogram("popup_ingest_commit_seconds",
                                         "Duration of one group commit (BEGIN IMMEDIATE to COMMIT).",
                                         buckets=COMMIT_SECONDS_BUCKETS, registry=self.registry)
        self._responses = Counter("popup_http_responses", "HTTP answers by route template and status.",
                                  ["route", "status"], registry=self.registry)
        self._queue_depth = Gauge("popup_ingest_queue_depth", "Events waiting for the group commit.",
                                  registry=self.registry)
        self._queue_depth.set_function(_safe_number(queue_depth) if queue_depth else (lambda: 0))
        # Children made once per label pair: labels() costs a lock and tuple building per call.
        self._event_children = {(kind, outcome): self._events.labels(kind, outcome)
                                for kind in EVENT_KINDS for outcome in EVENT_OUTCOMES}
        self._response_children = {}
        self.registry.register(StateCollector(database_path, backup_dir, tune_status, job_status))

    # --- hot path ------------------------------------------------------------------------------

    def event(self, kind, outcome):
        """Count one event (kinds and outcomes from EVENT_KINDS / EVENT_OUTCOMES)."""
        child = self._event_children.get((kind, outcome))
        if child is None:
            child = self._event_children[(kind, outcome)] = self._events.labels(kind, outcome)
        child.inc()

    def batch(self, size, commit_seconds):
        """One group commit of size events that took commit_seconds."""
        self._batch_size.observe(size)
        self._commit_seconds.observe(commit_seconds)

    def response(self, route, status):
        """One HTTP answer; route is a template ('/api/offers/<property>'), never a raw path."""
        key = (route, status)
        child = self._response_children.get(key)
        if child is None:
            child = self._response_children[key] = self._responses.labels(route, str(status))
        child.inc()

    def set_queue_depth(self, function):
        """Read queue depth from function() at scrape time (the writer is built after the app)."""
        self._queue_depth.set_function(_safe_number(function))

    # --- scrape ----------------------------------------------------------------------------------

    def exposition(self):
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class StateCollector:
    """Gauges computed at scrape time; a failing source leaves its metric out of that scrape
    instead of failing the whole answer."""

    def __init__(self, database_path, backup_dir, tune_status, job_status):
        self.database_path = str(database_path)
        self.backup_dir = backup_dir
        self.tune_status = tune_status
        self.job_status = job_status

    def collect(self):
        for source in (self._files, self._backup, self._tune, self._jobs):
            try:
                yield from source()
            except Exception:
                log.exception("metrics source %s failed", source.__name__)

    def _files(self):
        yield _gauge("popup_database_bytes", "Size of the SQLite database file.",
                     _size(self.database_path))
        yield _gauge("popup_wal_bytes", "Size of the write-ahead log (popup.db-wal); grows behind long readers.",
                     _size(self.database_path + "-wal"))

    def _backup(self):
        if self.backup_dir is None:
            return
        from popup_mgr import backup
        path, age_s = backup.last_backup(self.backup_dir)
        yield _gauge("popup_backups", "Completed backup files kept in POPUP_BACKUP_DIR.",
                     len(backup.backup_files(self.backup_dir)))
        if path is not None:
            yield _gauge("popup_last_backup_age_seconds", "Seconds since the newest backup was written.", age_s)

    def _tune(self):
        """tune_status() -> None (never synced) or {"at": unix seconds, "ok": bool}."""
        if self.tune_status is None:
            return
        status = self.tune_status()
        if not status:
            return
        yield _gauge("popup_tune_last_sync_timestamp_seconds", "When the last Tune sync ended (Unix time).",
                     float(status["at"]))
        yield _gauge("popup_tune_last_sync_success", "1 when the last Tune sync succeeded, else 0.",
                     1 if status["ok"] else 0)

    def _jobs(self):
        """job_status() -> scheduler.job_status()-shaped list."""
        if self.job_status is None:
            return
        success = GaugeMetricFamily("popup_job_last_success", "1 when the job's last run ended well.",
                                    labels=["job"])
        age = GaugeMetricFamily("popup_job_last_run_age_seconds", "Seconds since the job's last run started.",
                                labels=["job"])
        now = time.time()
        from popup_mgr import timeutil
        for entry in self.job_status():
            success.add_metric([entry["job"]], 1 if entry["outcome"] in ("ok", "running") else 0)
            started = timeutil.parse_iso_utc(entry["started_at"]).timestamp()
            age.add_metric([entry["job"]], max(0.0, now - started))
        yield success
        yield age


def _gauge(name, documentation, value):
    return GaugeMetricFamily(name, documentation, value=value)


def _size(path):
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _safe_number(function):
    def read():
        try:
            return function()
        except Exception:
            return math.nan
    return read


# --- per-app wiring ------------------------------------------------------------------------------

def init_app(app, *, backup_dir=None, queue_depth=None, tune_status=None, job_status=None):
    """Give app its Metrics and count every HTTP answer (call after fastpath.install(app))."""
    metrics = Metrics(app.config["DATABASE"], backup_dir=backup_dir, queue_depth=queue_depth,
                      tune_status=tune_status, job_status=job_status)
    app.extensions[EXTENSION_KEY] = metrics
    # request_started (not after_request): it is sent for every request Flask handles, also
    # those a before_request hook answers or a view fails with a 500.
    request_started.connect(_remember_route, app, weak=False)
    app.wsgi_app = ResponseCounter(app.wsgi_app, metrics)
    return metrics


def metrics_for(app):
    return app.extensions[EXTENSION_KEY]


def exposition(app):
    """(body bytes, content type) of the Prometheus text format for app's metrics."""
    return metrics_for(app).exposition()


def database_job_status(database_path):
    """A job_status callable for init_app reading the scheduler's history at scrape time."""
    from popup_mgr import db as database
    from popup_mgr import scheduler

    def read():
        with database.connection(database_path) as conn:
            try:
                return scheduler.job_status(conn)
            except sqlite3.OperationalError:      # a database from before migration 0004
                return []
    return read


def _remember_route(sender, **_extra):
    """Flask knows the matched rule; leave it in the environ for ResponseCounter."""
    rule = request.url_rule
    request.environ[ROUTE_ENVIRON_KEY] = rule.rule if rule is not None else UNMATCHED_ROUTE


class ResponseCounter:
    """WSGI wrapper counting every answer by route template and status code."""

    def __init__(self, wsgi_app, metrics):
        self.wsgi_app = wsgi_app
        self.metrics = metrics

    def __call__(self, environ, start_response):
        def counting_start_response(status, headers, exc_info=None):
            self.metrics.response(route_of(environ), int(status[:3]))
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)
        return self.wsgi_app(environ, counting_start_response)


def route_of(environ):
    route = environ.get(ROUTE_ENVIRON_KEY)
    if route is not None:
        return route
    path = environ.get("PATH_INFO", "")
    for prefix, template in FAST_ROUTES:
        if path.startswith(prefix):
            return template
    # Exact fast-path routes (beacons) match their own path; anything else is not a route.
    return path if path in ("/api/impression", "/api/click", "/api/postback") else UNMATCHED_ROUTE
