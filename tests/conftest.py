"""Shared fixtures: a room per test, with the privacy invariants checked afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.room import Room


@pytest.fixture
def room(tmp_path: Path) -> Iterator[Room]:
    """A group called *mardi* in English with a one-day timer, on the sandbox transport."""
    r = Room(tmp_path)
    yield r
    r.check_invariants()


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio."""
    return "asyncio"
