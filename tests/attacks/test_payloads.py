"""Injection payloads in names and texts: SQL, format strings, templates, markup. They are
relayed verbatim or refused, and never interpreted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlmodel import Session, select

from relay.safety.flood import FloodLimit
from relay.storage.models import AuditEvent, Member
from tests.attacks.conftest import Desk
from tests.room import Person, Room

PAYLOADS = [
    "'); DROP TABLE member;--",
    "' OR '1'='1",
    "Robert'); DELETE FROM outbox; --",
    "{0.__class__}",
    "{name}{text}{org}",
    "{0}{1}{2}",
    "{text!r:>99999999}",
    "%s%s%n",
    "%(name)s %d %x",
    "${jndi:ldap://example.org/a}",
    "{{7*7}} <script>alert(1)</script>",
    "\\x00\\u202e",
    "@everyone @here",
]


@dataclass
class Group:
    room: Room
    fac: Person
    alice: Person
    bob: Person


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Group:
    # One group for the payloads that must change nothing but the inboxes (a payload that
    # did change something fails its own test, whatever it does to the next ones).
    room = Room(tmp_path_factory.mktemp("payloads"), allow_rename=True)
    room.relay.flood_limit = FloodLimit(10**9, 60)  # many payloads in no time is no flood
    return Group(room, room.facilitator("fac"), room.member("alice"), room.member("bob"))


@pytest.fixture
def group(shared: Group) -> Iterator[Group]:
    for p in shared.room.people:
        p.new()
    names = [p.name for p in shared.room.people]
    yield shared
    assert [p.name for p in shared.room.people] == names
    with Session(shared.room.engine) as s:
        assert len(s.exec(select(Member)).all()) == 3
    shared.room.check_invariants()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_payload_in_a_message_is_relayed_verbatim(group: Group, payload: str) -> None:
    group.alice.says(payload)

    assert group.bob.new() == [f"{group.alice.name}: {payload}"]


def test_payloads_in_command_arguments_are_carried_verbatim(room: Room) -> None:
    fac, alice = room.facilitator("fac"), room.member("alice")
    payload = "'); DROP TABLE member;-- {0.__class__} %s%s%n {name}"

    alice.says(f"/staff {payload}")
    fac.says(f"/reply {alice.name} {payload}")
    fac.says(f"/announce {payload}")

    assert fac.new()[0] == f"Private to staff from {alice.name}: {payload}"
    assert alice.new()[:2] == [
        "Sent privately to the facilitators. They will answer you privately.",
        f"Private message from {fac.name} (staff): {payload}",
    ]


def test_a_payload_as_a_removal_reason_reaches_only_the_removed_member_verbatim(
    room: Room,
) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    reason = "{0.__class__} %s'); DROP TABLE audit_event;--"

    fac.says(f"/remove {alice.name} {reason}")

    assert alice.last.endswith(f"Reason: {reason}")
    assert all(reason not in t for t in bob.received)
    with Session(room.engine) as s:
        assert all(reason not in (e.detail or "") for e in s.exec(select(AuditEvent)).all())


@pytest.mark.parametrize(
    "text",
    ["911 if you are in danger", "💜 take care", "line one\nline two", "2 things:  a,  b", "') --"],
)
def test_a_private_answer_arrives_as_typed_whatever_it_starts_with(room: Room, text: str) -> None:
    fac, alice = room.facilitator("fac"), room.member("alice")

    fac.says(f"/reply {alice.name} {text}")

    assert alice.last == f"Private message from {fac.name} (staff): {text}"


@pytest.mark.parametrize(
    "word", ["{0.__class__}", "%s%n", "'); DROP TABLE member;--", "{help}", "help{0}"]
)
def test_a_payload_as_a_command_word_is_an_unknown_command(group: Group, word: str) -> None:
    group.alice.says(f"/{word} x")

    assert group.alice.last.startswith("Unknown command.")
    assert "__class__" not in group.alice.last and "DROP" not in group.alice.last


@pytest.mark.parametrize(
    "payload", ["'); DROP TABLE member;--", "{0.__class__}", "%s%s%n", "Jo{name}", "<b>Jo</b>"]
)
def test_a_payload_as_a_chosen_name_is_refused(group: Group, payload: str) -> None:
    group.alice.says(f"/name {payload}")

    assert "only letters" in group.alice.last or "2 to 20" in group.alice.last


@pytest.mark.parametrize("payload", ["/lang {0.__class__}", "/mute {0} %s", "/timer %s%s%n"])
def test_a_payload_where_a_value_is_expected_gets_the_usage_line(
    group: Group, payload: str
) -> None:
    group.fac.says(payload)

    assert group.fac.last.startswith(("Usage:", "There is no one called"))
    assert group.alice.new() == [] and group.bob.new() == []


@pytest.mark.anyio
async def test_a_payload_by_sms_is_relayed_verbatim(desk: Desk) -> None:
    alice, bob = "+15145550171", "+15145550172"
    name = await desk.enroll(alice)
    await desk.enroll(bob)
    payload = "'); DROP TABLE member;-- {0.__class__} %s%s%n ${jndi:x}"

    response = await desk.sms(alice, payload)
    await desk.deliver()

    assert response.status_code == 200
    assert desk.texts(bob)[-1] == f"{name}: {payload}"
