"""Online backup and restore of the SQLite database, proven after writing.

Never copy a live database file: with WAL, recent commits may still be in the -wal file. Both
directions use SQLite's backup API, which copies a consistent snapshot while the app keeps
serving, and other connections see the restored content on their next transaction.

A backup is written to a temporary file in the target directory, checked (PRAGMA
integrity_check, and every table's row count against the source's in the same snapshot),
fsynced and only then renamed into place: a failed or interrupted backup leaves no file that
could later be mistaken for a good one. Backups hold the postback secret and password and token
hashes, so files are created 0600 and a backup directory made here is 0700.

Checking a backup never changes it: it is opened read-only (immutable when no -wal file sits
beside it), so it is neither switched to WAL nor given a secret_key.
"""
import dataclasses
import datetime as dt
import os
import re
import sqlite3
import tempfile
import time
from pathlib import Path

from popup_mgr import db as database
from popup_mgr import rollups, serving, timeutil

BACKUP_PREFIX = "popup-"
BACKUP_SUFFIX = ".db"
_BACKUP_NAME = re.compile(r"popup-\d{8}T\d{6}(\.\d{3})?Z\.db")
DEFAULT_KEEP = 14
DEFAULT_EVERY_S = 86400
SECRET_FILE = "secret_key"        # where config.py keeps a generated key, beside the database


class BackupError(RuntimeError):
    """The backup or restore could not be done; nothing was changed."""


class RestoreRefused(BackupError):
    """A restore that would do harm (server running, secret key lost); the message says why."""


@dataclasses.dataclass(frozen=True)
class BackupSettings:
    directory: Path
    keep: int
    every_s: int


def settings(app_config, environ=os.environ):
    """POPUP_BACKUP_DIR (default: backups/ beside the database), POPUP_BACKUP_KEEP (14),
    POPUP_BACKUP_EVERY_S (86400); app config keys BACKUP_DIR/KEEP/EVERY_S take precedence."""
    directory = app_config.get("BACKUP_DIR") or environ.get("POPUP_BACKUP_DIR") \
        or default_backup_dir(app_config["DATABASE"])
    keep = int(app_config.get("BACKUP_KEEP") or environ.get("POPUP_BACKUP_KEEP") or DEFAULT_KEEP)
    every_s = int(app_config.get("BACKUP_EVERY_S") or environ.get("POPUP_BACKUP_EVERY_S") or DEFAULT_EVERY_S)
    if keep < 1 or every_s < 1:
        raise BackupError("POPUP_BACKUP_KEEP and POPUP_BACKUP_EVERY_S must be at least 1")
    return BackupSettings(Path(directory), keep, every_s)


def default_backup_dir(db_path):
    return Path(db_path).parent / "backups"


def _stamp():
    now = dt.datetime.now(timeutil.UTC)
    return now.strftime("%Y%m%dT%H%M%S") + f".{now.microsecond // 1000:03d}Z"


def default_backup_path(db_path, directory=None):
    return Path(directory or default_backup_dir(db_path)) / f"{BACKUP_PREFIX}{_stamp()}{BACKUP_SUFFIX}"


# --- writing a backup ---------------------------------------------------------------------------

def backup(db_path, target=None):
    """Write a checked, consistent copy of the database to target (default:
    backups/popup-<time>.db beside it) and return its path. Raises BackupError, leaving no file."""
    if not Path(db_path).is_file():
        raise BackupError(f"{db_path} does not exist")
    target = Path(target) if target else default_backup_path(db_path)
    if target.exists():
        raise BackupError(f"{target} already exists; choose another file")
    private_directory(target.parent)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        counts = _copy_snapshot(db_path, temporary)
        _check_copy(temporary, counts)
        _fsync(temporary)
        os.replace(temporary, target)
        _fsync(target.parent)
    except BaseException as exc:
        _remove(temporary)
        if isinstance(exc, sqlite3.Error):
            raise BackupError(f"backup of {db_path} failed: {exc}") from exc
        raise
    return target


def private_directory(path):
    """Create path 0700 if missing (an existing directory keeps its mode; `doctor` reports it)."""
    path = Path(path)
    if not path.is_dir():
        path.mkdir(parents=True, mode=0o700)
        os.chmod(path, 0o700)          # mkdir's mode is reduced by the umask; make it exact


