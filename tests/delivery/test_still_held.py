"""The pre-send check that keeps a removed message's claimed copies unsent (delivery/recall)."""

from __future__ import annotations

import anyio
import pytest

from relay.delivery.recall import StillHeld

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_sends_starting_together_share_one_query() -> None:
    queries: list[list[int]] = []

    def check(ids: list[int]) -> set[int]:
        queries.append(sorted(ids))
        return {i for i in ids if i != 3}  # row 3 was removed meanwhile

    held = StillHeld(check)
    answers: dict[int, bool] = {}

    async def one(row_id: int) -> None:
        answers[row_id] = await held.holds(row_id)

    async with anyio.create_task_group() as tg:
        for row_id in range(1, 17):
            tg.start_soon(one, row_id)

    assert answers == {i: i != 3 for i in range(1, 17)}
    assert queries == [list(range(1, 17))]


async def test_a_failing_check_lets_the_copy_go() -> None:
    def check(ids: list[int]) -> set[int]:
        raise OSError("database unreachable")

    assert await StillHeld(check).holds(7) is True
