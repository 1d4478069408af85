"""Named leases in the database: one holder at a time across processes (the CLI and the server,
or two server processes), for the Tune sync and for each of the scheduler's jobs.

A lease expires by itself, so a holder that died (kill -9, power loss) blocks the others only
until its expiry; a live holder should choose a duration longer than its work can take.

Two pairs of the same operations:
* acquire / release run in a transaction of their own, for a caller with nothing else to write;
* take / give_back run inside the caller's transaction, for a caller whose other writes must
  stand or fall with the lease (the scheduler takes a job's lease and records the run as
  'running' at once, so no other process can see the one without the other).
Names are shared by every user of the table: each user keeps to its own prefix or fixed name
(the Tune sync's `tune-sync`, the scheduler's `job:<job name>`).
"""
import os
import secrets
import socket

from popup_mgr import timeutil
from popup_mgr import db as database


def new_holder():
    """A name for this attempt: host and process for the humans, random for uniqueness."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def acquire(db, name, holder, duration_s, now_ms=None):
    """True when holder now has the lease (it was free, expired, or already holder's)."""
    now_ms = timeutil.now_ms() if now_ms is None else now_ms
    with database.transaction(db):
        return take(db, name, holder, now_ms, int(duration_s * 1000))


def take(db, name, holder, now_ms, duration_ms):
    """acquire() inside the caller's transaction: True when holder now has the lease until
    now_ms + duration_ms. Taking a lease one already holds extends it."""
    db.execute("/* leases.take */ INSERT INTO leases (name, holder, expires_ms) VALUES (?, ?, ?)"
               " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms"
               " WHERE leases.expires_ms <= ? OR leases.holder = excluded.holder",
               (name, holder, now_ms + duration_ms, now_ms))
    return current_holder(db, name) == holder


def current_holder(db, name):
    """Who holds the lease, or None; an expired holder is still named until someone takes over."""
    row = db.execute("/* leases.current_holder */ SELECT holder FROM leases WHERE name = ?", (name,)).fetchone()
    return row["holder"] if row else None


def release(db, name, holder):
    """Give the lease back (only if still held by holder: an expired one may be someone else's)."""
    with database.transaction(db):
        give_back(db, name, holder)


def give_back(db, name, holder):
    """release() inside the caller's transaction."""
    db.execute("/* leases.give_back */ DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))
