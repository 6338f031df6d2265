"""The ``web`` process: one ASGI app for Twilio's webhooks and status callbacks, the web door
(members who joined from a private link), the staff console at ``/staff``, and ``/health``."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bots.web.routes import web_routes
from cercle.bootstrap import App
from cercle.console.web import console_mount
from cercle.providers import twilio_routes, web_door

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024  # Twilio webhooks are a few KB; anything bigger is not for us
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "cache-control": "no-store",
    "strict-transport-security": "max-age=31536000",
}


class Guard:
    """Limits request size, adds security headers, and never lets a stack trace out.

    Every answer, including the ones Guard makes itself (413, 500), carries the headers. An
    exception from the app is answered here with a reference and logged by type only: it is
    not re-raised, because the server would then log its traceback, whose text can quote a
    number or a message.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                # A page that sets its own policy (the staff console's, the web door's CSP)
                # keeps it.
                present = {k.lower() for k, _ in headers}
                headers.extend(
                    (k.encode(), v.encode())
                    for k, v in SECURITY_HEADERS.items()
                    if k.encode() not in present
                )
                message["headers"] = headers
            await send(message)

        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
            await PlainTextResponse("request too large", 413)(scope, receive, with_headers)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY:
                raise _TooLargeError
            return message

        try:
            await self.app(scope, limited, with_headers)
        except _TooLargeError:
            if not started:
                await PlainTextResponse("request too large", 413)(scope, receive, with_headers)
        except Exception as exc:  # noqa: BLE001 - answered and logged here, never re-raised
            ref = secrets.token_hex(4)
            log.error("web request failed: %s (ref %s)", type(exc).__name__, ref)  # noqa: TRY400
            if not started:
                response = PlainTextResponse(f"internal error (ref {ref})", status_code=500)
                await response(scope, receive, with_headers)


class _TooLargeError(Exception):
    pass


def create_app(app: App, extra_routes: list[BaseRoute] | None = None) -> Starlette:
    """The ASGI app: health, plus the routes of each configured webhook transport."""

    async def health(_: Request) -> Response:
        try:
            with app.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - a health check reports, it does not raise
            log.warning("health: database unreachable")
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def server_error(_: Request, exc: Exception) -> Response:
        log.error("web request failed: %s", type(exc).__name__)
        return PlainTextResponse("internal error", status_code=500)

    door = web_door(app.providers, app.relay)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # The web door's hub wakes connected web members while the app serves.
        async with anyio.create_task_group() as tg:
            stop = anyio.Event()
            if door is not None:
                tg.start_soon(door.hub.run, stop)
            yield
            stop.set()
            tg.cancel_scope.cancel()

    routes: list[BaseRoute] = [
        Route("/health", health),
        *twilio_routes(app.providers, app.relay),
        *(web_routes(door) if door is not None else []),
        *(extra_routes or []),
    ]
    console = console_mount(app)  # the staff console at /staff
    if console is not None:
        routes.append(console)
    starlette = Starlette(
        routes=routes,
        middleware=[Middleware(Guard)],
        lifespan=lifespan,
        exception_handlers={Exception: server_error},
    )
    starlette.state.web_door = door  # its hub's figures, for health and benchmarks
    return starlette
