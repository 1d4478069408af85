"""SQLite access: connections, pragmas, transactions and migrations, all in one place.

Python's sqlite3 opens implicit transactions by default; every connection here is opened in
autocommit mode (isolation_level=None) and writes go through `transaction()`, which starts with
BEGIN IMMEDIATE so that a writer waits for the lock up front instead of failing half-way with
"database is locked".
"""
import contextlib
import os
import re
import sqlite3
from pathlib import Path

from flask import current_app, g

from popup_mgr import storage, timeutil
from popup_mgr.config import PROJECT_DIR

SCHEMA_PATH = PROJECT_DIR / "schema.sql"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Version of a database made from schema.sql before any migration existed.
BASE_VERSION = 1

# After a checkpoint resets the WAL, SQLite cuts the file back to this size (without a limit it
# stays as large as it ever grew, e.g. behind a long reader).
JOURNAL_SIZE_LIMIT = 32 * 1024 * 1024

DEFAULT_PROPERTIES = (
    ("mff", "ModeFreeFinds"),
    ("mmm", "ModeMarketMunchies"),
    ("mcad", "Mode Coupons & Deals"),
    ("mmd", "Mode Money Daily"),
)
# The sites' host names where they are known; the others are filled in on the Properties page.
DEFAULT_DOMAINS = {"mff": "modefreefinds.com", "mmm": "modemarketmunchies.com"}


def connect(path, *, durable=False):
    """Open a connection with the pragmas every part of the app relies on."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
    db.row_factory = sqlite3.Row
    # WAL: readers never block the writer and the writer never blocks readers.
    db.execute("PRAGMA journal_mode = WAL")
    # NORMAL survives a process crash (kill -9) in WAL mode; FULL also survives power loss and
    # is used where money is written (durable=True).
    db.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
    # The schema's REFERENCES clauses are only enforced with this on, per connection.
    db.execute("PRAGMA foreign_keys = ON")
    # Wait for a competing writer instead of failing at once.
    db.execute("PRAGMA busy_timeout = 10000")
    # Temporary b-trees (GROUP BY, ORDER BY) in memory, not in files.
    db.execute("PRAGMA temp_store = MEMORY")
    # A WAL that grew behind a long reader shrinks again at its next reset.
    db.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT:d}")
    return db


def checkpoint_without_waiting(db):
    """Copy the WAL into the database and truncate it to zero bytes, unless a reader or writer is
    active, in which case copy what can be copied and return at once (no busy wait: the caller,
    the idle ingest writer, must not stall anyone). Returns (busy, wal frames, frames copied)."""
    db.execute("PRAGMA busy_timeout = 0")
    try:
        return tuple(db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())
    finally:
        db.execute("PRAGMA busy_timeout = 10000")


@contextlib.contextmanager
def connection(path, *, durable=False):
    """A connection of its own for work outside a request (writer threads, snapshots, the
    postback's FULL-sync write), closed when the block ends."""
    db = connect(path, durable=durable)
    try:
        yield db
    finally:
        db.close()


@contextlib.contextmanager
def transaction(db):
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def get_db():
    """The request's connection, opened on first use and closed in teardown."""
    if "db" not in g:
        g.db = connect(current_app.config["DATABASE"])
    return g.db


def close_db(_exc=None):
    db = g.pop("db", None)
    if db is not None:
        db.close()


def init_app(app):
    app.teardown_appcontext(close_db)


# --- migrations -------------------------------------------------------------------------------

def migration_files():
    """[(number, path)] of popup_mgr/migrations/NNNN_name.sql, in order."""
    found = []
    for path in MIGRATIONS_DIR.glob("*.sql"):
        match = re.match(r"(\d{4})_\w+\.sql$", path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_version():
    files = migration_files()
    return max([BASE_VERSION] + [number for number, _ in files])


def schema_version(db):
    return db.execute("PRAGMA user_version").fetchone()[0]


def health_check(db):
    """The schema version, after a read of a real table (raises sqlite3.Error when the database
    cannot answer)."""
    version = schema_version(db)
    db.execute("/* db.health_check */ SELECT count(*) FROM properties").fetchone()
    return version


def migrate(path):
    """Create the database from schema.sql, or bring an older one up to date. Idempotent.

    Returns the list of migration numbers applied (empty when already current or fresh).
    """
    _create_owner_only(path)
    with connection(path, durable=True) as db:
        applied = _migrate(db)
        _seed_properties(db)
    storage.protect(path)
    return applied


def _create_owner_only(path):
    """Create a missing database directory 0700 and a missing database file 0600 before SQLite
    opens it: SQLite gives the -wal and -shm files the database file's mode, so all three stay
    unreadable to other users (they hold the postback secret and password and token hashes)."""
    path = Path(path)
    if str(path) == ":memory:" or path.exists():
        return
    missing = [parent for parent in [path.parent, *path.parent.parents] if not parent.exists()]
    path.parent.mkdir(mode=storage.OWNER_DIRECTORY, parents=True, exist_ok=True)
    for directory in missing:
        os.chmod(directory, storage.OWNER_DIRECTORY)     # mkdir's mode is filtered by the umask
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, storage.OWNER_FILE))
    except FileExistsError:
        pass


def _migrate(db):
    version = schema_version(db)
    if version == 0 and not _has_tables(db):
        with transaction(db):
            for statement in _statements(SCHEMA_PATH.read_text()):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {latest_version():d}")
        return []
    applied = []
    for number, path in migration_files():
        if number <= version:
            continue
        with transaction(db):
            for statement in _statements(path.read_text()):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number:d}")
        applied.append(number)
    return applied


def _has_tables(db):
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' LIMIT 1").fetchone() is not None


def _statements(script):
    """Split a SQL script into statements so they run inside one explicit transaction
    (executescript() would COMMIT on its own)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(l.strip().startswith("--") or not l.strip() for l in buffer.splitlines()):
        raise ValueError(f"incomplete SQL statement at end of script: {buffer.strip()[:80]}")
    return statements


def _seed_properties(db):
    """The four Mode properties exist after init-db (kept as edited once they exist)."""
    now = timeutil.iso_now()
    with transaction(db):
        for code, name in DEFAULT_PROPERTIES:
            domain = DEFAULT_DOMAINS.get(code, "")
            db.execute(
                "/* db.seed_properties */ INSERT OR IGNORE INTO properties"
                " (code, name, domain, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                (code, name, domain, now, now),
            )
            # Databases made before the names were known carry the code as the name ("mcad") and
            # no domain: give them the defaults, but never overwrite what Mike typed.
            db.execute("/* db.seed_properties */ UPDATE properties SET name = ? WHERE code = ? AND name = ?",
                       (name, code, code))
            db.execute("/* db.seed_properties */ UPDATE properties SET domain = ?"
                       " WHERE code = ? AND domain = '' AND name = ?", (domain, code, name))
