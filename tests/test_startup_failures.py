"""`popup-mgr serve` on a database it cannot use ends with one line and exit status 3, never a
traceback: a full disk, a read-only file, a read-only directory, a directory it may not enter, a
damaged file and a file that is not a database. Run through the real console script."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from popup_mgr import db as database
from popup_mgr import storage
from tests.helpers import TEST_SECRET

PROJECT = Path(__file__).resolve().parent.parent
POPUP_MGR = Path(sys.executable).with_name("popup-mgr")
ROOT = os.geteuid() == 0


def serve(path, timeout_s=60):
    # PYTHONPATH: this checkout's code, whatever an editable install elsewhere points at.
    env = os.environ | {"POPUP_DB": str(path), "POPUP_SECRET_KEY": TEST_SECRET, "PYTHONPATH": str(PROJECT)}
    return subprocess.run([str(POPUP_MGR), "serve", "--port", "1"], env=env, capture_output=True, text=True,
                          timeout=timeout_s)


def assert_one_line(result, *words):
    assert result.returncode == storage.STARTUP_FAILURE_EXIT, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("popup-mgr: cannot start: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def fill_with_padding(path, rows=400):
    with database.connection(str(path)) as db, database.transaction(db):
        db.executemany("INSERT INTO settings (key, value, updated_at) VALUES (?, ?, 'now')",
                       [(f"padding-{n}", "x" * 900) for n in range(rows)])


def chattr(flag, path):
    subprocess.run(["chattr", flag, str(path)], check=True)


@pytest.fixture
def mounted(tmp_path):
    """A 2 MB tmpfs (root only: mount needs it; the case is skipped otherwise)."""
    point = tmp_path / "small-disk"
    point.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(point)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small file system here")
    yield point
    subprocess.run(["umount", "-l", str(point)], check=False)


def test_a_full_disk(mounted):
    path = mounted / "popup.db"
    database.migrate(str(path))
    # Unbuffered, so the write that finds the disk full raises here and close() has nothing left.
    with open(mounted / "filler", "wb", buffering=0) as filler:       # take every free byte
        try:
            while True:
                filler.write(b"\0" * 65536)
        except OSError:
            pass
    fill_attempt = serve(path)
    assert_one_line(fill_attempt, "full", str(mounted))


@pytest.mark.skipif(not ROOT, reason="chattr +i needs root; as a user the chmod case below covers it")
def test_a_read_only_file(tmp_path):
    path = tmp_path / "popup.db"
    database.migrate(str(path))
    os.remove(f"{path}-shm") if os.path.exists(f"{path}-shm") else None
    chattr("+i", path)                                # read-only even for root
    try:
        assert_one_line(serve(path), str(path))
    finally:
        chattr("-i", path)


@pytest.mark.skipif(ROOT, reason="root ignores file modes (chattr covers root)")
def test_a_read_only_file_by_mode(tmp_path):
    path = tmp_path / "popup.db"
    database.migrate(str(path))
    os.chmod(path, 0o400)
    assert_one_line(serve(path), str(path))


def test_a_read_only_directory(tmp_path):
    directory = tmp_path / "data"
    directory.mkdir()
    path = directory / "popup.db"
    database.migrate(str(path))
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    if ROOT:
        chattr("+i", directory)                       # nothing can be created in it, even by root
    else:
        os.chmod(directory, 0o500)
    try:
        assert_one_line(serve(path), str(directory))
    finally:
        chattr("-i", directory) if ROOT else os.chmod(directory, 0o700)


@pytest.mark.skipif(ROOT, reason="root may enter any directory")
def test_a_directory_it_may_not_enter(tmp_path):
    directory = tmp_path / "data"
    directory.mkdir()
    path = directory / "popup.db"
    database.migrate(str(path))
    os.chmod(directory, 0)
    try:
        assert_one_line(serve(path), str(directory))
    finally:
        os.chmod(directory, 0o700)


def test_a_damaged_file(tmp_path):
    path = tmp_path / "popup.db"
    database.migrate(str(path))
    fill_with_padding(path)
    with database.connection(str(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        pages = db.execute("PRAGMA page_count").fetchone()[0]
    with open(path, "r+b") as f:                      # scribble over the last pages (settings rows)
        for page in range(pages - 20, pages):
            f.seek(page * page_size + 8)
            f.write(os.urandom(page_size - 8))
    assert_one_line(serve(path), "damaged", "popup-mgr restore")


def test_a_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "popup.db"
    path.write_bytes(b"these are the notes of a different program\n" * 200)
    assert_one_line(serve(path), "not a SQLite database")
