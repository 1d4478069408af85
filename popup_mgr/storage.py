"""The database's storage seen from outside SQLite: is it safe to start on, is it healthy while
serving, and how do its failures reach the log and /api/health.

* start-up: `startup_check()` runs `PRAGMA quick_check`; `describe_failure()` turns what went
  wrong opening a database (full disk, read-only file or directory, missing permissions, a damaged
  file, a file that is not a database) into one line an operator can act on.
* serving: `health()` reports the write-ahead log (a reader that never ends keeps it growing),
  free disk space and the writes refused in the last minutes; any of them makes the server
  "degraded".
* logging: `ThrottledLog` writes one warning per reason per interval and counts the rest (a full
  disk refuses every event; one line per event buried the log under thousands).
* permissions: `protect()` makes the database, its -wal/-shm and backups readable by their owner
  only (0600, directory 0700): they hold the postback secret and password and token hashes.
"""
import collections
import errno
import logging
import os
import shutil
import sqlite3
import stat
import threading
import time
from pathlib import Path

# A WAL above this size means checkpoints cannot keep up: normally it is reset after each
# checkpoint (at about 4 MB) and cut back to db.JOURNAL_SIZE_LIMIT; only a reader that keeps an
# old snapshot open (a long report, a stuck process) lets it grow further.
WAL_STUCK_BYTES = 64 * 1024 * 1024
# Below this much free space SQLite may soon fail to grow the WAL or the database.
MIN_FREE_DISK_BYTES = 256 * 1024 * 1024
# Writes refused within this window make the server "degraded".
FAILURE_WINDOW_S = 300
# Exit status of a start-up that cannot use the database (1 is a configuration error).
STARTUP_FAILURE_EXIT = 3


class StartupFailure(RuntimeError):
    """The database cannot be served from; the message is the one line to show."""


# --- start-up ----------------------------------------------------------------------------------

def startup_check(db, path):
    """Raise StartupFailure unless `PRAGMA quick_check` finds the database intact. quick_check
    reads every page (it skips only the index-content comparison of integrity_check), so a
    damaged file is refused before it accepts a single event."""
    try:
        problems = [row[0] for row in db.execute("PRAGMA quick_check(5)").fetchall()]
    except sqlite3.Error as exc:
        raise StartupFailure(describe_failure(exc, path)) from None
    if problems != ["ok"]:
        lines = [line.strip() for text in problems for line in text.splitlines()
                 if line.strip() and not line.startswith("***")]
        first = lines[0] if lines else "quick_check failed"
        raise StartupFailure(f"{path} is damaged ({first}); restore a backup with"
                             " `popup-mgr restore FILE` (the damaged file is kept as a pre-restore copy)")


