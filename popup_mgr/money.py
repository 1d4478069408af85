"""Money as integer cents: strict parsing of decimal strings, formatting for the API."""
import re

# A plain decimal with a dot: "12", "4.5", "4.50", "4.5000". No sign, no exponent, no commas,
# no thousands separators. Up to 9 whole digits (below 10 million dollars per value).
_DECIMAL = re.compile(r"([0-9]{1,9})(?:\.([0-9]{1,6}))?")   # ASCII digits only


class MoneyError(ValueError):
    """A value that is not an exact, non-negative amount of cents."""


def parse_cents(text):
    """'4.5' -> 450. Raises MoneyError for anything that is not an exact amount of cents."""
    if not isinstance(text, str):
        raise MoneyError("must be a decimal string such as 12.34")
    match = _DECIMAL.fullmatch(text.strip())
    if not match:
        raise MoneyError("must be a non-negative decimal with a dot, such as 12.34")
    whole, fraction = match.group(1), match.group(2) or ""
    if fraction[2:].strip("0"):
        raise MoneyError("has more than two decimal places (fractions of a cent)")
    return int(whole) * 100 + int((fraction + "00")[:2])


def format_cents(cents):
    """450 -> '4.50'; -450 -> '-4.50'."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(int(cents)), 100)
    return f"{sign}{whole}.{rest:02d}"
