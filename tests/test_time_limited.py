"""Time-limited groups: notice a week and a day before, then a closing message and deletion."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, select

from relay.errors import CercleError
from relay.service.groups import set_end, set_schedule
from relay.service.jobs import run_due
from relay.storage.models import Group, Member, MemberState
from tests.room import Room


def tick(room: Room, **delta: float) -> None:
    room.later(**delta)
    run_due(room.relay)
    room.deliver()


def test_members_are_told_a_week_and_a_day_before_then_the_group_closes(room: Room) -> None:
    # The clock starts on Tuesday, January 6, 2026 at 14:00 in Toronto.
    ends = set_end(room.relay, room.group_name, on=date(2026, 1, 20))
    assert ends == datetime(2026, 1, 21, 5, 0, tzinfo=UTC)  # midnight in Toronto
    alice, zoe = room.member("alice"), room.member("zoe", lang="fr")

    tick(room, days=7)  # January 13, 14:00: 7 days and 10 hours before the end
    assert alice.new() == []
    tick(room, hours=11)
    assert alice.new() == [
        "This group ends on January 20, 2026. At the end, Cercle will send you a last message "
        "with resources, and your number and your data will be deleted."
    ]
    assert zoe.new() == [
        "Ce groupe prend fin le 20 janvier 2026. À la fin, Cercle vous enverra un dernier "
        "message avec des ressources, et votre numéro et vos données seront effacés."
    ]
    tick(room, hours=1)
    assert alice.new() == []  # never twice for one stage
    tick(room, days=6)
    assert len(alice.new()) == 1  # the day before

    tick(room, days=1)

    [farewell] = alice.new()
    assert farewell.startswith("This group is now closed. Thank you for being part of it.")
    assert "911" in farewell
    assert alice.record_or_none() is None and zoe.record_or_none() is None
    with Session(room.engine) as s:
        assert s.exec(select(Group)).one().closed_at is not None
        states = {m.state for m in s.exec(select(Member)).all()}
    assert states == {MemberState.REMOVED}


def test_a_group_can_end_after_a_number_of_sessions(tmp_path: Path) -> None:
    room = Room(tmp_path)
    set_schedule(room.relay, room.group_name, add=("tue 19:00-20:30",))

    ends = set_end(room.relay, room.group_name, after_sessions=3)

    # Tonight's session, then January 13, then January 20 ending at 20:30 Toronto time.
    assert ends == datetime(2026, 1, 21, 1, 30, tzinfo=UTC)


def test_a_past_end_date_is_refused_and_never_makes_it_open_ended_again(room: Room) -> None:
    with pytest.raises(CercleError):
        set_end(room.relay, room.group_name, on=date(2025, 12, 31))
    set_end(room.relay, room.group_name, on=date(2026, 1, 10))

    assert set_end(room.relay, room.group_name, never=True) is None
    tick(room, days=30)
    alice = room.member("alice")
    assert alice.record().state == MemberState.ACTIVE


def test_a_short_group_gets_only_the_notice_that_is_still_due(room: Room) -> None:
    set_end(room.relay, room.group_name, on=date(2026, 1, 6))  # ends tonight at midnight
    alice = room.member("alice")

    tick(room, minutes=1)
    tick(room, hours=1)

    [notice] = alice.new()  # the day's notice only, not the week's as well
    assert notice.startswith("This group ends on January 6, 2026.")
