"""Configuration from POPUP_* environment variables, with safe defaults for a local run."""
import os
import secrets
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
INSTANCE_DIR = PROJECT_DIR / "instance"
MIN_SECRET_LENGTH = 32
_KNOWN_WEAK = {"dev", "secret", "changeme", "change-me", "password", "popup", "popup_mgr", "test"}


class ConfigError(RuntimeError):
    """The configuration cannot be used (e.g. a weak secret in production)."""


def from_environment(environ=os.environ):
    """The app's settings, read from the environment."""
    production = environ.get("POPUP_ENV", "development") == "production"
    base_url = environ.get("POPUP_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
    return {
        "ENV_NAME": "production" if production else environ.get("POPUP_ENV", "development"),
        "DATABASE": environ.get("POPUP_DB") or str(INSTANCE_DIR / "popup.db"),
        "SECRET_KEY": environ.get("POPUP_SECRET_KEY") or None,
        "BASE_URL": base_url,
        # Without POPUP_BASE_URL the admin hands out local URLs and says so (urls.base_url_warning).
        "BASE_URL_CONFIGURED": bool(environ.get("POPUP_BASE_URL")),
        "POSTBACK_SECRET": environ.get("POPUP_POSTBACK_SECRET") or None,
        "BUSINESS_TZ": environ.get("POPUP_TZ", "America/New_York"),
        # IPs/CIDRs of reverse proxies whose X-Forwarded-For is believed; empty = use the socket.
        "TRUSTED_PROXIES": environ.get("POPUP_TRUSTED_PROXIES", ""),
        # IPs/CIDRs allowed to call /api/postback; empty = any caller with the secret.
        "POSTBACK_ALLOWED_IPS": environ.get("POPUP_POSTBACK_ALLOWED_IPS", ""),
        # Seconds between rebuilds of what the `auto` rotation has learned (rotation.py).
        "ROTATION_REFRESH_S": float(environ.get("POPUP_ROTATION_REFRESH_S", "300")),
        # Admin forms and API bodies are small; nothing needs more than this.
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": base_url.startswith("https://"),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SECURE": base_url.startswith("https://"),
        "SESSION_COOKIE_NAME": "popup_session",
        # The CSRF token lives as long as the admin session.
        "WTF_CSRF_TIME_LIMIT": None,
        "WTF_CSRF_HEADERS": ["X-CSRFToken"],
        # Admin sessions end after this long without a request, and this long after login at most.
        "SESSION_IDLE_S": _seconds(environ, "POPUP_SESSION_IDLE_S", 8 * 3600),
        "SESSION_MAX_S": _seconds(environ, "POPUP_SESSION_MAX_S", 24 * 3600),
        "RATELIMIT_STORAGE_URI": "memory://",
        # Off: the login pages set Retry-After to the real wait themselves (per IP or per account);
        # the limiter's headers would overwrite it with its own window's reset, on every answer.
        "RATELIMIT_HEADERS_ENABLED": False,
    }


def _seconds(environ, name, default):
    """A positive whole number of seconds from the environment (ASCII digits only)."""
    text = environ.get(name, "").strip()
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or int(text) <= 0:
        raise ConfigError(f"{name} must be a positive number of seconds, not {text!r}")
    return int(text)


def secret_key_problem(key):
    """None if key is strong enough for production, else why not."""
    if not key:
        return "POPUP_SECRET_KEY is not set"
    if len(key) < MIN_SECRET_LENGTH:
        return f"POPUP_SECRET_KEY is shorter than {MIN_SECRET_LENGTH} characters"
    if key.lower() in _KNOWN_WEAK or len(set(key)) < 10:
        return "POPUP_SECRET_KEY is a well-known or low-variety value"
    return None


def check(config):
    """Refuse to run in production with a weak secret; give a local run a persistent one."""
    if config["ENV_NAME"] == "production":
        problem = secret_key_problem(config["SECRET_KEY"])
        if problem:
            raise ConfigError(f"{problem}; generate one with: "
                              "python -c 'import secrets; print(secrets.token_urlsafe(48))'")
    elif not config["SECRET_KEY"]:
        config["SECRET_KEY"] = _local_secret_key(Path(config["DATABASE"]).parent)


def _local_secret_key(directory):
    """A random key kept beside the database, so sessions and offer tokens survive restarts."""
    path = directory / "secret_key"
    if not path.exists():
        if not directory.exists():
            # It will also hold the database: owner-only, like the files in it (mode made exact,
            # as mkdir's is reduced by the umask).
            directory.mkdir(parents=True, mode=0o700)
            os.chmod(directory, 0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
