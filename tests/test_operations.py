"""The serving process's operations: the serving lock, the scheduler with the backup job, and
the backup age that /api/health reports."""
import pytest

from popup_mgr import backup, operations, serving
from popup_mgr import db as database
from popup_mgr.scheduler import job_status


def test_start_runs_the_backup_job_and_holds_the_serving_lock(app, tmp_path):
    app.config["BACKUP_DIR"] = str(tmp_path / "backups")
    assert operations.health_fields(app.config) == {"last_backup": None, "last_backup_age_s": None}
    extra = []
    running = operations.start(app, jobs=[("digest", 86400, lambda: extra.append(1) or "sent")])
    try:
        assert serving.is_serving(app.config["DATABASE"])
        scheduler = operations.scheduler_for(app)
        assert scheduler.run_now(operations.BACKUP_JOB).wait(30)
        assert scheduler.run_now("digest").wait(30)
        with pytest.raises(backup.RestoreRefused):
            backup.restore(app.config["DATABASE"], backup.backup_files(tmp_path / "backups")[-1])
    finally:
        assert running.stop()
    assert not serving.is_serving(app.config["DATABASE"])
    assert extra
    fields = operations.health_fields(app.config)
    assert fields["last_backup"].startswith("popup-") and 0 <= fields["last_backup_age_s"] < 60
    conn = database.connect(app.config["DATABASE"])
    assert {s["job"]: s["outcome"] for s in job_status(conn)} == {"backup": "ok", "digest": "ok"}
    conn.close()


def test_a_server_does_not_start_during_a_restore(app):
    with serving.exclusive(app.config["DATABASE"]):
        with pytest.raises(serving.DatabaseBusy):
            operations.start(app)
    assert operations.scheduler_for(app) is None
