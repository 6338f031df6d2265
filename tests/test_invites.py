"""Invite codes: one-time, expiring, unguessable, and silent when wrong."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlmodel import Session, select

from relay.groups import invites
from relay.inbound.turn import Result
from relay.messages import Channel, Inbound, Sender
from relay.service.groups import SafetyChoices, create_invite, set_safety
from relay.storage.models import AuditEvent, Invite, MemberState, Role
from tests.room import Person, Room


def code_from(text: str) -> str:
    found = re.search(r"\b([A-Z0-9]{12})\b", text)
    assert found, text
    return found.group(1)


def invite(room: Room, fac: Person, args: str = "") -> str:
    fac.says(f"/invite {args}".strip())
    return code_from(fac.new()[-1])


def joined(room: Room, person: Person) -> Person:
    """Count someone who joined by code among the room's people (for the invariants)."""
    room.people.append(person)
    return person


def test_a_facilitator_gets_a_code_and_how_to_use_it(room: Room) -> None:
    fac = room.facilitator("fac")

    fac.says("/invite")

    [text] = fac.new()
    code = code_from(text)
    assert len(code) == invites.CODE_LENGTH and set(code) <= set(invites.ALPHABET)
    assert text == (
        f"Invite code: {code}. It admits one person and is valid for 2 days. Give it privately "
        f"to someone you have vetted; they text JOIN {code} (or REJOINDRE {code} in French) "
        "to this number."
    )


def test_a_member_cannot_make_invites(room: Room) -> None:
    alice = room.member("alice")

    alice.says("/invite")

    assert alice.last.startswith("Unknown command.")


def test_join_with_a_code_enrolls_the_sender_with_a_pseudonym_and_the_welcome(room: Room) -> None:
    fac, alice = room.facilitator("fac"), room.member("alice")
    code = invite(room, fac)
    newcomer = joined(room, room.stranger("newcomer"))

    assert newcomer.says(f"JOIN {code}") == Result.STATE

    welcome = newcomer.new()
    assert "To join, reply AGREE." in welcome[-1]
    assert newcomer.record().state == MemberState.INVITED
    assert newcomer.timer == 86400  # the timer before anything else
    assert fac.new() == [
        f"{newcomer.name} used an invite code and has received the welcome; they join once they "
        "agree."
    ]
    newcomer.agrees()
    room.later(seconds=5)  # the join notice waits for others joining at the same time
    assert alice.new() == [f"{newcomer.name} has joined the group."]
    newcomer.says("hello everyone")
    assert alice.last == f"{newcomer.name}: hello everyone"


def test_the_french_word_enrolls_in_french_and_case_and_dashes_do_not_matter(room: Room) -> None:
    fac = room.facilitator("fac")
    code = invite(room, fac)
    zoe = joined(room, room.stranger("zoe"))

    zoe.says(f"rejoindre {code[:5].lower()}-{code[5:].lower()}")

    assert zoe.record().lang == "fr"
    assert "répondez ACCEPTE" in zoe.new()[-1]


def test_a_code_admits_one_number_only(room: Room) -> None:
    fac = room.facilitator("fac")
    code = invite(room, fac)
    first = joined(room, room.stranger("first"))
    first.says(f"JOIN {code}")

    second = room.stranger("second")
    assert second.says(f"JOIN {code}") == Result.UNKNOWN_SENDER

    assert second.received == []
    assert second.record_or_none() is None


def test_an_expired_code_gets_silence(room: Room) -> None:
    fac = room.facilitator("fac")
    code = invite(room, fac, "1h")
    room.later(hours=1)

    late = room.stranger("late")

    assert late.says(f"JOIN {code}") == Result.UNKNOWN_SENDER
    assert late.received == []


def test_a_wrong_code_gets_exactly_what_an_unknown_sender_gets(room: Room) -> None:
    fac = room.facilitator("fac")
    invite(room, fac)
    guesser, stranger = room.stranger("guesser"), room.stranger("stranger")

    wrong = guesser.says("JOIN ABCDEFGHJK")
    plain = stranger.says("hello?")

    assert wrong == plain == Result.UNKNOWN_SENDER
    assert guesser.received == stranger.received == []
    assert fac.new() == []


def test_guessing_is_rate_limited_per_sender(room: Room) -> None:
    fac = room.facilitator("fac")
    code = invite(room, fac, "1d")
    guesser = room.stranger("guesser")
    for attempt in range(invites.PER_SENDER):
        guesser.says(f"JOIN {invites.new_code()}")
        assert attempt < invites.PER_SENDER

    assert guesser.says(f"JOIN {code}") == Result.UNKNOWN_SENDER  # even the right one, for now
    assert guesser.received == []

    room.later(hours=1, minutes=1)
    joined(room, guesser)
    assert guesser.says(f"JOIN {code}") == Result.STATE


def test_only_a_keyed_hash_of_a_code_is_stored_and_the_audit_has_no_code(room: Room) -> None:
    fac = room.facilitator("fac")
    code = invite(room, fac)
    joined(room, room.stranger("newcomer")).says(f"JOIN {code}")

    raw = b"".join(p.read_bytes() for p in room.db_path.parent.glob("cercle.db*"))
    assert code.encode() not in raw
    with Session(room.engine) as s:
        [row] = s.exec(select(Invite)).all()
        events = s.exec(select(AuditEvent)).all()
    assert row.code_hash != code and row.used_at is not None
    assert not any(code in f"{e.actor} {e.action} {e.target} {e.detail}" for e in events)
    assert {"invite_create", "invite_used"} <= {e.action for e in events}


