"""Newcomer pre-moderation: a new member's first messages wait for a facilitator."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from relay.inbound.turn import Result
from relay.messages import InboundKind
from relay.service.groups import SafetyChoices, set_safety
from relay.service.jobs import run_due
from relay.storage.models import HeldMessage, OutboxBody
from tests.room import Room
from tests.test_rich_messages import jpeg_with_gps


@pytest.fixture
def moderated(tmp_path: Path) -> Room:
    """A group with one existing member (alice), then pre-moderation of 2 messages."""
    room = Room(tmp_path)
    room.facilitator("fac")
    room.member("alice")
    room.later(seconds=1)
    set_safety(room.relay, room.group_name, SafetyChoices(premoderate=2))
    yield room
    room.check_invariants()


def test_a_newcomers_first_message_waits_and_facilitators_see_it_privately(
    moderated: Room,
) -> None:
    fac, alice = moderated.people[0], moderated.people[1]
    newcomer = moderated.member("newcomer")

    assert newcomer.says("hi, I'm new") == Result.HELD_BACK

    assert alice.new() == []
    assert fac.new() == [
        f"{newcomer.name}'s message waits for your decision: /approve {newcomer.name} sends it "
        f"to the group, /reject {newcomer.name} drops it.\n{newcomer.name}: hi, I'm new"
    ]
    assert newcomer.new() == [
        "In this group, a facilitator reads a newcomer's first messages before they go to the "
        "group. Yours will be shared once they have read it."
    ]


def test_approve_sends_it_to_the_group_and_tells_the_author(moderated: Room) -> None:
    fac, alice = moderated.people[0], moderated.people[1]
    newcomer = moderated.member("newcomer")
    newcomer.says("hi, I'm new")
    fac.new()
    alice.new()

    fac.says(f"/approve {newcomer.name}")

    assert alice.new() == [f"{newcomer.name}: hi, I'm new"]
    assert fac.new() == [
        f"{newcomer.name}: hi, I'm new",  # facilitators are in the group too
        f"Sent to the group: 1 message from {newcomer.name}.",
    ]
    assert newcomer.new()[-1] == "A facilitator has shared your message with the group."


def test_after_n_approved_messages_the_newcomer_writes_freely(moderated: Room) -> None:
    fac, alice = moderated.people[0], moderated.people[1]
    newcomer = moderated.member("newcomer")
    newcomer.says("one")
    newcomer.says("two")
    fac.says(f"/approve {newcomer.name}")
    alice.new()

    assert newcomer.says("three") == Result.RELAYED

    assert alice.new() == [f"{newcomer.name}: three"]


def test_reject_drops_the_message_and_deletes_its_content(moderated: Room) -> None:
    fac, alice = moderated.people[0], moderated.people[1]
    newcomer = moderated.member("newcomer", lang="fr")
    newcomer.says("quelque chose de blessant")
    with Session(moderated.engine) as s:
        [held] = s.exec(select(HeldMessage)).all()
        body_id = held.body_id
    alice.new()
    fac.new()

    fac.says(f"/refuser {newcomer.name}")

    assert alice.new() == []
    assert fac.new() == [f"Not shared: 1 message from {newcomer.name}, now deleted."]
    assert newcomer.new()[-1] == (
        "Une personne de l'équipe n'a pas partagé votre message avec le groupe. Vous pouvez "
        "écrire en privé à l'équipe avec /equipe."
    )
    with Session(moderated.engine) as s:
        assert s.exec(select(HeldMessage)).all() == []
        assert s.get(OutboxBody, body_id) is None
    assert newcomer.says("encore") == Result.HELD_BACK  # rejected ones do not count


def test_members_who_agreed_before_the_setting_are_not_newcomers(moderated: Room) -> None:
    alice = moderated.people[1]
    bob = moderated.member("bob")
    bob.new()

    assert alice.says("as usual") == Result.RELAYED
    assert bob.new() == [f"{alice.name}: as usual"]


def test_staff_are_never_premoderated(moderated: Room) -> None:
    alice = moderated.people[1]
    newfac = moderated.facilitator("newfac")

    assert newfac.says("welcome all") == Result.RELAYED
    assert alice.new()[-1] == f"{newfac.name} (staff): welcome all"


def test_held_content_is_only_sealed_at_rest(moderated: Room) -> None:
    newcomer = moderated.member("newcomer")

    newcomer.says("my secret is safe here")

    raw = b"".join(p.read_bytes() for p in moderated.db_path.parent.glob("cercle.db*"))
    assert b"my secret is safe here" not in raw


def test_approve_with_nothing_waiting_says_so(moderated: Room) -> None:
    fac, alice = moderated.people[0], moderated.people[1]

    fac.says(f"/approve {alice.name}")

    assert fac.new()[-1] == f"Nothing from {alice.name} is waiting for a decision."


def test_undecided_messages_are_deleted_when_the_group_timer_runs_out(moderated: Room) -> None:
    newcomer = moderated.member("newcomer")
    newcomer.says("anyone?")

    moderated.later(days=1, seconds=1)
    run_due(moderated.relay)

    with Session(moderated.engine) as s:
        assert s.exec(select(HeldMessage)).all() == []


def test_a_held_photo_goes_out_without_its_metadata_when_approved(tmp_path: Path) -> None:
    room = Room(tmp_path, allow_media=True)
    fac, alice = room.facilitator("fac"), room.member("alice")
    room.later(seconds=1)
    set_safety(room.relay, room.group_name, SafetyChoices(premoderate=1))
    newcomer = room.member("newcomer")
    newcomer.sends_photo(jpeg_with_gps(), "my garden", filename="IMG_0042_home.jpg")
    assert fac.new()[-1].endswith(f"{newcomer.name}: my garden")

    fac.says(f"/approve {newcomer.name}")

    [photo] = [d for d in alice.inbox if d.attachments]
    assert photo.text == f"{newcomer.name}: my garden"
    [(ctype, name, data)] = photo.attachments
    assert ctype == "image/jpeg" and name == "photo-1.jpg"
    assert b"GPS" not in data and b"Exif" not in data
    room.check_invariants()


def test_a_removed_newcomers_held_messages_are_deleted_with_them(moderated: Room) -> None:
    fac = moderated.people[0]
    newcomer = moderated.member("newcomer")
    newcomer.says("held")

    fac.says(f"/remove {newcomer.name}")

    with Session(moderated.engine) as s:
        assert s.exec(select(HeldMessage)).all() == []


def test_a_released_message_announces_pending_joins_first(moderated: Room) -> None:
    fac, alice = moderated.people[0], moderated.people[1]
    newcomer = moderated.member("newcomer")
    newcomer.says("hi, I'm new")
    iris = moderated.member("iris", agree=False)
    iris.new()
    iris.agrees()  # her join waits a few seconds for others to join with her
    alice.new(), iris.new()

    fac.says(f"/approve {newcomer.name}")

    # Like any relayed message: nobody reads words before they learn who joined.
    assert alice.new() == [f"{iris.name} has joined the group.", f"{newcomer.name}: hi, I'm new"]
    assert iris.new() == [f"{newcomer.name}: hi, I'm new"]
    moderated.later(seconds=30)
    assert alice.new() == [], "announced once"


def test_a_released_message_can_be_taken_back(moderated: Room) -> None:
    fac, alice = moderated.people[0], moderated.people[1]
    newcomer = moderated.member("newcomer")
    newcomer.says("my ex lives on rue Fullum")
    moderated.later(hours=23, minutes=30)  # held for a long while: the window starts at release
    fac.says(f"/approve {newcomer.name}")
    copy = next(d for d in fac.inbox if d.text == f"{newcomer.name}: my ex lives on rue Fullum")

    fac.quotes(copy, "/delete")

    taken = [d.ref for d in alice.inbox if d.text.endswith("rue Fullum")]
    assert [d.delete_ref for d in alice.inbox if d.delete_ref] == taken
    assert newcomer.last == "A facilitator removed your message from the group."


def test_the_author_can_delete_a_released_message_themselves(moderated: Room) -> None:
    fac, alice = moderated.people[0], moderated.people[1]
    newcomer = moderated.member("newcomer")
    newcomer.says("oops, wrong group", ref="900")
    fac.says(f"/approve {newcomer.name}")

    newcomer.send(InboundKind.DELETE, delete_ref="900")

    taken = [d.ref for d in alice.inbox if d.text.endswith("wrong group")]
    assert [d.delete_ref for d in alice.inbox if d.delete_ref] == taken


def test_a_held_message_its_author_deletes_never_reaches_the_group(moderated: Room) -> None:
    fac, alice = moderated.people[0], moderated.people[1]
    newcomer = moderated.member("newcomer")
    newcomer.says("I should not have said that", ref="910")
    fac.new(), alice.new()
    with Session(moderated.engine) as s:
        [held] = s.exec(select(HeldMessage)).all()
        body_id = held.body_id

    newcomer.send(InboundKind.DELETE, delete_ref="910")
    fac.says(f"/approve {newcomer.name}")

    assert alice.new() == []
    assert fac.new() == [
        f"{newcomer.name} took back the message that waited for your decision; it was deleted "
        "and will not be shared.",
        f"Nothing from {newcomer.name} is waiting for a decision.",
    ]
    with Session(moderated.engine) as s:
        assert s.exec(select(HeldMessage)).all() == []
        assert s.get(OutboxBody, body_id) is None


def test_a_held_message_its_author_edits_goes_out_with_the_new_words(moderated: Room) -> None:
    fac, alice = moderated.people[0], moderated.people[1]
    newcomer = moderated.member("newcomer")
    newcomer.says("my name is Marie", ref="920")
    fac.new(), alice.new()

    newcomer.send(InboundKind.EDIT, text="hello everyone", edit_ref="920")

    assert fac.new() == [
        f"{newcomer.name} edited the message that waits for your decision; /approve "
        f"{newcomer.name} would now share this:\n{newcomer.name}: hello everyone"
    ]
    fac.says(f"/approve {newcomer.name}")
    assert alice.new() == [f"{newcomer.name}: hello everyone"]
    assert "my name is Marie" not in " ".join(d.text for d in alice.inbox)


def test_deleting_one_held_message_keeps_the_others_waiting(moderated: Room) -> None:
    fac, alice = moderated.people[0], moderated.people[1]
    newcomer = moderated.member("newcomer")
    newcomer.says("first", ref="930")
    newcomer.says("second", ref="931")

    newcomer.send(InboundKind.DELETE, delete_ref="930")
    fac.says(f"/approve {newcomer.name}")

    assert [d.text for d in alice.inbox if d.text.startswith(f"{newcomer.name}: ")] == [
        f"{newcomer.name}: second"
    ]


def test_someone_elses_delete_does_not_touch_a_held_message(moderated: Room) -> None:
    fac, alice = moderated.people[0], moderated.people[1]
    newcomer = moderated.member("newcomer")
    newcomer.says("still mine", ref="940")

    alice.send(InboundKind.DELETE, delete_ref="940")
    fac.says(f"/approve {newcomer.name}")

    assert alice.new()[-1] == f"{newcomer.name}: still mine"


def test_a_held_alert_its_author_deletes_is_not_shared_but_the_alert_stands(
    tmp_path: Path,
) -> None:
    room = Room(tmp_path)
    set_safety(room.relay, room.group_name, SafetyChoices(alert_hold=True))
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    alice.says("I want to end my life", ref="950")
    alert, _decide = fac.new()

    alice.send(InboundKind.DELETE, delete_ref="950")
    fac.says(f"/approve {alice.name}")

    assert bob.new() == []
    assert "Their message is held for your decision" in alert  # the facilitators still know
    assert fac.new()[-1] == f"Nothing from {alice.name} is waiting for a decision."
    room.check_invariants()
