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
