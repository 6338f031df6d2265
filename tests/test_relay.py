"""The relay, as a conversation."""

from __future__ import annotations

from relay.service import Result
from tests.room import Room


def test_a_message_reaches_everyone_else_under_a_pseudonym(room: Room) -> None:
    alice, bob, carol = room.member("alice"), room.member("bob"), room.member("carol")

    assert alice.says("hi everyone") == Result.RELAYED

    assert bob.new() == [f"{alice.name}: hi everyone"]
    assert carol.new() == [f"{alice.name}: hi everyone"]
    assert alice.new() == []
