"""The test-only control channel of the fake daemon, as HTTP on its own port.

It is not part of signal-cli: real-process tests use it to make members write and to read
what their phones got. JSON in, JSON out:

- ``POST /members`` ``{"number", "uuid"?}``: a member (a phone) exists.
- ``POST /says`` ``{"number", "text"}``: that member writes to the org; answers the timestamp.
- ``GET /sent?to=NUMBER``: the texts the org sent that phone, in order.
- ``GET /state``: queue length, connections, counts.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.signal_cli_daemon.daemon import FakeSignalCliDaemon
from tests.fakes.signal_server import FakeMember


def control_app(fake: FakeSignalCliDaemon) -> Starlette:
    """The control API over ``fake`` (which must run on the same event loop)."""
    members: dict[str, FakeMember] = {}

    async def add_member(request: Request) -> JSONResponse:
        body: dict[str, Any] = await request.json()
        member = fake.member(body["number"], body.get("uuid"))
        members[body["number"]] = member
        return JSONResponse({"uuid": member.uuid})

    async def says(request: Request) -> JSONResponse:
        body: dict[str, Any] = await request.json()
        member = members.get(body["number"]) or fake.member(body["number"])
        members[body["number"]] = member
        ts = fake.next_timestamp()
        frame = member._envelope(ts, dataMessage=member._data(ts, message=body["text"]))
        fake._enqueue(frame)  # on the fake's own loop: no thread hop
        return JSONResponse({"timestamp": ts})

    async def sent(request: Request) -> JSONResponse:
        to = request.query_params["to"]
        return JSONResponse([m.message for m in fake.sent_to(to)])

    async def state(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "queued": fake.queued,
                "connected": fake.connected,
                "subscribed": fake.subscribed,
                "delivered": fake.frames_delivered,
                "dropped": fake.frames_dropped,
                "lost": fake.frames_lost,
                "receive_mode": fake.receive_mode,
            }
        )

    return Starlette(
        routes=[
            Route("/members", add_member, methods=["POST"]),
            Route("/says", says, methods=["POST"]),
            Route("/sent", sent, methods=["GET"]),
            Route("/state", state, methods=["GET"]),
        ]
    )
