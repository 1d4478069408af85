"""Money is exact integer cents: strict parsing of decimal strings and their formatting."""
import pytest

from popup_mgr import money


@pytest.mark.parametrize("text, cents", [
    ("0", 0), ("4.5", 450), ("4.50", 450), ("4.5000", 450), ("12.34", 1234), (" 7.10 ", 710),
    ("999999999.99", 99999999999),
])
def test_parse_cents_accepts_exact_amounts(text, cents):
    assert money.parse_cents(text) == cents


@pytest.mark.parametrize("text", [
    "4.505", "-1.00", "1e3", "NaN", "inf", "4,50", "1,000.00", "$4.50", "", ".5", "4.", "4.5.0",
    "٣", "４.５０", "0x10", "1234567890",
])
def test_parse_cents_rejects_anything_else(text):
    with pytest.raises(money.MoneyError):
        money.parse_cents(text)


def test_parse_cents_rejects_non_strings():
    with pytest.raises(money.MoneyError):
        money.parse_cents(4.5)


@pytest.mark.parametrize("cents, text", [(0, "0.00"), (5, "0.05"), (450, "4.50"), (123456, "1234.56"),
                                         (-450, "-4.50")])
def test_format_cents(cents, text):
    assert money.format_cents(cents) == text
