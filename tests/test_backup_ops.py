"""Backups that are proven: atomic and checked after writing, private file modes, rotation, the
age of the last one, read-only verification, and a restore that refuses to do harm (server
running, secret key left behind). Everything on real SQLite files."""
import hashlib
import os
import sqlite3
import stat
import threading

import pytest

from popup_mgr import backup, serving
from popup_mgr import db as database
from popup_mgr.scheduler import Scheduler, job_status
from tests.helpers import add_campaign, add_click, add_impression, ms, rebuild


@pytest.fixture
def live(tmp_path):
    """A database with ledger rows and matching daily_stats, as a server leaves it."""
    path = tmp_path / "instance" / "popup.db"
    database.migrate(path)
    conn = database.connect(path)
    campaign = add_campaign(conn, name="sweeps")
    for minute in range(30):
        add_impression(conn, ms(f"2026-11-20 15:{minute:02d}:00"), campaign, "mff")
    add_click(conn, ms("2026-11-20 15:31:00"), campaign, "mff")
    rebuild(conn)
    conn.close()
    return path


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_backup_is_checked_private_and_complete(live):
    path = backup.backup(live)

    assert path.parent == live.parent / "backups" and backup.backup_files(path.parent) == [path]
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert os.listdir(path.parent) == [path.name]              # no temporary file left behind
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"   # one self-contained file
    assert conn.execute("SELECT count(*) FROM impressions").fetchone()[0] == 30
    conn.close()
    report = backup.verify_backup(path)
    assert report["tables"]["impressions"] == 30 and report["tables"]["clicks"] == 1
    assert report["rollup_differences"] == [] and report["first_day"] == "2026-11-20"


def test_backups_taken_during_writes_are_consistent_snapshots(live):
    """Row counts are compared in the snapshot that was copied, so a busy ingest never makes a
    good backup look bad (nor a bad one look good)."""
    stop, written = threading.Event(), []

    def write():
        conn = database.connect(live)
        campaign = conn.execute("SELECT id FROM campaigns").fetchone()[0]
        while not stop.is_set():
            add_impression(conn, ms("2026-11-21 10:00:00"), campaign, "mmm")
            written.append(1)
        conn.close()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        paths = [backup.backup(live, live.parent / "backups" / f"b{i}.db") for i in range(5)]
    finally:
        stop.set()
        writer.join()
    assert len(written) > 5
    counts = [sqlite3.connect(p).execute("SELECT count(*) FROM impressions").fetchone()[0] for p in paths]
    assert counts == sorted(counts) and counts[-1] > 30


def test_a_failed_backup_leaves_no_file(live, monkeypatch, tmp_path):
    target_dir = tmp_path / "out"

    def broken_copy(db_path, temporary):
        with open(temporary, "wb") as half_written:
            half_written.write(b"SQLite format 3\x00" + b"\x00" * 100)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(backup, "_copy_snapshot", broken_copy)
    with pytest.raises(backup.BackupError, match="disk I/O error"):
        backup.backup(live, target_dir / "popup-x.db")
    assert os.listdir(target_dir) == []

    monkeypatch.undo()
    real_counts, calls = backup.table_row_counts, []

    def counts_that_disagree(db):
        # The first call counts the source's snapshot, the second the copy: make the copy short.
        calls.append(1)
        counts = real_counts(db)
        counts["impressions"] -= len(calls) - 1
        return counts

    # The copy is intact but has fewer rows than the snapshot: refused, nothing kept.
    monkeypatch.setattr(backup, "table_row_counts", counts_that_disagree)
    with pytest.raises(backup.BackupError, match="row counts differ.*impressions"):
        backup.backup(live, target_dir / "popup-y.db")
    assert os.listdir(target_dir) == []

    with pytest.raises(backup.BackupError, match="does not exist"):
        backup.backup(tmp_path / "missing.db", target_dir / "popup-z.db")
    assert not (tmp_path / "missing.db").exists()      # never creates an empty database


def test_rotation_keeps_the_newest_and_touches_nothing_else(live, tmp_path):
    directory = tmp_path / "kept"
    config = {"DATABASE": str(live), "BACKUP_DIR": str(directory), "BACKUP_KEEP": 3}
    backup.private_directory(directory)
    (directory / "pre-restore-20260101T000000Z.db").write_bytes(b"safety copy")
    (directory / "notes.txt").write_text("mine")
    summaries = [backup.scheduled_backup(config) for _ in range(5)]

    files = backup.backup_files(directory)
    assert len(files) == 3 and files == sorted(files)
    assert "checked" in summaries[-1] and "3 kept" in summaries[-1]
    assert (directory / "pre-restore-20260101T000000Z.db").exists() and (directory / "notes.txt").exists()
    assert all(backup.check_file(path) == database.latest_version() for path in files)


def test_last_backup_and_its_age(live, tmp_path):
    directory = tmp_path / "none"
    assert backup.last_backup(directory) == (None, None)
    first = backup.backup(live, backup.default_backup_path(live, directory))
    second = backup.backup(live, backup.default_backup_path(live, directory))
    os.utime(second, (1_800_000_000, 1_800_000_000))
    path, age = backup.last_backup(directory, now=1_800_000_090)
    assert path == second and first != second and age == 90


