"""The web door's pages and endpoints (Starlette).

``GET /j/<token>`` shows the welcome of a usable invite; ``POST /j/<token>`` (agreeing) makes a
seat and enrolls the member. ``GET /c`` is the chat page; ``GET /c/events`` streams copies as
Server-Sent Events; ``POST /c/send`` sends; ``POST /c/ack`` wipes what the browser has;
``POST /c/exit`` forgets the browser (quick exit).

Where the token travels. With script on, the browser keeps the token in ``sessionStorage``
(``localStorage`` only if "remember this device" was ticked) and sends it in an
``Authorization: Bearer`` header, which no other site can make a browser send: no CSRF. With
script off, it is in a cookie the page's script cannot read (``HttpOnly``), sent only to this
site's own requests (``SameSite=Strict``), over https (``Secure``), for the browser session
unless "remember" was ticked; the send form also carries a value derived from the token (a
keyed hash) that another site cannot know, and a foreign ``Origin`` is refused.

Logs never hold a code, a token, an IP address or a message.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import BaseRoute, Route

from bots.web.config import WebConfig
from bots.web.hub import Listener, PushHub
from bots.web.limits import ClientLimit
from bots.web.photo_routes import PhotoRoutes
from bots.web.photos import MAX_PHOTO_BYTES, is_multipart, photo_words
from bots.web.texts import page_words
from relay.doors import (
    FETCH_LIMIT,
    MAX_TEXT,
    Accept,
    CleanPhoto,
    Copy,
    CopyKind,
    Result,
    Seat,
    WebJoins,
    WebSeats,
    new_address,
    new_token,
)
from relay.language.durations import describe
from relay.language.i18n import LANGS
from relay.messages import Attachment, Channel, Inbound, Sender

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
COOKIE = "n"  # neutral name: a glance at the browser's cookies says nothing
MAX_POST = 16 * 1024
_NONCE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}


class _BadRequestError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@dataclass
class WebDoor:
    """Everything the routes share: the way in to the core (``accept``), what the door asks
    of the core (``links``: joining by a private link; ``store``: the seats and their sealed
    copies; ``clean``: its photo cleaner), the push hub and the limits."""

    accept: Accept
    links: WebJoins
    store: WebSeats
    hub: PushHub
    config: WebConfig
    clean: CleanPhoto  # the core's photo cleaner, for photos sent from the page
    joins: ClientLimit = field(init=False)
    failures: ClientLimit = field(init=False)
    env: Environment = field(init=False)

    def __post_init__(self) -> None:
        self.joins = ClientLimit(self.config.joins_per_hour)
        # Wrong tokens per client per hour: guessing 256 bits is hopeless anyway; this only
        # keeps someone from making the server hash tokens all day.
        self.failures = ClientLimit(600)
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
        )

    # --- responses ------------------------------------------------------------------------

    def csp(self) -> str:
        """Own resources only; forms post here, or go to the quick exit's page."""
        parts = urlsplit(self.config.exit_url)
        exit_origin = f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""
        return (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
            f"connect-src 'self'; form-action 'self' {exit_origin}; base-uri 'none'; "
            "frame-ancestors 'none'"
        ).replace("  ", " ")

    def page(self, name: str, lang: str, status: int = 200, **context: object) -> HTMLResponse:
        """Render a page in ``lang`` with the safety headers."""
        words = page_words(lang, timer=context.pop("timer", ""))
        html = self.env.get_template(f"{name}.html").render(
            lang=lang,
            title=self.config.title,
            exit_url=self.config.exit_url,
            page=name,
            w=words,
            p=photo_words(lang),
            max_text=MAX_TEXT,
            max_photo=MAX_PHOTO_BYTES,
            **context,
        )
        return HTMLResponse(html, status, headers=self.headers())

    def headers(self) -> dict[str, str]:
        """What every answer of the door carries (on top of the app's own)."""
        return {
            "content-security-policy": self.csp(),
            "cache-control": "no-store",
            "referrer-policy": "no-referrer",
            "x-robots-tag": "noindex, nofollow",
        }

    def gone(self, lang: str, key: str = "bad_link", status: int = 404) -> HTMLResponse:
        """The same page for every link or seat that does not work (nothing to learn)."""
        return self.page("gone", lang, status, message=page_words(lang)[key])

    def dead_link(self, lang: str) -> HTMLResponse:
        """The one answer for a join link that does not work, whatever the reason (unknown,
        expired, used, group closed, a client over its limit, a post from another site): the
        same page, words and status, so that nothing tells a guesser why."""
        return self.gone(lang, "bad_link", 404)

    # --- who is asking --------------------------------------------------------------------

    async def bearer(self, request: Request) -> Seat | None:
        """The seat of an ``Authorization: Bearer`` token."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        return await self._seat(request, token.strip())

    async def cookie(self, request: Request) -> tuple[Seat | None, str | None]:
        """The seat of the no-script cookie, and the token (to check the form key)."""
        token = request.cookies.get(COOKIE)
        if not token:
            return None, None
        return await self._seat(request, token), token

    async def _seat(self, request: Request, token: str) -> Seat | None:
        client = self.config.proxies.source(request)
        if self.failures.over(client):
            log.info("web request refused: too many unknown tokens from one client")
            return None
        seat = await anyio.to_thread.run_sync(self.store.authenticate, token)
        if seat is None:
            self.failures.allow(client)
            log.info("web request with an unknown token")
        return seat

    def foreign(self, request: Request) -> bool:
        """Whether a form post came from another site (``Origin`` names another site)."""
        origin = request.headers.get("origin")
        if origin in (None, "null"):
            return False
        own = {_origin(self.config.base_url), f"{request.url.scheme}://{request.url.netloc}"}
        return origin not in own


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _lang(value: str | None) -> str | None:
    return value if value in LANGS else None


async def _form(request: Request) -> dict[str, str]:
    """A small urlencoded form, or :class:`_BadRequestError` (413 too large, 415 other types)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_POST):
        raise _BadRequestError(413)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise _BadRequestError(415)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_POST:
            raise _BadRequestError(413)
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise _BadRequestError(400) from exc
    return {k: v[0] for k, v in parsed.items() if v}


