"""`popup-mgr doctor`: checks a production configuration and says what to fix.

check(config) returns Problems, worst first; each names what is wrong and the fix in one
sentence. "error" means the deployment is unsafe or something will visibly fail; "warning" that
it will work but something will go wrong quietly (alerts never sent, every visitor one IP);
"info" is worth knowing. The checks only look at this machine and at the services the settings
name (the SMTP server, Tune through the callable given); nothing else is contacted.
"""
import dataclasses
import ipaddress
import os
import smtplib
import ssl
import stat
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from popup_mgr import backup
from popup_mgr import config as settings
from popup_mgr.urls import unreachable_host_reason

SEVERITIES = ("error", "warning", "info")
SMTP_TIMEOUT_S = 5.0


@dataclasses.dataclass(frozen=True)
class Problem:
    severity: str
    what: str
    fix: str


def check(config, *, environ=os.environ, tune_check=None, smtp_timeout_s=SMTP_TIMEOUT_S):
    """Problems of a production configuration, worst first. config is the app's config mapping;
    tune_check() (from the Tune module) returns None when Tune accepts the key, else the reason."""
    problems = []
    for one_check in (_secret, _environment, _base_url, _trusted_proxies, _database_file):
        problems += one_check(config)
    problems += _backup_dir(config, environ)
    problems += _smtp(config, environ, smtp_timeout_s)
    problems += _tune(config, environ, tune_check)
    return sorted(problems, key=lambda p: SEVERITIES.index(p.severity))


def has_errors(problems):
    return any(p.severity == "error" for p in problems)


def report(problems):
    """Plain text for the terminal, one problem per paragraph."""
    if not problems:
        return "doctor: no problems found."
    return "\n".join(f"{p.severity.upper()}: {p.what}\n  fix: {p.fix}" for p in problems)


# --- the checks ------------------------------------------------------------------------------------

def _secret(config):
    problem = settings.secret_key_problem(config.get("SECRET_KEY"))
    if problem:
        return [Problem("error", f"{problem}: sessions, CSRF and offer tokens can be forged",
                        "set POPUP_SECRET_KEY to the output of"
                        " python -c 'import secrets; print(secrets.token_urlsafe(48))' (keep it across restores)")]
    return []


def _environment(config):
    if config.get("ENV_NAME") != "production":
        return [Problem("warning", "POPUP_ENV is not 'production': a missing or weak secret would not stop the start",
                        "set POPUP_ENV=production in the service's environment")]
    return []


def _base_url(config):
    url = config.get("BASE_URL") or ""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    problems = []
    if parts.scheme != "https":
        problems.append(Problem(
            "error", f"POPUP_BASE_URL {url!r} is not https: cookies are sent without Secure, no HSTS, and"
            " https publisher pages block the popup's http requests as mixed content",
            "put Caddy or nginx with a certificate in front and set POPUP_BASE_URL=https://<your host>"))
    reason = unreachable_host_reason(host)
    if reason:
        problems.append(Problem("error", f"POPUP_BASE_URL's host {host or '(none)'!r} {reason}: publisher pages"
                                " and the network's postbacks cannot reach it",
                                "use the public DNS name the proxy serves, e.g. https://offers.example.com"))
    if parts.path not in ("", "/") or parts.query:
        problems.append(Problem("warning", f"POPUP_BASE_URL {url!r} has a path or query: links are built by"
                                " appending /c/..., /popup.js to it", "set it to scheme and host only"))
    return problems


def _trusted_proxies(config):
    value = (config.get("TRUSTED_PROXIES") or "").strip()
    if not value:
        behind_proxy = (config.get("BASE_URL") or "").startswith("https://")
        severity = "warning" if behind_proxy else "info"
        return [Problem(severity, "POPUP_TRUSTED_PROXIES is unset: X-Forwarded-For is ignored, so behind a reverse"
                        " proxy every visitor has the proxy's IP (one visitor hash for everyone; the login"
                        " throttle then counts all guesses against one IP)"
                        + ("; it matters here because an https URL means a proxy terminates TLS" if behind_proxy
                           else "; it matters only once a proxy is in front"),
                        "set POPUP_TRUSTED_PROXIES to the proxy's address as the app sees it, e.g. 127.0.0.1")]
    problems = []
    for entry in value.replace(",", " ").split():
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            problems.append(Problem("error", f"POPUP_TRUSTED_PROXIES entry {entry!r} is not an IP address or CIDR",
                                    "list IPs or CIDRs separated by commas, e.g. 127.0.0.1,::1"))
            continue
        if network.prefixlen == 0:
            problems.append(Problem("error", f"POPUP_TRUSTED_PROXIES {entry!r} trusts every address: any visitor"
                                    " can forge X-Forwarded-For", "list only the proxy's own address"))
    return problems


