"""Staff hear about undeliverable messages in plain words, once per person and reason per hour."""

from __future__ import annotations

from relay.errors import PermanentError, Reason, RetryableError
from tests.room import Room


def _reports(texts: list[str]) -> list[str]:
    return [t for t in texts if t.startswith("A message could not reach")]


def test_repeated_failures_to_one_member_make_one_report_per_hour(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    room.transport.fail_next(bob.number, *[PermanentError(Reason.REJECTED)] * 5)

    for i in range(5):
        alice.says(f"m{i}")

    assert _reports(fac.new()) == [
        f"A message could not reach {bob.name}: the provider refused it."
    ]


def test_the_next_report_counts_what_was_folded_into_it(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    room.transport.fail_next(bob.number, *[PermanentError(Reason.REJECTED)] * 4)
    for i in range(3):
        alice.says(f"m{i}")
    fac.new()

    room.later(hours=1, seconds=1)
    alice.says("later")

    assert _reports(fac.new()) == [
        f"A message could not reach {bob.name}: the provider "
        "refused it. (2 other messages failed the same way since "
        "the last notice.)"
    ]


def test_different_reasons_and_people_are_reported_separately(room: Room) -> None:
    fac, alice = room.facilitator("fac"), room.member("alice")
    bob, carol = room.member("bob"), room.member("carol")
    room.transport.fail_next(
        bob.number, PermanentError(Reason.REJECTED), PermanentError(Reason.INVALID_NUMBER)
    )
    room.transport.fail_next(carol.number, PermanentError(Reason.REJECTED))

    alice.says("one")
    alice.says("two")

    assert len(_reports(fac.new())) == 3


def test_transient_failures_are_retried_and_not_reported(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    room.transport.fail_next(bob.number, RetryableError(Reason.NETWORK))

    alice.says("hello")
    room.later(seconds=5)

    assert bob.new() == [f"{alice.name}: hello"]
    assert _reports(fac.new()) == []