class _Handlers:
    """The door's endpoints (one method each)."""

    def __init__(self, door: WebDoor) -> None:
        self.door = door
        self.links, self.store, self.hub, self.config = (
            door.links,
            door.store,
            door.hub,
            door.config,
        )
        self.photos = PhotoRoutes(door, _deliver)

    async def join_page(self, request: Request) -> Response:
        code = request.path_params["code"]
        asked = _lang(request.query_params.get("l"))
        if not await self._allowed(request):
            return self.door.dead_link(asked or "fr")
        welcome = await anyio.to_thread.run_sync(self.links.preview, code, asked)
        if welcome is None:
            return self.door.dead_link(asked or "fr")
        return self.door.page("join", welcome.lang, parts=welcome.parts, code=code)

    async def join(self, request: Request) -> Response:
        code = request.path_params["code"]
        try:
            form = await _form(request)
        except _BadRequestError as exc:
            return PlainTextResponse(str(exc.status), exc.status, headers=self.door.headers())
        asked = _lang(form.get("lang"))
        if self.door.foreign(request) or not await self._allowed(request):
            return self.door.dead_link(asked or "fr")
        if form.get("agree") != "1":
            return RedirectResponse(f"/j/{code}", 303, headers=self.door.headers())
        token, address = new_token(), new_address()
        joined = await anyio.to_thread.run_sync(self.links.join, code, token, address, asked)
        if joined is None:
            return self.door.dead_link(asked or "fr")
        remember = form.get("remember") == "1"
        if form.get("mode") == "js":
            return JSONResponse(
                {"token": token, "lang": joined, "remember": remember},
                headers=self.door.headers(),
            )
        response = RedirectResponse(f"/c?l={joined}", 303, headers=self.door.headers())
        response.set_cookie(
            COOKIE,
            token,
            max_age=self.config.remember_days * 86400 if remember else None,
            path="/c",
            secure=self.config.secure,
            httponly=True,
            samesite="strict",
        )
        return response

    async def _allowed(self, request: Request) -> bool:
        """Count a join-link request against its own client's limit (never everyone's)."""
        made = self.door.joins.hit(self.config.proxies.source(request))
        if made <= self.door.joins.limit:
            return True
        log.info("join link refused: this client is over its limit")
        if made == self.door.joins.limit + 1:
            # Counted once per client and window: a flood from one client costs no writes.
            await anyio.to_thread.run_sync(self.links.refused)
        return False

    async def chat(self, request: Request) -> Response:
        seat, _ = await self.door.cookie(request)
        lang = seat.lang if seat is not None else (_lang(request.query_params.get("l")) or "fr")
        if seat is None:
            # The script finds its token in the tab's storage; without script, nothing here.
            return self.door.page("chat", lang, mode="none", copies=[], ended=False, form_key="")
        copies = await anyio.to_thread.run_sync(self.store.fetch, seat.seat_hash, 0)
        shown = _fold(copies)
        timer = describe(seat.timer_seconds)
        if seat.removed:
            # What was left is shown once; then the seat and the cookie go.
            await anyio.to_thread.run_sync(self.store.forget, seat.seat_hash)
            response = self.door.page(
                "chat",
                lang,
                mode="cookie",
                copies=shown,
                ended=True,
                timer=timer,
                heading=seat.group_name,
            )
            response.delete_cookie(COOKIE, path="/c")
            return response
        return self.door.page(
            "chat",
            lang,
            mode="cookie",
            copies=shown,
            ended=False,
            form_key=seat.form_key,
            nonce=secrets.token_urlsafe(12),
            timer=timer,
            heading=seat.group_name,
        )

    async def events(self, request: Request) -> Response:
        seat = await self.door.bearer(request)
        if seat is None:
            return PlainTextResponse("401", 401, headers=self.door.headers())
        listener = self.hub.open(seat.seat_hash, self.config.streams_per_seat)
        if listener is None:
            log.warning("web stream refused: too many connections")
            return PlainTextResponse(
                "503", 503, headers={**self.door.headers(), "retry-after": "5"}
            )
        try:
            after = max(0, int(request.query_params.get("after", "0")))
        except ValueError:
            after = 0
        if after:
            await anyio.to_thread.run_sync(self.store.ack, seat.seat_hash, after)
        return StreamingResponse(
            _stream(self.door, seat, after, request, listener),
            media_type="text/event-stream",
            headers={**self.door.headers(), "x-accel-buffering": "no"},
        )

    async def send(self, request: Request) -> Response:
        if is_multipart(request):
            return await self.photos.send(request)
        try:
            form = await _form(request)
        except _BadRequestError as exc:
            return PlainTextResponse(str(exc.status), exc.status, headers=self.door.headers())
        seat = await self.door.bearer(request)
        by_cookie = seat is None and "authorization" not in request.headers
        if by_cookie:
            seat, token = await self.door.cookie(request)
            if (
                seat is None
                or token is None
                or self.door.foreign(request)
                or not self.store.form_key_ok(token, form.get("form_key", ""))
            ):
                log.info("web send refused: no seat or a bad form key")
                return PlainTextResponse("403", 403, headers=self.door.headers())
        if seat is None:
            return PlainTextResponse("401", 401, headers=self.door.headers())
        if seat.removed or seat.address is None:
            return PlainTextResponse("410", 410, headers=self.door.headers())
        text = form.get("text", "").replace("\r\n", "\n")
        if not text.strip():
            return PlainTextResponse("400", 400, headers=self.door.headers())
        if len(text) > MAX_TEXT:
            return PlainTextResponse("413", 413, headers=self.door.headers())
        nonce = form.get("nonce", "")
        if not _NONCE.match(nonce):
            nonce = secrets.token_urlsafe(12)
        await _deliver(self.door, seat, text, nonce)
        if by_cookie:
            return RedirectResponse("/c", 303, headers=self.door.headers())
        return Response(status_code=204, headers=self.door.headers())

    async def ack(self, request: Request) -> Response:
        try:
            form = await _form(request)
        except _BadRequestError as exc:
            return PlainTextResponse(str(exc.status), exc.status, headers=self.door.headers())
        seat = await self.door.bearer(request)
        if seat is None:
            return PlainTextResponse("401", 401, headers=self.door.headers())
        upto = form.get("upto", "0")
        if upto.isdigit() and len(upto) < 19:
            await anyio.to_thread.run_sync(self.store.ack, seat.seat_hash, int(upto))
        return Response(status_code=204, headers=self.door.headers())

    async def leave_page(self, request: Request) -> Response:
        # Forget this browser: the cookie and anything the site stored, then a neutral page.
        # Another site must not make a member's browser forget its key (a missing or "null"
        # Origin is a browser that does not say, or a page opened from a file: accepted).
        if self.door.foreign(request):
            log.info("quick exit refused: posted from another site")
            return PlainTextResponse("403", 403, headers=self.door.headers())
        seat, _ = await self.door.cookie(request)
        if seat is not None:  # without script, what waited (photos too) can never be opened
            await anyio.to_thread.run_sync(self.store.wipe_waiting, seat.seat_hash)
        if request.headers.get("sec-fetch-mode", "navigate") != "navigate":
            # The page's own script: it leaves by itself, so no redirect to follow (the CSP
            # would block it, and the browser would log an error).
            response: Response = Response(status_code=204, headers=self.door.headers())
        else:
            response = RedirectResponse(self.config.exit_url, 303, headers=self.door.headers())
        response.headers["clear-site-data"] = '"cache", "cookies", "storage"'
        response.delete_cookie(COOKIE, path="/c")
        return response

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _ASSETS:
            return PlainTextResponse("404", 404)
        return FileResponse(HERE / "static" / name, media_type=_ASSETS[name])


