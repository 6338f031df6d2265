"""The frame parser, on the real frame shapes and on what the providers may send besides."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from bots.signal.envelope import AttachmentRef, Dropped, DropReason, ParsedMessage, parse_frame
from relay.messages import Channel, InboundKind, Mention, Reaction
from tests.signal.conftest import ALICE, ALICE_UUID, BOB_UUID, ORG, fixture_frames

FRAMES = dict(fixture_frames())


def frame(comment_start: str) -> dict[str, Any]:
    for comment, value in FRAMES.items():
        if comment.startswith(comment_start):
            return copy.deepcopy(value)
    raise KeyError(comment_start)


def parsed(value: object) -> ParsedMessage:
    result = parse_frame(value if isinstance(value, str) else json.dumps(value), own_number=ORG)
    assert isinstance(result, ParsedMessage), result
    return result


def fields_text(result: ParsedMessage) -> str:
    """Every field of the parsed values, as text, to look for what must not be there."""
    inbound = result.inbound
    values = [getattr(inbound, name) for name in inbound.__dataclass_fields__]
    values += [inbound.sender.address, inbound.sender.uuid, result.attachments]
    return repr(values)


def dropped(value: object) -> DropReason:
    result = parse_frame(value if isinstance(value, str) else json.dumps(value), own_number=ORG)
    assert isinstance(result, Dropped), result
    return result.reason


def test_plain_text_becomes_a_message_keyed_by_uuid() -> None:
    inbound = parsed(frame("plain text")).inbound
    assert inbound.channel is Channel.SIGNAL
    assert inbound.kind is InboundKind.MESSAGE
    assert inbound.text == "hello group"
    assert inbound.sender.address == ALICE
    assert inbound.sender.uuid == ALICE_UUID
    assert inbound.ref == "1767225600000"
    assert inbound.dedup_key == f"signal:{ALICE_UUID}:1767225600000"
    assert inbound.expires_in_seconds == 604800


def test_a_sender_without_a_number_is_keyed_by_uuid() -> None:
    inbound = parsed(frame("text without a phone number")).inbound
    assert inbound.sender.address is None
    assert inbound.sender.uuid == ALICE_UUID
    assert inbound.text == "no number here"


def test_an_old_frame_with_only_source_still_names_its_sender() -> None:
    value = frame("plain text")
    for key in ("sourceNumber", "sourceUuid"):
        del value["envelope"][key]
    assert parsed(value).inbound.sender.address == ALICE


def test_an_attachment_is_described_for_fetching_by_id() -> None:
    result = parsed(frame("image attachment"))
    assert result.inbound.text == "look"
    assert result.attachments == (
        AttachmentRef(
            id="3nQkq1nR0bJfEoXy2Z9L.jpg",
            content_type="image/jpeg",
            filename="IMG_0042.jpg",
            size=48213,
        ),
    )
    assert "IMG_0042" not in repr(result.attachments)


def test_a_timer_change_carries_the_new_timer() -> None:
    inbound = parsed(frame("member changed the disappearing timer")).inbound
    assert inbound.kind is InboundKind.TIMER_CHANGED
    assert inbound.expires_in_seconds == 0
    assert inbound.text is None


def test_an_edit_names_the_message_it_replaces() -> None:
    inbound = parsed(frame("edit of an earlier")).inbound
    assert inbound.kind is InboundKind.EDIT
    assert inbound.text == "hello group (edited)"
    assert inbound.edit_ref == "1767225600000"
    assert inbound.ref == "1767225600004"


def test_a_remote_delete_names_the_message_it_deletes() -> None:
    inbound = parsed(frame("remote delete")).inbound
    assert inbound.kind is InboundKind.DELETE
    assert inbound.delete_ref == "1767225600000"


def test_a_reaction_keeps_emoji_and_target_but_not_the_target_author() -> None:
    inbound = parsed(frame("reaction to a message")).inbound
    assert inbound.kind is InboundKind.REACTION
    assert inbound.reaction == Reaction(emoji="❤️", target_ref="1767225600100", remove=False)
    assert inbound.sender.uuid == BOB_UUID


def test_a_reaction_removal_is_marked() -> None:
    value = frame("reaction to a message")
    value["envelope"]["dataMessage"]["reaction"]["isRemove"] = True
    reaction = parsed(value).inbound.reaction
    assert reaction is not None
    assert reaction.remove


def test_a_quote_keeps_only_the_quoted_timestamp_and_words() -> None:
    inbound = parsed(frame("quote of a message")).inbound
    assert inbound.text == "same here"
    assert inbound.quote_ref == "1767225600100"
    # The words the member's phone shows in the quote (what /report passes to staff); the
    # quote's author fields are never kept.
    assert inbound.quote_text == "Willow: hello group"


def test_a_mention_keeps_offsets_and_uuid_only() -> None:
    inbound = parsed(frame("mention")).inbound
    assert inbound.mentions == (Mention(start=7, length=1, uuid=ALICE_UUID),)


@pytest.mark.parametrize(
    ("comment", "reason"),
    [
        ("sync message", DropReason.SYNC),
        ("typing indicator", DropReason.TYPING),
        ("read receipt", DropReason.RECEIPT),
        ("error frame", DropReason.ERROR_FRAME),
    ],
)
def test_frames_that_are_not_relayed_are_dropped_by_type(comment: str, reason: DropReason) -> None:
    assert dropped(frame(comment)) is reason


def test_a_safety_number_change_becomes_identity_changed_for_that_sender() -> None:
    inbound = parsed(frame("decryption/identity")).inbound
    assert inbound.kind is InboundKind.IDENTITY_CHANGED
    assert inbound.sender.uuid == BOB_UUID


def test_other_exceptions_are_dropped() -> None:
    value = frame("decryption/identity")
    value["exception"]["type"] = "InvalidMessageException"
    assert dropped(value) is DropReason.EXCEPTION_FRAME


def test_a_frame_claiming_to_come_from_the_org_number_is_a_sync() -> None:
    value = frame("plain text")
    value["envelope"]["sourceNumber"] = ORG
    assert dropped(value) is DropReason.SYNC


def test_a_sync_message_with_null_siblings_is_still_a_sync() -> None:
    value = frame("sync message")
    value["envelope"]["dataMessage"] = None
    value["envelope"]["typingMessage"] = None
    assert dropped(value) is DropReason.SYNC


def test_a_sync_message_beside_a_data_message_is_never_relayed() -> None:
    value = frame("sync message")
    value["envelope"]["dataMessage"] = {"timestamp": 1, "message": "typed on a linked desktop"}
    assert dropped(value) is DropReason.SYNC


def test_shared_contacts_are_dropped_but_the_text_is_kept() -> None:
    value = frame("plain text")
    contact = {"name": {"display": "Someone"}, "phone": [{"value": "+15145550199"}]}
    value["envelope"]["dataMessage"]["contacts"] = [contact]
    result = parsed(value)
    assert result.inbound.text == "hello group"
    assert "+15145550199" not in fields_text(result)
    assert "Someone" not in fields_text(result)


def test_a_message_of_only_a_shared_contact_is_dropped() -> None:
    value = frame("plain text")
    value["envelope"]["dataMessage"]["message"] = None
    value["envelope"]["dataMessage"]["contacts"] = [{"name": {"display": "Someone"}}]
    assert dropped(value) is DropReason.CONTACT


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("groupInfo", {"groupId": "abc", "type": "DELIVER"}, DropReason.GROUP_UPDATE),
        ("storyContext", {"authorNumber": ALICE, "sentTimestamp": 1}, DropReason.STORY),
        ("payment", {"note": "x", "receipt": "y"}, DropReason.PAYMENT),
        ("pollCreate", {"question": "?", "options": ["a"]}, DropReason.POLL),
        ("pollVote", {"optionIndexes": [0]}, DropReason.POLL),
    ],
)
def test_features_we_never_relay_drop_the_whole_message(
    field: str, value: object, reason: DropReason
) -> None:
    message = frame("plain text")
    message["envelope"]["dataMessage"][field] = value
    assert dropped(message) is reason


@pytest.mark.parametrize(
    ("key", "reason"),
    [("storyMessage", DropReason.STORY), ("callMessage", DropReason.CALL)],
)
def test_stories_and_calls_are_dropped(key: str, reason: DropReason) -> None:
    value = frame("typing indicator")
    del value["envelope"]["typingMessage"]
    value["envelope"][key] = {"whatever": True}
    assert dropped(value) is reason


def test_a_sticker_alone_is_dropped() -> None:
    value = frame("plain text")
    value["envelope"]["dataMessage"]["message"] = None
    value["envelope"]["dataMessage"]["sticker"] = {"packId": "p", "stickerId": 1}
    assert dropped(value) is DropReason.STICKER


def test_a_dropped_group_message_still_names_attachments_to_delete() -> None:
    value = frame("image attachment")
    value["envelope"]["dataMessage"]["groupInfo"] = {"groupId": "abc"}
    result = parse_frame(json.dumps(value))
    assert isinstance(result, Dropped)
    assert result.attachment_ids == ("3nQkq1nR0bJfEoXy2Z9L.jpg",)


def test_view_once_is_carried() -> None:
    value = frame("image attachment")
    value["envelope"]["dataMessage"]["viewOnce"] = True
    assert parsed(value).inbound.view_once


def test_timestamps_given_as_strings_are_read() -> None:
    value = frame("plain text")
    value["envelope"]["dataMessage"]["timestamp"] = "1767225600000"
    assert parsed(value).inbound.ref == "1767225600000"


def test_a_missing_message_timestamp_falls_back_to_the_envelope() -> None:
    value = frame("plain text")
    value["envelope"]["dataMessage"]["timestamp"] = None
    value["envelope"]["timestamp"] = 1767225609999
    assert parsed(value).inbound.ref == "1767225609999"


def test_the_profile_name_is_never_copied() -> None:
    for comment, value in FRAMES.items():
        result = parse_frame(json.dumps(value), own_number=ORG)
        if isinstance(result, ParsedMessage):
            assert "Profile Name" not in fields_text(result), comment


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", DropReason.UNPARSEABLE),
        ("not json", DropReason.UNPARSEABLE),
        ("[1, 2]", DropReason.UNPARSEABLE),
        ("null", DropReason.UNPARSEABLE),
        (b"\xff\xfe", DropReason.UNPARSEABLE),
        ("{}", DropReason.UNPARSEABLE),
        ('{"envelope": {}}', DropReason.EMPTY),
        ('{"envelope": {"dataMessage": {"message": "hi", "timestamp": 1}}}', DropReason.NO_SENDER),
        (
            '{"envelope": {"sourceUuid": "u", "dataMessage": {"message": "hi"}}}',
            DropReason.NO_TIMESTAMP,
        ),
        ('{"envelope": {"sourceUuid": "u", "timestamp": 5, "dataMessage": {}}}', DropReason.EMPTY),
        ("[" * 100000 + "]" * 100000, DropReason.UNPARSEABLE),
        ('{"t": ' + "9" * 5000 + "}", DropReason.UNPARSEABLE),
    ],
)
def test_garbage_is_dropped_as_unparseable_or_empty(raw: str | bytes, reason: DropReason) -> None:
    result = parse_frame(raw)
    assert isinstance(result, Dropped)
    assert result.reason is reason
