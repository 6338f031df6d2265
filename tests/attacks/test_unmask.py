"""A member (or a curious facilitator) trying to learn who another member really is, or to pass
for someone else: rosters, private answers, mentions, reactions, quotes and chosen names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from relay.inbound.turn import Result
from relay.language.names import PSEUDONYMS
from relay.language.pseudonyms import assign, name_key
from relay.messages import InboundKind, Mention, Reaction
from tests.e2e.test_mixed_group import (
    ALICE,
    BOB,
    FAC,
    FAC_UUID,
    ORG,
    PROFILE_NAMES,
    World,
    enroll_everyone,
)
from tests.e2e.test_mixed_group import ALICE_UUID as E2E_ALICE_UUID
from tests.fakes.signal_cli_daemon.params import camel
from tests.room import Person, Room

ALICE_UUID = "7d1f6a52-0000-4000-8000-000000000051"
BOB_UUID = "7d1f6a52-0000-4000-8000-000000000052"
OUTSIDER_UUID = "7d1f6a52-0000-4000-8000-000000000059"  # a Signal user who is not in the group


def digit_runs(text: str) -> list[str]:
    """Runs of four or more digits, separators allowed: anything that could be a number."""
    return re.findall(r"\d(?:[\s().-]?\d){3,}", text)


def everything_received(room: Room) -> list[str]:
    return [d.text for p in room.people for d in p.inbox]


@dataclass
class Renaming:
    """A group where members may choose their names; Bob chose "Coraline"."""

    room: Room
    alice: Person
    bob: Person


@pytest.fixture(scope="module")
def renaming_group(tmp_path_factory: pytest.TempPathFactory) -> Renaming:
    # Shared by the refusal tests below (each refusal leaves the group as it was; a test that
    # finds a name accepted fails, whatever it does to the next ones).
    room = Room(tmp_path_factory.mktemp("renaming"), allow_rename=True)
    alice, bob = room.member("alice"), room.member("bob")
    bob.says("/name Coraline")
    assert bob.name == "Coraline"
    return Renaming(room, alice, bob)


@pytest.fixture
def renaming(renaming_group: Renaming) -> Iterator[Renaming]:
    group = renaming_group
    before = group.alice.name
    group.alice.new()
    group.bob.new()
    yield group
    assert group.alice.name == before
    assert group.bob.new() == []  # nobody was told of a rename
    group.room.check_invariants()


# --- /who and /reply -------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["/who", "/qui"])
def test_who_shows_no_number_not_even_masked(room: Room, word: str) -> None:
    fac = room.facilitator("fac")
    for handle in ("alice", "bob", "carol"):
        room.member(handle)
    room.member("dora", agree=False)

    fac.says(word)

    roster = fac.last
    assert all(p.name in roster for p in room.people)
    assert digit_runs(roster) == []
    assert "•" * 3 not in roster  # not even the masked form admins get on the command line


def test_reply_and_the_answer_by_staff_show_neither_number(room: Room) -> None:
    fac, alice = room.facilitator("fac"), room.member("alice")

    fac.says(f"/reply {alice.name} are you safe tonight?")
    alice.says("/staff yes, thank you")

    assert alice.new() == [
        f"Private message from {fac.name} (staff): are you safe tonight?",
        "Sent privately to the facilitators. They will answer you privately.",
    ]
    assert fac.new()[-1] == f"Private to staff from {alice.name}: yes, thank you"
    assert all(digit_runs(t) == [] for t in everything_received(room))


def test_reply_to_a_number_answers_the_same_for_a_member_and_a_stranger(tmp_path: Path) -> None:
    # A facilitator typing a number instead of a name learns nothing about whose it is. (No
    # room fixture: the refusal echoes what the facilitator typed, which the strict invariant
    # check would count as receiving that number.)
    room = Room(tmp_path)
    fac, alice = room.facilitator("fac"), room.member("alice")
    stranger = "+15145550198"

    for member_form, stranger_form in (
        (alice.number, stranger),
        (alice.number[2:], stranger[2:]),
        (f"{alice.number[2:5]}-{alice.number[5:8]}", f"{stranger[2:5]}-{stranger[5:8]}"),
    ):
        fac.says(f"/reply {member_form} hello")
        about_member = fac.last
        fac.says(f"/reply {stranger_form} hello")
        assert about_member.replace(member_form, "N") == fac.last.replace(stranger_form, "N")
        assert about_member.startswith("There is no one called")

    assert alice.new() == []


# --- mentions, reactions, quotes ---------------------------------------------------------------


def test_members_probing_uuids_with_mentions_learn_nothing_even_together(room: Room) -> None:
    alice = room.member("alice", uuid=ALICE_UUID)
    bob = room.member("bob", uuid=BOB_UUID)
    carol = room.member("carol")

    bob.mentions("is \ufffc here?", alice)
    bob.mentions("is \ufffc here?", Person(room, "outsider", "+15145550199", OUTSIDER_UUID))

    # The prober is sent nothing; a colluding member (carol) sees the same "@?" whether the
    # UUID is a member's or not, so together they learn no pseudonym behind a UUID.
    assert bob.new() == []
    assert carol.new() == [f"{bob.name}: is @? here?", f"{bob.name}: is @? here?"]
    assert all(
        uuid not in t for t in everything_received(room) for uuid in (ALICE_UUID, OUTSIDER_UUID)
    )


def test_a_mention_whose_offsets_lie_carries_nothing_of_the_mentioned(room: Room) -> None:
    room.member("alice", uuid=ALICE_UUID)  # a real member behind the mentioned uuid
    bob = room.member("bob", uuid=BOB_UUID)
    carol = room.member("carol")
    lies = (
        Mention(start=0, length=500, uuid=ALICE_UUID),  # past the end
        Mention(start=2**40, length=1, uuid=ALICE_UUID),
        Mention(start=3, length=1, uuid=ALICE_UUID.upper()),  # not on a placeholder
        Mention(start=1, length=1, uuid="+15145550101"),  # a number where the uuid goes
    )

    bob.send(text="hi \ufffc", mentions=lies)

    # A span may cover any of the sender's own characters (theirs to overwrite); what it
    # carries is never shown: every mention becomes "@?".
    (got,) = carol.new()
    assert got == f"{bob.name}: h@? @?"
    assert ALICE_UUID not in got.lower() and "5145550101" not in got


def test_a_reaction_tells_only_the_author_and_tells_the_reactor_nothing(room: Room) -> None:
    alice, bob, carol = room.member("alice"), room.member("bob"), room.member("carol")
    alice.says("I slept well for once")
    carol.new()

    assert bob.reacts(bob.inbox[-1], "💜") == Result.RELAYED

    assert alice.last == f"{bob.name} reacted 💜 to your message."
    assert bob.new() == [f"{alice.name}: I slept well for once"]
    assert carol.new() == []


def test_a_reaction_to_a_message_the_reactor_never_received_does_nothing(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    alice.says("mine", ref="777")
    alice.new()

    # Guessing the author's own timestamp (or any ref) must not reach anyone.
    for ref in ("777", alice.inbox[0].ref, "1767225600000", "-1", "' OR 1=1 --"):
        bob.send(InboundKind.REACTION, reaction=Reaction("👀", ref))

    assert alice.new() == []


def test_quoting_a_guessed_ref_quotes_nothing(room: Room) -> None:
    alice, bob, carol = room.member("alice"), room.member("bob"), room.member("carol")
    alice.says("my address is secret", ref="888")
    carol.new()

    bob.says("what did you say?", quote_ref="888")  # alice's own id, not bob's copy

    assert carol.inbox[-1].quote_ref is None
    assert carol.last == f"{bob.name}: what did you say?"


# --- chosen names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Jo 5145550123",
        "Jo\uff15\uff11\uff14",  # fullwidth digits
        "Jo\u00b9\u00b2\u00b3",  # superscripts
        "Jo \u216b",  # a Roman numeral
        "Jo-514-555",
        "Jo+1",
        "Jo.Five",
        "Jo (staff)",
        "Jo\u200dSam",  # zero-width joiner
        "Jo\u00adSam",  # soft hyphen
    ],
)
def test_a_name_carrying_digits_or_hidden_characters_is_refused(
    renaming: Renaming, name: str
) -> None:
    renaming.alice.says(f"/name {name}")

    assert "only letters" in renaming.alice.last or "2 to 20" in renaming.alice.last


def test_controls_and_direction_overrides_are_stripped_before_a_name_is_read(
    tmp_path: Path,
) -> None:
    room = Room(tmp_path, allow_rename=True)
    alice = room.member("alice")

    alice.says("/name \u202eoJ\u202c Sam\x00\x07")

    assert alice.name == "oJ Sam"


@pytest.mark.parametrize(
    "name",
    [
        "Facilitator",
        "Facilitatrice",
        "Équipe",
        "L'équipe",
        "EQUIPE",
        "Admin",
        "Administratrice",
        "Team Jo",
        "Staff-Jo",
        "Cercle",
        "Modératrice",
        "F\u0430cilitator",  # Cyrillic а
        "\u0410dmin",  # Cyrillic А
        "\u0415quipe",  # Cyrillic Е
        "Iris \u0455taff",  # Cyrillic ѕ
        "\u0391dmin",  # Greek Α
        "Ｓｔａｆｆ",  # fullwidth
    ],
)
def test_a_name_that_passes_for_staff_is_refused(renaming: Renaming, name: str) -> None:
    renaming.alice.says(f"/name {name}")

    assert renaming.alice.last == "That name is reserved. Please choose another."


@pytest.mark.parametrize(
    "lookalike",
    [
        "CORALINE",
        "Córaline",
        "Ｃｏｒａｌｉｎｅ",  # fullwidth
        "C\u043er\u0430l\u0456n\u0435",  # Cyrillic о, а, і, е
        "\u0421oraline",  # Cyrillic С
        "Cor\u03b1line",  # Greek α
        "Co-raline",
    ],
)
def test_a_name_that_passes_for_another_member_is_refused(
    renaming: Renaming, lookalike: str
) -> None:
    renaming.alice.says(f"/name {lookalike}")

    assert renaming.alice.last == "That name is already taken in this group."


def test_a_new_member_is_never_given_the_latin_twin_of_a_chosen_name() -> None:
    # Someone chose "Есһо", all in Cyrillic; every other pool name is taken. The pool's "Echo"
    # would look the same: the newcomer must get something else.
    taken = {name_key(n) for n in PSEUDONYMS if n != "Echo"} | {
        name_key("\u0415\u0441\u04bb\u043e")
    }

    assert all(assign(taken) != "Echo" for _ in range(20))


# --- what Cercle asks of Signal ------------------------------------------------------------------


# The fields of a request to Signal that name a person besides its recipient, as each way in
# spells them: signal-cli-rest-api's snake_case bodies; signal-cli's params, which it reads
# under the option's dashed name or its camelCase form (a list option also with an "s").
NAMING_FIELDS = {
    "rest": (("mentions", "quote_mentions"), ("quote_author", "target_author")),
    "daemon": (
        tuple(
            name
            for option in ("mention", "quote-mention")
            for form in (option, camel(option))
            for name in (form, form + "s")
        ),
        tuple(
            form
            for option in ("quote-author", "target-author", "story-author")
            for form in (option, camel(option))
        ),
    ),
}


@pytest.mark.anyio
async def test_no_request_to_signal_carries_anyone_but_its_recipient(world: World) -> None:
    w = world
    await enroll_everyone(w)
    alice = w.signal.member(ALICE, E2E_ALICE_UUID, profile_name=PROFILE_NAMES[0])
    fac = w.signal.member(FAC, FAC_UUID, profile_name=PROFILE_NAMES[1])
    first = alice.says("hello all")
    await w.until(lambda: any("hello all" in t for t in w.signal_texts(FAC)), "fac got it")
    fac.quotes(w.signal.sent_to(FAC)[-1].timestamp, "welcome", quoted_text="hello all")
    alice.quotes(first, "following up on myself")
    fac.mentions(alice, before="thanks ", after="")
    fac.reacts("💜", w.signal.sent_to(FAC)[-1].timestamp)
    alice.edits(first, "hello everyone")
    alice.deletes(first)
    alice.sends_photo("look")
    await w.sms(BOB, "hi from sms")
    await w.until(lambda: len(w.signal.remote_deletes) >= 1, "the delete went out")
    await w.until(lambda: any("hi from sms" in t for t in w.signal_texts(ALICE)), "sms relayed")

    identities = {
        ALICE: (ALICE, E2E_ALICE_UUID, PROFILE_NAMES[0]),
        FAC: (FAC, FAC_UUID, PROFILE_NAMES[1]),
        BOB: (BOB, BOB[2:]),
    }
    mention_fields, author_fields = NAMING_FIELDS[w.signal.kind]
    requests = w.signal.addressed_requests()
    assert len(requests) > 20
    authored = 0
    for recipient, body in requests:
        assert not [f for f in mention_fields if f in body], (recipient, body)
        for field in (f for f in author_fields if f in body):
            authored += 1
            # A quote or a reaction points at a message of the org's or of the recipient's own.
            assert w.signal.phone_of(body[field]) in (ORG, w.signal.phone_of(recipient)), field
        shown = json.dumps(body, ensure_ascii=False)
        for owner, values in identities.items():
            if owner != w.signal.phone_of(recipient):  # sent by number or by account UUID
                assert all(v not in shown for v in values), (recipient, owner)
    assert authored, "no quote or reaction was checked: are the field names right?"
