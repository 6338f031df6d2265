"""The organization's deny list: /ban, enrollment refused, silence, and bans that outlive data."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from relay.errors import CercleError
from relay.inbound.turn import Result
from relay.messages import Channel
from relay.service.relay import GroupSettings
from relay.storage.models import AuditEvent, Ban, Member, MemberState, Role
from tests.room import Room


def actions(room: Room) -> list[str]:
    with Session(room.engine) as s:
        return [e.action for e in s.exec(select(AuditEvent)).all()]


def test_ban_removes_the_member_and_tells_the_group_like_remove(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    name = bob.name

    fac.says(f"/ban {name}")

    assert fac.last == (
        f"{name} is removed, and their number can no longer join any group of the organization."
    )
    assert bob.last.startswith("A facilitator has removed you from the group.")
    assert alice.new() == [f"{name} is no longer in the group."]
    assert bob.record_or_none() is None
    seen = len(bob.inbox)
    assert bob.says("let me back in") == Result.UNKNOWN_SENDER
    assert len(bob.inbox) == seen, "a banned number gets silence, like any unknown sender"
    assert alice.new() == []
    assert "ban" in actions(room)


def test_a_banned_number_cannot_be_enrolled_again_and_the_attempt_is_audited(room: Room) -> None:
    fac, bob = room.facilitator("fac"), room.member("bob")
    fac.says(f"/ban {bob.name}")

    with pytest.raises(CercleError) as refused:
        room.relay.enroll(bob.number, room.group_name, Role.MEMBER, "en", room.channel)

    assert "banned" in refused.value.safe_message
    assert bob.number not in refused.value.safe_message
    assert actions(room).count("ban_blocked") == 1


def test_the_ban_holds_in_every_group_and_on_every_channel(room: Room) -> None:
    fac, bob = room.facilitator("fac"), room.member("bob")
    room.relay.create_group(GroupSettings("jeudi", lang="en"))
    fac.says(f"/ban {bob.name}")

    for channel in (Channel.SMS, Channel.SIGNAL):
        with pytest.raises(CercleError):
            room.relay.enroll(bob.number, "jeudi", Role.MEMBER, "en", channel)


def test_a_ban_removes_the_number_from_its_other_groups_too(tmp_path: Path) -> None:
    room = Room(tmp_path)
    fac, bob = room.facilitator("fac"), room.member("bob")
    room.relay.create_group(GroupSettings("jeudi", lang="en"))
    # The same number is also in another group, over another channel.
    room.relay.enroll(bob.number, "jeudi", Role.MEMBER, "en", Channel.SMS)

    fac.says(f"/ban {bob.name}")

    with Session(room.engine) as s:
        live = s.exec(select(Member).where(Member.state != MemberState.REMOVED)).all()
    assert [room.relay.address_of(m) for m in live] == [fac.number]
    room.check_invariants()


def test_a_member_cannot_ban_and_staff_cannot_ban_a_higher_role(room: Room) -> None:
    fac, alice = room.facilitator("fac"), room.member("alice")
    admin = room.member("admin", role=Role.ADMIN)

    alice.says(f"/ban {fac.name}")
    assert alice.last.startswith("Unknown command.")
    fac.says(f"/ban {admin.name}")
    assert fac.last == f"You cannot ban {admin.name} (staff)."
    assert admin.record().state == MemberState.ACTIVE


def test_the_ban_survives_the_members_deletion_and_holds_only_a_hash(room: Room) -> None:
    fac, bob = room.facilitator("fac"), room.member("bob")
    fac.says(f"/ban {bob.name}")

    with Session(room.engine) as s:
        [ban] = s.exec(select(Ban)).all()
    assert ban.reason == "staff"
    assert bob.number not in ban.address_hash and len(ban.address_hash) == 64
    raw = b"".join(p.read_bytes() for p in room.db_path.parent.glob("cercle.db*"))
    assert bob.number.encode() not in raw and bob.number.lstrip("+").encode() not in raw


def test_french_speakers_ban_with_bannir(room: Room) -> None:
    fac, bob = room.facilitator("fac", lang="fr"), room.member("bob")

    fac.says(f"/bannir {bob.name}")

    assert "ne peut plus rejoindre aucun groupe" in fac.last
    assert bob.record_or_none() is None


def test_an_admin_bans_and_unbans_a_number_never_enrolled(room: Room) -> None:
    stranger = room.stranger()

    assert room.relay.ban_number(stranger.number, "intruder") == 0
    with pytest.raises(CercleError):
        room.relay.enroll(stranger.number, room.group_name, Role.MEMBER, "en", room.channel)
    assert room.relay.unban_number(stranger.number) is True
    assert room.relay.unban_number(stranger.number) is False

    room.relay.enroll(stranger.number, room.group_name, Role.MEMBER, "en", room.channel)
    assert {"ban", "ban_blocked", "unban", "enroll"} <= set(actions(room))


def test_an_admin_ban_removes_a_current_member(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    name = bob.name

    assert room.relay.ban_number(bob.number, "abuse") == 1
    room.deliver()

    assert alice.new() == [f"{name} is no longer in the group."]
    assert bob.last.startswith("The organization has removed you from the group.")
    assert bob.says("hello?") == Result.UNKNOWN_SENDER
