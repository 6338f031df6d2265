"""Passkey ceremonies (WebAuthn) through py_webauthn: options for the browser, and checks of
what it sends back. The relying party is the host of ``PUBLIC_BASE_URL``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from relay.errors import CercleError
from relay.storage.models import StaffAccount, StaffCredential


class PasskeyError(CercleError):
    """What the browser sent is not a valid passkey response for this ceremony."""


@dataclass(frozen=True)
class RelyingParty:
    """Who the passkeys belong to: the console's host and exact origin."""

    id: str
    origin: str
    name: str

    @classmethod
    def from_base_url(cls, url: str, name: str) -> RelyingParty:
        """The relying party for a console served at ``url`` (``PUBLIC_BASE_URL``)."""
        parts = urlsplit(url)
        if not parts.hostname or parts.scheme not in ("https", "http"):
            raise CercleError("PUBLIC_BASE_URL must be a URL such as https://cercle.example.org")
        return cls(parts.hostname, f"{parts.scheme}://{parts.netloc}", name)


def registration(rp: RelyingParty, account: StaffAccount) -> tuple[str, str]:
    """Options for ``navigator.credentials.create`` (JSON) and the challenge to keep
    (base64url)."""
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_name=account.name,
        user_id=f"staff-{account.id}".encode(),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
    )
    return options_to_json(options), bytes_to_base64url(options.challenge)


def verify_registration(rp: RelyingParty, body: Any, challenge: str) -> tuple[str, str, int]:
    """The new passkey's id, public key (both base64url) and counter, or
    :class:`PasskeyError`."""
    try:
        verified = verify_registration_response(
            credential=json.dumps(body),
            expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise PasskeyError("The passkey could not be registered.") from exc
    return (
        bytes_to_base64url(verified.credential_id),
        bytes_to_base64url(verified.credential_public_key),
        verified.sign_count,
    )


def authentication(rp: RelyingParty) -> tuple[str, str]:
    """Options for ``navigator.credentials.get`` (any passkey of this site) and the
    challenge to keep."""
    options = generate_authentication_options(
        rp_id=rp.id, user_verification=UserVerificationRequirement.REQUIRED
    )
    return options_to_json(options), bytes_to_base64url(options.challenge)


def credential_id_of(body: Any) -> str | None:
    """The passkey id a sign-in response claims (checked by :func:`verify_authentication`)."""
    value = body.get("id") if isinstance(body, dict) else None
    return value if isinstance(value, str) and len(value) <= 1400 else None


def verify_authentication(
    rp: RelyingParty, body: Any, challenge: str, credential: StaffCredential
) -> int:
    """The passkey's new counter, or :class:`PasskeyError`."""
    try:
        verified = verify_authentication_response(
            credential=json.dumps(body),
            expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            credential_public_key=base64url_to_bytes(credential.public_key),
            credential_current_sign_count=credential.sign_count,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise PasskeyError("The passkey could not be verified.") from exc
    return verified.new_sign_count
