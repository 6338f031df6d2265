"""The ``worker`` process: delivery, receive loops and scheduled jobs, until stopped."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any

import anyio

from cercle.bootstrap import App
from cercle.providers import (
    learn_signal_accounts,
    purge_twilio_round,
    signal_receiver,
    sms_inbox,
)
from relay.delivery.lease import hold_lease, lease_name, owner_id
from relay.errors import DeliveryError
from relay.inbound import join_notices
from relay.privacy import retention
from relay.service.jobs import run_due
from relay.storage import job_runs

log = logging.getLogger(__name__)

Loop = Callable[[anyio.Event], Coroutine[Any, Any, None]]
JOBS_EVERY = 60.0  # seconds between rounds of scheduled jobs (reminders are due to the minute)
ACCOUNTS_EVERY = 300.0  # seconds between looks for Signal members without an account id
RETENTION_EVERY = 60.0  # seconds between retention rounds
TWILIO_PURGE_EVERY = 30.0  # seconds between deletions of final message records at Twilio


def worker_loops(app: App) -> list[Loop]:
    """Every loop this process runs: delivery, each transport's receive loop, and purges."""
    loops: list[Loop] = []
    if app.deliverer is not None:
        loops.append(app.deliverer.run)
    receiver = signal_receiver(app.providers, app.relay)
    if receiver is not None:

        async def receive(stop: anyio.Event) -> None:
            async with anyio.create_task_group() as tg:
                tg.start_soon(receiver.run)
                await stop.wait()
                receiver.stop()

        # One receive loop per Signal number across every worker of the deployment.
        number = app.settings.signal_number or ""
        loops.append(singleton(app, lease_name(app.keys, "signal-receive", number), receive))
        loops.append(signal_accounts_loop(app))
    if app.providers.sms is not None:

        async def sms_inbox_loop(stop: anyio.Event) -> None:
            await sms_inbox(app.providers, app.relay, stop)

        loops.extend((twilio_purge_loop(app), sms_inbox_loop))
    if app.providers.web is not None:
        # Web copies whose timer passed, even when no web process runs.
        loops.append(singleton(app, "web-purge", web_purge_loop(app)))
    # Retention is idempotent, but one process doing it is enough.
    loops.append(singleton(app, "retention", retention_loop(app)))
    loops.append(scheduled_jobs(app))
    loops.append(join_notices_loop(app))
    return loops


def web_purge_loop(app: App) -> Loop:
    """Wipe web copies whose timer passed, every minute."""
    assert app.providers.web is not None  # noqa: S101 - checked by the caller
    store = app.providers.web.store
    return periodic(app, "web_purge", JOBS_EVERY, lambda: anyio.to_thread.run_sync(store.purge))


def retention_policy(app: App) -> retention.RetentionPolicy:
    """Retention settings: audit period from settings; flood counters outlive their window."""
    s = app.settings
    return retention.RetentionPolicy(
        audit_days=s.audit_retention_days,
        flood_keep=max(timedelta(days=1), timedelta(seconds=2 * s.flood_window)),
    )


def retention_loop(app: App, every: float = RETENTION_EVERY) -> Loop:
    """Run the retention jobs every ``every`` seconds (message bodies are wiped at the latest
    that long after their last copy is final); a failed round never ends the loop."""
    policy = retention_policy(app)

    def run_once() -> retention.PurgeReport:
        return retention.purge(app.engine, app.clock.now(), policy)

    return periodic(app, "retention", every, in_thread(run_once))


def scheduled_jobs(app: App, every: float = JOBS_EVERY) -> Loop:
    """Session reminders, end-of-group notices and closings, expiry purges (relay/service/jobs.py).

    Safe on several workers at once: each reminder and notice is claimed in the database.
    """

    return periodic(app, "scheduled_jobs", every, in_thread(lambda: run_due(app.relay)))


