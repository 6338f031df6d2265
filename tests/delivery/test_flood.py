"""The per-member flood limit, as a conversation (default: 8 messages per 60 seconds)."""

from __future__ import annotations

from sqlmodel import Session, select

from relay.inbound.turn import Result
from relay.storage.models import FloodWindow
from tests.room import Room


def test_messages_over_the_limit_are_held_back_and_the_sender_is_told_once(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    for i in range(8):
        assert alice.says(f"m{i}") == Result.RELAYED

    assert alice.says("one too many") == Result.HELD_BACK
    assert alice.says("and another") == Result.HELD_BACK

    assert len(bob.new()) == 8
    [notice] = alice.new()
    assert "not sent to the group" in notice
    assert "1 minute" in notice


def test_facilitators_hear_of_a_flood_once_per_window_by_pseudonym(room: Room) -> None:
    fac, alice = room.facilitator("fac"), room.member("alice")
    for i in range(12):
        alice.says(f"m{i}")

    notes = [t for t in fac.new() if "held back" in t]
    assert notes == [
        f"{alice.name} sent more than 8 messages in 1 minute; their messages are held back for now."
    ]
    assert alice.number not in notes[0]


def test_the_member_can_write_again_once_the_window_ends(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    for i in range(9):
        alice.says(f"m{i}")
    bob.new()

    room.later(seconds=61)

    assert alice.says("back") == Result.RELAYED
    assert bob.new() == [f"{alice.name}: back"]


def test_a_french_speaker_is_told_in_french(room: Room) -> None:
    zoe = room.member("zoe", lang="fr")
    room.member("bob")
    for i in range(9):
        zoe.says(f"m{i}")

    assert zoe.new() == [
        "Vous envoyez beaucoup de messages en peu de temps : celui-ci et les "
        "suivants n'ont pas été envoyés au groupe. Vous pourrez écrire de nouveau "
        "dans 1 minute."
    ]


def test_only_a_counter_is_stored(room: Room) -> None:
    alice = room.member("alice")
    alice.says("something private")
    with Session(room.engine) as s:
        [row] = s.exec(select(FloodWindow)).all()
    assert set(row.model_dump()) == {
        "member_id",
        "window_start",
        "count",
        "notified",
        "strikes",  # escalating cooldowns: counters and times only
        "last_strike_at",
        "hold_until",
    }
    assert row.count == 1  # relayed messages count; consent and commands do not
