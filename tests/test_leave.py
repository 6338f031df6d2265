"""Leaving: asked twice, then everything about the member is deleted."""

from __future__ import annotations

from sqlmodel import Session, select

from relay.errors import Reason, RetryableError
from relay.inbound.turn import Result
from relay.storage.models import Member, MemberState
from tests.room import Room


def test_leave_asks_for_confirmation_first(room: Room) -> None:
    alice = room.member("alice")

    alice.says("/leave")

    assert "send /leave again within 10 minutes" in alice.last
    assert alice.record().state == MemberState.ACTIVE


def test_leave_confirmed_deletes_number_uuid_and_pseudonym(room: Room) -> None:
    alice = room.member("alice", uuid="7d1f6a52-0000-4000-8000-000000000021")
    bob = room.member("bob")
    name = alice.name

    alice.says("/leave")
    alice.says("/leave")

    assert alice.last.startswith("You have left the group.")
    assert bob.new() == [f"{name} has left the group."]
    with Session(room.engine) as s:
        tombstones = s.exec(select(Member).where(Member.state == MemberState.REMOVED)).all()
    assert len(tombstones) == 1
    t = tombstones[0]
    assert (t.address_enc, t.address_hash, t.uuid_enc, t.uuid_hash, t.pseudonym) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert alice.says("hello?") == Result.UNKNOWN_SENDER


def test_a_late_confirmation_asks_again(room: Room) -> None:
    alice = room.member("alice")

    alice.says("/leave")
    room.later(minutes=11)
    alice.says("/leave")

    assert "again within 10 minutes" in alice.last
    assert alice.record().state == MemberState.ACTIVE


def test_messages_queued_for_someone_who_leaves_are_never_sent(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    bob.says("/leave")
    room.transport.fail_next(bob.number, RetryableError(Reason.NETWORK))
    alice.says("this should not reach bob")  # bob's copy fails once and waits for a retry
    bob.says("/leave")
    room.later(minutes=5)

    assert all("should not reach" not in t for t in bob.received)
