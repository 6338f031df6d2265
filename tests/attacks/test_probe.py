"""An unknown number probing the group's number with every word it might try: it gets silence,
and nothing about it is written anywhere.
"""

from __future__ import annotations

import pytest

from relay.commands.table import COMMANDS
from relay.inbound.turn import Result
from tests.attacks.conftest import Desk, row_counts
from tests.room import Person, Room

PROBES = [
    *(f"/{word} Willow hello" for c in COMMANDS for word in c.words.values()),
    *(f"/{word}" for c in COMMANDS for word in c.words.values()),
    "JOIN", "join", "AGREE", "ACCEPTE", "J'accepte", "d'accord", "STOP", "START", "UNSTOP",
    "HELP", "AIDE", "INFO", "ARRET", "/start", "/join mardi", "/mydata", "/ban Willow",
    "hello?", "Is this the support group?", "mardi", "Willow", "+15145550101", "",
]  # fmt: skip


def test_a_stranger_probing_every_word_gets_silence_and_leaves_no_trace(room: Room) -> None:
    fac, alice = room.facilitator("fac"), room.member("alice")
    stranger = room.stranger()
    before = row_counts(room.engine)

    results = {text: stranger.says(text) for text in PROBES}

    assert set(results.values()) == {Result.UNKNOWN_SENDER}
    assert stranger.inbox == []
    assert fac.new() == [] and alice.new() == []
    assert row_counts(room.engine) == before


def test_a_stranger_using_a_members_pseudonym_is_still_a_stranger(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    stranger = room.stranger()

    assert stranger.says(f"Hi, it's {alice.name}, new phone. /name {alice.name}") == (
        Result.UNKNOWN_SENDER
    )

    assert bob.new() == [] and stranger.inbox == []


def test_a_member_who_has_not_agreed_learns_nothing_about_the_others(room: Room) -> None:
    room.facilitator("fac")
    alice = room.member("alice")
    newcomer = room.member("newcomer", agree=False)

    for text in ("/who", "/qui", f"/reply {alice.name} hi", "/whoami", "hello", "/staff hi"):
        newcomer.says(text)

    assert all(alice.name not in t for t in newcomer.new())
    assert alice.new() == []


@pytest.mark.anyio
async def test_a_stranger_texting_every_word_by_sms_gets_empty_twiml_and_no_rows(
    desk: Desk,
) -> None:
    member = "+15145550161"
    await desk.enroll(member)
    stranger = "+15145550162"
    before = desk.counts()
    answers = set()

    for text in PROBES:
        response = await desk.sms(stranger, text)
        answers.add((response.status_code, response.text))
    await desk.deliver()

    assert answers == {(200, '<?xml version="1.0" encoding="UTF-8"?><Response />')}
    assert desk.texts(stranger) == []
    assert desk.counts() == before


def test_another_signal_account_on_a_members_number_is_not_taken_for_the_member(
    room: Room,
) -> None:
    alice = room.member("alice", uuid="7d1f6a52-0000-4000-8000-000000000061")
    bob = room.member("bob")
    newcomer = Person(room, "newcomer", alice.number, "7d1f6a52-0000-4000-8000-000000000069")

    newcomer.says("hi, I got this number last week")

    assert bob.new() == []
