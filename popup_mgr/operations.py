"""What a serving process runs beside waitress: the serving lock (so `restore` can tell a server
is using the database) and the one scheduler with the backup job and every other periodic job.

Only `popup-mgr serve` (and `quickstart`) call start(): CLI commands and tests build apps too,
and must neither take the lock nor run jobs. Wiring in the serve command is one call:

    handle = operations.start(app, jobs=[("tune-sync", 900, sync), ...], on_outcome=alerts_hook)
    try: waitress.serve(...)
    finally: handle.stop()
"""
import dataclasses

from popup_mgr import backup, serving
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


def scheduler_for(app):
    """The serving process's scheduler (for the admin's "run now"), or None outside `serve`."""
    return app.extensions.get(SCHEDULER_KEY)


def health_fields(app_config):
    """What /api/health adds about backups: {"last_backup": file name or None,
    "last_backup_age_s": whole seconds or None}."""
    path, age_s = backup.last_backup(backup.settings(app_config).directory)
    return {"last_backup": path.name if path else None,
            "last_backup_age_s": None if age_s is None else int(age_s)}
