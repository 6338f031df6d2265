"""The keyring of a rotation: the new key seals and hashes, the previous one still opens and
finds what it made, by the key id each sealed value carries."""

from __future__ import annotations

import pytest

from cercle.settings import Settings, SettingsError
from relay.storage.crypto import DataKeyError, DataKeys, generate_key

NUMBER = "+15145550142"


def test_the_keyring_opens_values_of_either_key_and_seals_with_the_new_one() -> None:
    old, new = DataKeys.from_text(generate_key()), DataKeys.from_text(generate_key())
    ring = new.with_previous(old)
    sealed_old = old.encrypt_text(NUMBER, "member.address")

    assert ring.decrypt_text(sealed_old, "member.address") == NUMBER
    sealed_new = ring.encrypt_text(NUMBER, "member.address")
    assert ring.owns(sealed_new) and not ring.owns(sealed_old)
    assert new.decrypt_text(sealed_new, "member.address") == NUMBER
    with pytest.raises(DataKeyError):
        old.decrypt_text(sealed_new, "member.address")
    with pytest.raises(DataKeyError):
        ring.decrypt_text(sealed_old, "outbox.payload")  # the context still binds


def test_a_value_of_a_third_key_opens_under_neither() -> None:
    ring = DataKeys.from_text(generate_key(), generate_key())

    with pytest.raises(DataKeyError):
        ring.decrypt(DataKeys.from_text(generate_key()).encrypt(b"x"))


def test_lookups_try_the_new_hash_first_then_the_old_one() -> None:
    old, new = DataKeys.from_text(generate_key()), DataKeys.from_text(generate_key())
    ring = new.with_previous(old)

    assert ring.lookup_hashes(NUMBER, "address") == (
        new.lookup_hash(NUMBER, "address"),
        old.lookup_hash(NUMBER, "address"),
    )
    assert new.lookup_hashes(NUMBER, "address") == (new.lookup_hash(NUMBER, "address"),)
    rehashed = ring.lookup_hashes("sms:SM1", "dedup", rehashed=True)
    assert len(rehashed) == 4
    assert ring.rehash(old.lookup_hash("sms:SM1", "dedup"), "dedup") in rehashed


def test_the_keyring_reaches_back_one_key_only() -> None:
    a, b, c = (DataKeys.from_text(generate_key()) for _ in range(3))

    ring = c.with_previous(b.with_previous(a))

    assert ring.previous is not None and ring.previous.previous is None
    with pytest.raises(DataKeyError):
        ring.decrypt(a.encrypt(b"x"))


def test_the_previous_key_cannot_be_the_current_one() -> None:
    key = generate_key()

    with pytest.raises(DataKeyError, match="same key"):
        DataKeys.from_text(key, key)


def test_the_keyring_never_shows_key_material() -> None:
    ring = DataKeys.from_text(generate_key(), generate_key())

    assert "previous" not in repr(ring) and "_mac_key" not in repr(ring)


def test_settings_need_the_new_key_beside_the_previous_one() -> None:
    with pytest.raises(SettingsError, match="CERCLE_DATA_KEY is not"):
        Settings._parse({"CERCLE_DATA_KEY_PREVIOUS": generate_key()})
    s = Settings._parse(
        {"CERCLE_DATA_KEY": generate_key(), "CERCLE_DATA_KEY_PREVIOUS": generate_key()}
    )
    assert s.data_key_previous is not None
    assert "CERCLE_DATA_KEY_PREVIOUS" not in repr(s.data_key_previous)
    assert s.audit_retention_days == 365