def test_a_join_replayed_by_the_provider_is_handled_once(room: Room) -> None:
    fac = room.facilitator("fac")
    code = invite(room, fac)
    newcomer = joined(room, room.stranger("newcomer"))

    newcomer.says(f"JOIN {code}", ref="42", dedup_key="twice")
    count = len(newcomer.received)
    assert newcomer.says(f"JOIN {code}", ref="42", dedup_key="twice") == Result.DUPLICATE

    assert len(newcomer.received) == count


def test_joining_from_sms_enrolls_on_sms(tmp_path: Path) -> None:
    room = Room(tmp_path, channel=Channel.SMS)
    fac = room.facilitator("fac")
    code = invite(room, fac)
    newcomer = joined(room, room.stranger("newcomer"))

    newcomer.says(f"JOIN {code}")

    assert newcomer.record().channel == Channel.SMS
    assert any("SMS" in t for t in newcomer.received)  # the SMS notice is in the welcome
    room.check_invariants()


def test_an_sms_join_to_a_signal_only_group_gets_silence(tmp_path: Path) -> None:
    room = Room(tmp_path, channel=Channel.SMS, allow_sms=False)
    code = create_invite(room.relay, room.group_name)

    assert room.stranger().says(f"JOIN {code}") == Result.UNKNOWN_SENDER


def test_a_signal_sender_without_a_visible_number_joins_by_uuid(tmp_path: Path) -> None:
    room = Room(tmp_path, channel=Channel.SIGNAL)
    code = create_invite(room.relay, room.group_name, lang="en")
    uuid = "7d1f6a52-0000-4000-8000-000000000031"

    result = room.relay.accept(
        Inbound(Channel.SIGNAL, Sender(address=None, uuid=uuid), "sig:1", text=f"JOIN {code}")
    )
    room.deliver()

    assert result == Result.STATE
    assert any("AGREE" in d.text for d in room.transport.inbox[uuid])


def test_admins_can_invite_staff_from_the_command_line(room: Room) -> None:
    code = create_invite(room.relay, room.group_name, role=Role.FACILITATOR, lang="fr")
    newcomer = joined(room, room.stranger("newcomer"))

    newcomer.says(f"JOIN {code}")  # the invite's language wins over the word's

    assert newcomer.record().role == Role.FACILITATOR
    assert newcomer.record().lang == "fr"


# --- approval --------------------------------------------------------------------------------


@pytest.fixture
def approving(tmp_path: Path) -> Room:
    room = Room(tmp_path)
    set_safety(room.relay, room.group_name, SafetyChoices(require_approval=True))
    return room


def test_with_approval_the_newcomer_waits_and_facilitators_are_told(approving: Room) -> None:
    room = approving
    fac, alice = room.facilitator("fac"), room.member("alice")
    code = invite(room, fac)
    newcomer = joined(room, room.stranger("newcomer"))

    newcomer.says(f"JOIN {code}")

    assert newcomer.new() == [
        "Thank you. A facilitator will confirm your place soon; Cercle will write to you then."
    ]
    name = newcomer.name
    assert fac.new() == [
        f"{name} used an invite code and is waiting for your approval. Send /approve {name} to "
        f"let them in, or /reject {name} to turn them away."
    ]
    assert newcomer.says("hello?") == Result.HELD_BACK
    assert newcomer.new() == [
        "A facilitator has not confirmed your place yet. Cercle will write to you as soon as "
        "they do."
    ]
    assert alice.new() == []
    fac.says("/who")
    assert f"• {name}: member, the sandbox, waiting for approval" in fac.last


def test_approve_sends_the_welcome_then_they_agree(approving: Room) -> None:
    room = approving
    fac, alice = room.facilitator("fac"), room.member("alice")
    code = invite(room, fac)
    newcomer = joined(room, room.stranger("newcomer"))
    newcomer.says(f"JOIN {code}")
    newcomer.new()
    fac.new()

    fac.says(f"/approve {newcomer.name}")

    assert fac.new() == [
        f"{newcomer.name} is admitted and has received the welcome; they join once they agree."
    ]
    assert "AGREE" in newcomer.new()[-1]
    newcomer.agrees()
    room.later(seconds=5)  # the join notice waits for others joining at the same time
    assert alice.new() == [f"{newcomer.name} has joined the group."]


def test_reject_turns_the_newcomer_away_and_deletes_their_number(approving: Room) -> None:
    room = approving
    fac = room.facilitator("fac")
    code = invite(room, fac)
    newcomer = joined(room, room.stranger("newcomer"))
    newcomer.says(f"JOIN {code}")
    name = newcomer.name
    newcomer.new()

    fac.says(f"/refuser {name}")

    assert newcomer.new() == ["Your request was not accepted. Your number has been deleted."]
    assert newcomer.record_or_none() is None
    assert newcomer.says("please") == Result.UNKNOWN_SENDER


def test_a_member_who_sends_a_code_never_leaks_it_to_the_group(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    code = invite(room, fac)

    assert alice.says(f"JOIN {code}") == Result.HELD_BACK
    assert alice.says("JOIN ABCDEFGHJK") == Result.HELD_BACK  # valid or not: the same answer

    assert bob.new() == []
    first, second = alice.new()
    assert (
        first
        == second
        == (
            "This number is already in a group, so that code was not used, and it was not shared "
            "with the group."
        )
    )
    assert alice.says("join us tonight!") == Result.RELAYED  # not a code: an ordinary message