def _copy_snapshot(db_path, temporary):
    """Copy the database into temporary and return the row count of every table, counted in
    the very snapshot that was copied (a read transaction around both)."""
    source = database.connect(db_path)
    dest = sqlite3.connect(temporary)
    try:
        source.execute("BEGIN")
        counts = table_row_counts(source)
        source.backup(dest)
        source.execute("COMMIT")
        # A backup is a single file: out of WAL mode, so it can be copied as it is.
        dest.execute("PRAGMA journal_mode = DELETE")
    finally:
        dest.close()
        source.close()
    return counts


def _check_copy(path, source_counts):
    conn = open_readonly(path)
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if result != "ok":
            raise BackupError(f"the new backup failed the integrity check: {result}")
        copied = table_row_counts(conn)
    finally:
        conn.close()
    if copied != source_counts:
        different = sorted(name for name in set(copied) | set(source_counts)
                           if copied.get(name) != source_counts.get(name))
        raise BackupError(f"the new backup's row counts differ from the database's in: {', '.join(different)}")


def table_row_counts(db):
    """{table: rows} for every table of the database (names from sqlite_master, not from input)."""
    names = [row[0] for row in db.execute(
        "/* backup.table_row_counts */ SELECT name FROM sqlite_master"
        " WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    return {name: db.execute(f'/* backup.table_row_counts */ SELECT count(*) FROM "{name}"').fetchone()[0]
            for name in names}


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path):
    for leftover in (path, f"{path}-journal", f"{path}-wal", f"{path}-shm"):
        try:
            os.unlink(leftover)
        except FileNotFoundError:
            pass


# --- the backup directory -----------------------------------------------------------------------