def web_routes(door: WebDoor) -> list[BaseRoute]:
    """The door's routes, ready to mount in the web app."""
    h = _Handlers(door)
    return [
        Route("/j/{code}", h.join_page, methods=["GET"]),
        Route("/j/{code}", h.join, methods=["POST"]),
        Route("/c", h.chat, methods=["GET"]),
        Route("/c/events", h.events, methods=["GET"]),
        Route("/c/send", h.send, methods=["POST"]),
        Route("/c/ack", h.ack, methods=["POST"]),
        Route("/c/photo/{copy:int}/{n:int}", h.photos.photo, methods=["GET"]),
        Route("/c/exit", h.leave_page, methods=["POST"]),
        Route("/w/{name}", h.asset, methods=["GET"]),
    ]


def _fold(copies: list[Copy]) -> list[Copy]:
    """Copies as the page shows them: edits applied, deleted ones gone."""
    shown: list[Copy] = []
    for c in copies:
        if c.kind in (CopyKind.MESSAGE, CopyKind.OWN):
            shown.append(c)
        elif c.kind == CopyKind.EDIT:
            shown = [replace(x, text=c.text) if x.ref == c.target_ref else x for x in shown]
        elif c.kind == CopyKind.DELETE:
            shown = [x for x in shown if x.ref != c.target_ref]
    return shown


