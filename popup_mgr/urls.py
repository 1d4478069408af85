"""Validation of URLs entered by the admin or received from outside.

Only absolute http: and https: URLs with a host are accepted. Everything else that could turn a
link into script or a redirect elsewhere is rejected with a message saying why.
"""
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
