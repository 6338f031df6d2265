"""Copies stored by a worker in another process reach connected browsers at once: PostgreSQL
wakes the web process with NOTIFY, SQLite by a short poll."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from relay.doors import CopyKind
from relay.service.web_seats import WebStore
from relay.storage.engine import make_engine
from tests.web.door import Door, run_door

pytestmark = pytest.mark.anyio


@pytest.fixture
async def served(db_url: str, tmp_path: Path) -> AsyncIterator[Door]:
    """The web door on each backend in turn."""
    async for door in run_door(tmp_path, db_url):
        yield door


async def test_a_copy_from_another_process_reaches_a_connected_member(
    served: Door, db_url: str
) -> None:
    door = served
    web = await door.join()
    await door.welcomed(web)
    assert door.app.providers.web is not None
    seat = await anyio.to_thread.run_sync(door.app.providers.web.store.authenticate, web.token)
    assert seat is not None and seat.address is not None
    address = seat.address
    # Another process: its own engine, and no way to poke this one's hub.
    engine = make_engine(db_url)
    other = WebStore(engine, door.app.keys, door.app.clock)
    started = time.monotonic()

    await anyio.to_thread.run_sync(
        lambda: other.put(address, CopyKind.MESSAGE, "from another process")
    )

    await door.until(lambda: "from another process" in web.texts, timeout=3)
    assert time.monotonic() - started < 1.0
    engine.dispose()
