"""Clock and calendar helpers: UTC storage, business-time-zone days (DST-correct)."""
import datetime as dt
import time
from zoneinfo import ZoneInfo

UTC = dt.timezone.utc


def now_ms():
    return time.time_ns() // 1_000_000


def iso_now():
    """Current UTC time as stored in admin tables: '2026-11-24T21:53:42Z'."""
    return iso_utc(dt.datetime.now(UTC))


def iso_utc(moment):
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso_utc(text):
    """Parse an ISO-8601 timestamp; naive values are taken as UTC. Raises ValueError."""
    moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def business_day(ts_ms, tz):
    """The business-time-zone date ('YYYY-MM-DD') of a Unix-ms instant."""
    return dt.datetime.fromtimestamp(ts_ms / 1000, ZoneInfo(tz) if isinstance(tz, str) else tz).date().isoformat()


def day_bounds_ms(day, tz):
    """[start, end) of a business day in Unix ms. A DST day is 23 or 25 hours long."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    date = dt.date.fromisoformat(day) if isinstance(day, str) else day
    start = dt.datetime.combine(date, dt.time(), zone)
    end = dt.datetime.combine(date + dt.timedelta(days=1), dt.time(), zone)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def today(tz):
    return business_day(now_ms(), tz)


# --- the admin's clock: every time the admin shows or takes is in the business zone ------------

def _zone(tz):
    return ZoneInfo(tz) if isinstance(tz, str) else tz


def _instant(value):
    """An aware datetime from ISO-8601 text (naive = UTC), Unix milliseconds or a datetime."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value / 1000, UTC)
    return parse_iso_utc(value)


def local_text(value, tz, seconds=False):
    """An instant as the admin reads it: in the business zone, with the zone's abbreviation
    ('2026-11-29 16:35 EST'), so no time on a page can be mistaken for UTC. Empty for no value;
    text that is not a time is returned unchanged."""
    if value is None or value == "":
        return ""
    try:
        moment = _instant(value).astimezone(_zone(tz))
    except (TypeError, ValueError, OverflowError):
        return str(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


def local_clock(value, tz, seconds=False):
    """The time of day of an instant in the business zone, labelled: '16:35 EST'."""
    moment = _instant(value).astimezone(_zone(tz))
    return moment.strftime("%H:%M:%S %Z" if seconds else "%H:%M %Z")


def zone_abbreviation(tz, value=None):
    """The zone's current (or at an instant) abbreviation, e.g. 'EST' or 'EDT'."""
    moment = _instant(value) if value is not None else dt.datetime.now(UTC)
    return moment.astimezone(_zone(tz)).strftime("%Z")


def local_input_value(value, tz):
    """A stored UTC instant as a datetime-local field's value in the business zone
    ('2026-12-01T09:00'). A value that is not a time (a rejected entry) is shown as typed."""
    if value is None or value == "":
        return ""
    try:
        return _instant(value).astimezone(_zone(tz)).strftime("%Y-%m-%dT%H:%M")
    except (TypeError, ValueError, OverflowError):
        return str(value)


def local_input_to_utc(text, tz):
    """A datetime-local entry (business zone, no offset) as ISO-8601 UTC. Text that carries its
    own offset or Z keeps it; text that is not a time is returned unchanged for validation to
    reject with its usual message."""
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_zone(tz))
    return iso_utc(moment)
