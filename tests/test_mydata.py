"""/mydata: what Cercle holds about the sender, privately; and what is left after leaving."""

from __future__ import annotations

import re

from sqlmodel import Session, select

from relay.storage.models import AuditEvent, Member, MemberState
from tests.room import Room

ALICE_UUID = "7d1f6a52-0000-4000-8000-000000000031"


def test_mydata_lists_what_is_held_about_the_sender_and_nothing_else(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    fac.says(f"/mute {alice.name} 2h")
    bob.new()

    alice.says("/mydata")

    text = alice.last
    assert text.startswith("What Cercle holds about you:")
    for line in (
        "• group: mardi",
        f"• your name here: {alice.name}",
        "• role: member",
        "• language: en",
        "• reached by: the sandbox",
        "• agreed to the group agreements on 2026-01-06 (version ",
        "• messages disappear after: 1 day",
        "• state: active",
        "• muted until 2026-01-06 21:00 (UTC)",
        "• last active on 2026-01-06",
        "To delete everything, send /leave.",
    ):
        assert line in text, line
    assert bob.name not in text and fac.name not in text
    assert alice.number not in text and alice.number[-4:] not in re.sub(r"\D", "", text)
    assert bob.new() == [], "the answer is private"


def test_mydata_never_echoes_the_number_or_uuid(room: Room) -> None:
    alice = room.member("alice", uuid=ALICE_UUID)

    alice.says("/mydata")

    digits = re.sub(r"\D", "", alice.last)
    assert alice.number.lstrip("+") not in digits
    assert ALICE_UUID not in alice.last


def test_mydata_works_before_agreeing(room: Room) -> None:
    alice = room.member("alice", agree=False)

    alice.says("/mydata")

    assert "• has not agreed to the group agreements yet" in alice.last
    assert "• state: has not agreed yet" in alice.last
    assert "• last active on 2026-01-06" in alice.last


def test_mydata_in_french(room: Room) -> None:
    zoe = room.member("zoe", lang="fr")

    zoe.says("/mesdonnees")

    assert zoe.last.startswith("Ce que Cercle garde à votre sujet :")
    assert "• rôle : membre" in zoe.last
    assert "envoyez /quitter." in zoe.last


def test_after_leaving_only_a_tombstone_and_pseudonymous_audit_events_remain(room: Room) -> None:
    fac = room.facilitator("fac")
    alice = room.member("alice", uuid=ALICE_UUID)
    bob = room.member("bob")
    alice_name, bob_name = alice.name, bob.name
    alice.says("hello")
    fac.says(f"/mute {bob_name} 1h")

    alice.says("/leave")
    alice.says("/leave")
    fac.says(f"/remove {bob_name}")

    with Session(room.engine) as s:
        tombstones = s.exec(select(Member).where(Member.state == MemberState.REMOVED)).all()
        events = s.exec(select(AuditEvent)).all()
    assert len(tombstones) == 2
    for t in tombstones:
        kept = (t.address_enc, t.address_hash, t.uuid_enc, t.uuid_hash, t.pseudonym, t.name_key)
        assert kept == (None,) * 6
        assert (t.muted_until, t.leave_requested_at, t.last_active_on) == (None, None, None)
    about = [e for e in events if {e.target, e.actor} & {alice_name, bob_name}]
    assert {e.action for e in about} >= {"enroll", "consent", "mute", "leave", "remove"}
    secrets = (alice.number, alice.number.lstrip("+"), bob.number, ALICE_UUID, "hello")
    for e in events:
        for field in (e.actor, e.target, e.detail):
            assert not any(secret in (field or "") for secret in secrets)
        assert e.target in (None, alice_name, bob_name, fac.name), "only pseudonyms"
