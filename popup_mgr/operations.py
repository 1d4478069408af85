"""What a serving process runs beside waitress: the serving lock (so `restore` can tell a server
is using the database) and the one scheduler with the backup job and every other periodic job.

Only `popup-mgr serve` (and `quickstart`) call start(): CLI commands and tests build apps too,
and must neither take the lock nor run jobs. Wiring in the serve command is one call:

    handle = operations.start(app, jobs=[("tune-sync", 900, sync), ...], on_outcome=alerts_hook)
    try: waitress.serve(...)
    finally: handle.stop()
"""
import dataclasses
import datetime as dt

from popup_mgr import alerts, backup, digest, image_check, metrics, scheduler, serving, tune_jobs, tune_sync
from popup_mgr import db as database
from popup_mgr.ingest import state as ingest
from popup_mgr.scheduler import Scheduler

SCHEDULER_KEY = "popup_scheduler"
BACKUP_JOB = "backup"


@dataclasses.dataclass
class Running:
    scheduler: Scheduler
    lock: object

    def stop(self, timeout_s=30.0):
        """Let the running job finish, stop the scheduler, release the serving lock."""
        try:
            return self.scheduler.stop(timeout_s)
        finally:
            self.lock.close()


def start(app, jobs=(), on_outcome=None):
    """Take the serving lock, register the backup job (POPUP_BACKUP_EVERY_S) and jobs
    [(name, interval_s, function)], start the scheduler thread; returns a Running handle.
    Raises serving.DatabaseBusy while a restore is in progress."""
    database_path = app.config["DATABASE"]
    lock = serving.hold(database_path)
    try:
        scheduler = Scheduler(database_path, on_outcome=on_outcome)
        settings = backup.settings(app.config)
        config = app.config
        scheduler.add(BACKUP_JOB, settings.every_s, lambda: backup.scheduled_backup(config))
        for name, interval_s, function in jobs:
            scheduler.add(name, interval_s, function)
    except BaseException:
        lock.close()
        raise
    app.extensions[SCHEDULER_KEY] = scheduler
    scheduler.start()
    return Running(scheduler, lock)


ALERTS_EVERY_S = 300
DIGEST_CHECK_EVERY_S = 3600          # the digest job itself sends once per business day
IMAGE_CHECK_EVERY_S = 3600


def periodic_jobs(app):
    """[(name, interval_s, function)] of the server's periodic work besides the backup."""
    config = app.config
    return [
        ("alerts", ALERTS_EVERY_S, lambda: alerts.job(
            config, backup_outcome=lambda: last_outcome(config, BACKUP_JOB),
            tune_outcomes=lambda: recent_outcomes(config, TUNE_SYNC_JOB))),
        ("digest", DIGEST_CHECK_EVERY_S, lambda: digest.job(config)),
        ("image-check", IMAGE_CHECK_EVERY_S, lambda: image_check.job(config)),
        (TUNE_SYNC_JOB, tune_jobs.sync_interval_s(), lambda: tune_jobs.scheduled_sync(config, app)),
        ("tune-reconcile", tune_jobs.RECONCILE_INTERVAL_S, lambda: tune_jobs.scheduled_reconcile(config)),
    ]


TUNE_SYNC_JOB = "tune-sync"


def recent_outcomes(config, job, limit=10):
    """[{"ok", "message"}] of a job's latest finished runs, newest first."""
    with database.connection(config["DATABASE"]) as db:
        runs = scheduler.job_history(db, job, limit)
    return [{"ok": run["outcome"] == "ok", "message": run["detail"]} for run in runs if run["outcome"] != "running"]


def last_outcome(config, job):
    """The latest finished run's {"ok", "message"}, or None before the first."""
    found = recent_outcomes(config, job, limit=2)
    return found[0] if found else None


def scheduler_for(app):
    """The serving process's scheduler (for the admin's "run now"), or None outside `serve`."""
    return app.extensions.get(SCHEDULER_KEY)


def health_fields(app_config):
    """What /api/health adds about backups: {"last_backup": file name or None,
    "last_backup_age_s": whole seconds or None}."""
    path, age_s = backup.last_backup(backup.settings(app_config).directory)
    return {"last_backup": path.name if path else None,
            "last_backup_age_s": None if age_s is None else int(age_s)}


def init_app(app):
    """Give the app its metrics: every HTTP answer counted, the writer's batches timed, and at
    scrape time the database and WAL size, the queue, the last backup, jobs and Tune sync."""
    config = app.config
    writer = ingest.of(app).writer
    collected = metrics.init_app(app, backup_dir=backup.settings(config).directory,
                                 queue_depth=writer.queue_depth,
                                 tune_status=lambda: tune_sync_status(config["DATABASE"]),
                                 job_status=metrics.database_job_status(config["DATABASE"]))
    writer.on_batch = collected.batch


def tune_sync_status(database_path):
    """{"at": unix seconds, "ok": bool} of the last Tune sync run, or None before the first."""
    with database.connection(database_path) as db:
        run = tune_sync.last_run(db)
    if run is None or not run["finished_at"]:
        return None
    finished = dt.datetime.fromisoformat(run["finished_at"].replace("Z", "+00:00"))
    return {"at": finished.timestamp(), "ok": run["outcome"] == "ok"}
