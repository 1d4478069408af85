"""The Tune work as one call each, for the CLI commands, the admin pages, the API and the server's
schedule: settings from the app, a connection of its own, the client, the run.

Each function opens and closes its own connection (the Tune calls can take minutes; no request
connection is held meanwhile) and raises NotConfigured before anything is sent when Tune is not
set up, with the sentence to show.

The scheduler's entry points, scheduled_sync(app_config) and scheduled_reconcile(app_config),
take the app's configuration only (the scheduler thread has no request or app context), return a
one-line outcome for the job history and raise on failure.
"""
import datetime as dt
import os
from zoneinfo import ZoneInfo

from popup_mgr import db as database
from popup_mgr import reconcile, tune_settings, tune_sync
from popup_mgr.tune_client import TuneError  # noqa: F401  (callers catch it from here)

# Client options when a person waits for the answer (admin pages): a bounded wait instead of
# the schedule's patient retries (TuneClient's defaults: 4 retries, up to 120 s a call).
INTERACTIVE = {"timeout_s": 60.0, "retries": 1, "backoff_s": 5.0}


class NotConfigured(RuntimeError):
    """Tune has no network id or key (or the saved key cannot be read); the message says which."""


NOT_CONNECTED = "Tune is not connected: set the network id and the API key."


def settings_from_config(config):
    """The effective TuneSettings (environment, then the saved ones) for an app configuration."""
    with database.connection(config["DATABASE"]) as db:
        return tune_settings.load(db, config["SECRET_KEY"], config["BUSINESS_TZ"])


def settings(app):
    """The effective TuneSettings (environment, then the saved ones)."""
    return settings_from_config(app.config)


def save_settings(app, actor, **fields):
    """Save network_id / api_key / api_url / tz (SettingsInvalid for bad input); the audited changes."""
    with database.connection(app.config["DATABASE"]) as db:
        return tune_settings.save(db, app.config["SECRET_KEY"], actor, **fields)


def _client(config, **options):
    current = settings_from_config(config)
    if not current.configured:
        raise NotConfigured(current.problem or NOT_CONNECTED)
    return current, current.client(**options)


def test_connection(app, **client_options):
    """(ok, sentence): the network's answer in words."""
    try:
        _, client = _client(app.config, **({"retries": 0, "timeout_s": 30} | client_options))
    except NotConfigured as exc:
        return False, str(exc)
    return client.test_connection()


def sync_now(app, *, actor=tune_sync.ACTOR, dry_run=False, **client_options):
    """One sync run (SyncResult); raises NotConfigured, TuneError or SyncBusy."""
    return _sync(app.config, app, actor=actor, dry_run=dry_run, **client_options)


def _sync(config, app, *, actor=tune_sync.ACTOR, dry_run=False, **client_options):
    current, client = _client(config, **client_options)
    with database.connection(config["DATABASE"]) as db:
        return tune_sync.sync(db, client, actor=actor, dry_run=dry_run, tune_tz=current.tz, app=app)


def reconcile_days(app, first_day, last_day, *, apply=False, record=True, actor=reconcile.ACTOR,
                   **client_options):
    """{"report", "applied", "after"}: the reconciliation of first_day..last_day (network days);
    with apply, the repair ({"recorded", "updated", "unchanged"}) and the reconciliation as it
    stands after it (same network answer, not fetched again). With record, the latest state's
    summary is kept for the dashboard (a look that changes nothing passes record=False).
    Raises NotConfigured or TuneError (then nothing changed)."""
    return _reconcile(app.config, first_day, last_day, apply=apply, record=record, actor=actor,
                      **client_options)


