"""The web door's photo endpoints: the chat form posted with its file box, and one photo of
one of the seat's own copies. What they hold and why is in :mod:`bots.web.photos`."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from bots.web.photos import (
    UPLOADS_AT_ONCE,
    UploadError,
    photo_response,
    photo_words,
    read_multipart,
    refused,
)
from relay.doors import MAX_TEXT, Seat
from relay.messages import Attachment

if TYPE_CHECKING:
    from bots.web.routes import WebDoor

log = logging.getLogger(__name__)

NONCE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")  # as the text-only send form's
Deliver = Callable[["WebDoor", Seat, str, str, Attachment | None], Awaitable[None]]


class PhotoRoutes:
    """``POST /c/send`` with a photo, and ``GET /c/photo/<copy>/<n>``. ``deliver`` hands a
    message to the core the way the text-only form does."""

    def __init__(self, door: WebDoor, deliver: Deliver) -> None:
        self.door = door
        self.deliver = deliver
        # Photos read and decoded at once: each holds up to 8 MB and its decoded pixels.
        self.uploads = anyio.CapacityLimiter(UPLOADS_AT_ONCE)

    async def send(self, request: Request) -> Response:
        """The chat form posted with its file box (``multipart/form-data``): the seat is
        known from the headers before a byte of the body is read."""
        headers = self.door.headers()
        seat = await self.door.bearer(request)
        token: str | None = None
        by_cookie = seat is None and "authorization" not in request.headers
        if by_cookie:
            seat, token = await self.door.cookie(request)
            if seat is None or token is None or self.door.foreign(request):
                log.info("web send refused: no seat or another site")
                return PlainTextResponse("403", 403, headers=headers)
        if seat is None:
            return PlainTextResponse("401", 401, headers=headers)
        if seat.removed or seat.address is None:
            return PlainTextResponse("410", 410, headers=headers)
        try:
            async with self.uploads:
                posted = await read_multipart(request, self.door.clean)
        except UploadError as exc:
            log.info("web photo refused: HTTP %d", exc.status)
            if not by_cookie:
                return refused(exc, seat.lang, headers)
            message = photo_words(seat.lang)[exc.key] if exc.key else str(exc.status)
            return self.door.page("gone", seat.lang, exc.status, message=message, back=True)
        form = posted.fields
        if by_cookie and (
            token is None or not self.door.store.form_key_ok(token, form.get("form_key", ""))
        ):
            log.info("web send refused: a bad form key")
            return PlainTextResponse("403", 403, headers=headers)
        text = form.get("text", "").replace("\r\n", "\n")
        if not text.strip() and posted.photo is None:
            if by_cookie:  # an empty form without script: back to the page, nothing sent
                return RedirectResponse("/c", 303, headers=headers)
            return PlainTextResponse("400", 400, headers=headers)
        if len(text) > MAX_TEXT:
            return PlainTextResponse("413", 413, headers=headers)
        nonce = form.get("nonce", "")
        if not NONCE.match(nonce):
            nonce = secrets.token_urlsafe(12)
        await self.deliver(self.door, seat, text, nonce, posted.photo)
        if by_cookie:
            return RedirectResponse("/c", 303, headers=headers)
        return Response(status_code=204, headers=headers)

    async def photo(self, request: Request) -> Response:
        """One photo of one of this seat's copies; 404 for anything else, whoever asks. With
        the no-script cookie it works once (a link on the page)."""
        seat = await self.door.bearer(request)
        once = False
        if seat is None and "authorization" not in request.headers:
            seat, _ = await self.door.cookie(request)
            once = True
        if seat is None:
            return PlainTextResponse("404", 404, headers=self.door.headers())
        seat_hash = seat.seat_hash
        copy_id, index = request.path_params["copy"], request.path_params["n"]
        got = await anyio.to_thread.run_sync(
            lambda: self.door.store.hand_out(seat_hash, copy_id, index, once=once)
        )
        if got is None:
            return PlainTextResponse("404", 404, headers=self.door.headers())
        return photo_response(got, self.door.headers())
