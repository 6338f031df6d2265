"""Encryption at rest: AEAD for stored identifiers and bodies, a keyed hash to look them up.

One master key (``CERCLE_DATA_KEY``, 32 bytes, urlsafe base64) is never used directly: HKDF
derives a separate AES-256-GCM key and a separate HMAC-SHA256 key, so the lookup hashes in
the database say nothing about the ciphertexts and vice versa. Every ciphertext carries the
id of the key that made it, so a rotation can tell old rows from new ones.

During a key rotation the keys form a small keyring: the new key seals and hashes everything
new, and the previous key (``CERCLE_DATA_KEY_PREVIOUS``) is still accepted to open values by
the key id they carry, and to look values up under their old hashes, until
``cercle keys rotate`` has re-sealed and re-hashed every row (see docs/keys.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field, replace

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
    # The key being rotated away from: still opens old values and finds old hashes.
    previous: DataKeys | None = field(default=None, repr=False)

    @classmethod
    def from_master(cls, master: bytes) -> DataKeys:
        """Derive the encryption key, the lookup key and the key id from a master key."""
        kid = _derive(master, b"key-id")[:_KID_LEN]
        return cls(kid, AESGCM(_derive(master, b"aead")), _derive(master, b"lookup"))

    @classmethod
    def from_text(cls, text: str, previous: str | None = None) -> DataKeys:
        """Derive from the urlsafe base64 form of ``CERCLE_DATA_KEY`` (and, while rotating,
        of ``CERCLE_DATA_KEY_PREVIOUS``)."""
        keys = cls.from_master(parse_key(text))
        return keys.with_previous(cls.from_master(parse_key(previous))) if previous else keys

    def with_previous(self, previous: DataKeys) -> DataKeys:
        """This key as the current one of a keyring that still accepts ``previous``."""
        if previous.key_id == self.key_id:
            raise DataKeyError("CERCLE_DATA_KEY_PREVIOUS is the same key as CERCLE_DATA_KEY")
        # Only one step back: a keyring never chains to a key older than the previous one.
        return replace(self, previous=replace(previous, previous=None))

    @property
    def kid(self) -> str:
        """The current key id as text (stored beside hashes whose input is not kept)."""
        return self.key_id.hex()

    def encrypt(self, plaintext: bytes, context: bytes = b"") -> bytes:
        """Seal ``plaintext``; ``context`` (e.g. the column name) must match on decrypt."""
        nonce = os.urandom(_NONCE_LEN)
        return _VERSION + self.key_id + nonce + self._aead.encrypt(nonce, plaintext, context)

    def decrypt(self, sealed: bytes, context: bytes = b"") -> bytes:
        """Open a value sealed by :meth:`encrypt` under this key or, while rotating, under the
        previous one (chosen by the key id the value carries)."""
        kid = sealed[1 : 1 + _KID_LEN]
        if self.previous is not None and kid == self.previous.key_id:
            return self.previous.decrypt(sealed, context)
        if sealed[:1] != _VERSION or kid != self.key_id:
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

    def lookup_hashes(self, value: str, kind: str, *, rehashed: bool = False) -> tuple[str, ...]:
        """Every hash ``value`` may be stored under: the current key's first, then, while a
        previous key is set, the previous key's.

        With ``rehashed``, also the rotated form (:meth:`rehash`) of each, for hashes whose
        input Cercle does not keep and that rotation could only re-key by hashing the old hash.
        """
        plain: tuple[str, ...] = (self.lookup_hash(value, kind),)
        if self.previous is not None:
            plain += (self.previous.lookup_hash(value, kind),)
        return plain + tuple(self.rehash(h, kind) for h in plain) if rehashed else plain

    def rehash(self, old_hash: str, kind: str) -> str:
        """Re-key a stored hash without its input: a hash of the old hash under this key.

        A value under the old key alone then means nothing to someone holding only that key.
        """
        return self.lookup_hash("rehash\x00" + old_hash, kind)

    def owns(self, sealed: bytes) -> bool:
        """Whether ``sealed`` was made under the current key (used by rotation)."""
        return sealed[1 : 1 + _KID_LEN] == self.key_id


KID_OFFSET, KID_LEN = 1, _KID_LEN  # where a sealed value carries its key id (for SQL filters)
