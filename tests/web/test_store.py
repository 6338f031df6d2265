"""The web inbox: sealed copies, wiped once fetched or when the timer passes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from relay.clock import FakeClock
from relay.doors import CopyKind, new_address, new_token
from relay.service.web_seats import WebStore
from relay.storage.crypto import DataKeys, generate_key
from relay.storage.engine import make_engine, transaction, upgrade
from relay.storage.models import Group, Member, MemberState, WebCopy, WebSeat


@pytest.fixture
def store(tmp_path: Path) -> WebStore:
    engine = make_engine(f"sqlite:///{tmp_path / 'web.db'}")
    upgrade(engine)
    return WebStore(engine, DataKeys.from_text(generate_key()), FakeClock())


def seat_in(store: WebStore, timer: int = 600) -> tuple[str, str]:
    """A member with a seat; returns (token, address)."""
    token, address = new_token(), new_address()
    now = store.clock.now()
    with transaction(store.engine) as s:
        group = Group(name=f"g{address[:6]}", created_at=now)
        s.add(group)
        s.flush()
        member = Member(
            group_id=group.id or 0,
            channel="web",
            state=MemberState.ACTIVE,
            pseudonym="Willow",
            created_at=now,
        )
        s.add(member)
        s.flush()
        store.new_seat(s, member.id or 0, token, address, timer, now)
    return token, address


def test_a_copy_is_stored_sealed_and_read_back_once_opened(store: WebStore) -> None:
    token, address = seat_in(store)
    store.put(address, CopyKind.MESSAGE, "Willow: a secret sentence")
    seat = store.authenticate(token)
    assert seat is not None

    copies = store.fetch(seat.seat_hash)

    assert [c.text for c in copies] == ["Willow: a secret sentence"]
    with Session(store.engine) as s:
        row = s.exec(select(WebCopy)).one()
    assert row.payload_enc is not None and b"secret" not in row.payload_enc


def test_acknowledged_copies_are_wiped(store: WebStore) -> None:
    token, address = seat_in(store)
    for text in ("one", "two", "three"):
        store.put(address, CopyKind.MESSAGE, text)
    seat = store.authenticate(token)
    assert seat is not None
    copies = store.fetch(seat.seat_hash)

    store.ack(seat.seat_hash, copies[1].id)

    assert [c.text for c in store.fetch(seat.seat_hash)] == ["three"]


def test_copies_leave_when_the_timer_passes_even_unread(store: WebStore) -> None:
    token, address = seat_in(store, timer=600)
    store.put(address, CopyKind.MESSAGE, "soon gone")
    seat = store.authenticate(token)
    assert seat is not None
    assert isinstance(store.clock, FakeClock)

    store.clock.advance(seconds=601)

    assert store.fetch(seat.seat_hash) == []
    assert store.purge() == 1
    with Session(store.engine) as s:
        assert s.exec(select(WebCopy)).all() == []


def test_a_delete_wipes_a_copy_not_yet_fetched_and_tells_the_page(store: WebStore) -> None:
    token, address = seat_in(store)
    ref = store.put(address, CopyKind.MESSAGE, "regretted")
    store.put(address, CopyKind.DELETE, target_ref=ref)
    seat = store.authenticate(token)
    assert seat is not None

    copies = store.fetch(seat.seat_hash)

    assert [(c.kind, c.target_ref) for c in copies] == [(CopyKind.DELETE, ref)]


def test_the_token_is_stored_only_as_a_keyed_hash(store: WebStore) -> None:
    token, _ = seat_in(store)

    with Session(store.engine) as s:
        seat = s.exec(select(WebSeat)).one()
    assert token not in seat.token_hash and len(seat.token_hash) == 64
    assert store.authenticate(token) is not None
    assert store.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert store.authenticate("x" * 500) is None


def test_tokens_are_256_random_bits() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(t) >= 43 for t in tokens)  # 32 bytes, URL-safe base64


def test_copies_per_seat_stay_in_order(store: WebStore) -> None:
    token, address = seat_in(store)
    for i in range(30):
        store.put(address, CopyKind.MESSAGE, f"m{i}")
    seat = store.authenticate(token)
    assert seat is not None

    assert [c.text for c in store.fetch(seat.seat_hash)] == [f"m{i}" for i in range(30)]


def test_a_removed_members_quiet_seat_is_purged(store: WebStore) -> None:
    token, _ = seat_in(store)
    with transaction(store.engine) as s:
        member = s.exec(select(Member)).one()
        member.state = MemberState.REMOVED
        s.add(member)
    assert isinstance(store.clock, FakeClock)
    store.clock.advance(hours=2)

    store.purge()

    assert store.authenticate(token) is None


def test_a_seat_whose_member_is_removed_says_so(store: WebStore) -> None:
    token, _ = seat_in(store)
    seat = store.authenticate(token)
    assert seat is not None and not seat.removed
    with transaction(store.engine) as s:
        member = s.exec(select(Member)).one()
        member.state = MemberState.REMOVED
        s.add(member)

    # The contract's Seat reads the state the core writes (relay/doors.py names no table).
    removed = store.authenticate(token)
    assert removed is not None and removed.removed
