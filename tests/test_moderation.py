"""Message moderation: a facilitator takes a message back (/delete), a member reports one
(/report). Transcripts on the loopback transports; privacy invariants after each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from sqlmodel import select

from relay.inbound.turn import Result
from relay.messages import Channel, InboundKind
from relay.service.groups import SafetyChoices, set_safety
from relay.storage.models import AuditEvent, Role
from tests.room import Person, Room

NAME_LEAK = "my neighbour Marie Tremblay on rue Fullum saw me"


def uuid(n: int) -> str:
    return f"7d1f6a52-0000-4000-8000-0000000001{n:02d}"


@pytest.fixture
def mixed(tmp_path: Path, db_url: str) -> Iterator[Room]:
    """A group on Signal with members on SMS too, on SQLite and on PostgreSQL."""
    r = Room(tmp_path, channel=Channel.SIGNAL, also=(Channel.SMS,), database_url=db_url)
    yield r
    r.check_invariants()
    r.engine.dispose()


def signal_member(room: Room, handle: str, n: int, **kw: object) -> Person:
    return room.member(handle, uuid=uuid(n), **kw)  # type: ignore[arg-type]


def deletes(person: Person) -> list[str]:
    """The copies this phone was told to delete."""
    return [d.delete_ref for d in person.inbox if d.delete_ref]


def said(person: Person) -> list[str]:
    """The texts this phone shows (deletes are not texts)."""
    return [d.text for d in person.inbox if not d.delete_ref]


# --- /delete on a quoted message -------------------------------------------------------------


def test_a_real_name_is_taken_back_mid_fan_out(mixed: Room) -> None:
    room = mixed
    fac = signal_member(room, "fac", 1, role=Role.FACILITATOR)
    alice = signal_member(room, "alice", 2)
    bob = signal_member(room, "bob", 3)
    carol = room.member("carol", via=Channel.SMS)
    dan = signal_member(room, "dan", 4)
    erin = room.member("erin", via=Channel.SMS)

    with room.holding():
        alice.says(NAME_LEAK)
        room.deliver_some(3)  # fac, bob and carol have it
        claimed = room.claim(1)  # a worker holds dan's copy, not yet sent
        fac.quotes(fac.inbox[-1], "/delete a member's real name")
        room.send_claimed(claimed)  # the worker goes on: dan's copy must not go

    assert NAME_LEAK not in " ".join(dan.received + erin.received)
    assert deletes(bob) == [d.ref for d in bob.inbox if NAME_LEAK in d.text]
    assert deletes(fac) == [d.ref for d in fac.inbox if NAME_LEAK in d.text]
    assert carol.new()[-1].endswith(NAME_LEAK)  # the SMS copy, and nothing after it
    assert alice.last == (
        "A facilitator removed your message from the group.\nReason: a member's real name"
    )
    assert said(fac)[-1] == (
        f"Removed 1 message by {alice.name}. It is being deleted from 2 phones. "
        "2 copies not yet sent will never be sent. 1 member on SMS had already received it: "
        "an SMS cannot be taken back. Cercle sends them nothing more about it."
    )


def test_other_facilitators_hear_of_the_removal_and_of_sms_copies(mixed: Room) -> None:
    room = mixed
    fac = signal_member(room, "fac", 1, role=Role.FACILITATOR)
    gina = signal_member(room, "gina", 2, role=Role.FACILITATOR)
    alice = signal_member(room, "alice", 3)
    room.member("carol", via=Channel.SMS)
    alice.says(NAME_LEAK)

    fac.quotes(fac.inbox[-1], "/delete")

    assert f"{fac.name} (staff) removed 1 message by {alice.name}." in said(gina)[-1]
    assert "1 member on SMS had already received it" in said(gina)[-1]
    assert alice.last == "A facilitator removed your message from the group."


def test_a_send_that_raced_the_removal_is_deleted_at_once(mixed: Room) -> None:
    room = mixed
    fac = signal_member(room, "fac", 1, role=Role.FACILITATOR)
    alice = signal_member(room, "alice", 2)
    dan = signal_member(room, "dan", 4)

    with room.holding():
        alice.says(NAME_LEAK)
        room.deliver_some(1)  # fac has it
        [job] = room.claim(1)  # dan's copy is leaving the worker as the removal lands
        fac.quotes(fac.inbox[-1], "/delete")
        receipt = anyio.run(room.transport.send, job.message)
        room.deliverer._sent_many([(job, receipt)])

    assert deletes(dan) == [receipt.ref]


def test_the_author_hears_in_their_language_and_of_no_one(room: Room) -> None:
    fac = room.facilitator("fac")
    alice = room.member("alice", lang="fr")
    alice.says("une adresse")

    fac.quotes(fac.inbox[-1], "/effacer adresse")

    assert alice.last == "Une personne de l'équipe a retiré votre message du groupe.\n" + (
        "Raison : adresse"
    )
    assert fac.name not in alice.last


def test_a_removal_is_audited_with_pseudonyms_and_counts_only(room: Room) -> None:
    fac, alice, _ = room.facilitator("fac"), room.member("alice"), room.member("bob")
    alice.says("something private")

    fac.quotes(fac.inbox[-1], "/delete private details")

    with room.session() as s:
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "message_delete")).one()
    assert (event.actor, event.target) == (fac.name, alice.name)
    assert event.detail == "n=1 unsent=0 deleted=2 sms=0 old=0"
    assert "private" not in f"{event.detail}{event.target}"


def test_a_member_cannot_delete_someone_elses_message(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    alice.says("mine")
    bob.new()

    assert bob.quotes(bob.inbox[-1], "/delete") == Result.COMMAND

    assert bob.new() == ["Unknown command. Send /help for the list."]
    assert deletes(bob) == [] and alice.new() == []


def test_a_facilitators_message_needs_another_facilitator_or_an_admin(room: Room) -> None:
    fac, gina, admin = room.facilitator("fac"), room.facilitator("gina"), room.member("ana")
    boss = room.member("boss", role=Role.ADMIN)
    boss.says("admin note")
    del admin

    fac.quotes(fac.inbox[-1], "/delete")

    assert said(fac)[-1] == f"You cannot remove {boss.name} (staff)'s messages."
    fac.says("facilitator note")
    gina.quotes(gina.inbox[-1], "/delete")
    assert deletes(gina) and fac.last == "A facilitator removed your message from the group."


def test_a_members_own_delete_still_works(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    alice.says("oops", ref="700")

    alice.send(InboundKind.DELETE, delete_ref="700")

    assert deletes(bob) == [bob.inbox[-2].ref]


# --- without a quote -------------------------------------------------------------------------


def test_delete_name_3_takes_back_the_last_three_after_a_flood(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    for i in range(5):
        alice.says(f"flood {i}")
        room.later(seconds=1)

    fac.says(f"/delete {alice.name} 3 flooding")

    taken = {d.text for d in bob.inbox if d.ref in deletes(bob)}
    assert taken == {f"{alice.name}: flood {i}" for i in (2, 3, 4)}
    assert alice.last == (
        "A facilitator removed 3 of your messages from the group.\nReason: flooding"
    )


def test_delete_name_takes_back_only_their_last_message(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    alice.says("one")
    alice.says("two")

    fac.says(f"/delete {alice.name}")

    assert [d.text for d in bob.inbox if d.ref in deletes(bob)] == [f"{alice.name}: two"]


def test_a_message_older_than_the_window_is_refused_with_a_reason(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    alice.says("yesterday's words")
    room.later(hours=23, minutes=1)

    fac.quotes(fac.inbox[-1], "/delete")

    assert fac.last == (
        "Not removed: that message is more than 23 hours old. Phones no longer accept a delete "
        "for it, so Cercle cannot take it back; ask the members to delete it themselves."
    )
    assert deletes(bob) == [] and alice.last != "A facilitator removed your message from the group."


def test_a_removed_message_cannot_be_removed_twice(room: Room) -> None:
    fac, alice = room.facilitator("fac"), room.member("alice")
    alice.says("once")
    copy = fac.inbox[-1]
    fac.quotes(copy, "/delete")

    fac.quotes(copy, "/delete")

    assert said(fac)[-1].startswith("That message cannot be taken back")


# --- after a removal -------------------------------------------------------------------------


def test_quoting_or_reacting_to_a_removed_message_reveals_nothing(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    alice.says(NAME_LEAK)
    copy = bob.inbox[-1]
    fac.quotes(fac.inbox[-1], "/delete")
    alice.new(), fac.new()

    bob.quotes(copy, "wait, who?")
    bob.reacts(copy, "😮")

    assert fac.new() == [f"{bob.name}: wait, who?"]
    assert fac.inbox[-1].quote_ref is None
    assert alice.new() == [f"{bob.name}: wait, who?"]
    assert all(NAME_LEAK not in d.text for p in (fac, alice) for d in p.inbox[-1:])


def test_the_author_cannot_bring_a_removed_message_back_by_editing_it(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    alice.says(NAME_LEAK, ref="900")
    fac.quotes(fac.inbox[-1], "/delete")
    bob.new()

    assert alice.send(InboundKind.EDIT, text=NAME_LEAK, edit_ref="900") == Result.IGNORED
    assert bob.new() == []


# --- /report ---------------------------------------------------------------------------------


def test_a_report_reaches_only_the_active_facilitators(room: Room) -> None:
    fac, gina = room.facilitator("fac"), room.facilitator("gina")
    alice, bob, carol = room.member("alice"), room.member("bob"), room.member("carol")
    gina.says("/pause")
    alice.says("you are all liars")
    for p in (fac, gina, alice, carol):
        p.new()

    bob.quotes(bob.inbox[-1], "/report insulting")

    assert fac.new() == [
        f"Report from {bob.name} about a message by {alice.name}:\n"
        f"“{alice.name}: you are all liars”\nWhy: insulting\n"
        "To take it back, reply to it with /delete."
    ]
    assert bob.last == (
        "Thank you. Your report went privately to the facilitators; the person you reported "
        "will not know."
    )
    assert gina.new() == [] and alice.new() == [] and carol.new() == []


def test_a_report_about_a_facilitator_never_reaches_that_facilitator(room: Room) -> None:
    fac, gina, bob = room.facilitator("fac"), room.facilitator("gina"), room.member("bob")
    fac.says("harsh words")
    fac.new(), gina.new()

    bob.quotes(bob.inbox[-1], "/signaler")

    assert fac.new() == []
    assert gina.new()[0].startswith(f"Report from {bob.name} about a message by {fac.name}")


def test_reports_are_rate_limited_per_member(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    alice.says("again")
    copy = bob.inbox[-1]
    for _ in range(3):
        bob.quotes(copy, "/report")
    fac.new()

    bob.quotes(copy, "/report")

    assert bob.last.startswith("You have sent several reports in the last hour")
    assert fac.new() == []
    room.later(hours=1)
    bob.quotes(copy, "/report")
    assert len(fac.new()) == 1


def test_a_report_without_a_quote_explains_how(room: Room) -> None:
    room.facilitator("fac")
    bob = room.member("bob")

    bob.says("/report")

    assert bob.last == (
        "To report a message, reply to it (quote it) with /report. On SMS, write to the "
        "facilitators with /staff."
    )


def test_help_lists_report_for_members_and_delete_for_facilitators(room: Room) -> None:
    fac, bob = room.facilitator("fac"), room.member("bob")

    bob.says("/help")
    fac.says("/help")

    assert "/report" in bob.last and "/delete" not in bob.last
    assert "/delete [reason], replying to a message" in fac.last


def test_delete_name_3_takes_back_only_what_is_inside_the_window(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    alice.says("old words")
    room.later(hours=23, minutes=30)
    alice.says("new words")

    fac.says(f"/delete {alice.name} 2")

    assert [d.text for d in bob.inbox if d.ref in deletes(bob)] == [f"{alice.name}: new words"]
    assert said(fac)[-2].startswith("1 of those messages is more than 23 hours old.")


def test_a_report_of_a_copy_someone_else_holds_reaches_no_one(room: Room) -> None:
    fac, alice, bob, carol = (
        room.facilitator("fac"),
        room.member("alice"),
        room.member("bob"),
        room.member("carol"),
    )
    alice.says("hello")
    fac.new()

    bob.send(text="/report", quote_ref=carol.inbox[-1].ref)  # a ref from another phone

    assert bob.last.startswith("That is not a message from the group")
    assert fac.new() == []


# --- everything a member wrote: /delete NAME all ---------------------------------------------


def test_a_flood_is_taken_back_everywhere_with_delete_name_all(mixed: Room) -> None:
    room = mixed
    fac = signal_member(room, "fac", 1, role=Role.FACILITATOR)
    gina = signal_member(room, "gina", 2, role=Role.FACILITATOR)
    bob = signal_member(room, "bob", 3)
    carol = room.member("carol", via=Channel.SMS)
    dan = signal_member(room, "dan", 4)
    room.later(seconds=1)
    set_safety(room.relay, room.group_name, SafetyChoices(premoderate=2))
    intruder = signal_member(room, "intruder", 5)
    intruder.says("flood 0")  # a newcomer's first two wait for a facilitator…
    intruder.says("flood 1")
    fac.says(f"/approve {intruder.name}")  # …who lets them through
    for i in range(2, 8):
        room.later(seconds=10)  # slow enough to pass the flood guard
        intruder.says(f"flood {i}")
    phones = (fac, gina, bob, dan)
    for person in (*phones, carol):
        person.new()

    with room.holding():
        room.later(seconds=10)
        intruder.says("flood 8")
        room.later(seconds=10)
        intruder.says("flood 9")
        claimed = room.claim(1)  # a worker holds one copy, about to send it
        fac.says(f"/delete {intruder.name} all")
        room.send_claimed(claimed)  # the worker goes on: the copy must not go

    for person in phones:
        shown = [d for d in person.inbox if d.text.startswith(f"{intruder.name}: flood")]
        assert len(shown) == 8, person.handle  # 0 to 7 reached them; 8 and 9 never did
        assert sorted(deletes(person)) == sorted(d.ref for d in shown), person.handle
    assert not [t for t in dan.received if "flood 8" in t or "flood 9" in t]
    assert [t for t in carol.received if "flood" in t] == [
        f"{intruder.name}: flood {i}" for i in range(8)
    ]
    sms = (
        "8 copies had already been delivered by SMS and cannot be taken back. Cercle sends "
        "those members nothing more about it."
    )
    assert said(fac)[-1] == (
        f"Removed 10 messages by {intruder.name}. 32 copies are being deleted from phones and "
        f"pages. 10 copies not yet sent will never be sent. {sms}"
    )
    assert said(gina)[-1] == (f"{fac.name} (staff) removed 10 messages by {intruder.name}. {sms}")
    assert intruder.last == "A facilitator removed 10 of your messages from the group."
    with room.session() as s:
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "message_delete_all")).one()
    assert (event.actor, event.target) == (fac.name, intruder.name)
    assert event.detail == "n=10 unsent=10 deleted=32 sms=8 old=0"


def test_delete_name_all_in_french_leaves_what_others_wrote(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac", lang="fr"), room.member("alice"), room.member("bob")
    alice.says("one")
    bob.says("mine stays")
    alice.says("two")

    fac.says(f"/effacer {alice.name} tout insultes")

    taken = {d.text for d in bob.inbox if d.ref in deletes(bob)}
    assert taken == {f"{alice.name}: one", f"{alice.name}: two"}
    assert not any("mine stays" in d.text for d in fac.inbox if d.ref in deletes(fac))
    assert said(fac)[-1].startswith(f"2 messages de {alice.name} retirés.")
    assert alice.last == (
        "A facilitator removed 2 of your messages from the group.\nReason: insultes"
    )


def test_delete_name_all_outside_the_window_says_so(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    alice.says("yesterday")
    alice.says("yesterday again")
    room.later(hours=23, minutes=1)

    fac.says(f"/delete {alice.name} all")

    assert fac.last == (
        "Not removed: those messages are more than 23 hours old. Phones no longer accept a "
        "delete for them, so Cercle cannot take them back; ask the members to delete them "
        "themselves."
    )
    assert deletes(bob) == []


def test_delete_name_all_takes_back_only_what_is_inside_the_window(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    alice.says("old words")
    room.later(hours=23, minutes=30)
    alice.says("new words")

    fac.says(f"/delete {alice.name} all")

    assert [d.text for d in bob.inbox if d.ref in deletes(bob)] == [f"{alice.name}: new words"]


def test_delete_name_all_with_nothing_written_says_so(room: Room) -> None:
    fac, alice = room.facilitator("fac"), room.member("alice")

    fac.says(f"/delete {alice.name} all")

    assert fac.last == f"{alice.name} has no message in the group to take back."


def test_a_member_cannot_delete_all_of_someone(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    alice.says("mine")

    bob.says(f"/delete {alice.name} all")

    assert bob.last == "Unknown command. Send /help for the list."
    assert deletes(bob) == []


# --- /remove, then taking back what they wrote ----------------------------------------------


def test_remove_suggests_taking_everything_back_when_they_just_wrote(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    alice.says("spam one")
    alice.says("spam two")
    name = alice.name
    fac.new()

    fac.says(f"/remove {name}")

    assert fac.new() == [
        f"{name} is no longer in the group.",
        f"{name} wrote in the last hour, and those messages are still on members' phones. To "
        "take back everything they wrote, reply to one of their messages with /delete all.",
    ]
    copy = next(d for d in fac.inbox if d.text == f"{name}: spam one")
    fac.quotes(copy, "/delete all")  # their name is gone with them; a reply still works
    assert {d.text for d in bob.inbox if d.ref in deletes(bob)} == {
        f"{name}: spam one",
        f"{name}: spam two",
    }
    assert said(fac)[-1].startswith("Removed 2 messages by a former member.")


def test_remove_does_not_suggest_it_when_they_wrote_long_ago(room: Room) -> None:
    fac, alice = room.facilitator("fac"), room.member("alice")
    alice.says("hello, a while ago")
    room.later(hours=1, minutes=1)
    name = alice.name
    fac.new()

    fac.says(f"/remove {name}")

    assert fac.new() == [f"{name} is no longer in the group."]


def test_remove_suggests_it_in_french(room: Room) -> None:
    fac, alice = room.facilitator("fac", lang="fr"), room.member("alice")
    alice.says("spam")
    fac.new()

    fac.says(f"/retirer {alice.name}")

    assert "/effacer tout" in fac.new()[-1]
