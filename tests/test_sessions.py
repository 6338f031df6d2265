"""Open hours: weekly sessions in the organization's time zone, by hand overrides, reminders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.errors import CercleError
from relay.groups.schedule import Schedule, Slot, is_open, parse_schedule
from relay.inbound.turn import Result
from relay.service.groups import set_schedule
from relay.service.jobs import run_due
from relay.storage.models import GroupPolicy
from tests.room import Room

TORONTO = ZoneInfo("America/Toronto")


def go_to(room: Room, local: str) -> None:
    """Move the room's clock forward to a wall-clock time in Toronto, then deliver."""
    target = datetime.fromisoformat(local).replace(tzinfo=TORONTO).astimezone(UTC)
    delta = (target - room.clock.now()).total_seconds()
    assert delta >= 0, "time only moves forward"
    room.later(seconds=delta)


@pytest.fixture
def tuesdays(tmp_path: Path) -> Room:
    """A group that meets on Tuesdays 19:00-20:30, Toronto time (the clock starts at 14:00
    on Tuesday, January 6, 2026)."""
    room = Room(tmp_path)
    set_schedule(room.relay, room.group_name, add=("tue 19:00-20:30",), tz="America/Toronto")
    return room


def test_outside_a_session_the_message_waits_and_the_member_is_told_when_and_where(
    tuesdays: Room,
) -> None:
    alice, bob = tuesdays.member("alice"), tuesdays.member("bob")

    assert alice.says("is anyone here?") == Result.HELD_BACK

    assert bob.new() == []
    assert alice.new() == [
        "The group is closed right now, so your message was not sent. It opens again Tuesday, "
        "January 6 at 7:00 PM. If you need help now, send /resources. To send this message "
        "privately to the facilitators instead, reply STAFF."
    ]


def test_a_french_speaker_is_told_in_french_with_french_days_and_times(tuesdays: Room) -> None:
    zoe = tuesdays.member("zoe", lang="fr")

    zoe.says("allo?")

    assert zoe.new() == [
        "Le groupe est fermé en ce moment : votre message n'a pas été envoyé. Il rouvre mardi "
        "6 janvier à 19 h 00. Si vous avez besoin d'aide maintenant, envoyez /ressources. Pour "
        "envoyer plutôt ce message en privé à l'équipe, répondez EQUIPE."
    ]


def test_a_message_exactly_at_the_start_is_relayed_and_one_second_before_is_not(
    tuesdays: Room,
) -> None:
    alice, bob = tuesdays.member("alice"), tuesdays.member("bob")
    go_to(tuesdays, "2026-01-06T18:59:59")
    assert alice.says("early") == Result.HELD_BACK

    go_to(tuesdays, "2026-01-06T19:00:00")

    assert alice.says("on time") == Result.RELAYED
    assert bob.new() == [f"{alice.name}: on time"]


def test_a_message_exactly_at_the_end_is_not_relayed_and_one_second_before_is(
    tuesdays: Room,
) -> None:
    alice, bob = tuesdays.member("alice"), tuesdays.member("bob")
    go_to(tuesdays, "2026-01-06T20:29:59")
    assert alice.says("last words") == Result.RELAYED

    go_to(tuesdays, "2026-01-06T20:30:00")

    assert alice.says("too late") == Result.HELD_BACK
    assert bob.new() == [f"{alice.name}: last words"]
    assert "It opens again Tuesday, January 13 at 7:00 PM." in alice.last


def test_sessions_keep_their_local_time_across_the_spring_daylight_saving_change(
    tuesdays: Room,
) -> None:
    alice, bob = tuesdays.member("alice"), tuesdays.member("bob")
    # March 3 is before the change (UTC-5), March 10 after it (UTC-4, since March 8).
    go_to(tuesdays, "2026-03-03T19:00:00")
    assert tuesdays.clock.now().hour == 0  # 19:00 EST is midnight UTC
    assert alice.says("before the change") == Result.RELAYED
    go_to(tuesdays, "2026-03-10T18:30:00")  # 22:30 UTC: would be 17:30 in a fixed UTC-5
    assert alice.says("not yet") == Result.HELD_BACK
    assert "It opens again Tuesday, March 10 at 7:00 PM." in alice.last

    go_to(tuesdays, "2026-03-10T19:00:00")

    assert tuesdays.clock.now().hour == 23  # 19:00 EDT is 23:00 UTC
    assert alice.says("after the change") == Result.RELAYED
    go_to(tuesdays, "2026-03-10T20:30:00")
    assert alice.says("closed again") == Result.HELD_BACK
    assert bob.new() == [f"{alice.name}: before the change", f"{alice.name}: after the change"]


