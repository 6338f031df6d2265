"""Run the fake daemon as its own process (see the package docstring)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import uvicorn

from tests.fakes.signal_cli_daemon.control import control_app
from tests.fakes.signal_cli_daemon.daemon import MODES, FakeSignalCliDaemon
from tests.fakes.signal_server import ORG_NUMBER


async def main(args: argparse.Namespace) -> None:
    fake = FakeSignalCliDaemon(args.account, receive_mode=args.receive_mode)
    fake._loop = asyncio.get_running_loop()
    if args.socket:
        server = await asyncio.start_unix_server(fake.serve_connection, path=args.socket)
        fake.target = f"unix:{args.socket}"
    else:
        host, _, port = args.tcp.rpartition(":")
        server = await asyncio.start_server(fake.serve_connection, host, int(port))
        fake.target = f"tcp://{args.tcp}"
    tasks = [asyncio.ensure_future(server.serve_forever())]
    if args.control:
        host, _, port = args.control.rpartition(":")
        config = uvicorn.Config(
            control_app(fake), host=host, port=int(port), log_config=None, access_log=False
        )
        tasks.append(asyncio.ensure_future(uvicorn.Server(config).serve()))
    print("ready", flush=True)
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="fake signal-cli daemon")
    parser.add_argument("-a", "--account", default=ORG_NUMBER)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp")
    where.add_argument("--socket", type=Path)
    parser.add_argument("--receive-mode", choices=MODES, default="on-start")
    parser.add_argument("--control", help="host:port of the test-only control API")
    asyncio.run(main(parser.parse_args()))
