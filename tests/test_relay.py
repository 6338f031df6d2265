"""The relay, as a conversation: who receives what, under which name."""

from __future__ import annotations

from relay.inbound.turn import Result
from tests.room import Room


def test_a_message_reaches_everyone_else_under_a_pseudonym(room: Room) -> None:
    alice, bob, carol = room.member("alice"), room.member("bob"), room.member("carol")

    assert alice.says("hi everyone") == Result.RELAYED

    assert bob.new() == [f"{alice.name}: hi everyone"]
    assert carol.new() == [f"{alice.name}: hi everyone"]
    assert alice.new() == []


def test_facilitators_are_marked_as_staff_wherever_their_name_appears(room: Room) -> None:
    fac, bob = room.facilitator("fac"), room.member("bob")

    fac.says("welcome")

    assert bob.new() == [f"{fac.name} (staff): welcome"]


def test_french_speakers_get_french_typography_in_the_same_fan_out(room: Room) -> None:
    alice, bob, zoe = room.member("alice"), room.member("bob"), room.member("zoe", lang="fr")

    alice.says("bonjour")

    assert bob.new() == [f"{alice.name}: bonjour"]
    assert zoe.new() == [f"{alice.name} : bonjour"]


def test_a_paused_member_receives_nothing_and_is_told_their_own_messages_wait(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    bob.says("/pause")
    bob.new()

    alice.says("are you there?")
    assert bob.new() == []

    assert bob.says("hello?") == Result.HELD_BACK
    assert "paused" in bob.new()[0]
    assert alice.new() == []

    bob.says("/resume")
    alice.says("welcome back")
    assert bob.new()[-1] == f"{alice.name}: welcome back"


def test_a_muted_member_neither_reaches_nor_receives_the_group(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    fac.says(f"/mute {alice.name} 30m")
    assert "muted you for 30 minutes" in alice.new()[0]

    assert alice.says("let me talk") == Result.HELD_BACK
    assert "/staff" in alice.new()[0]
    assert bob.new() == []

    bob.says("hello")
    assert alice.new() == []

    room.later(minutes=31)
    alice.says("thank you")
    assert bob.new() == [f"{alice.name}: thank you"]


def test_unknown_senders_learn_nothing(room: Room) -> None:
    room.member("alice")
    stranger = room.stranger()

    for text in ("hello", "/help", "/who", "AGREE", "/leave", "STOP"):
        assert stranger.says(text) == Result.UNKNOWN_SENDER

    assert stranger.inbox == []


def test_a_provider_retry_of_the_same_message_is_relayed_once(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")

    assert alice.says("once", dedup_key="provider-msg-1") == Result.RELAYED
    assert alice.says("once", dedup_key="provider-msg-1") == Result.DUPLICATE

    assert bob.new() == [f"{alice.name}: once"]


def test_empty_and_whitespace_only_messages_are_not_relayed(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")

    assert alice.says("") == Result.IGNORED
    assert alice.says("   \n\t  ") == Result.IGNORED

    assert bob.new() == []
    assert alice.new() == []


def test_a_ten_thousand_character_message_is_refused_with_a_reason(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")

    assert alice.says("a" * 10_000) == Result.HELD_BACK

    assert bob.new() == []
    assert "too long" in alice.new()[0]


def test_a_long_message_under_the_limit_arrives_whole(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    text = "word " * 790

    alice.says(text)

    assert bob.new() == [f"{alice.name}: {text.strip()}"]


def test_control_characters_are_removed_but_lines_are_kept(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")

    alice.says("line one\x00\x07\nline two\x1b[31m")

    assert bob.new() == [f"{alice.name}: line one\nline two[31m"]


def test_emoji_and_right_to_left_text_arrive_intact(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")

    alice.says("💜🫂 مرحبا بكم שלום 👩🏽‍🤝‍👩🏻")

    assert bob.new() == [f"{alice.name}: 💜🫂 مرحبا بكم שלום 👩🏽‍🤝‍👩🏻"]


def test_bidi_overrides_cannot_disguise_whose_message_it_is(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")

    alice.says("\u202efacilitator\u202c says leave now")

    assert bob.new() == [f"{alice.name}: facilitator says leave now"]


def test_removed_members_are_silent_strangers(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    name = alice.name
    fac.says(f"/remove {name}")
    alice.new()

    assert alice.says("still here?") == Result.UNKNOWN_SENDER

    assert alice.new() == []
    assert bob.new() == [f"{name} is no longer in the group."]


def test_cercle_texts_are_in_the_recipients_language(room: Room) -> None:
    fac = room.facilitator("fac")
    alice, zoe = room.member("alice"), room.member("zoe", lang="fr")

    fac.says("/announce group tonight at 7")

    assert alice.new() == [f"Announcement from {fac.name} (staff): group tonight at 7"]
    assert zoe.new() == [f"Annonce de {fac.name} (équipe) : group tonight at 7"]
