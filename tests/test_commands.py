"""Every command, as people would use it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from relay.commands.table import COMMANDS
from relay.messages import Channel
from relay.storage.models import AuditEvent, MemberState, Role
from tests.room import Room

FACILITATOR_ONLY = [c for c in COMMANDS if c.role is Role.FACILITATOR]


def audit(room: Room) -> list[tuple[str, str | None, str | None]]:
    with Session(room.engine) as s:
        return [(e.action, e.actor, e.target) for e in s.exec(select(AuditEvent)).all()]


def test_help_lists_only_what_a_member_may_run(room: Room) -> None:
    alice = room.member("alice")

    alice.says("/help")

    text = alice.last
    assert "/rules" in text and "/staff MESSAGE" in text and "/leave" in text
    for cmd in FACILITATOR_ONLY:
        assert f"/{cmd.words['en']} " not in text and not text.endswith(f"/{cmd.words['en']}")


def test_help_shows_facilitators_their_commands_too(room: Room) -> None:
    fac = room.facilitator("fac")

    fac.says("/help")

    for cmd in FACILITATOR_ONLY:
        assert cmd.usage.render("en") in fac.last


def test_help_in_french_uses_french_command_words(room: Room) -> None:
    zoe = room.member("zoe", lang="fr")

    zoe.says("/aide")

    assert "/quitter" in zoe.last and "/leave" not in zoe.last


@pytest.mark.parametrize(
    ("channel", "report"),
    [
        (
            Channel.SIGNAL,
            "/report [why], replying to a message — tell the facilitators privately about a "
            "message; its author will not know",
        ),
        (
            Channel.SMS,
            "/report — a message cannot be quoted here: to report one, write to the "
            "facilitators with /staff MESSAGE; only they will read it",
        ),
        (
            Channel.WEB,
            "/report — a message cannot be quoted here: to report one, write to the "
            "facilitators with /staff MESSAGE; only they will read it",
        ),
    ],
)
def test_help_gives_each_channel_a_usage_that_works_there(
    tmp_path: Path, channel: Channel, report: str
) -> None:
    room = Room(tmp_path, channel=channel)
    fac, alice = room.facilitator("fac"), room.member("alice")

    alice.says("/help")
    fac.says("/help")

    assert report in alice.last.splitlines()
    quoting = "replying to a message" in fac.last
    assert quoting is (channel == Channel.SIGNAL)
    if channel != Channel.SIGNAL:
        assert "/delete NAME [how many | all] [reason] — take messages back" in fac.last


def test_help_in_french_on_sms_points_to_the_staff_command(tmp_path: Path) -> None:
    room = Room(tmp_path, channel=Channel.SMS)
    zoe = room.member("zoe", lang="fr")

    zoe.says("/aide")

    assert (
        "/signaler — on ne peut pas citer un message ici : pour en signaler un, écrivez à "
        "l'équipe avec /equipe MESSAGE ; elle seule le lira"
    ) in zoe.last.splitlines()
    assert "en réponse à un message" not in zoe.last


def test_a_usage_reminder_on_sms_shows_the_form_that_works_there(tmp_path: Path) -> None:
    room = Room(tmp_path, channel=Channel.SMS)
    fac = room.facilitator("fac")
    room.member("alice")

    fac.says("/delete")

    assert fac.last == "Usage: /delete NAME [how many | all] [reason]"


@pytest.mark.parametrize("cmd", FACILITATOR_ONLY, ids=lambda c: c.name)
def test_a_member_trying_a_facilitator_command_learns_nothing(room: Room, cmd) -> None:  # type: ignore[no-untyped-def]
    alice, bob = room.member("alice"), room.member("bob")

    alice.says(f"/{cmd.words['en']} {bob.name} something")
    refused = alice.new()
    alice.says("/frobnicate")
    unknown = alice.new()

    assert refused[0].startswith("Unknown command.")
    assert unknown[0].startswith("Unknown command.")
    assert bob.name not in refused[0]
    assert bob.new() == []


def test_an_unknown_command_suggests_the_nearest_one(room: Room) -> None:
    alice = room.member("alice")

    alice.says("/hlep")

    assert alice.last == "Unknown command. Did you mean /help? Send /help for the list."


def test_wrong_arguments_get_the_usage_line(room: Room) -> None:
    fac = room.facilitator("fac")

    fac.says("/timer soon")

    assert fac.last == "Usage: /timer DURATION (e.g. 1d, 1w)"


def test_rules_and_resources_come_from_the_config_texts(room: Room) -> None:
    alice, zoe = room.member("alice"), room.member("zoe", lang="fr")

    alice.says("/rules")
    assert "screenshots" in alice.last
    alice.says("/resources")
    assert "911" in alice.last
    zoe.says("/ressources")
    assert "SOS violence conjugale" in zoe.last


def test_whoami_tells_name_role_language_transport_and_timer(room: Room) -> None:
    alice = room.member("alice")

    alice.says("/whoami")

    assert alice.last == (
        f"You are {alice.name} (member) in this group. Language: en. You are "
        "reached by the sandbox. Messages disappear after 1 day."
    )


def test_lang_switches_every_text_cercle_sends(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")

    alice.says("/lang fr")
    assert alice.last == "Désormais, Cercle vous écrit en français."
    bob.says("hi")
    assert alice.last == f"{bob.name} : hi"
    alice.says("/langue english")
    assert alice.last == "From now on, Cercle writes to you in English."


def test_lang_with_an_unknown_language_shows_usage(room: Room) -> None:
    alice = room.member("alice")

    alice.says("/lang klingon")

    assert alice.last == "Usage: /lang fr|en"


def test_name_is_refused_where_the_group_assigns_names(room: Room) -> None:
    alice = room.member("alice")

    alice.says("/name Phoenix")

    assert "cannot be changed" in alice.last


def test_name_where_allowed_renames_and_tells_the_group(tmp_path) -> None:  # type: ignore[no-untyped-def]
    room = Room(tmp_path, allow_rename=True)
    alice, bob = room.member("alice"), room.member("bob")
    old = alice.name

    alice.says("/name Étoile Filante")

    assert alice.name == "Étoile Filante"
    assert bob.new() == [f"{old} is now called Étoile Filante."]
    bob.says("hello")
    assert alice.last == f"{bob.name}: hello"
    room.check_invariants()


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("Staff", "reserved"),
        ("Facilitatrice Jo", "reserved"),
        ("équipe", "reserved"),
        ("Jo 5145550123", "only letters"),
        ("R2D2", "only letters"),
        ("Jo٣", "only letters"),
        ("x", "2 to 20"),
        ("a" * 21, "2 to 20"),
        ("@bob", "only letters"),
    ],
)
def test_names_that_could_deceive_or_carry_a_number_are_refused(tmp_path, name, why) -> None:  # type: ignore[no-untyped-def]
    room = Room(tmp_path, allow_rename=True)
    alice = room.member("alice")

    alice.says(f"/name {name}")

    assert why in alice.last
    room.check_invariants()


def test_taking_another_members_name_is_refused_whatever_the_case_or_accents(tmp_path) -> None:  # type: ignore[no-untyped-def]
    room = Room(tmp_path, allow_rename=True)
    alice, bob = room.member("alice"), room.member("bob")

    alice.says(f"/name {bob.name.upper()}")

    assert "already taken" in alice.last
    room.check_invariants()


def test_staff_sends_privately_to_facilitators_only(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")

    alice.says("/staff I don't feel safe tonight")

    assert fac.new() == [f"Private to staff from {alice.name}: I don't feel safe tonight"]
    assert bob.new() == []
    assert "facilitators" in alice.new()[0]


def test_staff_without_text_shows_usage(room: Room) -> None:
    alice = room.member("alice")

    alice.says("/staff   ")

    assert alice.last == "Usage: /staff MESSAGE"


def test_who_shows_pseudonyms_roles_transport_and_state_never_numbers(room: Room) -> None:
    fac, alice = room.facilitator("fac"), room.member("alice")
    room.member("newcomer", agree=False)

    fac.says("/who")

    text = fac.last
    assert f"• {alice.name}: member, the sandbox, active, last active: today" in text
    assert "has not agreed yet" in text
    assert f"{fac.name} (staff): facilitator" in text
    assert "514" not in text


def test_remove_deletes_the_member_and_tells_them_why(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    name = alice.name

    fac.says(f"/remove {name} repeated insults")

    assert alice.new() == [
        "A facilitator has removed you from the group. Your number and your "
        "data have been deleted.\nReason: repeated insults"
    ]
    assert bob.new() == [f"{name} is no longer in the group."]
    assert alice.record_or_none() is None
    assert ("remove", fac.name, name) in audit(room)


def test_remove_of_someone_who_is_not_there_says_so(room: Room) -> None:
    fac = room.facilitator("fac")

    fac.says("/remove Nobody")

    assert fac.last == "There is no one called Nobody in this group."


def test_a_facilitator_cannot_remove_an_admin(room: Room) -> None:
    fac = room.facilitator("fac")
    admin = room.member("admin", role=Role.ADMIN)

    fac.says(f"/remove {admin.name}")

    assert fac.last == f"You cannot remove {admin.name} (staff)."
    assert admin.record().state == MemberState.ACTIVE


def test_unmute_lifts_a_mute_early(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    fac.says(f"/mute {alice.name} 1d")

    fac.says(f"/unmute {alice.name}")
    alice.says("sorry everyone")

    assert bob.new()[-1] == f"{alice.name}: sorry everyone"
    assert [a for a, *_ in audit(room) if a in ("mute", "unmute")] == ["mute", "unmute"]


def test_mute_with_a_bad_duration_shows_usage(room: Room) -> None:
    fac, alice = room.facilitator("fac"), room.member("alice")

    fac.says(f"/mute {alice.name} forever")

    assert fac.last.startswith("Usage: /mute NAME")


def test_reply_is_private_and_anonymous_both_ways(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")

    fac.says(f"/reply {alice.name} call the helpline, we're here")

    assert alice.new() == [
        f"Private message from {fac.name} (staff): call the helpline, we're here"
    ]
    assert bob.new() == []
    assert fac.new() == [f"Sent privately to {alice.name}."]


def test_announce_goes_to_everyone_marked_as_staff(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")

    fac.says("/announce no group next week")

    expected = f"Announcement from {fac.name} (staff): no group next week"
    assert alice.new() == [expected] and bob.new() == [expected]
    assert fac.new() == ["Announcement sent."]


def test_timer_changes_the_group_timer_on_every_phone_first(room: Room) -> None:
    fac, alice = room.facilitator("fac"), room.member("alice")
    assert alice.timer == 86400

    fac.says("/timer 1w")

    assert alice.timer == 604800
    assert alice.inbox[-1].timer == 604800  # the notice itself arrived under the new timer
    assert alice.last == "A facilitator set messages in this group to disappear after 1 week."
    assert ("timer", fac.name, None) in audit(room)


def test_timer_outside_the_allowed_range_is_refused(room: Room) -> None:
    fac = room.facilitator("fac")

    fac.says("/timer 30s")

    assert fac.last == "The timer must be between 1 minute and 12 weeks."


def test_every_moderation_action_is_audited_without_content(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")

    fac.says(f"/mute {alice.name} 10m")
    fac.says(f"/reply {bob.name} secret words")
    fac.says("/announce more secret words")
    fac.says(f"/remove {bob.name} secret reason")

    with Session(room.engine) as s:
        events = s.exec(select(AuditEvent)).all()
        dumped = " ".join(f"{e.actor} {e.action} {e.target} {e.detail}" for e in events)
    assert "secret" not in dumped
    assert {"mute", "reply", "announce", "remove"} <= {e.action for e in events}
