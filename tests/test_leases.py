"""Named leases: one holder at a time until expiry, taken on its own or inside the caller's
transaction (where it stands or falls with the caller's other writes)."""
import pytest

from popup_mgr import db as database
from popup_mgr import leases

NOW_MS = 1_800_000_000_000


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "popup.db"
    database.migrate(path)
    conn = database.connect(path)
    yield conn
    conn.close()


@pytest.mark.parametrize("held_by, expires_ms, taken", [
    (None, None, True),                       # free
    ("other", NOW_MS + 1, False),             # someone else's, still running
    ("other", NOW_MS, True),                  # someone else's, expired this very millisecond
    ("me", NOW_MS + 1, True),                 # already mine: extended
])
def test_take_succeeds_when_free_expired_or_already_mine(db, held_by, expires_ms, taken):
    if held_by:
        db.execute("INSERT INTO leases (name, holder, expires_ms) VALUES ('work', ?, ?)", (held_by, expires_ms))
    with database.transaction(db):
        assert leases.take(db, "work", "me", NOW_MS, 60_000) is taken
    row = db.execute("SELECT holder, expires_ms FROM leases WHERE name = 'work'").fetchone()
    assert tuple(row) == (("me", NOW_MS + 60_000) if taken else (held_by, expires_ms))


def test_a_lease_taken_in_a_rolled_back_transaction_was_never_taken(db):
    with pytest.raises(RuntimeError):
        with database.transaction(db):
            assert leases.take(db, "work", "me", NOW_MS, 60_000)
            raise RuntimeError("the caller's other write failed")
    assert leases.current_holder(db, "work") is None
    assert leases.acquire(db, "work", "other", 60, now_ms=NOW_MS)


def test_only_the_holder_gives_a_lease_back(db):
    assert leases.acquire(db, "work", "me", 60, now_ms=NOW_MS)
    leases.release(db, "work", "other")              # e.g. a holder whose own lease had expired
    assert leases.current_holder(db, "work") == "me"
    with database.transaction(db):
        leases.give_back(db, "work", "me")
    assert leases.current_holder(db, "work") is None


def test_leases_of_different_names_do_not_block_each_other(db):
    assert leases.acquire(db, "tune-sync", "the-cli", 60, now_ms=NOW_MS)
    assert leases.acquire(db, "job:tune-sync", "the-server", 60, now_ms=NOW_MS)
    assert not leases.acquire(db, "tune-sync", "the-server", 60, now_ms=NOW_MS)
