"""Named leases in the database: one holder at a time across processes (the CLI and the server).

A lease expires by itself, so a holder that died (kill -9, power loss) blocks the others only
until its expiry; a live holder should choose a duration longer than its work can take.
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
        db.execute("/* leases.acquire */ INSERT INTO leases (name, holder, expires_ms) VALUES (?, ?, ?)"
                   " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms"
                   " WHERE leases.expires_ms <= ? OR leases.holder = excluded.holder",
                   (name, holder, now_ms + int(duration_s * 1000), now_ms))
        return current_holder(db, name) == holder


def current_holder(db, name):
    row = db.execute("/* leases.current_holder */ SELECT holder FROM leases WHERE name = ?", (name,)).fetchone()
    return row["holder"] if row else None


def release(db, name, holder):
    """Give the lease back (only if still held by holder: an expired one may be someone else's)."""
    with database.transaction(db):
        db.execute("/* leases.release */ DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))
