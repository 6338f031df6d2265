"""The worker's periodic jobs: did each run lately, and on time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from relay.language.i18n import TN, Joined, Renderable, T
from relay.storage import job_runs

if TYPE_CHECKING:
    pass
from cercle.health.finding import Finding, aware, duration

# A periodic job is late when its last round is older than this many periods (and this long):
# rounds take time, and a worker restarting during a deploy should not page anyone.
JOBS_LATE_PERIODS, JOBS_LATE_AT_LEAST = 5, timedelta(minutes=10)


def check_jobs(engine: Engine, now: datetime) -> Finding:
    """When each periodic job of the worker (retention, scheduled jobs, ...) last finished a
    round: late or failed last time is a warning; no job ever recorded means no worker ran."""
    runs = job_runs.last_runs(engine)
    if not runs:
        return Finding(
            "jobs",
            "skip",
            T("No worker has run yet."),
            T("Start one (`cercle worker` or `cercle run`): it runs retention and scheduled jobs."),
        )
    detail: dict[str, object] = {}
    problems: list[Renderable] = []
    for run in runs:
        age = max(0.0, (now - aware(run.finished_at)).total_seconds())
        late = age > max(JOBS_LATE_PERIODS * run.every_seconds, JOBS_LATE_AT_LEAST.total_seconds())
        detail[run.job] = {
            "age_seconds": round(age),
            "ok": run.ok,
            "every_seconds": run.every_seconds,
        }
        if not run.ok:
            problems.append(T("{job} failed {age} ago", job=run.job, age=duration(age)))
        elif late:
            problems.append(T("{job} last ran {age} ago", job=run.job, age=duration(age)))
    if problems:
        return Finding(
            "jobs",
            "warn",
            T("Periodic jobs late or failing: {jobs}.", jobs=Joined(tuple(problems), "; ")),
            T(
                "Check that a worker runs (`cercle worker` or `cercle run`); a failed round logs "
                "`JOB round failed` with a reference: report it. `cercle purge` runs retention "
                "now."
            ),
            detail,
        )
    on_time = TN("{n} periodic job ran on time.", "{n} periodic jobs ran on time.", len(runs))
    return Finding("jobs", "ok", on_time, None, detail)
