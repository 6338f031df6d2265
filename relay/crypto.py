"""Encryption at rest: AEAD for stored identifiers and bodies, a keyed hash to look them up.

One master key (``CERCLE_DATA_KEY``, 32 bytes, urlsafe base64) is never used directly: HKDF
derives a separate AES-256-GCM key and a separate HMAC-SHA256 key, so the lookup hashes in
the database say nothing about the ciphertexts and vice versa. Every ciphertext carries the
id of the key that made it, so a rotation can tell old rows from new ones.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"
_KID_LEN = 4
_NONCE_LEN = 12


class DataKeyError(ValueError):
    """The data key is missing, malformed, or does not open this ciphertext."""


def generate_key() -> str:
    """Return a fresh master key in the form ``CERCLE_DATA_KEY`` expects."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


def parse_key(text: str) -> bytes:
    """Decode a master key, with an error that says what is wrong and never echoes it."""
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise DataKeyError("CERCLE_DATA_KEY is not urlsafe base64") from exc
    if len(raw) != 32:
        raise DataKeyError("CERCLE_DATA_KEY must decode to 32 bytes (use `cercle keys generate`)")
    return raw


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"cercle/" + purpose).derive(
        master
    )


@dataclass(frozen=True)
class DataKeys:
    """The keys derived from one master key. ``repr`` never shows key material."""

    key_id: bytes
    _aead: AESGCM = field(repr=False)
    _mac_key: bytes = field(repr=False)

    @classmethod
    def from_master(cls, master: bytes) -> DataKeys:
        """Derive the encryption key, the lookup key and the key id from a master key."""
        kid = _derive(master, b"key-id")[:_KID_LEN]
        return cls(kid, AESGCM(_derive(master, b"aead")), _derive(master, b"lookup"))

    @classmethod
    def from_text(cls, text: str) -> DataKeys:
        """Derive from the urlsafe base64 form of ``CERCLE_DATA_KEY``."""
        return cls.from_master(parse_key(text))

    def encrypt(self, plaintext: bytes, context: bytes = b"") -> bytes:
        """Seal ``plaintext``; ``context`` (e.g. the column name) must match on decrypt."""
        nonce = os.urandom(_NONCE_LEN)
        return _VERSION + self.key_id + nonce + self._aead.encrypt(nonce, plaintext, context)

    def decrypt(self, sealed: bytes, context: bytes = b"") -> bytes:
        """Open a value sealed by :meth:`encrypt` under this key."""
        if sealed[:1] != _VERSION or sealed[1 : 1 + _KID_LEN] != self.key_id:
            raise DataKeyError("value was sealed under another data key")
        nonce = sealed[1 + _KID_LEN : 1 + _KID_LEN + _NONCE_LEN]
        try:
            return self._aead.decrypt(nonce, sealed[1 + _KID_LEN + _NONCE_LEN :], context)
        except InvalidTag as exc:
            raise DataKeyError("stored value failed authentication") from exc

    def encrypt_text(self, text: str, context: str) -> bytes:
        """Seal a string; see :meth:`encrypt`."""
        return self.encrypt(text.encode("utf-8"), context.encode("ascii"))

    def decrypt_text(self, sealed: bytes, context: str) -> str:
        """Open a string sealed by :meth:`encrypt_text`."""
        return self.decrypt(sealed, context.encode("ascii")).decode("utf-8")

    def lookup_hash(self, value: str, kind: str) -> str:
        """Keyed hash used to find a stored identifier without decrypting every row."""
        mac = hmac.new(self._mac_key, f"{kind}\x00{value}".encode(), hashlib.sha256)
        return mac.hexdigest()

    def owns(self, sealed: bytes) -> bool:
        """Whether ``sealed`` was made under this key (used by rotation)."""
        return sealed[1 : 1 + _KID_LEN] == self.key_id
