"""Online backup and restore of the SQLite database.

Never copy a live database file: with WAL, recent commits may still be in the -wal file. Both
directions use SQLite's backup API, which copies a consistent snapshot while the app keeps
serving, and other connections see the restored content on their next transaction.
"""
import sqlite3
from pathlib import Path

from popup_mgr import db as database
from popup_mgr import timeutil


class BackupError(RuntimeError):
    """The backup or restore could not be done; nothing was changed."""


def default_backup_path(db_path):
    stamp = timeutil.iso_now().replace(":", "").replace("-", "")
    return Path(db_path).parent / "backups" / f"popup-{stamp}.db"


def backup(db_path, target=None):
    """Write a consistent copy of the database to target (default: instance/backups/...)."""
    target = Path(target) if target else default_backup_path(db_path)
    if target.exists():
        raise BackupError(f"{target} already exists; choose another file")
    target.parent.mkdir(parents=True, exist_ok=True)
    source = database.connect(db_path)
    dest = sqlite3.connect(target)
    try:
        source.backup(dest)
        # A backup is a single file: switch it out of WAL mode so it can be copied as is.
        dest.execute("PRAGMA journal_mode = DELETE")
    finally:
        dest.close()
        source.close()
    check_file(target)
    return target


def check_file(path):
    """Raise BackupError unless path is an intact popup_mgr database; return its schema version."""
    if not Path(path).is_file():
        raise BackupError(f"{path} does not exist")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a SQLite database ({exc})")
    finally:
        conn.close()
    if result != "ok":
        raise BackupError(f"{path} failed the integrity check: {result}")
    if not {"campaigns", "properties", "impressions"} <= tables:
        raise BackupError(f"{path} is not a popup_mgr database")
    if version > database.latest_version():
        raise BackupError(f"{path} was made by a newer popup_mgr (schema {version})")
    return version


def restore(db_path, source_path):
    """Replace the database's content with a backup, keeping a safety copy of the current one.

    Returns the path of the safety copy. The restored database is migrated to this version.
    """
    check_file(source_path)
    safety = backup(db_path, Path(db_path).parent / "backups" /
                    f"pre-restore-{timeutil.iso_now().replace(':', '').replace('-', '')}.db") \
        if Path(db_path).exists() else None
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    dest = database.connect(db_path, durable=True)
    try:
        source.backup(dest)
    finally:
        dest.close()
        source.close()
    database.migrate(db_path)
    return safety
