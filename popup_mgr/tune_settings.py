"""Tune connection settings: from the environment, or saved by the admin in the settings table.

Each value comes from its POPUP_TUNE_* variable when that is set, else from the database. The
API key is stored encrypted (Fernet) under a key derived (HKDF-SHA256) from the app secret
(POPUP_SECRET_KEY), so a copy of the database alone does not reveal it. When the app secret
changes, the stored key can no longer be decrypted: Tune then counts as not configured and
`problem` asks the admin to enter the key again; nothing is sent to the network meanwhile.
"""
import base64
import os
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from popup_mgr import audit, timeutil
from popup_mgr import db as database
from popup_mgr.tune_client import DEFAULT_API_URL, TuneClient
from popup_mgr.urls import url_problem

DEFAULT_SYNC_S = 900
MIN_SYNC_S = 300                 # networks ask for at least 5 minutes between large pulls
KEYS = {"network_id": "tune.network_id", "api_key": "tune.api_key", "api_url": "tune.api_url",
        "tz": "tune.tz"}
ENVIRONMENT = {"network_id": "POPUP_TUNE_NETWORK_ID", "api_key": "POPUP_TUNE_API_KEY",
               "api_url": "POPUP_TUNE_API_URL", "tz": "POPUP_TUNE_TZ"}
_HKDF_INFO = b"popup_mgr tune api key v1"
_NETWORK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_API_KEY = re.compile(r"[A-Za-z0-9_-]{8,200}")
KEY_UNREADABLE = ("The saved Tune API key cannot be read: the app secret (POPUP_SECRET_KEY) has changed"
                  " since it was saved. Enter the API key again.")


class SettingsInvalid(ValueError):
    """Input that cannot be saved; .errors maps each field to a message for the admin."""

    def __init__(self, errors):
        super().__init__("invalid Tune settings: " + ", ".join(sorted(errors)))
        self.errors = errors


@dataclass(frozen=True)
class TuneSettings:
    network_id: str
    api_key: str = field(repr=False)
    api_url: str
    tz: str
    sync_s: int
    sources: dict                 # field -> "environment", "database" or "default"
    problem: str | None = None    # why Tune cannot be used although something is set

    @property
    def configured(self):
        return bool(self.network_id and self.api_key) and self.problem is None

    @property
    def masked_key(self):
        return masked(self.api_key)

    def client(self, **options):
        """A TuneClient for these settings (options: timeout_s, retries, backoff_s, sleep)."""
        return TuneClient(self.api_url, self.network_id, self.api_key, **options)

    def as_json(self):
        """For the admin page and the API: never the key, only its masked form."""
        return {"network_id": self.network_id, "api_key": self.masked_key, "api_url": self.api_url,
                "tz": self.tz, "sync_s": self.sync_s, "configured": self.configured,
                "sources": self.sources, "problem": self.problem}


def masked(key):
    """'••••abcd': enough to recognise a key, too little to use it."""
    if not key:
        return ""
    return "••••" + key[-4:] if len(key) >= 12 else "••••"


# --- encryption of the stored key ----------------------------------------------------------------

def _fernet(secret_key):
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        secret_key.encode("utf-8"))
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt_key(secret_key, api_key):
    return _fernet(secret_key).encrypt(api_key.encode("utf-8")).decode("ascii")


def decrypt_key(secret_key, token):
    """The API key, or None when it was encrypted under another app secret (or is damaged)."""
    try:
        return _fernet(secret_key).decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError):
        return None


# --- reading -------------------------------------------------------------------------------------

def stored_values(db):
    """{setting key: value} of the tune.* rows."""
    rows = db.execute("/* tune_settings.stored_values */ SELECT key, value FROM settings"
                      " WHERE key LIKE 'tune.%'").fetchall()
    return {row["key"]: row["value"] for row in rows}


