"""``/delete NAME all`` after a flood: how long the command's transaction takes, and how many
SQL statements it runs, for an intruder's messages already delivered to a group.

    PYTHONPATH=. .venv/bin/python -m bench.delete_all [--members 20] [--messages 100]
        [--database-url URL]

With ``--database-url`` (a PostgreSQL server), it runs in a fresh database dropped afterwards.
The group is on the sandbox transport (every copy can be deleted); delivery is held while the
command runs, so the figure is the command alone, not the deletes going out.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from sqlalchemy.engine import make_url

from bench.support import count_statements
from relay.safety.flood import FloodLimit
from tests import pg
from tests.room import Room


def measure(members: int, messages: int, database_url: str | None) -> tuple[float, int, str]:
    """Seconds and SQL statements of one ``/delete NAME all``, and the facilitator's reply."""
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        if database_url:  # a fresh database on that server, dropped afterwards
            database_url = stack.enter_context(pg.fresh_database(make_url(database_url)))
        room = Room(Path(tmp), database_url=database_url)
        room.relay.flood_limit = FloodLimit(10**9, 60)  # the flood guard would hold most
        fac = room.facilitator("fac")
        for i in range(members - 2):
            room.member(f"m{i}")
        intruder = room.member("intruder")
        for i in range(messages):
            intruder.says(f"flood {i}")
        statements = count_statements(room.engine)
        with room.holding():
            before = statements()
            t0 = time.perf_counter()
            fac.says(f"/delete {intruder.name} all")
            seconds = time.perf_counter() - t0
            ran = statements() - before
        reply = fac.last
        room.engine.dispose()
    return seconds, ran, reply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    seconds, ran, reply = measure(args.members, args.messages, args.database_url)
    copies = args.messages * (args.members - 1)
    print(f"{args.messages} messages, {copies} copies: {seconds:.2f} s, {ran} SQL statements")
    print(reply)


if __name__ == "__main__":
    main()
