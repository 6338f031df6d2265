"""Running the long-lived processes: web (uvicorn), worker, or both in one event loop."""

from __future__ import annotations

import asyncio
import logging
import signal

import anyio
import uvicorn

from cercle.bootstrap import bootstrap
from cercle.edge import server_config
from cercle.health import WrongDataKeyError, require_data_key
from cercle.settings import Settings
from cercle.web import create_app
from cercle.worker import run_worker
from relay.storage.engine import upgrade

log = logging.getLogger(__name__)


def serve(settings: Settings, *, web: bool, worker: bool) -> None:
    """Run the chosen parts until SIGINT/SIGTERM."""
    app = bootstrap(settings)
    try:
        # Before migrations or anything else writes: a wrong key must touch nothing.
        require_data_key(app.engine, app.keys)
    except WrongDataKeyError:
        app.close()
        raise
    upgrade(app.engine)

    async def main() -> None:
        if worker and app.providers.signal is not None:
            # Say clearly, at start, if the way to Signal is unreachable or in the wrong mode.
            # (In this event loop: the client's connections belong to the loop that made them.)
            about = await app.providers.signal.client.check()
            log.info("signal service %s in %s mode", about.version, about.mode)
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            if worker:
                tg.start_soon(run_worker, app, stop)
            if web:
                config = server_config(
                    create_app(app),
                    host="0.0.0.0",  # noqa: S104 - a server behind the platform's router
                    port=settings.port,
                )
                # uvicorn captures SIGINT/SIGTERM while it serves, then re-raises them to the
                # handler it found: make that ours, so the worker also stops gracefully.
                loop = asyncio.get_running_loop()
                for signum in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(signum, lambda *_: loop.call_soon_threadsafe(stop.set))
                await uvicorn.Server(config).serve()
                stop.set()
            else:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        stop.set()
                        break
            tg.cancel_scope.deadline = anyio.current_time() + 10

    try:
        anyio.run(main)
    finally:
        app.close()
