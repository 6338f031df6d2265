"""Fixtures for the web door: a served deployment per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.web.door import Door, run_door


@pytest.fixture
async def door(tmp_path: Path) -> AsyncIterator[Door]:
    async for d in run_door(tmp_path):
        yield d