async def _deliver(
    door: WebDoor, seat: Seat, text: str, nonce: str, photo: Attachment | None = None
) -> None:
    """Show the member their own words, then hand them to the core like any message (with
    the photo, already stripped, if one came with them)."""
    assert seat.address is not None  # noqa: S101 - checked by the caller
    store = door.store
    dedup_key = f"web:{seat.seat_hash}:{nonce}"
    if await anyio.to_thread.run_sync(door.links.already_accepted, dedup_key):
        return  # a retried post: its words are on the page already
    # Their words first, so that on their page any answer comes after them.
    own = text.strip()
    if photo is not None:  # their page notes the photo; it is not kept for them
        own = "\n".join(p for p in (own, photo_words(seat.lang)["sent_photo"]) if p)
    await anyio.to_thread.run_sync(lambda: store.put_own(seat, own, nonce))
    inbound = Inbound(
        channel=Channel.WEB,
        sender=Sender(address=seat.address),
        dedup_key=dedup_key,
        text=text,
        ref=nonce,
        attachments=(photo,) if photo is not None else (),
    )
    result = await door.accept(inbound)
    if result == Result.DUPLICATE:
        # Two copies of one post raced: the first one's words are on the page already.
        await anyio.to_thread.run_sync(lambda: store.forget_copy(seat, nonce))
    door.hub.poke()


async def _stream(
    door: WebDoor, seat: Seat, after: int, request: Request, listener: Listener
) -> AsyncIterator[str]:
    """Copies as Server-Sent Events: what is waiting, then each new one as it arrives."""
    store, hub = door.store, door.hub
    last = after
    farewell_waits = 20  # half-seconds the page waits for its last message
    timer = describe(seat.timer_seconds)
    words = page_words(seat.lang, timer=timer)
    hello = {"disappear": words["disappear"], "name": seat.group_name}
    yield f"event: seat\ndata: {json.dumps(hello, ensure_ascii=False)}\n\n"
    try:
        while True:
            copies = await anyio.to_thread.run_sync(store.fetch, seat.seat_hash, last)
            for c in copies:
                last = max(last, c.id)
                yield f"id: {c.id}\ndata: {json.dumps(c.as_event(), ensure_ascii=False)}\n\n"
            if len(copies) >= FETCH_LIMIT:
                continue  # more are waiting: send them before sleeping
            if not await anyio.to_thread.run_sync(store.still_seated, seat.id):
                if copies:
                    continue  # what is left goes out first (the farewell)
                if farewell_waits > 0 and await anyio.to_thread.run_sync(
                    store.farewell_on_its_way, seat.id
                ):
                    farewell_waits -= 1  # bounded: a stuck outbox cannot hold the stream
                    await listener.wait(0.5)
                    continue
                yield "event: end\ndata: {}\n\n"
                return
            # Quiet streams cost nothing but a ping now and then: no query until woken.
            while not await listener.wait(door.config.keepalive):
                if await request.is_disconnected():
                    return
                yield ": ping\n\n"
    finally:
        hub.close(seat.seat_hash, listener)


__all__ = ["COOKIE", "WebDoor", "web_routes"]
