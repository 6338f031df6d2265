"""What a stolen database file holds after a full conversation and the retention jobs: no
number, UUID, profile name or message text, not even the sealed copies of what was deleted;
the tables that held messages are empty, and only live members remain."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from sqlmodel import Session, col, func, select

from bots.signal.envelope import ParsedMessage, parse_envelope
from relay.inbound.turn import Result
from relay.messages import Channel, InboundKind
from relay.privacy.retention import RetentionPolicy, purge
from relay.storage.models import (
    AuditEvent,
    Ban,
    FailureReport,
    FloodWindow,
    Inbound,
    Member,
    MemberState,
    Outbox,
    OutboxBody,
)
from tests.room import Room

UUIDS = {
    "alice": "7d1f6a52-0000-4000-8000-000000000051",
    "bob": "7d1f6a52-0000-4000-8000-000000000052",
    "carol": "7d1f6a52-0000-4000-8000-000000000053",
    "dave": "7d1f6a52-0000-4000-8000-000000000054",
}
PROFILE_NAME = "Marie-Ève Tremblay"
FILENAME = "chez-maman-rue-des-Pins.jpg"
TEXTS = [
    "he followed me to the bus stop",
    "I moved to my aunt's place in Laval",
    "I moved to my aunt's place (edited)",
    "you are not alone",
    "my court date is on Thursday",
    "please call me after 6",
    "we will call you tonight",
    "sent from the signal app",
    "this one I deleted",
    "mentioning \ufffc here",
]


def database_bytes(room: Room) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(room.db_path.parent.glob("cercle.db*")))


def rows(room: Room, model: type, *where: object) -> int:
    with Session(room.engine) as s:
        return int(s.exec(select(func.count()).select_from(model).where(*where)).one())  # type: ignore[call-overload]


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(out, format="JPEG")
    return out.getvalue()


def sealed_values(room: Room) -> list[bytes]:
    with Session(room.engine) as s:
        found = [b.payload_enc for b in s.exec(select(OutboxBody)).all()]
        found += [o.address_enc for o in s.exec(select(Outbox)).all()]
        found += [
            v
            for m in s.exec(select(Member).where(Member.state == MemberState.REMOVED)).all()
            for v in (m.address_enc, m.uuid_enc)
        ]
    return [v for v in found if v]


def test_after_the_retention_jobs_the_file_holds_nothing_of_the_conversation(
    tmp_path: Path,
) -> None:
    room = Room(tmp_path, channel=Channel.SIGNAL, allow_media=True)
    fac = room.facilitator("fac")
    alice, bob = room.member("alice", uuid=UUIDS["alice"]), room.member("bob", uuid=UUIDS["bob"])
    carol, dave = room.member("carol", uuid=UUIDS["carol"]), room.member("dave", uuid=UUIDS["dave"])

    alice.says(TEXTS[0], ref="9001")
    bob.quotes(bob.inbox[-1], TEXTS[3])
    alice.says(TEXTS[1], ref="9002")
    alice.send(InboundKind.EDIT, text=TEXTS[2], edit_ref="9002")
    carol.reacts(carol.inbox[-1], "💜")
    dave.says(TEXTS[8], ref="9003")
    dave.send(InboundKind.DELETE, delete_ref="9003")
    bob.mentions(TEXTS[9], alice)
    alice.sends_photo(jpeg(), TEXTS[4], filename=FILENAME)
    carol.says(f"/staff {TEXTS[5]}")
    fac.says(f"/reply {carol.name} {TEXTS[6]}")
    envelope = {
        "source": alice.number,
        "sourceNumber": alice.number,
        "sourceUuid": UUIDS["alice"],
        "sourceName": PROFILE_NAME,
        "timestamp": 1767225699000,
        "dataMessage": {"timestamp": 1767225699000, "message": TEXTS[7]},
    }
    parsed = parse_envelope(envelope)
    assert isinstance(parsed, ParsedMessage)
    assert room.relay.accept(parsed.inbound) == Result.RELAYED
    room.deliver()
    dave.says("/leave")
    dave.says("/leave")
    carol_name = carol.name
    fac.says(f"/remove {carol_name}")
    assert bob.last == f"{carol_name} is no longer in the group."
    deleted = sealed_values(room)
    assert deleted, "sealed copies existed before the retention jobs"

    room.later(days=40)  # past the one-day timer, the de-duplication keys and the cost window
    policy = RetentionPolicy(audit_days=30)
    purge(room.engine, room.clock.now(), policy)
    purge(room.engine, room.clock.now(), policy)  # inbound rows go in the run after

    for model in (Outbox, OutboxBody, Inbound, AuditEvent, FloodWindow, FailureReport, Ban):
        assert rows(room, model) == 0, model.__name__
    assert rows(room, Member, col(Member.state) == MemberState.REMOVED) == 0
    assert rows(room, Member) == 3  # fac, alice, bob: live members only
    raw = database_bytes(room)
    secrets = [
        *(p.number for p in room.people),
        *(p.number.lstrip("+") for p in room.people),
        *UUIDS.values(),
        PROFILE_NAME,
        FILENAME,
        *TEXTS,
        "💜",
    ]
    for secret in secrets:
        for encoding in ("utf-8", "utf-16-le"):
            assert secret.encode(encoding) not in raw, f"{secret!r} is in the database file"
    for value in deleted:
        assert value not in raw, "a deleted sealed value is still in the file"
    room.check_invariants()
