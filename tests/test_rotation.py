"""Key rotation: every sealed value and keyed hash moves to the new key, resumably, while the
relay keeps working; afterwards the old key opens nothing and the new one alone suffices."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import LargeBinary
from sqlmodel import Session, SQLModel, select

from relay.errors import CercleError, Reason, RetryableError
from relay.inbound.turn import Result
from relay.privacy.rotation import SEALED, TABLES, plan, remaining, rotate
from relay.storage.crypto import DataKeyError, DataKeys
from relay.storage.models import Ban, Inbound, Member, Outbox, OutboxBody, Role
from tests.room import Person, Room

ALICE_UUID = "7d1f6a52-0000-4000-8000-000000000041"


def rekey(room: Room, keys: DataKeys) -> None:
    """Restart the room's processes with other key settings."""
    room.keys = keys
    room.relay.keys = keys
    room.deliverer.keys = keys


def rotating(room: Room) -> tuple[DataKeys, bytes]:
    """Switch the room to a new key with the current one as previous.

    Returns the old keys and the new master key (to restart later without the previous one).
    """
    old, master = room.keys, os.urandom(32)
    rekey(room, DataKeys.from_master(master).with_previous(old))
    return old, master


def conversation(room: Room) -> tuple[Person, Person, Person, Person]:
    """A group with history: sealed numbers and UUIDs, queued bodies, a farewell, a ban."""
    fac = room.facilitator("fac")
    alice = room.member("alice", uuid=ALICE_UUID)
    bob, carol = room.member("bob"), room.member("carol")
    alice.says("first", ref="1001")
    bob.quotes(bob.inbox[-1], "answer")
    room.transport.fail_next(carol.number, RetryableError(Reason.NETWORK))
    alice.says("queued for carol", dedup_key="signal:alice:2002")
    intruder = room.member("intruder")
    fac.says(f"/ban {intruder.name}")
    return fac, alice, bob, carol


def all_sealed(room: Room) -> list[bytes]:
    with Session(room.engine) as s:
        values: list[bytes | None] = []
        values += [v for m in s.exec(select(Member)).all() for v in (m.address_enc, m.uuid_enc)]
        values += [o.address_enc for o in s.exec(select(Outbox)).all()]
        values += [b.payload_enc for b in s.exec(select(OutboxBody)).all()]
        values += [b.address_enc for b in s.exec(select(Ban)).all()]
    return [v for v in values if v is not None]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_room(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Room]:
    """A room on SQLite, then on PostgreSQL."""
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    r = Room(tmp_path, database_url=url)
    yield r
    r.check_invariants()
    r.engine.dispose()


def test_every_sealed_column_of_the_schema_is_rotated() -> None:
    binary = {
        f"{t.name}.{c.name}"
        for t in SQLModel.metadata.tables.values()
        for c in t.columns
        if isinstance(c.type, LargeBinary)
    }

    assert binary == {c.name for c in SEALED}


def test_a_rotation_moves_everything_to_the_new_key(any_room: Room) -> None:
    room = any_room
    fac, alice, bob, carol = conversation(room)
    old, master = rotating(room)
    assert sum(plan(room.engine, room.keys).values()) > 0
    before = all_sealed(room)

    report = rotate(room.engine, room.keys, batch=3)

    assert not report.interrupted and sum(report.unreadable.values()) == 0
    assert set(remaining(room.engine, room.keys).values()) == {0}
    assert all(room.keys.owns(v) for v in all_sealed(room))
    for value in all_sealed(room):
        with pytest.raises(DataKeyError):
            old.decrypt(value, b"")  # the old key opens nothing any more
    if room.db_path.exists():  # SQLite: not even in free pages or the write-ahead log
        raw = b"".join(p.read_bytes() for p in room.db_path.parent.glob("cercle.db*"))
        assert not [v for v in before if v in raw]
    # The previous key goes: the new one alone finds members, sends what waits, keeps bans.
    rekey(room, DataKeys.from_master(master))
    room.later(minutes=5)
    assert f"{alice.name}: queued for carol" in carol.received
    assert alice.says("after the rotation") == Result.RELAYED
    assert bob.last == f"{alice.name}: after the rotation"
    bob.quotes(bob.inbox[-1], "seen")
    assert alice.inbox[-1].quote_ref is not None
    with pytest.raises(CercleError):
        room.relay.enroll(room.people[-1].number, room.group_name, Role.MEMBER, "en", room.channel)
    del fac


