"""Quick exit: a private word that removes a member at once, from Signal or SMS."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from relay.inbound.turn import Result
from relay.messages import Channel
from relay.service.groups import SafetyChoices, set_safety
from relay.storage.models import AuditEvent, MemberSafety, MemberState
from tests.room import Room


def audit(room: Room) -> list[tuple[str, str | None, str | None]]:
    with Session(room.engine) as s:
        return [(e.action, e.target, e.detail) for e in s.exec(select(AuditEvent)).all()]


@pytest.mark.parametrize("channel", [Channel.SIGNAL, Channel.SMS])
def test_the_exit_word_removes_the_member_at_once_with_an_innocuous_reply(
    tmp_path: Path, channel: Channel
) -> None:
    room = Room(tmp_path, channel=channel)
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    alice.says("/exitword Tournesol")
    alice.new()
    name = alice.name

    assert alice.says("tournesol") == Result.STATE

    assert alice.new() == ["Subscription cancelled."]
    assert alice.record_or_none() is None
    assert bob.new() == [f"{name} is no longer in the group."]
    note, seen_by_all = fac.new()
    assert note.startswith(f"{name} sent their exit word: they have left the group")
    assert seen_by_all == f"{name} is no longer in the group."
    assert "Tournesol".lower() not in note.lower()
    room.check_invariants()


def test_the_reply_names_no_group_and_no_organization(room: Room) -> None:
    alice = room.member("alice")
    alice.says("/exitword Tournesol")

    alice.says("TOURNESOL")

    assert alice.last == "Subscription cancelled."
    assert room.group_name not in alice.last and "Maison" not in alice.last


def test_case_accents_and_surrounding_punctuation_do_not_matter(room: Room) -> None:
    zoe = room.member("zoe", lang="fr")
    zoe.says("/motdesortie Éléphant")
    assert zoe.new()[0].startswith("Votre mot de sortie est enregistré.")

    zoe.says("  elephant! ")

    assert zoe.new() == ["Abonnement annulé."]
    assert zoe.record_or_none() is None


def test_the_word_inside_a_sentence_is_just_a_message(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    alice.says("/exitword Tournesol")

    assert alice.says("I saw a tournesol today") == Result.RELAYED

    assert bob.last == f"{alice.name}: I saw a tournesol today"
    assert alice.record().state == MemberState.ACTIVE


def test_only_a_keyed_hash_of_the_word_is_stored(room: Room) -> None:
    alice = room.member("alice")

    alice.says("/exitword Tournesol")

    with Session(room.engine) as s:
        [row] = s.exec(select(MemberSafety)).all()
    assert row.exit_word_hash and "tournesol" not in row.exit_word_hash
    raw = b"".join(p.read_bytes() for p in room.db_path.parent.glob("cercle.db*"))
    assert b"tournesol" not in raw.lower()
    assert ("exit_word", None, "set") in audit(room)


def test_the_group_default_works_until_a_member_chooses_their_own(room: Room) -> None:
    set_safety(room.relay, room.group_name, SafetyChoices(exit_word="Parapluie"))
    alice, bob = room.member("alice"), room.member("bob")
    bob.says("/exitword Tournesol")

    bob.says("parapluie")  # bob chose his own: the group word is just a message for him
    assert bob.record().state == MemberState.ACTIVE

    alice.says("Parapluie")
    assert alice.record_or_none() is None
    assert alice.last == "Subscription cancelled."


def test_exitword_without_a_word_says_what_is_set_without_showing_it(room: Room) -> None:
    alice = room.member("alice")
    alice.says("/exitword")
    assert alice.new() == [
        "You have no exit word. To choose one, send /exitword followed by a word you would "
        "never send by chance."
    ]
    alice.says("/exitword Tournesol")
    alice.new()

    alice.says("/exitword")

    assert alice.new() == ["Your exit word is set. Cercle does not show it, to keep it private."]


def test_exit_words_that_could_be_sent_by_chance_are_refused(room: Room) -> None:
    alice = room.member("alice")
    for word in ("agree", "STOP", "help", "oui", "staff", "no", "two words", "ab"):
        alice.says(f"/exitword {word}")
        assert "word" in alice.new()[0]
    with Session(room.engine) as s:
        assert s.exec(select(MemberSafety)).all() == []


def test_exitword_off_removes_it(room: Room) -> None:
    alice = room.member("alice")
    alice.says("/exitword Tournesol")
    alice.says("/exitword off")

    assert alice.says("tournesol") == Result.RELAYED
    assert alice.record().state == MemberState.ACTIVE


def test_the_exit_word_works_before_consent_too(room: Room) -> None:
    fac = room.facilitator("fac")
    newcomer = room.member("newcomer", agree=False)
    newcomer.says("/exitword Tournesol")
    name = newcomer.name

    newcomer.says("tournesol")

    assert newcomer.last == "Subscription cancelled."
    assert newcomer.record_or_none() is None
    assert fac.new()[0].startswith(f"{name} sent their exit word")


def test_quick_exit_is_audited_by_pseudonym_and_deletes_the_members_choices(room: Room) -> None:
    alice = room.member("alice")
    alice.says("/exitword Tournesol")
    alice.says("/reminders on")
    name = alice.name

    alice.says("tournesol")

    assert ("quick_exit", name, None) in audit(room)
    with Session(room.engine) as s:
        assert s.exec(select(MemberSafety)).all() == []
