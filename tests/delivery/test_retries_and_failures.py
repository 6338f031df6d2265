"""Delivery: retries, reports to staff, leases, and order per recipient."""

from __future__ import annotations

import anyio
from sqlmodel import Session, select

from relay.delivery.sender import Deliverer, pending_count
from relay.errors import (
    PermanentError,
    RateLimitedError,
    Reason,
    RecipientGoneError,
    RetryableError,
)
from relay.messages import Inbound, Sender
from relay.storage.models import MemberState, Outbox, OutboxState
from tests.room import Room


def test_a_transient_failure_is_retried_after_a_backoff(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    room.transport.fail_next(bob.number, RetryableError(Reason.NETWORK))

    alice.says("are you ok?")
    assert bob.new() == []

    room.later(seconds=5)
    assert bob.new() == [f"{alice.name}: are you ok?"]


def test_a_rate_limit_waits_at_least_as_long_as_the_provider_asks(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    room.transport.fail_next(bob.number, RateLimitedError(retry_after=60))

    alice.says("hello")
    room.later(seconds=30)
    assert bob.new() == []

    room.later(seconds=31)
    assert bob.new() == [f"{alice.name}: hello"]


def test_messages_to_one_recipient_keep_their_order_through_retries(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    room.transport.fail_next(bob.number, RetryableError(Reason.NETWORK))

    for text in ("one", "two", "three"):
        alice.says(text)
    room.later(seconds=5)

    assert bob.new() == [f"{alice.name}: {t}" for t in ("one", "two", "three")]


def test_when_retries_run_out_staff_are_told_in_plain_words(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    room.transport.fail_next(bob.number, *[RetryableError(Reason.NETWORK)] * 3)

    alice.says("hello")
    for _ in range(3):
        room.later(seconds=10)

    assert fac.new()[-1] == (
        f"A message could not reach {bob.name}: the connection to the provider kept failing."
    )


def test_a_permanent_failure_is_not_retried_and_is_reported(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    room.transport.fail_next(bob.number, PermanentError(Reason.INVALID_NUMBER))

    alice.says("hello")
    room.later(minutes=30)

    assert bob.new() == []
    assert fac.new()[-1] == (
        f"A message could not reach {bob.name}: their number is not valid for this service."
    )


def test_an_opted_out_recipient_is_marked_and_no_longer_sent_to(room: Room) -> None:
    fac, alice, bob = room.facilitator("fac"), room.member("alice"), room.member("bob")
    room.transport.fail_next(bob.number, RecipientGoneError(Reason.OPTED_OUT))

    alice.says("first")
    alice.says("second")

    assert bob.record().state == MemberState.OPTED_OUT
    assert bob.new() == []
    assert any("texted STOP" in t for t in fac.new())
    assert pending_count(room.engine) == 0


def test_a_row_whose_worker_died_is_sent_once_the_lease_expires(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    dead = Deliverer(room.relay, {room.channel: room.transport}, worker_id="dead-worker")
    room.relay.accept(
        Inbound(
            channel=room.channel,
            sender=Sender(address=alice.number),
            dedup_key="k1",
            text="while a worker dies",
            ref="1",
        )
    )

    claimed = dead.claim()  # claims, then "dies" without sending
    assert [j.recipient_id for j in claimed] == [bob.record().id]
    room.deliver()
    assert bob.new() == []  # still leased by the dead worker

    room.later(seconds=61)
    assert bob.new() == [f"{alice.name}: while a worker dies"]
    with Session(room.engine) as s:
        row = s.exec(
            select(Outbox).where(Outbox.recipient_id == bob.record().id).order_by(Outbox.id.desc())
        ).first()  # type: ignore[union-attr]
        assert row is not None and row.state == OutboxState.SENT and row.attempts == 2


def test_the_delivery_loop_survives_a_transport_that_raises_anything(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    room.transport.fail_next(bob.number, ValueError("adapter bug"))  # type: ignore[arg-type]

    alice.says("still arrives")
    room.later(seconds=5)

    assert bob.new() == [f"{alice.name}: still arrives"]


def test_the_run_loop_stops_when_asked(room: Room) -> None:
    alice, bob = room.member("alice"), room.member("bob")
    room.relay.accept(
        Inbound(
            channel=room.channel,
            sender=Sender(address=alice.number),
            dedup_key="k2",
            text="sent by the loop",
            ref="2",
        )
    )

    async def main() -> None:
        stop = anyio.Event()
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(room.deliverer.run, stop, 0.01)
                while len(bob.inbox) == bob.seen:
                    await anyio.sleep(0.01)
                stop.set()

    anyio.run(main)
    assert bob.new() == [f"{alice.name}: sent by the loop"]
