"""A delivery worker process for reliability tests: ``python -m tests.delivery.worker_main``.

Bootstraps from the environment (``DATABASE_URL``, ``CERCLE_DATA_KEY``) like the real worker,
and delivers through :class:`HttpTransport` to ``FAKE_PROVIDER_URL`` until SIGTERM (or
SIGKILL, which is the point). ``CERCLE_TEST_LEASE`` sets the lease in seconds.
"""

from __future__ import annotations

import os
import signal
from datetime import timedelta

import anyio

from cercle.bootstrap import bootstrap
from cercle.settings import Settings
from relay.delivery.sender import DeliveryPolicy
from relay.language.texts import Texts
from relay.messages import Channel
from tests.delivery.http_transport import HttpTransport
from tests.delivery.seed import CONFIG


async def main() -> None:
    """Deliver until told to stop."""
    settings = Settings.from_env()
    policy = DeliveryPolicy(
        lease=timedelta(seconds=float(os.environ.get("CERCLE_TEST_LEASE", "2"))),
        base_backoff=0.2,
        max_backoff=1.0,
        max_attempts=int(os.environ.get("CERCLE_TEST_ATTEMPTS", "50")),
        batch=int(os.environ.get("CERCLE_TEST_BATCH", "20")),
        concurrency=8,
        rate_limit_pause=0.2,
    )
    transport = HttpTransport(os.environ["FAKE_PROVIDER_URL"])
    app = bootstrap(settings, transports={Channel.SANDBOX: transport}, policy=policy)
    app.relay.texts = Texts(CONFIG)
    assert app.deliverer is not None
    stop = anyio.Event()
    with anyio.open_signal_receiver(signal.SIGTERM) as signals:
        async with anyio.create_task_group() as tg:
            tg.start_soon(app.deliverer.run, stop, 0.05)
            async for _ in signals:
                stop.set()
                break


if __name__ == "__main__":
    anyio.run(main)
