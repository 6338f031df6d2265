"""Consent comes first: nothing flows either way until a member agrees."""

from __future__ import annotations

from relay.inbound.turn import Result
from relay.storage.models import MemberState
from tests.room import Room


def test_a_new_member_is_welcomed_in_their_language_and_asked_to_agree(room: Room) -> None:
    zoe = room.member("zoe", lang="fr", agree=False)

    welcome = "\n".join(zoe.received)

    assert "Bienvenue" in welcome
    assert "ACCEPTE" in welcome
    assert "/quitter" in welcome
    assert "captures d'écran" in welcome
    assert "1 jour" in welcome


def test_until_they_agree_they_receive_nothing_and_send_nowhere(room: Room) -> None:
    alice = room.member("alice")
    newcomer = room.member("newcomer", agree=False)
    newcomer.new()

    alice.says("private story")
    assert newcomer.new() == []

    assert newcomer.says("hello?") == Result.HELD_BACK
    assert alice.new() == []
    assert newcomer.new() == [
        "To join, reply AGREE. Until you do, you will receive nothing from the group."
    ]


def test_agreeing_joins_the_group_and_records_the_text_version(room: Room) -> None:
    alice = room.member("alice")
    newcomer = room.member("newcomer", agree=False)

    assert newcomer.says("  agree! ") == Result.CONSENT

    record = newcomer.record()
    assert record.state == MemberState.ACTIVE
    assert record.consent_version and record.consent_version.startswith("en-")
    assert alice.new() == [f"{newcomer.name} has joined the group."]
    newcomer.says("thanks")
    assert alice.new() == [f"{newcomer.name}: thanks"]


def test_the_french_agree_word_works_with_or_without_accents(room: Room) -> None:
    for word in ("ACCEPTE", "j'accepte", "Accepté"):
        person = room.member(f"p-{word}", lang="fr", agree=False)
        assert person.says(word) == Result.CONSENT


def test_before_agreeing_a_member_may_switch_language_read_rules_or_leave(room: Room) -> None:
    newcomer = room.member("newcomer", agree=False)
    newcomer.new()

    newcomer.says("/lang fr")
    assert newcomer.new() == ["Désormais, Cercle vous écrit en français."]
    newcomer.says("/regles")
    assert "ententes" in newcomer.new()[0]
    newcomer.says("/who")
    assert newcomer.new()[0].startswith("Commande inconnue")
    newcomer.says("/quitter")
    newcomer.says("/quitter")
    assert newcomer.record_or_none() is None


def test_sms_members_are_told_sms_is_not_encrypted_and_does_not_disappear(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from relay.messages import Channel

    room = Room(tmp_path, channel=Channel.SMS)
    person = room.member("sam", agree=False)

    assert any("not encrypted" in t for t in person.received)
    record_version = person.says("AGREE")
    assert record_version == Result.CONSENT
    assert person.record().consent_version != room.relay.texts.consent_version("en", sms=False)
    room.check_invariants()
