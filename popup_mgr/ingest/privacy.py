"""Visitor privacy: keyed visitor hashes with daily-rotated salts.

IP addresses and user agents are never stored. Each event keeps only
HMAC-SHA256(salt_of_the_UTC_day, ip + "\\n" + user_agent), so unique visitors per day can be
counted. A day's salt is random, kept in `visitor_salts` and deleted 48 hours after that day
began; after that nobody (not even with the database) can link a hash to an IP address.
"""
import hashlib
import hmac
import secrets
import threading
import time

from popup_mgr import db as database

SALT_BYTES = 32
SALT_LIFETIME_MS = 48 * 3600 * 1000
DAY_MS = 24 * 3600 * 1000
HASH_HEX_CHARS = 32
RECENT_VISITORS = 20_000


def utc_day(ts_ms):
    return time.strftime("%Y-%m-%d", time.gmtime(ts_ms // 1000))


class VisitorHasher:
    """Keyed visitor hashes for one database; salts cached in memory, rotated by UTC day."""

    def __init__(self, database_path):
        self.database_path = database_path
        self._salts = {}
        self._lock = threading.Lock()
        # (day, ip, user agent) -> hash: a visitor sends several beacons a page view, and each
        # HMAC would be computed again. Bounded, and only ever the current day's visitors, so no
        # IP outlives its day's salt in memory either.
        self._recent = {}

    def visitor_hash(self, ip, user_agent, ts_ms):
        day = utc_day(ts_ms)
        key = (day, ip, user_agent)
        found = self._recent.get(key)
        if found is None:
            message = f"{ip}\n{user_agent}".encode("utf-8", "replace")
            found = hmac.new(self.salt_for(day, ts_ms), message, hashlib.sha256).hexdigest()[:HASH_HEX_CHARS]
            recent = self._recent
            if len(recent) >= RECENT_VISITORS or (recent and next(iter(recent))[0] != day):
                recent = {}              # a new day, or a flood of distinct visitors: start over
            recent[key] = found
            self._recent = recent
        return found

    def salt_for(self, day, now_ms):
        salt = self._salts.get(day)
        if salt is None:
            with self._lock:
                salt = self._salts.get(day)
                if salt is None:
                    salt = self._load_or_create(day, now_ms)
                    self._salts = {day: salt}     # older days are never needed again here
        return salt

    def _load_or_create(self, day, now_ms):
        with database.connection(self.database_path) as db:
            return ensure_salt(db, day, now_ms)


def ensure_salt(db, day, now_ms):
    """The salt for a UTC day (created if missing), deleting salts older than 48 hours.

    INSERT OR IGNORE then SELECT: several processes on one database agree on one salt. The salt
    usually exists already (made by another process), which needs no write lock."""
    row = db.execute("/* privacy.ensure_salt */ SELECT salt FROM visitor_salts WHERE day = ?", (day,)).fetchone()
    if row is not None:
        return bytes(row["salt"])
    with database.transaction(db):
        delete_expired_salts(db, now_ms)
        db.execute("/* privacy.ensure_salt */ INSERT OR IGNORE INTO visitor_salts (day, salt, created_ms)"
                   " VALUES (?, ?, ?)", (day, secrets.token_bytes(SALT_BYTES), now_ms))
        row = db.execute("/* privacy.ensure_salt */ SELECT salt FROM visitor_salts WHERE day = ?",
                         (day,)).fetchone()
    return bytes(row["salt"])


def delete_expired_salts(db, now_ms):
    """Delete the salts of UTC days that began 48 hours or more ago."""
    oldest_kept = utc_day(now_ms - SALT_LIFETIME_MS + DAY_MS)
    db.execute("/* privacy.delete_expired_salts */ DELETE FROM visitor_salts WHERE day < ?",
               (oldest_kept,))


def purge_expired_salts(database_path, now_ms):
    with database.connection(database_path) as db, database.transaction(db):
        delete_expired_salts(db, now_ms)
