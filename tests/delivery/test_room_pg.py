"""A few transcripts on PostgreSQL: the same Room, the same promises."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from relay.errors import PermanentError, Reason
from relay.inbound.turn import Result
from tests.room import Room

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_room(tmp_path: Path, pg_url: str) -> Iterator[Room]:
    """A room whose database is a fresh PostgreSQL database."""
    r = Room(tmp_path, database_url=pg_url)
    yield r
    r.check_invariants()
    r.engine.dispose()


def test_a_message_reaches_everyone_else_on_postgresql(pg_room: Room) -> None:
    alice, bob, carol = pg_room.member("alice"), pg_room.member("bob"), pg_room.member("carol")
    assert alice.says("hi everyone") == Result.RELAYED
    assert bob.new() == [f"{alice.name}: hi everyone"]
    assert carol.new() == [f"{alice.name}: hi everyone"]


def test_the_flood_limit_holds_on_postgresql(pg_room: Room) -> None:
    alice, bob = pg_room.member("alice"), pg_room.member("bob")
    for i in range(9):
        alice.says(f"m{i}")
    assert len(bob.new()) == 8


def test_a_removed_member_gets_nothing_more_on_postgresql(pg_room: Room) -> None:
    fac, alice, bob = pg_room.facilitator("fac"), pg_room.member("alice"), pg_room.member("bob")
    fac.says(f"/remove {bob.name}")
    bob.new()
    alice.says("still there?")
    assert bob.new() == []


def test_failures_are_reported_once_on_postgresql(pg_room: Room) -> None:
    fac, alice, bob = pg_room.facilitator("fac"), pg_room.member("alice"), pg_room.member("bob")
    pg_room.transport.fail_next(bob.number, *[PermanentError(Reason.REJECTED)] * 3)
    for i in range(3):
        alice.says(f"m{i}")
    assert len([t for t in fac.new() if t.startswith("A message could not reach")]) == 1