def test_sessions_keep_their_local_time_across_the_autumn_change(tuesdays: Room) -> None:
    alice = tuesdays.member("alice")
    tuesdays.member("bob")
    go_to(tuesdays, "2026-10-27T20:00:00")  # EDT, UTC-4
    assert alice.says("october") == Result.RELAYED
    go_to(tuesdays, "2026-11-03T18:30:00")  # EST again since November 1
    alice.says("too early")
    assert "It opens again Tuesday, November 3 at 7:00 PM." in alice.last

    go_to(tuesdays, "2026-11-03T19:00:00")

    assert tuesdays.clock.now() == datetime(2026, 11, 4, 0, 0, tzinfo=UTC)
    assert alice.says("november") == Result.RELAYED


def test_reply_staff_sends_the_held_message_privately_to_the_facilitators(tuesdays: Room) -> None:
    fac, alice, bob = tuesdays.facilitator("fac"), tuesdays.member("alice"), tuesdays.member("bob")
    alice.says("I had a hard night")
    alice.new()

    assert alice.says("staff") == Result.COMMAND

    assert fac.new() == [f"Private to staff from {alice.name}: I had a hard night"]
    assert alice.new() == ["Sent privately to the facilitators. They will answer you privately."]
    assert bob.new() == []


def test_the_french_answer_word_works_too_and_only_for_a_while(tuesdays: Room) -> None:
    fac, zoe = tuesdays.facilitator("fac"), tuesdays.member("zoe", lang="fr")
    zoe.says("première")
    zoe.says("Équipe")
    assert fac.new() == [f"Private to staff from {zoe.name}: première"]

    zoe.says("deuxième")
    tuesdays.later(minutes=16)
    zoe.says("EQUIPE")

    assert fac.new() == []  # expired: the second word was just another held message
    assert zoe.last.startswith("Le groupe est fermé")


def test_staff_speak_and_commands_work_outside_sessions(tuesdays: Room) -> None:
    fac, alice = tuesdays.facilitator("fac"), tuesdays.member("alice")

    assert fac.says("see you tonight at 7") == Result.RELAYED
    assert alice.new() == [f"{fac.name} (staff): see you tonight at 7"]
    assert alice.says("/resources") == Result.COMMAND
    assert "911" in alice.last


def test_open_by_hand_lasts_until_the_scheduled_session_ends(tuesdays: Room) -> None:
    fac, alice, bob = tuesdays.facilitator("fac"), tuesdays.member("alice"), tuesdays.member("bob")

    fac.says("/open")

    expected = "The group is open now. It stays open until Tuesday, January 6 at 8:30 PM."
    assert alice.new() == [expected] and fac.new() == [expected]
    assert alice.says("early bird") == Result.RELAYED
    assert bob.new() == [expected, f"{alice.name}: early bird"]
    go_to(tuesdays, "2026-01-06T20:30:00")
    assert alice.says("after") == Result.HELD_BACK


def test_open_for_a_while_then_the_schedule_takes_over(tuesdays: Room) -> None:
    fac, alice = tuesdays.facilitator("fac"), tuesdays.member("alice")
    go_to(tuesdays, "2026-01-07T10:00:00")

    fac.says("/ouvrir 1h")

    assert alice.new() == [
        "The group is open now. It stays open until Wednesday, January 7 at 11:00 AM."
    ]
    assert alice.says("morning") == Result.RELAYED
    tuesdays.later(hours=1)
    assert alice.says("still?") == Result.HELD_BACK


def test_close_by_hand_during_a_session_lasts_until_it_ends(tuesdays: Room) -> None:
    fac, alice = tuesdays.facilitator("fac"), tuesdays.member("alice")
    go_to(tuesdays, "2026-01-06T19:30:00")

    fac.says("/close")

    assert alice.new() == [
        "The group is closed now. It opens again Tuesday, January 13 at 7:00 PM."
    ]
    assert alice.says("hello?") == Result.HELD_BACK
    go_to(tuesdays, "2026-01-13T19:00:00")
    assert alice.says("back") == Result.RELAYED


def test_open_when_already_open_says_so(tuesdays: Room) -> None:
    fac = tuesdays.facilitator("fac")
    go_to(tuesdays, "2026-01-06T19:30:00")

    fac.says("/open")

    assert fac.new() == ["The group is already open."]


def test_an_always_open_group_closed_by_hand_stays_closed_until_reopened(room: Room) -> None:
    fac, alice = room.facilitator("fac"), room.member("alice")

    fac.says("/fermer")
    assert alice.new() == ["The group is closed now."]
    room.later(days=30)
    assert alice.says("hello?") == Result.HELD_BACK
    fac.says("/open")

    assert alice.new()[-1] == "The group is open now."
    assert alice.says("hello!") == Result.RELAYED


def test_members_cannot_open_or_close(tuesdays: Room) -> None:
    alice = tuesdays.member("alice")

    alice.says("/open")

    assert alice.last.startswith("Unknown command.")


def test_schedule_shows_the_sessions_and_whether_the_group_is_open(tuesdays: Room) -> None:
    alice, zoe = tuesdays.member("alice"), tuesdays.member("zoe", lang="fr")

    alice.says("/schedule")
    zoe.says("/horaire")

    assert alice.last == (
        "This group meets at these times:\n• Tuesday, 7:00 PM to 8:30 PM\n"
        "The group is closed now. It opens again Tuesday, January 6 at 7:00 PM."
    )
    assert zoe.last.startswith(
        "Ce groupe se réunit aux moments suivants :\n• le mardi, de 19 h 00 à 20 h 30\n"
    )


