"""Passkeys need a domain name: the check that ``PUBLIC_BASE_URL`` has one.

Browsers refuse WebAuthn on an address such as ``https://203.0.113.7`` or ``http://127.0.0.1``
(the relying party must be a registrable domain, or ``localhost``), so a console served there
can never sign anyone in. ``cercle doctor`` and the health page say so, and so does the console's
sign-in page itself.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from cercle.health.finding import Finding
from cercle.settings import Settings
from relay.language.i18n import T


def ip_host(url: str | None) -> bool:
    """Whether ``url``'s host is an IP address (v4 or v6) rather than a domain name."""
    if not url:
        return False
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_passkey_host(settings: Settings) -> Finding:
    """``warn`` when ``PUBLIC_BASE_URL`` names an IP address: staff passkeys cannot work."""
    base = settings.public_base_url
    if base is None:
        return Finding("passkey_host", "skip", T("PUBLIC_BASE_URL is not set: no staff console."))
    if ip_host(base):
        return Finding(
            "passkey_host",
            "warn",
            T(
                "PUBLIC_BASE_URL is an IP address: browsers refuse passkeys there, so no one "
                "can sign in to the staff console."
            ),
            T(
                "Give the server a domain name (with TLS) and set PUBLIC_BASE_URL to it, "
                "for example https://relay.example.org."
            ),
        )
    return Finding("passkey_host", "ok", T("PUBLIC_BASE_URL has a domain name (passkeys work)."))


__all__ = ["check_passkey_host", "ip_host"]
