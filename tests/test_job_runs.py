"""The worker records when each periodic job last finished a round; ``cercle doctor`` and the
console say when one is late or failed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from cercle.bootstrap import App, bootstrap
from cercle.health import check_jobs
from cercle.settings import Secret, Settings
from cercle.worker import periodic, worker_loops
from relay.clock import FakeClock
from relay.storage import job_runs
from relay.storage.crypto import generate_key
from relay.storage.engine import upgrade
from tests.cli_support import invoke


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    """A sandbox deployment (no provider) on a migrated database, with a clock tests move."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'w.db'}", data_key=Secret(generate_key())
    )
    wired = bootstrap(settings, transports={}, clock=FakeClock())
    upgrade(wired.engine)
    yield wired
    wired.close()


@pytest.mark.anyio
async def test_a_worker_records_each_periodic_job_when_it_finishes_a_round(app: App) -> None:
    stop = anyio.Event()
    expected = {"retention", "scheduled_jobs", "join_notices"}
    async with anyio.create_task_group() as tg:
        for loop in worker_loops(app):
            tg.start_soon(loop, stop)
        with anyio.fail_after(10):
            while {r.job for r in job_runs.last_runs(app.engine)} < expected:
                await anyio.sleep(0.05)
        stop.set()

    runs = {r.job: r for r in job_runs.last_runs(app.engine)}
    assert set(runs) == expected  # no SMS or Signal here: no Twilio clean-up, no lookups
    assert all(r.ok and r.finished_at == app.clock.now() for r in runs.values())
    assert runs["retention"].every_seconds == 60


@pytest.mark.anyio
async def test_a_failed_round_is_recorded_as_failed_and_the_loop_goes_on(app: App) -> None:
    rounds = 0

    async def broken() -> None:
        nonlocal rounds
        rounds += 1
        raise RuntimeError("the database said no")

    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(periodic(app, "retention", 0.01, broken), stop)
        with anyio.fail_after(10):
            while rounds < 2:
                await anyio.sleep(0.01)
        stop.set()

    finding = check_jobs(app.engine, app.clock.now())
    assert [r.ok for r in job_runs.last_runs(app.engine)] == [False]
    assert finding.status == "warn"
    assert "retention failed" in finding.text()[0]


def test_a_job_late_by_several_periods_is_a_warning_with_its_age(app: App) -> None:
    start = app.clock.now()
    job_runs.record(app.engine, "scheduled_jobs", start, ok=True, every=60)

    on_time = check_jobs(app.engine, start + timedelta(minutes=9))
    late = check_jobs(app.engine, start + timedelta(minutes=11))

    assert on_time.status == "ok"
    assert late.status == "warn"
    assert "scheduled_jobs last ran 11 min ago" in late.text()[0]
    assert late.detail["scheduled_jobs"] == {"age_seconds": 660, "ok": True, "every_seconds": 60}


def test_without_any_worker_the_jobs_are_not_checked(app: App) -> None:
    finding = check_jobs(app.engine, app.clock.now())

    assert finding.status == "skip"
    assert "cercle worker" in str(finding.text()[1])


def test_cercle_purge_records_its_run_and_doctor_shows_it(env: dict[str, str]) -> None:
    before = json.loads(invoke("doctor", "--json", "--offline")[1])
    assert invoke("purge")[0] == 0
    after = json.loads(invoke("doctor", "--json", "--offline")[1])

    jobs_before = next(f for f in before if f["check"] == "jobs")
    jobs_after = next(f for f in after if f["check"] == "jobs")
    assert jobs_before["status"] == "skip"
    assert jobs_after["status"] == "ok"
    assert jobs_after["detail"]["retention"]["ok"] is True
    assert jobs_after["detail"]["retention"]["age_seconds"] < 60


def test_each_round_overwrites_the_jobs_one_row_on_both_databases(db_url: str) -> None:
    from relay.storage.engine import make_engine

    engine = make_engine(db_url)
    first = FakeClock().now()
    job_runs.record(engine, "retention", first, ok=True, every=60)
    job_runs.record(engine, "retention", first + timedelta(minutes=1), ok=False, every=60)

    runs = job_runs.last_runs(engine)
    engine.dispose()

    assert [(r.job, r.finished_at, r.ok) for r in runs] == [
        ("retention", first + timedelta(minutes=1), False)
    ]
