"""A support group on the sandbox transport, driven like a conversation.

    room = Room(tmp_path)
    alice = room.member("alice")
    alice.says("hi")
    assert bob.last == "Willow: hi"

Everything is real but the provider: the SQLite database with migrations, encryption, the
relay service, the outbox and the delivery engine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from bots.sandbox.transport import Delivered, LoopbackTransport
from relay.clock import FakeClock
from relay.delivery.sender import Deliverer, DeliveryPolicy, Job
from relay.inbound.turn import Result
from relay.language.texts import Texts
from relay.messages import Attachment, Channel, Inbound, InboundKind, Mention, Reaction, Sender
from relay.service.relay import GroupSettings, Relay
from relay.storage.crypto import DataKeys
from relay.storage.engine import make_engine, upgrade
from relay.storage.models import Member, Role

CONFIG = Path(__file__).resolve().parent.parent / "config"


@dataclass
class Person:
    """One simulated phone."""

    room: Room
    handle: str
    number: str
    uuid: str | None = None
    seen: int = 0
    _counter: int = field(default=0)
    channel: Channel | None = None  # the room's channel unless enrolled on another

    @property
    def via(self) -> Channel:
        """The channel this phone uses."""
        return self.channel or self.room.channel

    # -- what they do --

    def send(self, inbound_kind: InboundKind = InboundKind.MESSAGE, **fields: object) -> Result:
        """Send any inbound event from this phone, then let delivery run."""
        self._counter += 1
        ref = fields.pop("ref", None) or str(1767225600000 + self._counter * 1000 + id(self) % 997)
        inbound = Inbound(
            channel=self.via,
            sender=Sender(address=self.number, uuid=self.uuid),
            dedup_key=fields.pop("dedup_key", None) or f"test:{self.number}:{ref}",  # type: ignore[arg-type]
            kind=inbound_kind,
            ref=str(ref),
            **fields,  # type: ignore[arg-type]
        )
        result = self.room.relay.accept(inbound)
        self.room.deliver()
        return result

    def says(self, text: str, **fields: object) -> Result:
        """Type ``text`` and send it."""
        return self.send(text=text, **fields)

    def sends_photo(self, data: bytes, text: str = "", filename: str = "IMG_0042.jpg") -> Result:
        """Send a JPEG with the given bytes."""
        return self.send(text=text, attachments=(Attachment("image/jpeg", data, filename),))

    def quotes(self, delivered: Delivered, text: str) -> Result:
        """Reply quoting a message on their phone (the phone sends the quoted words too)."""
        return self.send(text=text, quote_ref=delivered.ref, quote_text=delivered.text)

    def reacts(self, delivered: Delivered, emoji: str = "❤️") -> Result:
        """React to a message on their phone."""
        return self.send(InboundKind.REACTION, reaction=Reaction(emoji, delivered.ref))

    def mentions(self, text: str, *people: Person) -> Result:
        """Send ``text`` where each U+FFFC mentions the next person."""
        offsets = [m.start() for m in re.finditer("\ufffc", text)]
        mentions = tuple(
            Mention(start=len(text[:o].encode("utf-16-le")) // 2, length=1, uuid=p.uuid)
            for o, p in zip(offsets, people, strict=True)
        )
        return self.send(text=text, mentions=mentions)

    def agrees(self) -> Result:
        """Reply with the agree word."""
        return self.says("AGREE")

    # -- what their phone shows --

    @property
    def address(self) -> str:
        """Where Cercle reaches this phone: on Signal the account UUID when known."""
        return self.uuid if self.via == Channel.SIGNAL and self.uuid else self.number

    @property
    def inbox(self) -> list[Delivered]:
        """Everything this phone received, oldest first."""
        return self.room.transports[self.via].inbox.get(self.address, [])

    @property
    def received(self) -> list[str]:
        """Every text this phone received, oldest first (:meth:`new` gives the unseen ones)."""
        return [d.text for d in self.inbox]

    @property
    def last(self) -> str:
        """The text of the latest message received."""
        assert self.inbox, f"{self.handle} received nothing"
        return self.inbox[-1].text

    def new(self) -> list[str]:
        """Texts received since the previous call."""
        texts = self.received[self.seen :]
        self.seen = len(self.received)
        return texts

    @property
    def timer(self) -> int | None:
        """The disappearing timer of this phone's conversation with the relay."""
        return self.room.transport.timers.get(self.address)

    def record_or_none(self) -> Member | None:
        """The database row of this person, or ``None`` once their data is deleted."""
        with self.room.session() as s:
            from sqlmodel import select

            for m in s.exec(select(Member)).all():
                if self.room.relay.address_of(m) == self.number:
                    return m
        return None

    def record(self) -> Member:
        """The database row of this person (for assertions about state)."""
        found = self.record_or_none()
        assert found is not None, f"{self.handle} is not enrolled"
        return found

    @property
    def name(self) -> str:
        """Their pseudonym."""
        pseudonym = self.record().pseudonym
        assert pseudonym
        return pseudonym


