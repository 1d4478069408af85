"""Signed offer tokens: what verify() accepts, and that numbers in them are ASCII digits only."""
import pytest

from popup_mgr.ingest import tokens

SECRET = "token-test-secret-0123456789-abcdefghijklmnop"
NOW = 1_800_000_000


def signed(body):
    """A token with a valid signature over any body, as only the secret's holder could make."""
    return f"{body}.{tokens._signature(SECRET, body)}"


def test_a_signed_token_verifies_and_names_what_was_served():
    token = tokens.sign(SECRET, 42, "mff", "thankyou", "b", NOW)
    assert tokens.verify(SECRET, token, NOW) == tokens.OfferToken(42, "mff", "thankyou", "b", NOW)
    assert tokens.verify(SECRET, token, NOW + 60) == tokens.verify(SECRET, token, NOW)    # cached alike


@pytest.mark.parametrize("campaign_id, issued", [("١٢", str(NOW)), ("²", str(NOW)), ("12", "١٨٠٠٠٠٠٠٠٠"),
                                                 ("12", "1800000000²"), ("+12", str(NOW)), (" 12", str(NOW))])
def test_numbers_other_than_ascii_digits_are_refused(campaign_id, issued):
    """int() reads Arabic-Indic digits as numbers and raises on superscripts: both are refused
    as malformed, even under a valid signature, never read as 12 or answered with a 500."""
    with pytest.raises(tokens.TokenError, match="malformed"):
        tokens.verify(SECRET, signed(f"v1.{campaign_id}.mff.thankyou.-.{issued}"), NOW)


@pytest.mark.parametrize("now, reason", [(NOW - 301, "future"), (NOW + tokens.DEFAULT_MAX_AGE_S + 1, "expired")])
def test_age_is_checked_on_every_call(now, reason):
    token = tokens.sign(SECRET, 1, "mff", "thankyou", "", NOW)
    tokens.verify(SECRET, token, NOW)                        # now in the cache
    with pytest.raises(tokens.TokenError, match=reason):
        tokens.verify(SECRET, token, now)


def test_a_forged_signature_is_refused_also_after_the_real_token_was_seen():
    token = tokens.sign(SECRET, 1, "mff", "thankyou", "", NOW)
    tokens.verify(SECRET, token, NOW)
    with pytest.raises(tokens.TokenError, match="signature"):
        tokens.verify("another-secret-entirely-0123456789abcdef", token, NOW)
    with pytest.raises(tokens.TokenError, match="signature"):
        tokens.verify(SECRET, token.replace("v1.1.", "v1.2."), NOW)
