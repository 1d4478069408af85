"""A client for Tune's (HasOffers) Affiliate API v3, JSON flavour.

Tune answers HTTP 200 even when a call fails: a call is good only when the envelope's
`response.status` is 1, and otherwise raises TuneError with the network's own message. The rate
limit ("API usage exceeded rate limit"), timeouts and broken connections are retried a bounded
number of times with exponential backoff; anything else fails at once.

The API key travels in the query string (Tune's only way), so it must never leave this module in
clear: exceptions carry redacted URLs and messages, httpx's own request log lines are redacted
by a logging filter, and the client's repr leaves the key out.
"""
import logging
import re
import time
from decimal import ROUND_HALF_UP, Decimal

import httpx

DEFAULT_API_URL = "https://api.hasoffers.com/Apiv3/json"
DEFAULT_TIMEOUT_S = 120.0        # networks advise long timeouts for big offer lists
DEFAULT_RETRIES = 4
DEFAULT_BACKOFF_S = 10.0         # 10, 20, 40, 80 s: the rate limit resets within minutes
MAX_BACKOFF_S = 300.0
PAGE_SIZE = 500
RATE_LIMIT_TEXT = "rate limit"   # in "API usage exceeded rate limit"

log = logging.getLogger(__name__)

_KEY_IN_TEXT = re.compile(r"(api_key(?:%5D|\])?=)[^&\s\"'<>]+", re.I)


class TuneError(RuntimeError):
    """A call that failed: the network's message (or what went wrong on the way), key-free."""

    def __init__(self, message, *, retryable=False):
        super().__init__(message)
        self.message = message
        self.retryable = retryable


def redact(text, api_key=None):
    """text with every api_key=... value, and the key itself wherever it appears, replaced."""
    text = _KEY_IN_TEXT.sub(r"\1***", str(text))
    if api_key:
        text = text.replace(api_key, "***")
    return text


class _RedactKeys(logging.Filter):
    """Rewrites log records of the HTTP libraries so that no URL in them carries a key."""

    def filter(self, record):
        if "api_key" in str(record.msg) or any("api_key" in str(arg) for arg in record.args or ()):
            record.msg, record.args = redact(record.getMessage()), ()
        return True


def _install_log_redaction():
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactKeys) for f in logger.filters):
            logger.addFilter(_RedactKeys())