def test_an_interrupted_rotation_continues_where_it_stopped(room: Room) -> None:
    _fac, alice, bob, _carol = conversation(room)
    rotating(room)
    todo = sum(plan(room.engine, room.keys).values())

    first = rotate(room.engine, room.keys, batch=2, stop_after=5)

    assert first.interrupted
    assert sum(first.rotated.values()) == 5
    assert sum(plan(room.engine, room.keys).values()) == todo - 5
    # Meanwhile the relay works on a half-rotated database.
    assert alice.says("mid-rotation") == Result.RELAYED
    assert bob.last == f"{alice.name}: mid-rotation"
    second = rotate(room.engine, room.keys, batch=2)
    assert not second.interrupted
    assert set(remaining(room.engine, room.keys).values()) == {0}
    assert rotate(room.engine, room.keys).rotated == dict.fromkeys(TABLES, 0), "idempotent"


def test_members_are_found_under_either_key_while_rotating(room: Room) -> None:
    alice, bob = room.member("alice", uuid=ALICE_UUID), room.member("bob")
    rotating(room)

    assert alice.says("still me") == Result.RELAYED  # found by her old hashes
    assert bob.last == f"{alice.name}: still me"
    with pytest.raises(CercleError, match="already enrolled"):
        room.relay.enroll(bob.number, room.group_name, Role.MEMBER, "en", room.channel)


def test_a_replay_is_still_caught_across_the_rotation(room: Room) -> None:
    alice, _bob = room.member("alice"), room.member("bob")
    assert alice.says("once", dedup_key="sms:SM77") == Result.RELAYED
    rotating(room)

    assert alice.says("once", dedup_key="sms:SM77") == Result.DUPLICATE  # old hash
    rotate(room.engine, room.keys)
    with Session(room.engine) as s:
        rows = s.exec(select(Inbound)).all()
    assert {r.dedup_key_id for r in rows} == {room.keys.kid}
    assert alice.says("once", dedup_key="sms:SM77") == Result.DUPLICATE  # re-keyed hash


def test_without_the_previous_key_old_rows_are_reported_not_lost(room: Room) -> None:
    room.member("alice")
    rekey(room, DataKeys.from_master(os.urandom(32)))

    report = rotate(room.engine, room.keys)

    assert report.unreadable["member"] == 1 and report.unreadable["outbox_body"] > 0
    # Sealed rows need a key that opens them; de-duplication hashes are re-keyed blind anyway.
    assert {t: n for t, n in report.rotated.items() if t != "inbound"} == dict.fromkeys(
        (
            "member",
            "outbox",
            "outbox_body",
            "ban",
            "member_safety",
            "pending_inbound",
            "media_link",
            "web_copy",
            "video_room",
        ),
        0,
    )
    assert remaining(room.engine, room.keys)["member.address_enc"] == 1


def test_a_ban_survives_the_rotation(room: Room) -> None:
    stranger = room.stranger()
    room.relay.ban_number(stranger.number, "intruder")
    _, master = rotating(room)

    with pytest.raises(CercleError):  # found by its old hash meanwhile
        room.relay.enroll(stranger.number, room.group_name, Role.MEMBER, "en", room.channel)
    rotate(room.engine, room.keys)
    rekey(room, DataKeys.from_master(master))

    with pytest.raises(CercleError):
        room.relay.enroll(stranger.number, room.group_name, Role.MEMBER, "en", room.channel)


def test_a_members_exit_word_still_works_during_and_after_the_rotation(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    alice.says("/exitword pineapple")
    name = alice.name
    _, master = rotating(room)

    bob.says("/exitword umbrella")  # set while rotating: under the new key already
    rotate(room.engine, room.keys)
    assert not any(remaining(room.engine, room.keys).values())
    rekey(room, DataKeys.from_master(master))  # the previous key is gone

    alice.says("PINEAPPLE")
    assert alice.record_or_none() is None
    assert any(f"{name}" in t for t in room.people[1].received)
    bob.says("umbrella")
    assert bob.record_or_none() is None


def test_an_invite_code_made_before_the_rotation_works_while_the_old_key_is_kept(
    room: Room,
) -> None:
    from datetime import timedelta

    from relay.service import groups as group_admin

    code = group_admin.create_invite(
        room.relay, room.group_name, timedelta(hours=48), Role.MEMBER, "en"
    )
    rotating(room)
    rotate(room.engine, room.keys)
    newcomer = room.stranger("newcomer")

    newcomer.says(f"JOIN {code}")

    assert newcomer.record().state == "invited"
    room.people.append(newcomer)


def test_a_private_link_made_before_the_rotation_works_while_the_old_key_is_kept(
    room: Room,
) -> None:
    from datetime import timedelta

    from relay.groups import invites
    from relay.service import groups as group_admin
    from relay.service import links

    code = group_admin.create_invite(
        room.relay, room.group_name, timedelta(hours=48), Role.MEMBER, "en"
    )
    link = invites.link_token(room.keys, code)  # as sent, under the old key
    rotating(room)
    rotate(room.engine, room.keys)

    welcome = links.preview(room.relay, link, "web")

    assert welcome is not None and welcome.lang == "en"