class Room:
    """One group, its people, and the machinery between them."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        channel: Channel = Channel.SANDBOX,
        database_url: str | None = None,
        also: tuple[Channel, ...] = (),
        **group: object,
    ) -> None:
        self.db_path = tmp_path / "cercle.db"
        self.engine = make_engine(database_url or f"sqlite:///{self.db_path}")
        upgrade(self.engine)
        self.keys = DataKeys.from_master(os.urandom(32))
        self.clock = FakeClock()
        self.relay = Relay(self.engine, self.keys, self.clock, Texts(CONFIG), "Maison Exemple")
        self.channel = channel
        self.transport = LoopbackTransport(channel_name=channel)
        # Other channels members may be on (``also``): SMS has no timers and no photos.
        self.transports = {channel: self.transport} | {
            c: LoopbackTransport(channel_name=c, media=c != Channel.SMS, timers_on=c != Channel.SMS)
            for c in also
        }
        self.held = False
        self.deliverer = Deliverer(
            self.relay,
            dict(self.transports),
            DeliveryPolicy(base_backoff=1, max_backoff=4, max_attempts=3),
        )
        settings = {"name": "mardi", "lang": "en", "timer_seconds": 86400, **group}
        self.group_name = str(settings["name"])
        self.relay.create_group(GroupSettings(**settings))  # type: ignore[arg-type]
        self.people: list[Person] = []
        # Fictional numbers: 555-01xx is reserved for fiction in every NANP area code.
        self._numbers = iter(f"+1514555{n:04d}" for n in range(101, 200))

    def session(self):  # type: ignore[no-untyped-def]
        from sqlmodel import Session

        return Session(self.engine)

    def deliver(self) -> None:
        """Run the delivery engine until nothing is due (not while :meth:`holding`)."""
        if not self.held:
            anyio.run(self.deliverer.drain)

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Stop the delivery engine for a while, to look at a fan-out mid-way."""
        self.held = True
        try:
            yield
        finally:
            self.held = False
        self.deliver()

    def claim(self, n: int) -> list[Job]:
        """Let a worker claim the next ``n`` rows, as it does before it sends them."""
        return self.deliverer.claim(limit=n)

    def send_claimed(self, jobs: list[Job]) -> None:
        """Let the worker go on with rows it claimed: send them and record what happened."""
        anyio.run(self.deliverer._deliver, jobs, anyio.CapacityLimiter(4))

    def deliver_some(self, n: int) -> None:
        """Deliver only the next ``n`` rows."""
        self.send_claimed(self.claim(n))

    def later(self, **delta: float) -> None:
        """Let time pass, then deliver what became due."""
        self.clock.advance(**delta)
        self.deliver()

    def member(
        self,
        handle: str,
        *,
        role: Role = Role.MEMBER,
        lang: str = "en",
        agree: bool = True,
        uuid: str | None = None,
        via: Channel | None = None,
    ) -> Person:
        """Enroll a new person (consenting unless ``agree=False``), on ``via`` if given."""
        person = Person(self, handle, next(self._numbers), uuid, channel=via)
        self.relay.enroll(person.number, self.group_name, role, lang, person.via, uuid=uuid)
        self.deliver()
        self.people.append(person)
        if agree:
            person.agrees()
        person.new()
        for other in self.people:
            other.new()
        return person

    def facilitator(self, handle: str, **kw: object) -> Person:
        """Enroll a facilitator."""
        return self.member(handle, role=Role.FACILITATOR, **kw)  # type: ignore[arg-type]

    def stranger(self, handle: str = "stranger") -> Person:
        """Someone who was never enrolled."""
        return Person(self, handle, next(self._numbers))

    # -- invariants, checked after every test that uses a room --

    def check_invariants(self) -> None:
        """No one received another's number or UUID; timers set first; nothing plain at rest."""
        secrets = {p.number: p for p in self.people}
        secrets.update({p.uuid: p for p in self.people if p.uuid})
        for person in self.people:
            for d in person.inbox:
                for value, owner in secrets.items():
                    if owner is not person:
                        assert value not in d.text, f"{person.handle} received {owner.handle}'s id"
                        digits = value.lstrip("+")
                        assert digits not in re.sub(r"\D", "", d.text) or len(digits) < 8
                if self.transports[person.via].supports_timers:
                    assert d.timer is not None, f"{person.handle} got a message before a timer"
        if self.db_path.exists():
            raw = b"".join(p.read_bytes() for p in self.db_path.parent.glob("cercle.db*"))
            for value in secrets:
                assert value.encode() not in raw, "an identifier is stored in clear"
                assert value.lstrip("+").encode() not in raw
