"""Alerts to staff: phrases about danger or self-harm, in either language."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from relay.inbound.turn import Result
from relay.safety.alerts import matches
from relay.service.groups import SafetyChoices, set_safety
from relay.storage.models import AuditEvent
from tests.room import CONFIG, Room


def test_an_alert_phrase_tells_staff_by_pseudonym_and_sends_the_member_crisis_lines(
    room: Room,
) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")

    assert alice.says("some nights I want to die") == Result.RELAYED

    assert bob.new() == [f"{alice.name}: some nights I want to die"]  # relayed by default
    alert, copy = fac.new()
    assert alert == (
        f"Alert: {alice.name} wrote words that may mean they are in danger or thinking of "
        "harming themselves. Cercle has sent them the crisis lines. See the group. You can "
        "answer them privately with /reply."
    )
    assert copy == f"{alice.name}: some nights I want to die"
    [lines] = alice.new()
    assert lines.startswith(
        "If you need help now, these lines answer at any hour. The facilitators have also "
        "been told privately.\nIn an emergency, call 911."
    )
    assert "988" in lines


def test_a_french_speaker_gets_the_french_lines_and_french_staff_the_french_alert(
    room: Room,
) -> None:
    fac = room.facilitator("fac", lang="fr")
    zoe = room.member("zoe", lang="fr")

    zoe.says("JE NE SUIS PAS EN SECURITE ce soir")

    [lines] = zoe.new()
    assert lines.startswith("Si vous avez besoin d'aide maintenant")
    assert "SOS violence conjugale" in lines
    assert fac.new()[0].startswith(f"Alerte : {zoe.name} a écrit des mots")


def test_phrases_of_the_other_language_count_too(room: Room) -> None:
    fac, alice = room.facilitator("fac"), room.member("alice")

    alice.says("au secours")

    assert fac.new()[0].startswith(f"Alert: {alice.name}")


@pytest.mark.parametrize(
    ("text", "alerts"),
    [
        ("I'm in danger", True),
        ("I’m in danger", True),  # a typographic apostrophe
        ("he has a gun!!", True),
        ("Il m'a trouvée.", True),
        ("je veux   mourir", True),
        ("this is dangerous", False),
        ("I'm in dangerous territory with my boss", False),
        ("my sister's cat", False),
        ("suicidesquad fan art", False),
    ],
)
def test_phrases_match_as_whole_words_ignoring_case_accents_and_apostrophes(
    text: str, alerts: bool
) -> None:
    assert matches(CONFIG, text) is alerts


def test_staff_are_never_alerted_about_staff(room: Room) -> None:
    fac, other = room.facilitator("fac"), room.facilitator("other")

    fac.says("if someone says they want to die, call me")

    assert other.new() == [f"{fac.name} (staff): if someone says they want to die, call me"]


def test_one_alert_per_quarter_hour_per_member(room: Room) -> None:
    fac, alice = room.facilitator("fac"), room.member("alice")
    alice.says("I want to die")
    fac.new()
    alice.new()

    alice.says("I really want to die")

    assert [t for t in fac.new() if t.startswith("Alert")] == []
    assert alice.new() == []
    room.later(minutes=16)
    alice.says("still want to die")
    assert any(t.startswith("Alert") for t in fac.new())


def test_a_muted_member_in_danger_still_reaches_staff_and_gets_the_lines(room: Room) -> None:
    fac, alice = room.facilitator("fac"), room.member("alice")
    fac.says(f"/mute {alice.name} 1h")
    alice.new()
    fac.new()

    assert alice.says("he is outside") == Result.HELD_BACK

    assert fac.new()[0].startswith(f"Alert: {alice.name}")
    lines, muted = alice.new()
    assert "911" in lines and "muted" in muted


def test_the_group_may_quote_the_message_in_the_alert(tmp_path: Path) -> None:
    room = Room(tmp_path)
    set_safety(room.relay, room.group_name, SafetyChoices(alert_content=True))
    fac, alice = room.facilitator("fac"), room.member("alice")

    alice.says("he found me")

    assert "Their message: he found me" in fac.new()[0]
    room.check_invariants()


def test_the_group_may_hold_alerting_messages_for_a_facilitator(tmp_path: Path) -> None:
    room = Room(tmp_path)
    set_safety(room.relay, room.group_name, SafetyChoices(alert_hold=True))
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")

    assert alice.says("I want to end my life") == Result.HELD_BACK

    assert bob.new() == []
    alert, decide = fac.new()
    assert "Their message is held for your decision (details follow)." in alert
    assert decide == (
        f"{alice.name}'s message waits for your decision: /approve {alice.name} sends it to the "
        f"group, /reject {alice.name} drops it.\n{alice.name}: I want to end my life"
    )
    assert alice.new()[-1] == "Your message will go to the group once a facilitator has read it."
    fac.says(f"/approve {alice.name}")
    assert bob.new() == [f"{alice.name}: I want to end my life"]
    room.check_invariants()


def test_alerts_are_audited_without_content(room: Room) -> None:
    room.facilitator("fac")
    alice = room.member("alice")

    alice.says("I want to die, my address is 12 rue des Pins")

    with Session(room.engine) as s:
        events = s.exec(select(AuditEvent).where(AuditEvent.action == "alert")).all()
    assert [(e.target, e.detail) for e in events] == [(alice.name, None)]
