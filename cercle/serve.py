"""Running the long-lived processes: web (uvicorn), worker, or both in one event loop."""

from __future__ import annotations

import logging
import signal

import anyio
import uvicorn

from cercle.bootstrap import bootstrap
from cercle.settings import Settings
from cercle.web import create_app
from cercle.worker import run_worker
from relay.storage import upgrade

log = logging.getLogger(__name__)


def serve(settings: Settings, *, web: bool, worker: bool) -> None:
    """Run the chosen parts until SIGINT/SIGTERM."""
    app = bootstrap(settings)
    upgrade(app.engine)
    if worker and app.providers.signal is not None:
        # Say clearly, at start, if signal-cli-rest-api is unreachable or in the wrong mode.
        about = anyio.run(app.providers.signal.client.check)
        log.info("signal-cli-rest-api %s in %s mode", about.version, about.mode)

    async def main() -> None:
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            if worker:
                tg.start_soon(run_worker, app, stop)
            if web:
                config = uvicorn.Config(
                    create_app(app),
                    host="0.0.0.0",  # noqa: S104 - a server behind the platform's router
                    port=settings.port,
                    log_config=None,
                    access_log=False,
                    proxy_headers=True,
                )
                # uvicorn handles SIGINT/SIGTERM; when it stops, the worker stops with it.
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