def join_notices_loop(app: App, every: float = join_notices.EVERY) -> Loop:
    """Announce joins once they are quiet (relay/inbound/join_notices.py). Safe on several workers:
    each group's pending joins are claimed by deleting them."""
    return periodic(
        app,
        "join_notices",
        every,
        in_thread(lambda: join_notices.announce_due(app.engine, app.keys, app.clock.now())),
    )


def twilio_purge_loop(app: App, every: float = TWILIO_PURGE_EVERY) -> Loop:
    """Delete message records at Twilio once they are final (cercle/providers.py)."""
    return periodic(
        app, "twilio_purge", every, lambda: purge_twilio_round(app.providers, app.relay)
    )


def signal_accounts_loop(app: App, every: float = ACCOUNTS_EVERY) -> Loop:
    """Learn the account id of Signal members enrolled by number without one (at start, then
    every ``every`` seconds)."""
    return periodic(
        app, "signal_accounts", every, lambda: learn_signal_accounts(app.providers, app.relay)
    )


def in_thread(work: Callable[[], object]) -> Callable[[], Awaitable[object]]:
    """``work`` (blocking: database work) as an awaitable run in a worker thread."""
    return lambda: anyio.to_thread.run_sync(work)


def periodic(app: App, job: str, every: float, work: Callable[[], Awaitable[object]]) -> Loop:
    """A loop running ``work`` every ``every`` seconds until stopped. A failed round is logged
    and never ends the loop; each round's end and outcome is recorded under ``job``
    (relay/storage/job_runs.py, read by the ``jobs`` health check)."""

    async def loop(stop: anyio.Event) -> None:
        while not stop.is_set():
            ok = True
            try:
                await work()
            except Exception:
                ok = False
                log.exception("%s round failed (ref %s)", job, secrets.token_hex(4))
            await _record(app, job, every, ok=ok)
            with anyio.move_on_after(every):
                await stop.wait()

    return loop


async def _record(app: App, job: str, every: float, *, ok: bool) -> None:
    try:
        await anyio.to_thread.run_sync(
            lambda: job_runs.record(app.engine, job, app.clock.now(), ok=ok, every=every)
        )
    except Exception:  # noqa: BLE001 - the database is down; the next round tries again
        log.warning("%s round not recorded (database unavailable)", job)


async def present_neutral_profile(app: App) -> bool:
    """Give the organization's Signal number its neutral name and avatar (from settings).

    A failure is logged and does not stop the worker: messages matter more than the profile.
    """
    if app.providers.signal is None:
        return False
    avatar_path = app.settings.profile_avatar
    avatar = await anyio.Path(avatar_path).read_bytes() if avatar_path is not None else None
    try:
        await app.providers.signal.client.set_profile(app.settings.profile_name, avatar)
    except DeliveryError as exc:
        log.warning("signal profile not set: %s", exc.reason)
        return False
    log.info("signal profile set (avatar: %s)", "yes" if avatar else "no")
    return True


def singleton(app: App, name: str, loop: Loop, ttl: float = 30.0) -> Loop:
    """Wrap ``loop`` so that only one process in the deployment runs it at a time.

    For receive loops (one Signal websocket per number). ``name`` must not contain a number
    in clear: use :func:`relay.delivery.lease.lease_name`. Standby workers wait for the lease
    and take over within ``ttl`` seconds if the holder dies.
    """
    owner = owner_id()

    async def guarded(stop: anyio.Event) -> None:
        while not stop.is_set():
            async with anyio.create_task_group() as tg:

                async def watch_stop() -> None:
                    await stop.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(watch_stop)
                async with hold_lease(app.engine, name, owner, ttl, clock=app.clock):
                    await loop(stop)
                tg.cancel_scope.cancel()

    return guarded


async def run_worker(app: App, stop: anyio.Event, extra: list[Loop] | None = None) -> None:
    """Run all loops until ``stop`` is set."""
    loops = [*worker_loops(app), *(extra or [])]
    await present_neutral_profile(app)
    log.info("worker started: %d loops", len(loops))
    async with anyio.create_task_group() as tg:
        for loop in loops:
            tg.start_soon(loop, stop)
    log.info("worker stopped")
