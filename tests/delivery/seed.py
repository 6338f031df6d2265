"""Direct seeding of groups, members and outbox rows for delivery tests and benchmarks.

Rows are written with the same :class:`relay.delivery.outbox.OutboxWriter` the service uses, without
the consent dance, so a test can queue hundreds of rows in a few statements. Addresses are
opaque loopback handles (``loop-0001``), never phone numbers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, insert
from sqlmodel import Session, col, select

from relay.clock import Clock, FakeClock
from relay.delivery.outbox import ADDRESS_CONTEXT, OutboxWriter
from relay.language.i18n import Raw
from relay.language.texts import Texts
from relay.service.relay import Relay
from relay.storage.crypto import DataKeys
from relay.storage.engine import transaction
from relay.storage.models import Group, Member, MemberState, Outbox, Role

CONFIG = Path(__file__).resolve().parent.parent.parent / "config"


@dataclass
class World:
    """A relay on an engine, with a clock and keys (fake clock unless given)."""

    engine: Engine
    keys: DataKeys
    clock: Clock
    relay: Relay

    @classmethod
    def on(cls, engine: Engine, clock: Clock | None = None, keys: DataKeys | None = None) -> World:
        """A world on ``engine``."""
        keys = keys or DataKeys.from_master(os.urandom(32))
        clock = clock or FakeClock()
        return cls(engine, keys, clock, Relay(engine, keys, clock, Texts(CONFIG), "Exemple"))


def add_group(
    world: World,
    name: str,
    members: int,
    *,
    channel: str = "sandbox",
    staff: int = 0,
    start: int = 0,
) -> list[int]:
    """Create a group of active members (the first ``staff`` are facilitators); their ids."""
    now = world.clock.now()
    with transaction(world.engine) as s:
        group = Group(name=name, lang="en", created_at=now)
        s.add(group)
        s.flush()
        rows = []
        for i in range(members):
            address = f"loop-{start + i:05d}"
            rows.append(
                {
                    "group_id": group.id,
                    "channel": channel,
                    "address_enc": world.keys.encrypt_text(address, ADDRESS_CONTEXT),
                    "address_hash": world.relay.address_hash(address),
                    "pseudonym": f"P{start + i}",
                    "name_key": f"p{start + i}",
                    "role": Role.FACILITATOR if i < staff else Role.MEMBER,
                    "lang": "en",
                    "state": MemberState.ACTIVE,
                    "consented_at": now,
                    "created_at": now,
                }
            )
        s.execute(insert(Member), rows)
        ids = s.exec(
            select(Member.id).where(Member.group_id == group.id).order_by(col(Member.id))
        ).all()
    return [i for i in ids if i is not None]


def queue(world: World, member_ids: list[int], texts: list[str]) -> int:
    """Queue each text to every member, oldest first; returns rows written."""
    now = world.clock.now()
    total = 0
    with Session(world.engine) as s:
        members = list(s.exec(select(Member).where(col(Member.id).in_(member_ids))).all())
        writer = OutboxWriter(s, world.keys, now)
        for text in texts:
            total += writer.fan_out(members, Raw(text))
        s.commit()
    return total


def address(member_id: int, world: World) -> str:
    """The loopback address of a member."""
    with Session(world.engine) as s:
        member = s.get(Member, member_id)
        assert member is not None
        found = world.relay.address_of(member)
        assert found is not None
        return found


def states(world: World) -> dict[str, int]:
    """How many outbox rows are in each state."""
    with Session(world.engine) as s:
        out: dict[str, int] = {}
        for state in s.exec(select(Outbox.state)).all():
            out[state] = out.get(state, 0) + 1
        return out