def backup_files(directory):
    """Completed backups (popup-<time>.db) in directory, oldest first. Temporary files, safety
    copies (pre-restore-*) and anything else there are not backups."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(path for path in directory.iterdir() if _BACKUP_NAME.fullmatch(path.name))


def rotate(directory, keep):
    """Delete the oldest backups beyond the newest `keep`; returns the deleted paths."""
    files = backup_files(directory)
    doomed = files[:-keep] if keep > 0 else files
    for path in doomed:
        path.unlink()
    return doomed


def last_backup(directory, now=None):
    """(path, age in seconds) of the newest backup, or (None, None) when there is none."""
    files = backup_files(directory)
    if not files:
        return None, None
    newest = files[-1]
    now = time.time() if now is None else now
    return newest, max(0.0, now - newest.stat().st_mtime)


def scheduled_backup(app_config, environ=os.environ):
    """The scheduler's backup job: write a checked backup, then rotate. Returns a one-line
    summary for the job history; raises BackupError (recorded as the job's failure)."""
    chosen = settings(app_config, environ)
    started = time.monotonic()
    path = backup(app_config["DATABASE"], default_backup_path(app_config["DATABASE"], chosen.directory))
    removed = rotate(chosen.directory, chosen.keep)
    return (f"{path.name}: {path.stat().st_size} bytes in {time.monotonic() - started:.1f} s, checked;"
            f" {len(removed)} old backup(s) removed, {len(backup_files(chosen.directory))} kept")


# --- checking a backup without changing it --------------------------------------------------------

def open_readonly(path):
    """A read-only connection that cannot change the file. Immutable when no -wal file is beside
    it (a backup at rest): then SQLite takes no locks and creates no -shm. A file with a -wal
    beside it is a live database: read-only mode still reads its WAL."""
    path = Path(path)
    flags = "mode=ro" if Path(f"{path}-wal").exists() else "mode=ro&immutable=1"
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?{flags}", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def check_file(path):
    """Raise BackupError unless path is an intact popup_mgr database; return its schema version."""
    if not Path(path).is_file():
        raise BackupError(f"{path} does not exist")
    try:
        conn = open_readonly(path)
    except sqlite3.Error as exc:
        raise BackupError(f"{path} cannot be opened ({exc})") from exc
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a SQLite database ({exc})") from exc
    finally:
        conn.close()
    if result != "ok":
        raise BackupError(f"{path} failed the integrity check: {result}")
    if not {"campaigns", "properties", "impressions"} <= tables:
        raise BackupError(f"{path} is not a popup_mgr database")
    if version > database.latest_version():
        raise BackupError(f"{path} was made by a newer popup_mgr (schema {version})")
    return version


def verify_backup(path):
    """Prove a backup is usable, read-only: integrity, schema, row counts, and daily_stats equal
    to the ledger. Returns {"path", "schema_version", "tables": {name: rows}, "first_day",
    "last_day", "rollup_differences": [(source, row)]}; raises BackupError when unusable."""
    version = check_file(path)
    conn = open_readonly(path)
    try:
        days = rollups.ledger_day_range(conn)
        differences = rollups.differences(conn, *days) if days else []
        return {"path": str(path), "schema_version": version, "tables": table_row_counts(conn),
                "first_day": days[0] if days else None, "last_day": days[1] if days else None,
                "rollup_differences": differences}
    finally:
        conn.close()


# --- restore --------------------------------------------------------------------------------------

def restore(db_path, source_path, *, secret_from=None, force=False, environ=os.environ):
    """Replace the database's content with a backup, keeping a safety copy of the current one.

    Refused (RestoreRefused) while a server uses the database (see serving.py), unless force:
    the server's in-memory catalog and pending ingest would not match the restored content.
    Into a place without a database yet (a new box), the secret key must come along: the
    offer tokens in publishers' pages and every session are signed with it, and the app would
    otherwise mint a new one. So either `secret_from` names the old `secret_key` file (copied in,
    0600), or POPUP_SECRET_KEY is set, or a secret_key file is already beside the target.

    Returns the path of the safety copy (None when there was no database). The restored database
    is migrated to this version.
    """
    check_file(source_path)
    db_path = Path(db_path)
    secret_source = _secret_to_copy(db_path, secret_from, environ)
    private_directory(db_path.parent)
    try:
        with serving.exclusive(db_path):
            return _restore_locked(db_path, source_path, secret_source)
    except serving.DatabaseBusy:
        if not force:
            raise RestoreRefused(
                f"a popup-mgr server is using {db_path}: stop it first (systemctl stop popup-mgr),"
                " or force the restore (the server then keeps serving stale offers until restarted)") from None
    return _restore_locked(db_path, source_path, secret_source)


def _secret_to_copy(db_path, secret_from, environ):
    """The secret_key file to copy beside the restored database, or None when none is needed."""
    if secret_from is not None:
        secret_from = Path(secret_from)
        if not secret_from.is_file() or not secret_from.read_text().strip():
            raise RestoreRefused(f"{secret_from} is not a secret_key file")
        return secret_from
    if db_path.exists() or environ.get("POPUP_SECRET_KEY") or (db_path.parent / SECRET_FILE).is_file():
        return None
    raise RestoreRefused(
        f"{db_path.parent} has no {SECRET_FILE} and POPUP_SECRET_KEY is not set: the server would make a new"
        " secret and every offer token and session signed with the old one would stop working. Copy the old"
        f" one with --secret-from /old/instance/{SECRET_FILE}, or set POPUP_SECRET_KEY to the old value")


def _restore_locked(db_path, source_path, secret_source):
    safety = None
    if db_path.exists():
        safety = backup(db_path, default_backup_dir(db_path) / f"pre-restore-{_stamp()}.db")
    if not db_path.exists():
        os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    source = open_readonly(source_path)
    dest = database.connect(db_path, durable=True)
    try:
        source.backup(dest)
    finally:
        dest.close()
        source.close()
    os.chmod(db_path, 0o600)
    if secret_source is not None:
        _install_secret(secret_source, db_path.parent / SECRET_FILE)
    database.migrate(db_path)
    return safety


def _install_secret(source, target):
    """Copy the secret key file atomically, 0600; a different key already there is kept aside."""
    if target.exists() and target.read_text().strip() != source.read_text().strip():
        os.replace(target, target.with_name(f"{SECRET_FILE}.pre-restore-{_stamp()}"))
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{SECRET_FILE}.", suffix=".tmp")
    with os.fdopen(fd, "w") as out:
        out.write(source.read_text())
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, target)


def verify_database(db_path):
    """rollups.differences over the whole ledger of a database (read-only), [] when equal: what
    `restore --verify` checks after restoring."""
    conn = open_readonly(db_path)
    try:
        days = rollups.ledger_day_range(conn)
        return rollups.differences(conn, *days) if days else []
    finally:
        conn.close()

