"""Joins within a short window are announced in one notice, in each member's language."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.inbound.join_notices import announce_due
from relay.storage.engine import make_engine
from tests.room import Person, Room


@pytest.fixture
def room(tmp_path: Path) -> Room:
    return Room(tmp_path)


def _newcomers(room: Room, *handles: str, lang: str = "en") -> list[Person]:
    people = [room.member(h, agree=False, lang=lang) for h in handles]
    for person in people:
        person.new()  # the consent text
    return people


def test_a_burst_of_joins_makes_one_notice_per_recipient(room: Room) -> None:
    alice = room.member("alice")
    iris, jules, kai = _newcomers(room, "iris", "jules", "kai")
    for person in (iris, jules, kai):
        person.agrees()
        room.later(seconds=2)  # each within the quiet window of the one before
    assert alice.new() == [], "not yet: others may still be joining"

    room.later(seconds=5)

    assert alice.new() == [f"{iris.name}, {jules.name} and {kai.name} have joined the group."]
    assert iris.new()[-1] == f"{jules.name} and {kai.name} have joined the group."
    assert kai.new()[-1] == f"{iris.name} and {jules.name} have joined the group."


def test_members_read_the_notice_in_their_language(room: Room) -> None:
    lea = room.member("lea", lang="fr")
    iris, jules = _newcomers(room, "iris", "jules")
    iris.agrees()
    jules.agrees()
    room.later(seconds=5)
    assert lea.new() == [f"{iris.name} et {jules.name} font maintenant partie du groupe."]


def test_a_newcomer_who_speaks_at_once_is_announced_first(room: Room) -> None:
    alice = room.member("alice")
    [iris] = _newcomers(room, "iris")
    iris.agrees()
    iris.says("hello everyone")
    assert alice.new() == [f"{iris.name} has joined the group.", f"{iris.name}: hello everyone"]
    room.later(seconds=30)
    assert alice.new() == [], "announced once"


def test_a_join_is_announced_after_a_restart(room: Room) -> None:
    alice = room.member("alice")
    [iris] = _newcomers(room, "iris")
    iris.agrees()
    # The worker that saw the join is gone; another process, with its own engine, announces it.
    other = make_engine(f"sqlite:///{room.db_path}")
    room.clock.advance(seconds=6)
    assert announce_due(other, room.keys, room.clock.now()) == 1
    other.dispose()
    room.deliver()
    assert alice.new() == [f"{iris.name} has joined the group."]


def test_someone_who_leaves_before_the_notice_is_not_named(room: Room) -> None:
    fac, alice = room.facilitator("fac"), room.member("alice")
    iris, jules = _newcomers(room, "iris", "jules")
    iris.agrees()
    jules.agrees()
    gone = jules.name
    fac.says(f"/remove {gone}")
    room.later(seconds=5)
    assert f"{iris.name} has joined the group." in alice.new()
    assert all(gone not in text for text in alice.received if "joined" in text)
