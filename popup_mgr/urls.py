"""Validation of URLs entered by the admin or received from outside.

Only absolute http: and https: URLs with a host are accepted. Everything else that could turn a
link into script or a redirect elsewhere is rejected with a message saying why.
"""
import ipaddress
import re
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\]")   # control characters, CR/LF, spaces, backslashes
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                   r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")


def url_problem(value):
    """None when value is an acceptable http(s) URL, else a message for the user."""
    if not isinstance(value, str) or not value:
        return "Enter a URL."
    if len(value) > MAX_URL_LENGTH:
        return f"URL is longer than {MAX_URL_LENGTH} characters."
    if _FORBIDDEN.search(value):
        return "URL must not contain spaces, line breaks, control characters or backslashes."
    if value.startswith("//"):
        return "URL must start with http:// or https:// (protocol-relative URLs are not allowed)."
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return "URL is malformed."
    if parts.scheme.lower() not in ("http", "https"):
        return "Only http:// and https:// URLs are allowed."
    if "@" in parts.netloc:
        return "URL must not contain a user name or password."
    host = parts.hostname or ""
    if not host or not _HOST.fullmatch(parts.netloc.rsplit(":", 1)[0] if port else parts.netloc):
        return "URL must name a valid host."
    return None


def is_http_url(value):
    return url_problem(value) is None


# Names that never resolve on the public internet (RFC 2606, RFC 6761, RFC 6762, common LAN suffixes).
PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home", ".test", ".example",
                    ".invalid", ".localdomain", ".corp", ".home.arpa")


def unreachable_host_reason(host):
    """Why visitors on the internet could not reach host, or None when it looks public."""
    if not host:
        return "is missing"
    host = host.lower().strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith(PRIVATE_SUFFIXES):
            return "is a local name"
        if "." not in host:
            return "is a single-label name that does not resolve on the internet"
        return None
    if address.is_loopback:
        return "is a loopback address"
    if address.is_private or address.is_link_local or address.is_unspecified or address.is_reserved:
        return "is a private address"
    return None


def base_url_warning(base_url, configured, production):
    """What is wrong with the public URL the admin hands out (snippet, click links, postback URL),
    in words for Mike, or None when it looks publicly reachable.

    configured: whether POPUP_BASE_URL was set (without it the URL is this server's local address,
    which only this computer can open). production: POPUP_ENV=production, where plain http is an
    error (https publisher pages block http requests as mixed content)."""
    fix = ("Set POPUP_BASE_URL to this server's public address, e.g. "
           "POPUP_BASE_URL=https://offers.example.com, and restart.")
    if not configured:
        return (f"POPUP_BASE_URL is not set: the URLs below use {base_url}, which only this computer "
                f"can open. Publisher pages and Tune cannot reach it. {fix}")
    host = urlsplit(base_url).hostname or ""
    reason = unreachable_host_reason(host)
    if reason:
        return (f"POPUP_BASE_URL is {base_url}: its host {host or '(none)'} {reason}, so publisher "
                f"pages and Tune cannot reach it. {fix}")
    if production and urlsplit(base_url).scheme != "https":
        return (f"POPUP_BASE_URL is {base_url}, plain http: https publisher pages block the popup's "
                f"requests (mixed content). {fix}")
    return None
