"""Is a server using this database? A lock file beside the database answers it.

Every serving process holds a shared flock on `<database>.serving` for its lifetime; `restore`
asks for an exclusive lock without waiting, which fails while any server holds its shared one.
Why a lock and not a pid file or a probe of SQLite's locks:
* the kernel drops the lock when the process ends in any way (kill -9 included), so a crashed
  server never leaves a stale "running" behind, and a reused pid never fakes one;
* an idle server may have no SQLite connection open at all (request connections close after
  each request, the ingest writer after a few idle seconds), so SQLite's own locks cannot tell.
It covers processes on this machine, which is where the database file lives.

Wiring: `serving.hold(app.config["DATABASE"])` once before waitress starts; keep the returned
object for the life of the process.
"""
import contextlib
import fcntl
import os
from pathlib import Path


class DatabaseBusy(RuntimeError):
    """The lock could not be taken: a server is running, or a restore is in progress."""


def lock_path(database_path):
    return Path(f"{database_path}.serving")


def hold(database_path):
    """Take the shared serving lock (several servers may hold it). Returns the open lock file,
    which must stay referenced; raises DatabaseBusy while a restore holds the exclusive lock."""
    handle = _open(database_path)
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DatabaseBusy(f"{database_path} is being restored; start the server when the restore ends") from None
    return handle


def is_serving(database_path):
    """True while some process holds the serving lock of database_path."""
    if not lock_path(database_path).exists():
        return False
    try:
        with exclusive(database_path):
            return False
    except DatabaseBusy:
        return True


@contextlib.contextmanager
def exclusive(database_path):
    """Hold the exclusive lock (no server may start meanwhile); DatabaseBusy if one serves."""
    handle = _open(database_path)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DatabaseBusy(f"a server is using {database_path}") from None
        yield
    finally:
        handle.close()


def _open(database_path):
    path = lock_path(database_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    return os.fdopen(fd, "r+")
