"""The ``worker`` process: delivery, receive loops and scheduled jobs, until stopped."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

import anyio

from cercle.bootstrap import App
from cercle.providers import (
    learn_signal_accounts,
    purge_twilio_records,
    signal_receiver,
    sms_inbox,
)
from relay.delivery.lease import hold_lease, lease_name
from relay.errors import DeliveryError
from relay.inbound import join_notices
from relay.privacy import retention
from relay.service.jobs import run_due

log = logging.getLogger(__name__)

Loop = Callable[[anyio.Event], Coroutine[Any, Any, None]]
JOBS_EVERY = 60.0  # seconds between rounds of scheduled jobs (reminders are due to the minute)
ACCOUNTS_EVERY = 300.0  # seconds between looks for Signal members without an account id


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

        async def purge(stop: anyio.Event) -> None:
            await purge_twilio_records(app.providers, app.relay, stop)

        async def sms_inbox_loop(stop: anyio.Event) -> None:
            await sms_inbox(app.providers, app.relay, stop)

        loops.extend((purge, sms_inbox_loop))
    if app.providers.web is not None:
        # Web copies whose timer passed, even when no web process runs (issue 14).
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

    async def purge(stop: anyio.Event) -> None:
        while not stop.is_set():
            try:
                await anyio.to_thread.run_sync(store.purge)
            except Exception:
                log.exception("web purge round failed (ref %s)", secrets.token_hex(4))
            with anyio.move_on_after(JOBS_EVERY):
                await stop.wait()

    return purge


def retention_policy(app: App) -> retention.RetentionPolicy:
    """Retention settings: audit period from settings; flood counters outlive their window."""
    s = app.settings
    return retention.RetentionPolicy(
        audit_days=s.audit_retention_days,
        flood_keep=max(timedelta(days=1), timedelta(seconds=2 * s.flood_window)),
    )


def retention_loop(app: App, every: float = 60.0) -> Loop:
    """Run the retention jobs every ``every`` seconds (message bodies are wiped at the latest
    that long after their last copy is final); a failed round never ends the loop."""
    policy = retention_policy(app)

    def run_once() -> retention.PurgeReport:
        return retention.purge(app.engine, app.clock.now(), policy)

    return periodic(every, run_once, "retention round")


def scheduled_jobs(app: App, every: float = JOBS_EVERY) -> Loop:
    """Session reminders, end-of-group notices and closings, expiry purges (relay/service/jobs.py).

    Safe on several workers at once: each reminder and notice is claimed in the database.
    """

    return periodic(every, lambda: run_due(app.relay), "scheduled jobs")


def join_notices_loop(app: App, every: float = join_notices.EVERY) -> Loop:
    """Announce joins once they are quiet (relay/inbound/join_notices.py). Safe on several workers:
    each group's pending joins are claimed by deleting them."""
    return periodic(
        every,
        lambda: join_notices.announce_due(app.engine, app.keys, app.clock.now()),
        "join notices",
    )


def periodic(every: float, work: Callable[[], object], what: str) -> Loop:
    """A loop running ``work`` (in a thread) every ``every`` seconds until stopped; a failed
    round is logged (``what`` names it) and never ends the loop."""

    async def loop(stop: anyio.Event) -> None:
        while not stop.is_set():
            try:
                await anyio.to_thread.run_sync(work)
            except Exception:
                log.exception("%s failed (ref %s)", what, secrets.token_hex(4))
            with anyio.move_on_after(every):
                await stop.wait()

    return loop


def signal_accounts_loop(app: App, every: float = ACCOUNTS_EVERY) -> Loop:
    """Learn the account id of Signal members enrolled by number without one (at start, then
    every ``every`` seconds); a failed round never ends the loop."""

    async def loop(stop: anyio.Event) -> None:
        while not stop.is_set():
            try:
                await learn_signal_accounts(app.providers, app.relay)
            except Exception:
                log.exception("signal account lookup round failed (ref %s)", secrets.token_hex(4))
            with anyio.move_on_after(every):
                await stop.wait()

    return loop


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
    owner = secrets.token_hex(8)

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
