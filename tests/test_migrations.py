"""Migrations: a database made by an older version upgrades in place to exactly the schema a
fresh install gets from schema.sql, keeping its data; a failing migration changes nothing."""
import sqlite3
from pathlib import Path

import pytest

from popup_mgr import db as database

V1_SCHEMA = Path(__file__).parent / "fixtures" / "schema_v1.sql"


def schema_signature(path):
    """Tables with their columns, indexes and foreign keys, independent of how the SQL was
    written (ALTER TABLE ADD COLUMN and CREATE TABLE give different text for the same table)."""
    conn = sqlite3.connect(path)
    try:
        signature = {}
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        for name in names:
            columns = conn.execute(f"PRAGMA table_xinfo('{name}')").fetchall()
            indexes = sorted(
                (row[2], tuple(c[2] for c in conn.execute(f"PRAGMA index_info('{row[1]}')")))
                for row in conn.execute(f"PRAGMA index_list('{name}')"))
            fks = sorted(conn.execute(f"PRAGMA foreign_key_list('{name}')").fetchall())
            signature[name] = (columns, indexes, fks)
        return signature
    finally:
        conn.close()


def make_v1_database(path):
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA.read_text())
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO properties (code, name, created_at, updated_at)"
                 " VALUES ('mff', 'ModeFreeFinds (edited)', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')")
    conn.execute("INSERT INTO campaigns (tune_campaign_id, name, display_title, click_url, created_at, updated_at)"
                 " VALUES (4242, 'Old', 'Old offer', 'https://example.com/aff_c?offer_id=4242',"
                 " '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')")
    conn.commit()
    conn.close()


def test_old_database_upgrades_to_fresh_schema(tmp_path):
    old, fresh = tmp_path / "old.db", tmp_path / "fresh.db"
    make_v1_database(old)
    applied = database.migrate(old)
    database.migrate(fresh)

    assert applied == [n for n, _ in database.migration_files() if n > 1]
    assert schema_signature(old) == schema_signature(fresh)
    conn = database.connect(old)
    assert database.schema_version(conn) == database.latest_version()
    # Data kept, and the edited property name is not overwritten by the seed.
    assert conn.execute("SELECT name FROM properties WHERE code = 'mff'").fetchone()[0] == "ModeFreeFinds (edited)"
    assert conn.execute("SELECT tune_campaign_id FROM campaigns").fetchone()[0] == 4242
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def migrate_up_to(path, version, monkeypatch, tmp_path):
    """Apply the real migration files numbered up to version only, as that release did."""
    folder = tmp_path / f"migrations-to-{version}"
    folder.mkdir()
    for number, file in database.migration_files():
        if number <= version:
            (folder / file.name).write_text(file.read_text())
    with monkeypatch.context() as patch:
        patch.setattr(database, "MIGRATIONS_DIR", folder)
        database.migrate(path)


def test_the_job_leases_table_is_dropped_and_the_leases_are_kept(tmp_path, monkeypatch):
    """A database at version 9 still has job_leases, perhaps with the row of a job whose process
    died: the upgrade drops the table (and the row: its holder is gone) and keeps leases."""
    path, fresh = tmp_path / "v9.db", tmp_path / "fresh.db"
    make_v1_database(path)
    migrate_up_to(path, 9, monkeypatch, tmp_path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 9
    far_future_ms = 10 ** 15
    conn.execute("INSERT INTO job_leases (job, owner, acquired_ms, expires_ms) VALUES ('backup', 'dead', 1, ?)",
                 (far_future_ms,))
    conn.execute("INSERT INTO leases (name, holder, expires_ms) VALUES ('tune-sync', 'the-cli', ?)", (far_future_ms,))
    conn.commit()
    conn.close()

    assert 11 in database.migrate(path)
    database.migrate(fresh)
    assert schema_signature(path) == schema_signature(fresh)
    conn = database.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'job_leases'").fetchone()[0] == 0
        assert [tuple(row) for row in conn.execute("SELECT name, holder FROM leases")] == [("tune-sync", "the-cli")]
    finally:
        conn.close()


def test_migrate_is_idempotent(tmp_path):
    path = tmp_path / "p.db"
    assert database.migrate(path) == []
    before = schema_signature(path)
    assert database.migrate(path) == []
    assert schema_signature(path) == before


def test_failing_migration_changes_nothing(tmp_path, monkeypatch):
    path = tmp_path / "p.db"
    make_v1_database(path)
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0099_broken.sql").write_text(
        "CREATE TABLE half_done (id INTEGER);\nINSERT INTO no_such_table VALUES (1);\n")
    monkeypatch.setattr(database, "MIGRATIONS_DIR", migrations)

    with pytest.raises(sqlite3.OperationalError):
        database.migrate(path)

    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'half_done'").fetchone()[0] == 0
    conn.close()


def test_connection_pragmas(tmp_path):
    path = tmp_path / "p.db"
    database.migrate(path)
    conn = database.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1          # NORMAL
    durable = database.connect(path, durable=True)
    assert durable.execute("PRAGMA synchronous").fetchone()[0] == 2       # FULL
    conn.close()
    durable.close()


def test_transaction_rolls_back_on_error(db):
    with pytest.raises(RuntimeError):
        with database.transaction(db):
            db.execute("INSERT INTO settings (key, value, updated_at) VALUES ('k', 'v', 'now')")
            raise RuntimeError("boom")
    assert db.execute("SELECT count(*) FROM settings WHERE key = 'k'").fetchone()[0] == 0


def test_numbered_migrations_run_once_in_order_and_a_failing_one_changes_nothing(tmp_path, monkeypatch):
    """Real migration files run: each in its own transaction, in number order, once; one that
    fails leaves the database at the version before it, with none of its statements applied."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    path = tmp_path / "popup.db"
    database.migrate(path)                        # fresh: the current schema, no migration files
    base = database.latest_version()
    monkeypatch.setattr(database, "MIGRATIONS_DIR", folder)
    (folder / f"{base + 1:04d}_add_note.sql").write_text("ALTER TABLE properties ADD COLUMN note TEXT;\n")
    (folder / f"{base + 2:04d}_fill_note.sql").write_text("UPDATE properties SET note = 'n-' || code;\n")
    assert database.migrate(path) == [base + 1, base + 2]
    assert database.migrate(path) == []           # idempotent
    (folder / f"{base + 3:04d}_broken.sql").write_text(
        "UPDATE properties SET note = 'lost';\nINSERT INTO no_such_table VALUES (1);\n")
    with pytest.raises(sqlite3.OperationalError):
        database.migrate(path)
    conn = database.connect(path)
    try:
        assert database.schema_version(conn) == base + 2
        assert {row[0] for row in conn.execute("SELECT note FROM properties")} == {
            f"n-{code}" for code, _ in database.DEFAULT_PROPERTIES}
    finally:
        conn.close()