def test_a_group_without_a_schedule_is_open_at_any_time(room: Room) -> None:
    alice = room.member("alice")

    alice.says("/schedule")

    assert alice.last == (
        "This group has no set hours: it is open at any time.\nThe group is open now."
    )


# --- reminders -------------------------------------------------------------------------------


def test_a_member_who_asked_is_reminded_once_30_minutes_before(tuesdays: Room) -> None:
    alice, bob = tuesdays.member("alice"), tuesdays.member("bob")
    alice.says("/reminders on")
    assert alice.new() == ["Reminders on: Cercle will write to you 30 minutes before each session."]

    go_to(tuesdays, "2026-01-06T18:29:00")
    run_due(tuesdays.relay)
    tuesdays.deliver()
    assert alice.new() == []
    go_to(tuesdays, "2026-01-06T18:30:00")
    run_due(tuesdays.relay)
    run_due(tuesdays.relay)
    tuesdays.deliver()

    assert alice.new() == ["Reminder: the group opens at 7:00 PM, in 30 minutes."]
    assert bob.new() == []  # reminders are off unless asked for
    go_to(tuesdays, "2026-01-13T18:45:00")
    run_due(tuesdays.relay)
    tuesdays.deliver()
    assert alice.new() == ["Reminder: the group opens at 7:00 PM, in 15 minutes."]


def test_reminders_in_french_and_off_again(tuesdays: Room) -> None:
    zoe = tuesdays.member("zoe", lang="fr")
    zoe.says("/rappels oui")
    go_to(tuesdays, "2026-01-06T18:40:00")
    run_due(tuesdays.relay)
    tuesdays.deliver()
    assert zoe.new()[-1] == "Rappel : le groupe ouvre à 19 h 00, dans 20 minutes."

    zoe.says("/rappels non")
    go_to(tuesdays, "2026-01-13T18:40:00")
    run_due(tuesdays.relay)
    tuesdays.deliver()

    assert zoe.new() == ["Rappels désactivés."]


def test_no_reminder_when_a_facilitator_closed_the_group_through_the_session(
    tuesdays: Room,
) -> None:
    fac, alice = tuesdays.facilitator("fac"), tuesdays.member("alice")
    alice.says("/reminders on")
    fac.says("/close 1d")
    alice.new()

    go_to(tuesdays, "2026-01-06T18:45:00")
    run_due(tuesdays.relay)
    tuesdays.deliver()

    assert alice.new() == []


# --- the schedule itself ---------------------------------------------------------------------


def test_schedules_parse_english_and_french_days_and_several_forms_of_hours() -> None:
    assert parse_schedule("tue 19:00-20:30; jeu 10h-11h30") == parse_schedule(
        "mardi 19:00-20:30;thursday 10:00-11:30"
    )
    assert parse_schedule("tue,thu 9-10") == (
        Slot(1, *_times("09:00", "10:00")),
        Slot(3, *_times("09:00", "10:00")),
    )
    late = parse_schedule("fri 22:00-01:00")[0]
    assert late.crosses_midnight


def _times(a: str, b: str) -> tuple[object, object]:
    from datetime import time

    return time.fromisoformat(a), time.fromisoformat(b)


@pytest.mark.parametrize("bad", ["tuesday", "tue 25:00-26:00", "xyz 10-11", "tue 10-10", "10-11"])
def test_unreadable_schedules_are_refused_with_an_example(bad: str) -> None:
    with pytest.raises(CercleError):
        parse_schedule(bad)


def test_a_session_past_midnight_is_open_until_its_end_the_next_day() -> None:
    sched = Schedule(parse_schedule("fri 22:00-01:00"), TORONTO)
    friday = datetime(2026, 1, 9, 23, 30, tzinfo=TORONTO).astimezone(UTC)

    assert sched.in_session(friday)
    assert sched.in_session(friday + timedelta(hours=1, minutes=29))
    assert not sched.in_session(friday + timedelta(hours=1, minutes=30))


@settings(max_examples=60, deadline=None)
@given(minutes=st.integers(min_value=0, max_value=60 * 24 * 400))
def test_nothing_changes_between_now_and_the_next_boundary(minutes: int) -> None:
    sched = Schedule(parse_schedule("tue 19:00-20:30; sat 02:30-03:30; sun 23:00-01:00"), TORONTO)
    policy = GroupPolicy(group_id=1, schedule="tue 19:00-20:30; sat 02:30-03:30; sun 23:00-01:00")
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    boundary = sched.next_boundary(now)
    assert boundary is not None and boundary > now

    state = is_open(policy, now)

    assert is_open(policy, boundary - timedelta(seconds=1)) == state
    assert is_open(policy, boundary) != state or boundary in {
        t for pair in sched.occurrences(now) for t in pair
    }