def _reconcile(config, first_day, last_day, *, apply=False, record=True, actor=reconcile.ACTOR,
               **client_options):
    current, client = _client(config, **client_options)
    network = reconcile.fetch(client, first_day, last_day)
    with database.connection(config["DATABASE"], durable=True) as db:
        report = reconcile.compare(db, network, current.tz)
        applied = after = None
        if apply:
            applied = reconcile.apply(db, report, current.tz, actor=actor)
            after = reconcile.compare(db, network, current.tz)
        if record:
            reconcile.record(db, after or report)
    return {"report": report, "applied": applied, "after": after, "tz": current.tz}


def yesterday(app, now=None):
    """The network's yesterday, the day the server reconciles once a day."""
    return _yesterday(settings(app).tz, now)


def _yesterday(tz, now=None):
    now = now or dt.datetime.now(dt.timezone.utc)
    return (now.astimezone(ZoneInfo(tz)).date() - dt.timedelta(days=1)).isoformat()


def last_results(app):
    """For the Tune page, the dashboard and /metrics: the last sync run, the campaigns waiting for
    review, and the last reconciliation's summary with its sentence."""
    current = settings(app)
    with database.connection(app.config["DATABASE"]) as db:
        summary = reconcile.last_summary(db)
        return {"last_sync": tune_sync.last_run(db), "last_sync_success": tune_sync.last_success(db),
                "pending_review": [dict(row) for row in tune_sync.pending_review(db)],
                "last_reconciliation": summary,
                "reconciliation_sentence": (reconcile.gap_sentence(summary, _yesterday(current.tz))
                                            if summary else None)}


def dashboard_gap(app, db, now=None):
    """The last reconciliation's gap for the dashboard ({"sentence", "from", "to", "at"}), or None
    when Tune is not connected or nothing was reconciled yet. Uses the request's connection."""
    current = tune_settings.from_app(app, db)
    if not current.configured:
        return None
    summary = reconcile.last_summary(db)
    if summary is None:
        return None
    return {"sentence": reconcile.gap_sentence(summary, _yesterday(current.tz, now)),
            "from": summary["from"], "to": summary["to"], "at": summary["at"]}


def describe_sync(result):
    """One line about a sync run, for the CLI, the job history and the Tune page."""
    text = "Tune sync" + (" (dry run, nothing changed)" if result.dry_run else "") + ": "
    return text + tune_sync.summary(result) + "."


# --- the server's schedule ---------------------------------------------------------------------------

def sync_interval_s(environ=os.environ):
    """Seconds between the server's sync runs (POPUP_TUNE_SYNC_S, default 900, at least 300)."""
    return tune_settings.sync_seconds(environ)


RECONCILE_INTERVAL_S = 24 * 60 * 60


def _nothing_to_do(current):
    """The schedule's sentence when Tune is simply not set up; raises when it is set up but
    unusable (a saved key the current app secret cannot read), so the job shows as failing."""
    if current.problem:
        raise NotConfigured(current.problem)
    return f"{NOT_CONNECTED[:-1]}; nothing to do."


def scheduled_sync(app_config, app=None):
    """The scheduler's sync job: one run, its one-line outcome. Raises TuneError (the run is
    recorded as failed and nothing changed) or NotConfigured (saved key unreadable). app, when
    given, has its offers snapshot rebuilt at once after a change (else within the catalog's TTL)."""
    current = settings_from_config(app_config)
    if not current.configured:
        return _nothing_to_do(current)
    try:
        return describe_sync(_sync(app_config, app))
    except tune_sync.SyncBusy as exc:
        return f"Tune sync skipped: {exc}."


def scheduled_reconcile(app_config, now=None):
    """The scheduler's daily job: reconcile the network's yesterday (no repair: that is the
    admin's decision) and keep its summary for the dashboard; returns the gap sentence."""
    current = settings_from_config(app_config)
    if not current.configured:
        return _nothing_to_do(current)
    day = _yesterday(current.tz, now)
    done = _reconcile(app_config, day, day)
    summary = reconcile.summary(done["report"])
    return f"Reconciled {day}: " + reconcile.gap_sentence(summary, day)
