"""Singleton leases: at most one process in the deployment runs a given loop at a time.

Used for the Signal receive loop (one websocket per number: two receivers would split the
messages between them, and signal-cli drops what arrives while none is attached). A lease is
one ``singleton_lease`` row taken and renewed with single atomic statements, so it works the
same on SQLite and PostgreSQL. The holder renews it well before it expires; if renewal keeps
failing, the body is cancelled before the lease can expire, so two holders never overlap.
Clocks of the processes must agree to within a small fraction of the TTL (NTP).
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import anyio
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from relay.clock import Clock, SystemClock
from relay.storage.crypto import DataKeys
from relay.storage.engine import is_postgres, transaction
from relay.storage.models import SingletonLease

log = logging.getLogger(__name__)


def lease_name(keys: DataKeys, kind: str, address: str) -> str:
    """A lease name for one sender (e.g. a Signal number) that does not reveal it."""
    return f"{kind}:{keys.lookup_hash(address, 'lease')[:40]}"


def owner_id() -> str:
    """An owner name for this process that lets a successor on the same host see it died.

    ``p:SPACE:PID:RANDOM``: SPACE is a short hash of the host name, its boot and its pid
    namespace (nothing about the machine is stored in clear). See :func:`reclaim_from_dead`.
    """
    return f"p:{_pid_space()}:{os.getpid()}:{secrets.token_hex(8)}"


def _pid_space() -> str:
    """A short hash naming where our process ids mean something: the host, this boot, and
    (on Linux) the pid namespace, so two containers never take each other's pids for theirs."""
    parts = [socket.gethostname()]
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii"))
        parts.append(str(Path("/proc/self/ns/pid").readlink()))
    except OSError:
        parts.append("")  # not Linux: the host name alone
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def dead_here(owner: str) -> bool:
    """Whether ``owner`` (from :func:`owner_id`) was a process of our pid namespace, on this
    host and boot, that is gone."""
    parts = owner.split(":")
    if len(parts) != 4 or parts[0] != "p" or not parts[2].isdigit():
        return False
    mine = owner_id().split(":")
    pid = int(parts[2])
    if parts[1] != mine[1] or pid == os.getpid():
        # Another host, or our own pid (several holders in one process, in tests): only the
        # lease's expiry can tell.
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists (another user's process): alive as far as we can tell
    return False


def reclaim_from_dead(engine: Engine, name: str) -> bool:
    """Free ``name`` if its holder was a process of this host that no longer exists (killed,
    crashed), so its restarted successor takes over at once instead of after the TTL. A pid
    reused by another process just means waiting for the TTL, as on another host."""
    with Session(engine) as s:
        owner = s.execute(
            select(col(SingletonLease.owner)).where(col(SingletonLease.name) == name)
        ).scalar()
    if owner is None or not dead_here(owner):
        return False
    release(engine, name, owner)
    log.info("lease freed: its holder on this host is gone (%s)", name.split(":", 1)[0])
    return True


def try_acquire(engine: Engine, name: str, owner: str, ttl: float, now: datetime) -> bool:
    """Take or renew ``name`` for ``owner`` if it is free, expired, or already ours."""
    expires = now + timedelta(seconds=ttl)
    table = SingletonLease.__table__  # type: ignore[attr-defined]
    insert = pg_insert(table) if is_postgres(engine) else sqlite_insert(table)
    stmt = (
        insert.values(name=name, owner=owner, expires_at=expires)
        .on_conflict_do_update(
            index_elements=["name"],
            set_={"owner": owner, "expires_at": expires},
            where=(table.c.expires_at <= now) | (table.c.owner == owner),
        )
        .returning(table.c.owner)
    )
    with transaction(engine) as s:
        got = s.execute(stmt).scalar()
    return got == owner


def renew(engine: Engine, name: str, owner: str, ttl: float, now: datetime) -> bool:
    """Extend our lease; ``False`` if someone else holds it now."""
    with transaction(engine) as s:
        won = s.execute(
            update(SingletonLease)
            .where(col(SingletonLease.name) == name, col(SingletonLease.owner) == owner)
            .values(expires_at=now + timedelta(seconds=ttl))
            .returning(col(SingletonLease.name))
        ).scalar()
    return won is not None


def release(engine: Engine, name: str, owner: str) -> None:
    """Give the lease up at once (if we still hold it), so a standby takes over quickly."""
    with transaction(engine) as s:
        s.execute(
            delete(SingletonLease).where(
                col(SingletonLease.name) == name, col(SingletonLease.owner) == owner
            )
        )


@dataclass
class Lease:
    """A held lease, as seen by the body of :func:`hold_lease`."""

    name: str
    owner: str
    held_until: datetime
    lost: bool = False


@asynccontextmanager
async def hold_lease(
    engine: Engine,
    name: str,
    owner: str,
    ttl: float = 30.0,
    *,
    clock: Clock | None = None,
    poll: float | None = None,
) -> AsyncIterator[Lease]:
    """Wait until ``name`` is ours, then run the body while renewing it.

    The body is cancelled if the lease is lost or cannot be renewed in time (it then ends
    quietly with ``lease.lost`` set); the lease is released when the body ends.
    """
    clock = clock or SystemClock()
    step = ttl / 4  # renew four times per TTL; give up a quarter TTL before expiry
    poll = poll if poll is not None else step
    while True:
        if await anyio.to_thread.run_sync(try_acquire, engine, name, owner, ttl, clock.now()):
            break
        if await anyio.to_thread.run_sync(reclaim_from_dead, engine, name):
            continue
        await anyio.sleep(poll)  # polling: another process holds it, maybe on another host
    lease = Lease(name, owner, clock.now() + timedelta(seconds=ttl))
    log.info("lease acquired (%s)", name.split(":", 1)[0])
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_keep, engine, lease, ttl, clock, tg.cancel_scope)
            try:
                yield lease
            finally:
                tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(release, engine, name, owner)
        log.info("lease released (%s)", name.split(":", 1)[0])


async def _keep(
    engine: Engine, lease: Lease, ttl: float, clock: Clock, scope: anyio.CancelScope
) -> None:
    step = ttl / 4
    margin = timedelta(seconds=step)
    while True:
        await anyio.sleep(step)
        now = clock.now()
        try:
            ok = await anyio.to_thread.run_sync(renew, engine, lease.name, lease.owner, ttl, now)
        except Exception:  # noqa: BLE001 - a database hiccup: retry until the deadline
            log.warning("lease renewal failed; will retry")
            ok = None
        if ok:
            lease.held_until = now + timedelta(seconds=ttl)
        elif ok is False or clock.now() >= lease.held_until - margin:
            lease.lost = True
            log.warning("lease lost (%s); stopping its loop", lease.name.split(":", 1)[0])
            scope.cancel()
            return
