"""Signed offer tokens.

A token names what was served (campaign, property, placement, variant) and when, and is signed
with HMAC-SHA256 under the app secret, so a beacon or click can only count an offer the server
really handed out. Format (URL-safe, no padding):

    v1.<campaign_id>.<property_code>.<placement>.<variant>.<issued_s>.<signature>

`variant` is "-" when there is none. The signature is the first 16 bytes of the HMAC of
everything before it, base64url-encoded.
"""
import base64
import functools
import hashlib
import hmac
import re
from dataclasses import dataclass

VERSION = "v1"
NO_VARIANT = "-"
MAX_TOKEN_LENGTH = 200
# Tokens stay valid long enough for a visitor who leaves a tab open over a weekend.
DEFAULT_MAX_AGE_S = 7 * 24 * 3600
_FIELD = re.compile(r"[A-Za-z0-9_-]{1,32}")
# ASCII digits only: str.isdigit() also accepts "١٢" (read as 12) and "²" (int() refuses it).
_DIGITS = re.compile(r"[0-9]{1,18}")


class TokenError(ValueError):
    """The token is malformed, forged, altered or expired; the message says which."""


@dataclass(frozen=True)
class OfferToken:
    campaign_id: int
    property_code: str
    placement: str
    variant: str        # "" when none
    issued_s: int


def _signature(secret, body):
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, body.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign(secret, campaign_id, property_code, placement, variant, issued_s):
    variant = variant or NO_VARIANT
    for name, value in (("property_code", property_code), ("placement", placement), ("variant", variant)):
        if not _FIELD.fullmatch(value):
            raise ValueError(f"{name} {value!r} cannot be put in a token")
    body = f"{VERSION}.{int(campaign_id)}.{property_code}.{placement}.{variant}.{int(issued_s)}"
    return f"{body}.{_signature(secret, body)}"


def verify(secret, token, now_s, max_age_s=DEFAULT_MAX_AGE_S):
    """Return the OfferToken, or raise TokenError with the reason."""
    if not isinstance(token, str) or not token:
        raise TokenError("missing token")
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("token too long")
    offer = _signed_offer(secret, token)
    if offer.issued_s > now_s + 300:
        raise TokenError("token issued in the future")
    if now_s - offer.issued_s > max_age_s:
        raise TokenError("token expired")
    return offer


@functools.lru_cache(maxsize=4096)
def _signed_offer(secret, token):
    """The OfferToken a well-formed, correctly signed token names (its age is checked by the
    caller). Cached: a property's few hundred live tokens are verified once each, not once per
    beacon; refusals raise and are never cached."""
    parts = token.split(".")
    if len(parts) != 7 or parts[0] != VERSION:
        raise TokenError("malformed token")
    body, signature = token.rsplit(".", 1)
    if not hmac.compare_digest(signature, _signature(secret, body)):
        raise TokenError("bad token signature")
    _, campaign_id, property_code, placement, variant, issued_s = parts[:6]
    if not (_DIGITS.fullmatch(campaign_id) and _DIGITS.fullmatch(issued_s)):
        raise TokenError("malformed token")
    return OfferToken(int(campaign_id), property_code, placement,
                      "" if variant == NO_VARIANT else variant, int(issued_s))
