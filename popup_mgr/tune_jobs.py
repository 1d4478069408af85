"""The Tune work as one call each, for the CLI commands, the admin page, the API and the server's
schedule: settings from the app, a connection of its own, the client, the run.

Each function opens and closes its own connection (the Tune calls can take minutes; no request
connection is held meanwhile) and raises NotConfigured before anything is sent when Tune is not
set up, with the sentence to show.
"""
import datetime as dt
from zoneinfo import ZoneInfo

from popup_mgr import db as database
from popup_mgr import reconcile, tune_settings, tune_sync


class NotConfigured(RuntimeError):
    """Tune has no network id or key (or the saved key cannot be read); the message says which."""


def settings(app):
    """The effective TuneSettings (environment, then the saved ones)."""
    with database.connection(app.config["DATABASE"]) as db:
        return tune_settings.from_app(app, db)


def save_settings(app, actor, **fields):
    """Save network_id / api_key / api_url / tz (SettingsInvalid for bad input); the audited changes."""
    with database.connection(app.config["DATABASE"]) as db:
        return tune_settings.save(db, app.config["SECRET_KEY"], actor, **fields)


def _client(app, **options):
    current = settings(app)
    if not current.configured:
        raise NotConfigured(current.problem or "Tune is not connected: set the network id and the API key.")
    return current, current.client(**options)


def test_connection(app):
    """(ok, sentence): the network's answer in words."""
    try:
        _, client = _client(app, retries=0, timeout_s=30)
    except NotConfigured as exc:
        return False, str(exc)
    return client.test_connection()


def sync_now(app, *, actor=tune_sync.ACTOR, dry_run=False, **client_options):
    """One sync run (SyncResult); raises NotConfigured, TuneError or SyncBusy."""
    current, client = _client(app, **client_options)
    with database.connection(app.config["DATABASE"]) as db:
        return tune_sync.sync(db, client, actor=actor, dry_run=dry_run, tune_tz=current.tz, app=app)


def reconcile_days(app, first_day, last_day, *, apply=False, actor=reconcile.ACTOR, **client_options):
    """{"report", "applied", "after"}: the reconciliation of first_day..last_day (network days);
    with apply, the repair ({"recorded", "updated", "unchanged"}) and the reconciliation as it
    stands after it (same network answer, not fetched again). The latest state's summary is
    kept for the dashboard. Raises NotConfigured or TuneError (then nothing changed)."""
    current, client = _client(app, **client_options)
    network = reconcile.fetch(client, first_day, last_day)
    with database.connection(app.config["DATABASE"], durable=True) as db:
        report = reconcile.compare(db, network, current.tz)
        applied = after = None
        if apply:
            applied = reconcile.apply(db, report, current.tz, actor=actor)
            after = reconcile.compare(db, network, current.tz)
        reconcile.record(db, after or report)
    return {"report": report, "applied": applied, "after": after}


def yesterday(app, now=None):
    """The network's yesterday, the day the server reconciles once a day."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return (now.astimezone(ZoneInfo(settings(app).tz)).date() - dt.timedelta(days=1)).isoformat()


def last_results(app):
    """For the Tune page, the dashboard and /metrics: the last sync run, the campaigns waiting for
    review, and the last reconciliation's summary with its sentence."""
    with database.connection(app.config["DATABASE"]) as db:
        summary = reconcile.last_summary(db)
        return {"last_sync": tune_sync.last_run(db), "last_sync_success": tune_sync.last_success(db),
                "pending_review": [dict(row) for row in tune_sync.pending_review(db)],
                "last_reconciliation": summary,
                "reconciliation_sentence": reconcile.gap_sentence(summary) if summary else None}
