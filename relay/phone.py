"""Phone numbers: validate and normalize to E.164, and mask for display."""

from __future__ import annotations

import phonenumbers

from relay.errors import CercleError

DEFAULT_REGION = "CA"


def normalize(raw: str, region: str = DEFAULT_REGION) -> str:
    """Return ``raw`` as E.164, or raise :class:`CercleError` without echoing the input."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise CercleError("That is not a phone number.") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise CercleError("That phone number is not valid.")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def mask(e164: str) -> str:
    """Show only the last two digits: ``+1 ••• ••• ••21``-style, constant width."""
    return "•" * 8 + e164[-2:]
