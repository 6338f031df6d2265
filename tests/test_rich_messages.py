"""Quotes, reactions, edits, deletes, mentions and photos: rewritten so no identity travels."""

from __future__ import annotations

import io

from PIL import Image

from relay.inbound.turn import Result
from relay.messages import InboundKind
from tests.room import Room

ALICE_UUID = "7d1f6a52-0000-4000-8000-000000000021"
BOB_UUID = "7d1f6a52-0000-4000-8000-000000000022"


def jpeg_with_gps() -> bytes:
    img = Image.new("RGB", (16, 12), "purple")
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (45.0, 30.0, 0.0), 3: "W", 4: (73.0, 34.0, 0.0)}  # GPS
    out = io.BytesIO()
    img.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def test_a_quote_points_at_the_copy_each_recipient_holds(room: Room) -> None:
    alice, bob, carol = room.member("alice"), room.member("bob"), room.member("carol")
    alice.says("I moved last week", ref="100")
    bobs_copy, carols_copy = bob.inbox[-1], carol.inbox[-1]

    bob.quotes(bobs_copy, "how are you settling in?")

    assert carol.inbox[-1].quote_ref == carols_copy.ref
    assert alice.inbox[-1].quote_ref == "100"  # her own original, by its own timestamp
    assert alice.inbox[-1].text == f"{bob.name}: how are you settling in?"


def test_quoting_your_own_message_points_others_at_their_copies(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    alice.says("first", ref="111")
    bobs_copy = bob.inbox[-1]

    alice.says("following up", quote_ref="111")

    assert bob.inbox[-1].quote_ref == bobs_copy.ref


def test_a_reaction_reaches_only_the_author_as_a_note_by_pseudonym(room: Room) -> None:
    alice, bob, carol = room.member("alice"), room.member("bob"), room.member("carol")
    alice.says("I did it, I left")
    carol.new()

    bob.reacts(bob.inbox[-1], "💜")

    assert alice.last == f"{bob.name} reacted 💜 to your message."
    assert carol.new() == []


def test_an_edit_replaces_each_recipients_copy(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    alice.says("see you tuesday", ref="200")
    original = bob.inbox[-1]

    assert alice.send(InboundKind.EDIT, text="see you thursday", edit_ref="200") == (Result.RELAYED)

    assert bob.inbox[-1].edit_ref == original.ref
    assert bob.inbox[-1].text == f"{alice.name}: see you thursday"


def test_a_delete_removes_each_recipients_copy(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    alice.says("my street is …", ref="300")
    original = bob.inbox[-1]

    alice.send(InboundKind.DELETE, delete_ref="300")

    assert bob.inbox[-1].delete_ref == original.ref


def test_a_delete_before_delivery_means_the_copy_is_never_sent(room: Room) -> None:
    from relay.errors import Reason, RetryableError

    alice, bob = room.member("alice"), room.member("bob")
    room.transport.fail_next(bob.number, RetryableError(Reason.NETWORK))
    alice.says("oops, wrong chat", ref="400")

    alice.send(InboundKind.DELETE, delete_ref="400")
    room.later(minutes=5)

    assert all("wrong chat" not in t for t in bob.received)


def test_someone_cannot_edit_or_delete_another_members_message(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    alice.says("mine", ref="500")
    bob.new()

    assert bob.send(InboundKind.EDIT, text="forged", edit_ref="500") == Result.IGNORED
    assert bob.send(InboundKind.DELETE, delete_ref="500") == Result.IGNORED
    assert alice.new() == []


def test_mentions_are_never_resolved_so_no_uuid_or_pseudonym_mapping_travels(
    room: Room,
) -> None:
    alice = room.member("alice", uuid=ALICE_UUID)
    bob = room.member("bob", uuid=BOB_UUID)
    carol = room.member("carol")

    bob.mentions("thanks \ufffc !", alice)

    assert carol.last == f"{bob.name}: thanks @? !"
    assert ALICE_UUID not in carol.last


def test_a_photo_is_relayed_without_exif_or_its_file_name(tmp_path) -> None:  # type: ignore[no-untyped-def]
    room = Room(tmp_path, allow_media=True)
    alice, bob = room.member("alice"), room.member("bob")

    alice.sends_photo(jpeg_with_gps(), "look", filename="IMG_0042_home.jpg")

    [(ctype, name, data)] = bob.inbox[-1].attachments
    assert ctype == "image/jpeg" and name == "photo-1.jpg"
    assert not Image.open(io.BytesIO(data)).getexif()
    assert bob.last == f"{alice.name}: look"
    room.check_invariants()


def test_where_photos_are_off_the_sender_is_told_and_the_text_still_goes(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")

    alice.sends_photo(jpeg_with_gps(), "look")

    assert bob.last == f"{alice.name}: look" and bob.inbox[-1].attachments == ()
    assert "not shared in this group" in alice.last


def test_a_view_once_photo_stays_view_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from relay.messages import Attachment

    room = Room(tmp_path, allow_media=True)
    alice, bob = room.member("alice"), room.member("bob")

    alice.send(attachments=(Attachment("image/jpeg", jpeg_with_gps()),), view_once=True)

    assert bob.inbox[-1].view_once is True
    room.check_invariants()