def write_check(db):
    """Raise sqlite3.Error unless this database can be written now: rewrite its schema version
    with the same value in a write transaction (a read-only file, directory or file system, or a
    full disk, fails here rather than on the first visitor's event)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        db.execute(f"PRAGMA user_version = {int(version):d}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def describe_failure(exc, path):
    """One line saying what is wrong with the database at path and what to do, for an
    sqlite3.Error or OSError raised while opening, migrating or checking it."""
    directory = Path(path).resolve().parent
    name = getattr(exc, "sqlite_errorname", "") or ""
    code = getattr(exc, "errno", None)
    if name == "SQLITE_FULL" or code == errno.ENOSPC:
        return f"the disk holding {directory} is full: free some space, then start again"
    if name.startswith("SQLITE_READONLY") or code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (f"{path} cannot be written: the file, its directory {directory} or the file system is"
                " read-only, or this user lacks the permission (it must write the database and create"
                " its -wal and -shm files beside it)")
    if name == "SQLITE_CANTOPEN":
        return (f"cannot open {path}: check that {directory} exists and that this user may read,"
                " write and create files in it")
    if name == "SQLITE_NOTADB":
        return f"{path} is not a SQLite database (check POPUP_DB)"
    if name == "SQLITE_CORRUPT" or "malformed" in str(exc):
        return (f"{path} is damaged ({exc}); restore a backup with `popup-mgr restore FILE`")
    if name.startswith("SQLITE_IOERR"):
        return f"disk I/O error on {path} ({exc}): check the disk and the system log"
    return f"cannot use {path}: {exc}"


# --- health while serving --------------------------------------------------------------------------

class RecentFailures:
    """Times of refused writes, for "how many in the last N seconds" (thread-safe, bounded)."""

    def __init__(self, keep=10_000, clock=time.monotonic):
        self._times = collections.deque(maxlen=keep)
        self._lock = threading.Lock()
        self._clock = clock

    def record(self):
        with self._lock:
            self._times.append(self._clock())

    def count(self, window_s=FAILURE_WINDOW_S):
        since = self._clock() - window_s
        with self._lock:
            return sum(1 for moment in self._times if moment >= since)


def wal_status(path, stuck_bytes=WAL_STUCK_BYTES):
    """{"bytes": size of the -wal file, "stuck": True when it is over stuck_bytes}."""
    try:
        size = os.stat(f"{path}-wal").st_size
    except FileNotFoundError:
        size = 0
    return {"bytes": size, "stuck": size > stuck_bytes}


def disk_status(path, min_free_bytes=MIN_FREE_DISK_BYTES):
    """{"free_bytes", "low": True under min_free_bytes} of the file system holding the database."""
    free = shutil.disk_usage(Path(path).resolve().parent).free
    return {"free_bytes": free, "low": free < min_free_bytes}


def health(config, failures):
    """(degraded, fields) for /api/health: the WAL, the disk and the writes refused lately."""
    path = config["DATABASE"]
    wal = wal_status(path, config.get("WAL_STUCK_BYTES", WAL_STUCK_BYTES))
    disk = disk_status(path, config.get("MIN_FREE_DISK_BYTES", MIN_FREE_DISK_BYTES))
    window_s = config.get("WRITE_FAILURE_WINDOW_S", FAILURE_WINDOW_S)
    writes = {"failed": failures.count(window_s), "window_s": window_s}
    reasons = [reason for reason, bad in (("wal", wal["stuck"]), ("disk", disk["low"]),
                                          ("writes", writes["failed"] > 0)) if bad]
    return bool(reasons), {"wal": wal, "disk": disk, "writes": writes, "problems": reasons}


# --- logging ------------------------------------------------------------------------------------------

class ThrottledLog:
    """One warning per reason per interval; the ones held back are counted and reported with the
    next warning of that reason."""

    def __init__(self, logger, interval_s=60.0, clock=time.monotonic):
        self.logger, self.interval_s, self._clock = logger, interval_s, clock
        self._last = {}                 # reason -> time of its last written warning
        self._held = collections.Counter()
        self._lock = threading.Lock()

    def warning(self, reason, message, *args):
        now = self._clock()
        with self._lock:
            last = self._last.get(reason)
            if last is not None and now - last < self.interval_s:
                self._held[reason] += 1
                return
            self._last[reason] = now
            held = self._held.pop(reason, 0)
        if held:
            message += " (and %d more like it in the last %.0f s, not logged)"
            args = (*args, held, self.interval_s)
        self.logger.warning(message, *args)


# --- permissions -------------------------------------------------------------------------------------

OWNER_FILE = 0o600
OWNER_DIRECTORY = 0o700


def protect(path):
    """Make the database file and its -wal/-shm owner-only (0600). The directory is left as the
    operator made it, except one popup_mgr created itself (see db.migrate), which is 0700."""
    for name in (str(path), f"{path}-wal", f"{path}-shm"):
        try:
            if stat.S_IMODE(os.stat(name).st_mode) != OWNER_FILE:
                os.chmod(name, OWNER_FILE)
        except FileNotFoundError:
            pass
        except PermissionError:
            logging.getLogger(__name__).warning("cannot make %s owner-only (not its owner)", name)