def load(db, secret_key, business_tz, environ=os.environ):
    """The effective settings: environment first, then the database, then defaults."""
    stored = stored_values(db)
    values, sources, problem = {}, {}, None
    for name, setting in KEYS.items():
        from_env = environ.get(ENVIRONMENT[name])
        if from_env:
            values[name], sources[name] = from_env.strip(), "environment"
        elif setting in stored:
            values[name], sources[name] = stored[setting], "database"
        else:
            values[name], sources[name] = "", "default"
    if sources["api_key"] == "database":
        values["api_key"] = decrypt_key(secret_key, values["api_key"]) or ""
        if not values["api_key"]:
            problem = KEY_UNREADABLE
    values["api_url"] = values["api_url"] or DEFAULT_API_URL
    values["tz"] = values["tz"] or business_tz
    return TuneSettings(network_id=values["network_id"], api_key=values["api_key"],
                        api_url=values["api_url"], tz=values["tz"], sync_s=sync_seconds(environ),
                        sources=sources, problem=problem)


def sync_seconds(environ=os.environ):
    """Seconds between the server's sync runs (POPUP_TUNE_SYNC_S, at least MIN_SYNC_S)."""
    try:
        return max(MIN_SYNC_S, int(environ.get("POPUP_TUNE_SYNC_S") or DEFAULT_SYNC_S))
    except ValueError:
        return DEFAULT_SYNC_S


def from_app(app, db):
    """load() with the app's secret and business time zone."""
    return load(db, app.config["SECRET_KEY"], app.config["BUSINESS_TZ"])


# --- saving --------------------------------------------------------------------------------------

def validate(network_id=None, api_key=None, api_url=None, tz=None):
    """{field: clean value} of the fields given (None = not given); raises SettingsInvalid."""
    clean, errors = {}, {}
    if network_id is not None:
        network_id = network_id.strip()
        if not _NETWORK_ID.fullmatch(network_id):
            errors["network_id"] = "Use the network id from Tune: 1-64 letters, digits, _ or -."
        clean["network_id"] = network_id
    if api_key is not None:
        api_key = api_key.strip()
        if not _API_KEY.fullmatch(api_key):
            errors["api_key"] = "Paste the API key from Tune: 8-200 letters, digits, _ or -."
        clean["api_key"] = api_key
    if api_url is not None:
        api_url = api_url.strip()
        if api_url and url_problem(api_url):
            errors["api_url"] = url_problem(api_url)
        clean["api_url"] = api_url
    if tz is not None:
        tz = tz.strip()
        if tz and not _known_zone(tz):
            errors["tz"] = "Use a time zone name such as America/New_York."
        clean["tz"] = tz
    if errors:
        raise SettingsInvalid(errors)
    return clean


def _known_zone(name):
    try:
        ZoneInfo(name)
        return True
    except (ZoneInfoNotFoundError, ValueError):
        return False


def save(db, secret_key, actor, *, network_id=None, api_key=None, api_url=None, tz=None):
    """Store the fields given (an empty api_url or tz returns it to its default; api_key None
    keeps the saved key). Audited, with the key shown masked only."""
    clean = validate(network_id, api_key, api_url, tz)
    now = timeutil.iso_now()
    with database.transaction(db):
        before = stored_values(db)
        changes = {}
        for name, value in clean.items():
            setting = KEYS[name]
            if name == "api_key":
                old = decrypt_key(secret_key, before[setting]) if setting in before else None
                if old != value:
                    changes[name] = [masked(old) if old else None, masked(value)]
                    _put(db, setting, encrypt_key(secret_key, value), now)
            elif value == "":
                if setting in before:
                    changes[name] = [before[setting], None]
                    _delete(db, setting)
            elif before.get(setting) != value:
                changes[name] = [before.get(setting), value]
                _put(db, setting, value, now)
        if changes:
            audit.record(db, actor, "tune.settings", "tune", None, changes)
    return changes


def forget(db, actor):
    """Remove every saved Tune setting (the environment's stay in force)."""
    with database.transaction(db):
        before = stored_values(db)
        db.execute("/* tune_settings.forget */ DELETE FROM settings WHERE key LIKE 'tune.%'")
        if before:
            audit.record(db, actor, "tune.settings", "tune", None,
                         {name: ["(saved)", None] for name, key in KEYS.items() if key in before})


def _put(db, key, value, now):
    db.execute("/* tune_settings.put */ INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)"
               " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
               (key, value, now))


def _delete(db, key):
    db.execute("/* tune_settings.delete */ DELETE FROM settings WHERE key = ?", (key,))