def encode_params(params):
    """Tune's array and map syntax: lists as name[]=v, dicts as name[key]=..., nested.

    {"fields": ["Offer.id"], "filters": {"Stat.date": {"conditional": "BETWEEN", "values": [a, b]}}}
    -> [("fields[]", "Offer.id"), ("filters[Stat.date][conditional]", "BETWEEN"),
        ("filters[Stat.date][values][]", a), ("filters[Stat.date][values][]", b)]
    """
    pairs = []

    def add(name, value):
        if value is None:
            return
        if isinstance(value, dict):
            for key, item in value.items():
                add(f"{name}[{key}]", item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                add(f"{name}[]", item)
        elif isinstance(value, bool):
            pairs.append((name, "1" if value else "0"))
        else:
            pairs.append((name, str(value)))

    for name, value in params.items():
        add(name, value)
    return pairs


def network_message(response):
    """The error text of a status -1 envelope: errorMessage, else the errors' messages."""
    message = response.get("errorMessage")
    if message:
        return str(message)
    errors = response.get("errors") or []
    if isinstance(errors, dict):
        errors = list(errors.values())
    texts = []
    for error in errors:
        if isinstance(error, dict):
            texts.append(str(error.get("err_msg") or error.get("publicMessage") or error.get("message") or error))
        else:
            texts.append(str(error))
    return "; ".join(texts) or "the network reported an error without a message"


def network_cents(text):
    """A money string of the network ("4.5", "4.5000", "12.345") as integer cents, half up.
    Raises ValueError (decimal.InvalidOperation) for anything else, and for negative amounts."""
    amount = Decimal(str(text if text not in (None, "") else "0").strip())
    if amount < 0 or not amount.is_finite():
        raise ValueError(f"not an amount of money: {text!r}")
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def records(data):
    """The records of an answer as a list: Tune keys them by id in a map (an empty one comes as
    a JSON list), or lists report rows."""
    if isinstance(data, dict):
        return list(data.values())
    return list(data or [])


class TuneClient:
    def __init__(self, api_url, network_id, api_key, timeout_s=DEFAULT_TIMEOUT_S, retries=DEFAULT_RETRIES,
                 backoff_s=DEFAULT_BACKOFF_S, sleep=time.sleep, transport=None):
        self.api_url = api_url
        self.network_id = str(network_id)
        self._api_key = api_key
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self._sleep = sleep
        self._transport = transport
        _install_log_redaction()

    def __repr__(self):
        return f"TuneClient(api_url={self.api_url!r}, network_id={self.network_id!r}, api_key='***')"

    # --- the one call ---------------------------------------------------------------------------

    def call(self, target, method, **params):
        """response.data of one call; TuneError (key-free) when it fails after the retries."""
        query = [("NetworkId", self.network_id), ("Target", target), ("Method", method),
                 ("api_key", self._api_key)] + encode_params(params)
        attempt = 0
        while True:
            try:
                return self._call_once(target, method, query)
            except TuneError as exc:
                if not exc.retryable or attempt >= self.retries:
                    raise
                delay = min(self.backoff_s * 2 ** attempt, MAX_BACKOFF_S)
                log.warning("Tune %s.%s: %s; retry %d of %d in %.0f s",
                            target, method, exc.message, attempt + 1, self.retries, delay)
                self._sleep(delay)
                attempt += 1

    def _call_once(self, target, method, query):
        where = f"{target}.{method}"
        failure = None
        try:
            with httpx.Client(timeout=self.timeout_s, transport=self._transport) as http:
                answer = http.get(self.api_url, params=query)
        except httpx.TimeoutException:
            failure = TuneError(f"{where}: the network did not answer within {self.timeout_s:g} s",
                                retryable=True)
        except httpx.TransportError as exc:
            failure = TuneError(f"{where}: could not reach {redact(self.api_url, self._api_key)}"
                                f" ({type(exc).__name__})", retryable=True)
        if failure is not None:
            # Raised outside the except block: httpx's exception (its request URL holds the key)
            # must not travel along as __context__ into tracebacks and error reporters.
            raise failure
        return self._data(where, answer)

    def _data(self, where, answer):
        if answer.status_code == 429 or answer.status_code >= 500:
            raise TuneError(f"{where}: the network answered HTTP {answer.status_code}", retryable=True)
        try:
            envelope = answer.json()
            response = envelope["response"]
            status = int(response["status"])
        except (ValueError, KeyError, TypeError):
            raise TuneError(f"{where}: the network's answer is not a Tune API envelope"
                            f" (HTTP {answer.status_code})") from None
        if status != 1:
            message = redact(network_message(response), self._api_key)
            raise TuneError(f"{where}: {message}", retryable=RATE_LIMIT_TEXT in message.lower())
        return response.get("data")

    def all_pages(self, target, method, **params):
        """Every record of a paged method, following pageCount to the end."""
        params.setdefault("limit", PAGE_SIZE)
        found, page = [], 1
        while True:
            data = self.call(target, method, page=page, **params) or {}
            found.extend(records(data.get("data")))
            page_count = int(data.get("pageCount") or 1)
            if page >= page_count:
                return found
            page += 1

    # --- the methods popup_mgr uses -----------------------------------------------------------------

    def approved_offers(self):
        """[{"Offer": {...}, "TrackingLink": {...}, "Thumbnail": {...}}] of every approved offer."""
        return self.all_pages("Affiliate_Offer", "findMyApprovedOffers",
                              contain=["TrackingLink", "Thumbnail"], sort={"Offer.id": "asc"})

    def tracking_link(self, offer_id):
        """{"click_url", "impression_pixel"} for an offer that came without a tracking link."""
        return self.call("Affiliate_Offer", "generateTrackingLink", offer_id=offer_id) or {}

    def stats(self, first_day, last_day):
        """getStats rows per day and offer for first_day..last_day (the network's days)."""
        return self.all_pages(
            "Affiliate_Report", "getStats",
            fields=["Stat.date", "Stat.offer_id", "Offer.name", "Stat.impressions", "Stat.clicks",
                    "Stat.conversions", "Stat.payout"],
            groups=["Stat.date", "Stat.offer_id"],
            filters={"Stat.date": {"conditional": "BETWEEN", "values": [first_day, last_day]}},
            sort={"Stat.date": "asc"}, totals=1)

    def conversions(self, first_datetime, last_datetime):
        """getConversions rows between two network-time-zone datetimes ('YYYY-MM-DD HH:MM:SS')."""
        return self.all_pages(
            "Affiliate_Report", "getConversions",
            fields=["Stat.datetime", "Stat.offer_id", "Stat.payout", "Stat.approved_payout",
                    "Stat.conversion_status", "Stat.sale_amount", "Stat.currency", "Stat.ad_id",
                    "Stat.affiliate_info1", "ConversionsMobile.affiliate_click_id", "Goal.name"],
            filters={"Stat.datetime": {"conditional": "BETWEEN", "values": [first_datetime, last_datetime]}},
            sort={"Stat.datetime": "asc"})

    def test_connection(self):
        """A sentence saying whether the network accepts these settings (one cheap call)."""
        try:
            data = self.call("Affiliate_Offer", "findMyApprovedOffers", fields=["Offer.id"], limit=1, page=1)
        except TuneError as exc:
            return False, f"The network refused: {exc.message}"
        count = (data or {}).get("count")
        offers = f" {count} approved offer{'s' if str(count) != '1' else ''}." if count is not None else ""
        return True, f"Connected to network {self.network_id}.{offers}"