def _database_file(config):
    path = Path(config.get("DATABASE") or "")
    if not path.is_file():
        return [Problem("info", f"the database {path} does not exist yet", "popup-mgr init-db creates it")]
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        return [Problem("warning", f"{path} can be read by other users; it holds the postback secret and"
                        " password and token hashes", f"chmod 600 {path}")]
    return []


def _backup_dir(config, environ):
    try:
        directory = backup.settings(config, environ).directory
    except (backup.BackupError, ValueError) as exc:
        return [Problem("error", f"backup settings are invalid: {exc}",
                        "set POPUP_BACKUP_KEEP and POPUP_BACKUP_EVERY_S to positive whole numbers")]
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not _can_create_file_in(existing):
        return [Problem("error", f"the backup directory {directory} is not writable by this user: scheduled"
                        " backups will fail", f"mkdir -p {directory} && chown <service user> {directory}"
                        f" && chmod 700 {directory}, or set POPUP_BACKUP_DIR")]
    if existing == directory and stat.S_IMODE(directory.stat().st_mode) & 0o077:
        return [Problem("warning", f"the backup directory {directory} is open to other users; backups hold"
                        " secrets and hashes", f"chmod 700 {directory}")]
    return []


def _can_create_file_in(directory):
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".doctor-"):
            return True
    except OSError:
        return False


def _smtp(config, environ, timeout_s):
    url = config.get("SMTP_URL") or environ.get("POPUP_SMTP_URL")
    if not url:
        return [Problem("warning", "POPUP_SMTP_URL is unset: no alert or daily digest will be sent",
                        "set POPUP_SMTP_URL=smtp://user:password@smtp.example.com:587 (or smtps://...:465)"
                        " and POPUP_ALERT_TO")]
    problems = []
    if not (config.get("ALERT_TO") or environ.get("POPUP_ALERT_TO")):
        problems.append(Problem("warning", "POPUP_ALERT_TO is unset: alerts have no recipient",
                                "set POPUP_ALERT_TO to the address that must hear about outages"))
    reason = smtp_problem(url, timeout_s)
    if reason:
        problems.append(Problem("error", f"the SMTP server in POPUP_SMTP_URL is not answering: {reason}",
                                "check host, port and credentials (the server must accept a connection from"
                                " this box), or use your provider's submission port 587"))
    return problems


def smtp_problem(url, timeout_s=SMTP_TIMEOUT_S):
    """None when the SMTP server of url greets us (and accepts its credentials), else why not."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps", "smtp+starttls") or not parts.hostname:
        return f"{parts.scheme or 'no'} scheme: expected smtp://, smtp+starttls:// or smtps://host:port"
    implicit_tls = parts.scheme == "smtps"
    port = parts.port or (465 if implicit_tls else 587 if parts.scheme == "smtp+starttls" else 25)
    try:
        client_class = smtplib.SMTP_SSL if implicit_tls else smtplib.SMTP
        with client_class(parts.hostname, port, timeout=timeout_s) as client:
            client.ehlo()
            # Credentials only over TLS when the server offers it (as mail clients do on 587);
            # smtp+starttls:// insists on it.
            if parts.scheme == "smtp+starttls" or (not implicit_tls and client.has_extn("starttls")):
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if parts.username and client.has_extn("auth"):
                client.login(unquote(parts.username), unquote(parts.password or ""))
            client.noop()
    except smtplib.SMTPAuthenticationError:
        return "it refused the user name and password"
    except (OSError, smtplib.SMTPException) as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None


NOT_CONNECTED = object()     # what a tune_check answers when Tune has no key at all


def _ask(tune_check):
    try:
        return tune_check()
    except Exception as exc:        # the network's answer, a timeout, a DNS failure: all say "fix me"
        return f"{type(exc).__name__}: {exc}"


def _tune(config, environ, tune_check):
    """tune_check() returns None when Tune accepts the key, else the reason; NOT_CONNECTED when no
    key is set (in the environment or saved on the Tune page)."""
    configured = config.get("TUNE_API_KEY") or environ.get("POPUP_TUNE_API_KEY")
    reason = _ask(tune_check) if tune_check is not None else None
    if reason is NOT_CONNECTED or (not configured and tune_check is None):
        return [Problem("info", "Tune is not connected: no offer sync or reconciliation",
                        "set POPUP_TUNE_NETWORK_ID and POPUP_TUNE_API_KEY (or on the admin's Tune page)")]
    if reason:
        return [Problem("error", f"Tune rejected the API key or did not answer: {reason}",
                        "copy the key again from Tune (Account > API) and check POPUP_TUNE_NETWORK_ID")]
    return []
