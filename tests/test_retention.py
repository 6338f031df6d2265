"""Retention: content goes once delivered, the message mapping once the timer has passed,
de-duplication keys once expired, the audit trail after its period, and bookkeeping when stale.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import anyio
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from relay.delivery.lease import try_acquire
from relay.errors import IdentityChangedError, Reason, RetryableError
from relay.inbound.turn import Result
from relay.messages import Channel
from relay.privacy.retention import Kind, PurgeReport, RetentionPolicy, purge
from relay.storage.models import (
    AuditEvent,
    FailureReport,
    FloodWindow,
    Inbound,
    Member,
    Outbox,
    OutboxBody,
    OutboxState,
    SingletonLease,
)
from tests.room import Room


def run(room: Room, **policy: object) -> PurgeReport:
    return purge(room.engine, room.clock.now(), RetentionPolicy(**policy))  # type: ignore[arg-type]


def count(room: Room, model: type, *where: object) -> int:
    with Session(room.engine) as s:
        return int(s.exec(select(func.count()).select_from(model).where(*where)).one())  # type: ignore[call-overload]


def sealed_payloads(room: Room) -> int:
    return count(room, OutboxBody, col(OutboxBody.payload_enc).is_not(None))


def test_a_message_body_is_wiped_once_every_copy_is_delivered(room: Room) -> None:
    alice, bob, carol = room.member("alice"), room.member("bob"), room.member("carol")
    run(room)
    room.transport.fail_next(carol.number, RetryableError(Reason.NETWORK))

    alice.says("he called my sister today")
    run(room)

    assert sealed_payloads(room) == 1, "carol's copy waits for a retry: its body stays"
    assert bob.last.endswith("he called my sister today")
    room.later(minutes=5)
    assert carol.last.endswith("he called my sister today")
    report = run(room)
    assert report.counts[Kind.PAYLOADS] == 1
    assert sealed_payloads(room) == 0


def test_a_held_message_keeps_its_body_and_mapping_however_old(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    room.transport.fail_next(bob.number, IdentityChangedError(Reason.IDENTITY_CHANGED))
    alice.says("waiting for bob", ref="500")

    room.later(days=30)
    run(room)
    run(room)

    with Session(room.engine) as s:
        held = s.exec(select(Outbox).where(Outbox.state == OutboxState.HELD)).one()
        assert held.inbound_id is not None and held.body_id is not None
        assert s.get(OutboxBody, held.body_id).payload_enc is not None  # type: ignore[union-attr]
        assert s.get(Inbound, held.inbound_id) is not None


def test_quotes_work_until_the_group_timer_then_the_mapping_is_gone(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    alice.says("I found a lawyer", ref="700")
    bobs_copy = bob.inbox[-1]

    room.later(hours=23)
    run(room)
    bob.quotes(bobs_copy, "that is great news")
    assert alice.inbox[-1].quote_ref == "700", "within the timer the quote still maps"

    room.later(hours=2)  # the one-day timer has passed for the first message
    report = run(room)
    assert report.counts[Kind.OUTBOX_MAPPINGS] > 0
    bob.quotes(bobs_copy, "still here")
    assert alice.inbox[-1].text == f"{bob.name}: still here"
    assert alice.inbox[-1].quote_ref is None, "the mapping to her message is gone"
    assert bob.reacts(bobs_copy) == Result.IGNORED


def test_inbound_records_go_after_expiry_in_two_runs(room: Room) -> None:
    alice, _bob = room.member("alice"), room.member("bob")
    alice.says("one")
    alice.says("/whoami")
    before = count(room, Inbound)

    room.later(days=2, minutes=1)  # de-duplication keys last two days (the timer is one)
    first = run(room)
    second = run(room)

    assert first.counts[Kind.INBOUND_MAPPINGS] == before
    assert count(room, Inbound, col(Inbound.author_ref).is_not(None)) == 0
    assert second.counts[Kind.INBOUND_ROWS] == before
    assert count(room, Inbound) == 0


def test_a_replay_is_a_duplicate_until_its_key_expires(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    assert alice.says("hello", dedup_key="sms:SM1") == Result.RELAYED
    assert alice.says("hello", dedup_key="sms:SM1") == Result.DUPLICATE

    room.later(days=3)
    run(room)
    run(room)

    assert alice.says("hello", dedup_key="sms:SM1") == Result.RELAYED
    assert bob.received.count(f"{alice.name}: hello") == 2


def test_sms_records_keep_their_reference_until_twilio_deleted_them(tmp_path: Path) -> None:
    room = Room(tmp_path, channel=Channel.SMS)
    alice, _bob = room.member("alice"), room.member("bob")
    alice.says("by text")
    room.later(days=40)

    run(room)
    run(room)

    assert count(room, Outbox, col(Outbox.provider_ref).is_not(None)) > 0
    assert count(room, Inbound, col(Inbound.author_ref).is_not(None)) > 0
    refs = room.relay.provider_refs_to_purge(Channel.SMS, final_rank=0, limit=1000)
    while refs:
        for kind, ref in refs:
            room.relay.mark_purged(kind, ref)
        refs = room.relay.provider_refs_to_purge(Channel.SMS, final_rank=0, limit=1000)
    run(room)
    run(room)
    assert count(room, Outbox) == 0
    assert count(room, Inbound) == 0
    room.check_invariants()


def test_delivery_records_outlive_the_timer_for_the_sms_cost_window(room: Room) -> None:
    alice, _bob = room.member("alice"), room.member("bob")
    alice.says("hi")

    room.later(days=2)
    run(room)
    assert count(room, Outbox) > 0
    assert count(room, Outbox, col(Outbox.provider_ref).is_not(None)) == 0
    assert count(room, Outbox, col(Outbox.body_id).is_not(None)) == 0

    room.later(days=30)
    run(room)
    assert count(room, Outbox) == 0
    assert count(room, OutboxBody) == 0


def test_the_audit_trail_is_kept_for_the_configured_period(room: Room) -> None:
    fac, alice = room.facilitator("fac"), room.member("alice")
    fac.says(f"/mute {alice.name} 1h")
    events = count(room, AuditEvent)

    room.later(days=29)
    assert run(room, audit_days=30).counts[Kind.AUDIT] == 0
    room.later(days=2)
    assert run(room, audit_days=30).counts[Kind.AUDIT] == events
    assert count(room, AuditEvent) == 0


def test_stale_flood_counters_failure_windows_and_dead_leases_are_trimmed(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    alice.says("hi")
    room.relay.report_failure(room.people[1].record().id or 0, Reason.UNREACHABLE)
    try_acquire(room.engine, "retention", "worker-1", 30, room.clock.now())
    assert count(room, FloodWindow) == 1 and count(room, FailureReport) == 1
    assert count(room, SingletonLease) == 1
    del bob

    room.later(days=2)
    report = run(room)

    assert report.counts[Kind.FLOOD] == 1
    assert report.counts[Kind.FAILURE_REPORTS] == 1
    assert report.counts[Kind.LEASES] == 1
    assert count(room, FloodWindow) == count(room, FailureReport) == 0
    assert count(room, SingletonLease) == 0


def test_a_live_lease_is_never_trimmed(room: Room) -> None:
    try_acquire(room.engine, "signal-receive:x", "worker-1", 30, room.clock.now())

    run(room)

    assert count(room, SingletonLease) == 1


def test_tombstones_go_once_nothing_refers_to_them(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    alice.says("/leave")
    alice.says("/leave")
    bob.says("bye")
    assert count(room, Member) == 2

    room.later(days=40)
    run(room)
    run(room)

    assert count(room, Member) == 1, "only bob remains; alice's tombstone is gone"
    assert bob.says("still here") == Result.RELAYED


def test_purge_is_idempotent_and_the_same_in_small_batches(tmp_path: Path) -> None:
    def conversation(path: Path) -> Room:
        path.mkdir()
        room = Room(path)
        people = [room.member(n) for n in ("a", "b", "c", "d")]
        for i, p in enumerate(people * 3):
            p.says(f"message {i}")
        room.later(days=40)
        return room

    big, small = conversation(tmp_path / "big"), conversation(tmp_path / "small")

    totals = PurgeReport()
    for _ in range(2):
        totals.add(run(small, batch=2))
    expected = PurgeReport()
    for _ in range(2):
        expected.add(run(big))

    assert totals.counts == expected.counts
    assert totals.total > 0
    assert run(small, batch=2).total == 0
    assert run(big).total == 0


def test_a_purge_never_cuts_a_message_still_on_its_way(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    room.transport.fail_next(bob.number, RetryableError(Reason.NETWORK))
    alice.says("late but sure")
    room.clock.advance(days=3)

    run(room)
    run(room)
    room.later(minutes=10)

    assert bob.last == f"{alice.name}: late but sure"


def test_the_report_names_every_kind(room: Room) -> None:
    report = run(room)

    assert set(report.counts) == set(Kind)
    assert report.total == sum(report.counts.values())


def test_timestamps_cutoffs_use_the_groups_own_timer(tmp_path: Path) -> None:
    room = Room(tmp_path, timer_seconds=3600)
    alice, bob = room.member("alice"), room.member("bob")
    alice.says("short-lived", ref="42")
    copy = bob.inbox[-1]

    room.clock.advance(seconds=3600 + timedelta(minutes=1).total_seconds())
    run(room)

    bob.quotes(copy, "answer")
    assert alice.inbox[-1].quote_ref is None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_room(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Room]:
    """A room on SQLite, then on PostgreSQL."""
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    r = Room(tmp_path, database_url=url)
    yield r
    r.check_invariants()
    r.engine.dispose()


def test_a_full_purge_on_both_backends(any_room: Room) -> None:
    room = any_room
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    alice.says("one", ref="1")
    bob.quotes(bob.inbox[-1], "two")
    bob.reacts(bob.inbox[-2])
    fac.says(f"/remove {alice.name}")
    room.later(hours=2)
    assert run(room).counts[Kind.PAYLOADS] > 0

    room.later(days=40)
    first, second = run(room, audit_days=30), run(room, audit_days=30)

    assert first.counts[Kind.OUTBOX_ROWS] > 0 and second.counts[Kind.INBOUND_ROWS] > 0
    assert first.counts[Kind.TOMBSTONES] + second.counts[Kind.TOMBSTONES] == 1
    for model in (Outbox, OutboxBody, Inbound, AuditEvent, FloodWindow):
        assert count(room, model) == 0, model.__name__
    assert run(room).total == 0


@pytest.mark.anyio
async def test_the_worker_runs_the_retention_jobs_under_a_lease(tmp_path: Path) -> None:
    from sqlalchemy import update

    from cercle.bootstrap import bootstrap
    from cercle.settings import Secret, Settings
    from cercle.worker import worker_loops
    from relay.service.relay import GroupSettings
    from relay.storage.crypto import generate_key
    from relay.storage.engine import transaction, upgrade
    from relay.storage.models import Role

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'w.db'}", data_key=Secret(generate_key())
    )
    app = bootstrap(settings, transports={})
    upgrade(app.engine)
    app.relay.create_group(GroupSettings("mardi"))
    app.relay.enroll("+15145550142", "mardi", Role.MEMBER, "fr", Channel.SANDBOX)
    with transaction(app.engine) as s:
        s.execute(update(Outbox).values(state=OutboxState.SENT))
    assert count_in(app.engine, OutboxBody, col(OutboxBody.payload_enc).is_not(None)) > 0

    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        for loop in worker_loops(app):
            tg.start_soon(loop, stop)
        with anyio.fail_after(10):
            while count_in(app.engine, OutboxBody, col(OutboxBody.payload_enc).is_not(None)):
                await anyio.sleep(0.05)
        stop.set()
    assert count_in(app.engine, SingletonLease) == 0, "the lease is released on stop"
    app.close()


def count_in(engine: Engine, model: type, *where: object) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(model).where(*where)).one())  # type: ignore[call-overload]
