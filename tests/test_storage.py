"""Storage: migrations, sealed identifiers, and a database file that tells a thief nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from relay.storage.crypto import DataKeyError, DataKeys, generate_key, parse_key
from relay.storage.engine import make_engine, upgrade
from tests.room import Room


def test_migrations_build_every_table_from_an_empty_database(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")

    upgrade(engine)

    tables = set(inspect(engine).get_table_names())
    assert {"group", "member", "inbound", "outbox", "outbox_body", "audit_event"} <= tables


def test_the_models_and_the_migrations_agree(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)

    assert diff == []


def test_a_stolen_database_file_holds_no_number_uuid_or_message(room: Room) -> None:
    uuids = [f"7d1f6a52-0000-4000-8000-0000000000{n}" for n in range(21, 27)]
    people = [room.member(f"p{i}", uuid=u) for i, u in enumerate(uuids)]
    fac = room.facilitator("fac")
    secrets = ["my address is 12 rue des Érables", "he found my new phone", "merci 💜"]
    for person, text in zip(people, secrets, strict=False):
        person.says(text)
    people[0].says("/staff please call me")
    fac.says(f"/reply {people[1].name} we will call you")
    # Leave rows waiting too: one recipient's provider is down.
    from relay.errors import Reason, RetryableError

    room.transport.fail_next(people[2].number, RetryableError(Reason.NETWORK))
    people[3].says("queued while the provider is down")

    raw = b"".join(p.read_bytes() for p in room.db_path.parent.glob("cercle.db*"))
    for value in [
        *(p.number for p in people),
        *uuids,
        *secrets,
        "please call me",
        "we will call you",
        "queued while the provider is down",
    ]:
        assert value.encode() not in raw, "found in clear in the database file"
        assert value.encode("utf-16-le") not in raw
    for person in people:
        assert person.number.lstrip("+").encode() not in raw


def test_sealed_values_open_only_with_the_same_key_and_context() -> None:
    keys, other = DataKeys.from_text(generate_key()), DataKeys.from_text(generate_key())
    sealed = keys.encrypt_text("+15145550142", "member.address")

    assert keys.decrypt_text(sealed, "member.address") == "+15145550142"
    with pytest.raises(DataKeyError):
        other.decrypt_text(sealed, "member.address")
    with pytest.raises(DataKeyError):
        keys.decrypt_text(sealed, "outbox.payload")
    assert keys.encrypt_text("+15145550142", "member.address") != sealed  # fresh nonce


def test_lookup_hashes_are_keyed_and_separate_from_encryption() -> None:
    master = os.urandom(32)
    keys = DataKeys.from_master(master)

    assert keys.lookup_hash("+15145550142", "address") == keys.lookup_hash(
        "+15145550142", "address"
    )
    assert keys.lookup_hash("+15145550142", "address") != DataKeys.from_master(
        os.urandom(32)
    ).lookup_hash("+15145550142", "address")
    assert keys.lookup_hash("+15145550142", "address") != keys.lookup_hash("+15145550142", "uuid")


@pytest.mark.parametrize("bad", ["", "not base64!!", "c2hvcnQ="])
def test_a_malformed_key_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(DataKeyError) as err:
        parse_key(bad)
    assert bad not in str(err.value) or not bad
