"""Escalating cooldowns for repeated floods, and what facilitators see in /stats."""

from __future__ import annotations

from pathlib import Path

from relay.inbound.turn import Result
from relay.service.groups import SafetyChoices, set_safety, set_schedule
from tests.room import Person, Room


def flood(person: Person, n: int = 9) -> None:
    for i in range(n):
        person.says(f"m{i}")


def test_a_second_flood_within_a_day_holds_the_member_back_five_minutes(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    flood(alice)
    room.later(seconds=61)
    alice.new()

    flood(alice)

    assert alice.new()[-1].endswith("You can write again in 5 minutes.")
    room.later(seconds=61)
    assert alice.says("still held") == Result.HELD_BACK
    room.later(minutes=4)
    bob.new()
    assert alice.says("calm now") == Result.RELAYED
    assert bob.new() == [f"{alice.name}: calm now"]


def test_cooldowns_grow_with_each_flood_and_are_forgiven_after_a_day(room: Room) -> None:
    alice = room.member("alice")
    room.member("bob")
    flood(alice)
    room.later(seconds=61)
    flood(alice)
    room.later(minutes=5)
    alice.new()

    flood(alice)

    assert alice.new()[-1].endswith("You can write again in 30 minutes.")
    room.later(days=1, minutes=31)
    flood(alice)
    assert alice.new()[-1].endswith("You can write again in 1 minute.")


def test_a_cooldown_does_not_grow_while_the_member_keeps_writing(room: Room) -> None:
    alice = room.member("alice")
    room.member("bob")
    flood(alice)
    room.later(seconds=61)
    flood(alice)
    alice.new()

    room.later(minutes=4)
    flood(alice, 3)  # held quietly, no new notice, no longer hold
    room.later(minutes=1)

    assert alice.new() == []
    assert alice.says("ok now") == Result.RELAYED


def test_stats_count_held_muted_and_limited_messages_and_what_waits(tmp_path: Path) -> None:
    room = Room(tmp_path)
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    room.later(seconds=1)
    set_safety(room.relay, room.group_name, SafetyChoices(premoderate=1))
    newcomer = room.member("newcomer")
    newcomer.says("hello")  # held for review
    alice.says("I want to die")  # an alert
    fac.says(f"/mute {bob.name} 1h")
    bob.says("muted words")
    bob.says("more muted words")
    flood(alice, 8)  # with the alert, one over the limit
    set_schedule(room.relay, room.group_name, add=("mon 10:00-11:00",))
    room.later(seconds=61)
    alice.says("closed now")
    fac.new()

    fac.says("/stats")

    assert fac.new() == [
        "In the last 7 days:\n"
        "• sent outside open hours: 1\n"
        "• held for a facilitator: 1\n"
        "• alerts to staff: 1\n"
        "• sent while muted: 2\n"
        "• over the flood limit or in a cooldown: 1\n"
        "Now:\n"
        "• messages waiting for a decision: 1\n"
        "• newcomers waiting for approval: 0\n"
        "• members muted: 1"
    ]


def test_stats_are_for_facilitators_only_and_in_their_language(room: Room) -> None:
    alice = room.member("alice")
    fac = room.facilitator("fac", lang="fr")

    alice.says("/stats")
    fac.says("/stats")

    assert alice.last.startswith("Unknown command.")
    assert fac.last.startswith("Au cours des 7 derniers jours :")
