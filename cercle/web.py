"""The ``web`` process: one ASGI app for Twilio's webhooks and status callbacks, the web door
(members who joined from a private link), the staff console at ``/staff``, and ``/health``."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import anyio
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bots.web.photos import upload_limit
from bots.web.routes import web_routes
from cercle.bootstrap import App
from cercle.bounds import oversized_number
from cercle.console.web import console_mount
from cercle.edge import MAX_HEADER_BYTES
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
    """Checks the Host, limits request size and numbers, adds security headers, and never lets
    a stack trace out.

    With ``PUBLIC_BASE_URL`` set, only its host is served (421 otherwise; ``/health`` answers any
    host, for the platform's probes): a forged Host must not reach a page that writes an address.
    Every answer, including the ones Guard makes itself (400, 413, 421, 500), carries the headers.
    An exception from the app is answered here with a reference and logged by type only: it is
    not re-raised, because the server would then log its traceback, whose text can quote a
    number or a message.
    """

    def __init__(self, app: ASGIApp, public_base_url: str | None = None) -> None:
        self.app = app
        self.hosts = served_hosts(public_base_url)

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

        raw = scope.get("headers", [])
        if sum(len(k) + len(v) + 4 for k, v in raw) + len(scope.get("raw_path", b"")) > (
            MAX_HEADER_BYTES
        ):
            # h11 bounds a header block that arrives in pieces; one that arrives whole is
            # measured here.
            await PlainTextResponse("request headers too large", 431, headers=CLOSE)(
                scope, receive, with_headers
            )
            return
        headers = dict(raw)
        if self.hosts is not None and scope["path"] != "/health":
            host = headers.get(b"host", b"").decode("latin-1").lower()
            if host not in self.hosts:
                log.info("web request refused: not for this site's host")
                await PlainTextResponse("misdirected request", 421, headers=CLOSE)(
                    scope, receive, with_headers
                )
                return
        if oversized_number(scope.get("query_string", b"")):
            await PlainTextResponse("number out of bounds", 400)(scope, receive, with_headers)
            return
        # A photo from the web door's page may be larger; that route refuses an oversize
        # one from its declared size, in the member's language, before reading it.
        upload = upload_limit(scope)
        limit = upload or MAX_BODY
        declared = headers.get(b"content-length")
        too_big = declared is not None and (not declared.isdigit() or int(declared) > limit)
        if too_big and upload is None:
            # Refused before a byte of the body is read; the connection closes with the answer.
            await PlainTextResponse("request too large", 413, headers=CLOSE)(
                scope, receive, with_headers
            )
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise _TooLargeError
            return message

        try:
            await self.app(scope, limited, with_headers)
        except _TooLargeError:
            if not started:
                await PlainTextResponse("request too large", 413, headers=CLOSE)(
                    scope, receive, with_headers
                )
        except Exception as exc:  # noqa: BLE001 - answered and logged here, never re-raised
            ref = secrets.token_hex(4)
            log.error("web request failed: %s (ref %s)", type(exc).__name__, ref)  # noqa: TRY400
            if not started:
                response = PlainTextResponse(f"internal error (ref {ref})", status_code=500)
                await response(scope, receive, with_headers)


class _TooLargeError(Exception):
    pass


CLOSE = {"connection": "close"}
LOOPBACK = ("localhost", "127.0.0.1", "[::1]")


def served_hosts(public_base_url: str | None) -> frozenset[str] | None:
    """The ``Host`` values a request may carry: ``PUBLIC_BASE_URL``'s host, with or without its
    default port, or ``None`` (any) when it is not set (the sandbox, a webhook-free test). A
    loopback base (a rehearsal on one machine) accepts any loopback name on the same port."""
    if not public_base_url:
        return None
    parts = urlsplit(public_base_url)
    name = (parts.hostname or "").lower()
    if ":" in name:
        name = f"[{name}]"  # an IPv6 address is written in brackets in Host
    port = parts.port or (443 if parts.scheme == "https" else 80)
    names = LOOPBACK if name in LOOPBACK else (name,)
    hosts = {f"{n}:{port}" for n in names}
    if parts.port is None or parts.port == (443 if parts.scheme == "https" else 80):
        hosts.update(names)
    return frozenset(hosts)


async def _to_console(_: Request) -> Response:
    return RedirectResponse("/staff/", 307)


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
    # A bare /staff goes to /staff/ by a relative redirect: Starlette's own trailing-slash
    # redirects are off, as they write the request's Host into the address.
    routes.append(Route("/staff", _to_console))
    starlette = Starlette(
        routes=routes,
        middleware=[Middleware(Guard, public_base_url=app.settings.public_base_url)],
        lifespan=lifespan,
        exception_handlers={Exception: server_error},
    )
    starlette.router.redirect_slashes = False
    starlette.state.web_door = door  # its hub's figures, for health and benchmarks
    return starlette