def test_verifying_a_backup_changes_nothing(live, tmp_path):
    path = backup.backup(live, tmp_path / "check" / "b.db")
    before = sha(path)
    report = backup.verify_backup(path)
    backup.check_file(path)
    assert report["schema_version"] == database.latest_version()
    assert sha(path) == before
    assert sorted(os.listdir(path.parent)) == ["b.db"]     # no -wal, -shm or secret_key beside it


def test_verification_reports_rollups_that_differ_from_the_ledger(live, tmp_path):
    path = backup.backup(live, tmp_path / "b.db")
    conn = sqlite3.connect(path)
    conn.execute("UPDATE daily_stats SET impressions = impressions + 1")
    conn.commit()
    conn.close()
    [(source, row)] = [d for d in backup.verify_backup(path)["rollup_differences"] if d[0] == "ledger"]
    assert row["impressions"] == 30


def test_a_damaged_backup_is_refused(live, tmp_path):
    path = backup.backup(live, tmp_path / "b.db")
    data = bytearray(path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    data[page_size * 2: page_size * 3] = os.urandom(page_size)     # scribble over a b-tree page
    path.write_bytes(bytes(data))
    with pytest.raises(backup.BackupError):
        backup.verify_backup(path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 200)
    with pytest.raises(backup.BackupError, match="not a SQLite database"):
        backup.check_file(junk)


def test_restore_is_refused_while_a_server_uses_the_database(live, tmp_path):
    path = backup.backup(live, tmp_path / "b.db")
    lock = serving.hold(live)
    try:
        assert serving.is_serving(live)
        with pytest.raises(backup.RestoreRefused, match="server is using"):
            backup.restore(live, path)
        assert backup.restore(live, path, force=True) is not None
    finally:
        lock.close()
    assert not serving.is_serving(live)
    assert backup.restore(live, path) is not None


def test_a_server_cannot_start_during_a_restore(live):
    with serving.exclusive(live):
        with pytest.raises(serving.DatabaseBusy, match="being restored"):
            serving.hold(live)
    serving.hold(live).close()


def test_restore_into_a_new_directory_needs_the_secret(live, tmp_path):
    path = backup.backup(live, tmp_path / "b.db")
    old_secret = live.parent / "secret_key"
    old_secret.write_text("the-old-secret-0123456789-abcdefghijklmnopqrstuv\n")
    new_db = tmp_path / "newbox" / "instance" / "popup.db"

    with pytest.raises(backup.RestoreRefused, match="secret-from"):
        backup.restore(new_db, path, environ={})
    assert not new_db.exists()

    assert backup.restore(new_db, path, secret_from=old_secret, environ={}) is None
    secret = new_db.parent / "secret_key"
    assert secret.read_text() == old_secret.read_text() and mode(secret) == 0o600
    assert mode(new_db) == 0o600 and mode(new_db.parent) == 0o700
    conn = database.connect(new_db)
    assert conn.execute("SELECT count(*) FROM impressions").fetchone()[0] == 30
    conn.close()
    assert backup.verify_database(new_db) == []

    # With the key in the environment no file is needed.
    other = tmp_path / "envbox" / "popup.db"
    backup.restore(other, path, environ={"POPUP_SECRET_KEY": "x" * 40})
    assert not (other.parent / "secret_key").exists()


def test_restore_keeps_the_replaced_content_and_a_different_key_aside(live, tmp_path):
    path = backup.backup(live, tmp_path / "b.db")
    (live.parent / "secret_key").write_text("current-key")
    donor = tmp_path / "donor_key"
    donor.write_text("restored-key")
    safety = backup.restore(live, path, secret_from=donor)
    assert safety.name.startswith("pre-restore-") and backup.check_file(safety)
    assert (live.parent / "secret_key").read_text() == "restored-key"
    [kept] = live.parent.glob("secret_key.pre-restore-*")
    assert kept.read_text() == "current-key"


def test_settings_from_the_environment(tmp_path):
    config = {"DATABASE": str(tmp_path / "popup.db")}
    defaults = backup.settings(config, environ={})
    assert (defaults.directory, defaults.keep, defaults.every_s) == (tmp_path / "backups", 14, 86400)
    chosen = backup.settings(config, environ={"POPUP_BACKUP_DIR": "/srv/b", "POPUP_BACKUP_KEEP": "30",
                                              "POPUP_BACKUP_EVERY_S": "3600"})
    assert (str(chosen.directory), chosen.keep, chosen.every_s) == ("/srv/b", 30, 3600)
    with pytest.raises(backup.BackupError):
        backup.settings(config, environ={"POPUP_BACKUP_KEEP": "0"})


def test_a_failing_scheduled_backup_is_recorded_by_the_scheduler(live, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    failures = []
    scheduler = Scheduler(str(live), on_outcome=lambda *args: failures.append(args))
    scheduler.add("backup", 86400, lambda: backup.scheduled_backup(
        {"DATABASE": str(live), "BACKUP_DIR": str(blocker / "backups")}))
    scheduler.add("after", 86400, lambda: "still runs")
    assert [r.outcome for r in scheduler.run_pending()] == ["error", "ok"]
    assert failures[0][:2] == ("backup", "error")
    conn = database.connect(live)
    assert {s["job"]: s["outcome"] for s in job_status(conn)} == {"backup": "error", "after": "ok"}
    conn.close()
