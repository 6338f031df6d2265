"""Starlette routes for Twilio's webhooks: ``POST /twilio/sms`` and ``POST /twilio/status``.

Both answer fast: the inbound route verifies, parses and hands the message to the core's
``accept`` callback (which stores it; the fan-out and any media download happen in the
worker), then answers with empty TwiML so Twilio sends no reply of its own. Refusals are a
bare status code (403 forged/foreign, 400 malformed, 413 too large) and never a stack trace.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from twilio.twiml.messaging_response import MessagingResponse

from bots.sms.config import INBOUND_PATH, STATUS_PATH
from bots.sms.webhook import (
    MAX_FORM_BYTES,
    FormData,
    MessageStatus,
    ParsedMessage,
    WebhookError,
    WebhookVerifier,
    parse_form,
    parse_inbound,
    parse_status,
)

log = logging.getLogger(__name__)

AcceptInbound = Callable[[ParsedMessage], Awaitable[None]]
"""Stores one authenticated inbound message for the worker (must be idempotent per dedup_key)."""

OnStatus = Callable[[str, MessageStatus, "int | None"], Awaitable[None]]
"""Records a status callback: (MessageSid, status, Twilio ErrorCode or None)."""


class _TooLargeError(WebhookError):
    status_code = 413


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_FORM_BYTES):
        raise _TooLargeError("body too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise _TooLargeError("body too large")
    return bytes(body)


async def _verified_form(request: Request, verifier: WebhookVerifier, path: str) -> FormData:
    body = await _read_body(request)
    form = parse_form(body, request.headers.get("content-type"))
    query = request.scope.get("query_string", b"").decode("latin-1")
    verifier.verify(path, query, form, request.headers)
    return form


def _refused(route: str, exc: WebhookError) -> Response:
    # The exception text is one of our fixed phrases ("bad signature"); it names no one.
    log.warning("%s refused: %d %s", route, exc.status_code, exc)
    return PlainTextResponse(str(exc.status_code), status_code=exc.status_code)


def _failed(route: str, exc: Exception) -> Response:
    # The core's exception may quote content: log its type and a reference only.
    ref = secrets.token_hex(4)
    log.error("%s failed in the core: %s (ref %s)", route, type(exc).__name__, ref)
    return PlainTextResponse(f"error {ref}", status_code=500)


def sms_routes(
    verifier: WebhookVerifier, accept: AcceptInbound, on_status: OnStatus
) -> list[Route]:
    """The two webhook routes, ready to mount in the web app."""
    empty_twiml = str(MessagingResponse())

    async def inbound(request: Request) -> Response:
        try:
            form = await _verified_form(request, verifier, INBOUND_PATH)
            parsed = parse_inbound(form)
        except WebhookError as exc:
            return _refused("inbound", exc)
        try:
            await accept(parsed)
        except Exception as exc:  # noqa: BLE001 - answer Twilio, never a traceback
            return _failed("inbound", exc)
        log.info(
            "inbound sms: kind=%s media=%d", parsed.inbound.kind.value, len(parsed.attachments)
        )
        return Response(empty_twiml, media_type="text/xml")

    async def status(request: Request) -> Response:
        try:
            form = await _verified_form(request, verifier, STATUS_PATH)
            update = parse_status(form)
        except WebhookError as exc:
            return _refused("status", exc)
        if update is None:
            log.info("status callback with an unknown status: ignored")
            return Response(status_code=204)
        try:
            await on_status(update.message_sid, update.status, update.error_code)
        except Exception as exc:  # noqa: BLE001
            return _failed("status", exc)
        log.debug("status callback: %s code=%s", update.status.value, update.error_code)
        return Response(status_code=204)

    return [
        Route(INBOUND_PATH, inbound, methods=["POST"], name="twilio_sms"),
        Route(STATUS_PATH, status, methods=["POST"], name="twilio_status"),
    ]


__all__ = ["AcceptInbound", "OnStatus", "sms_routes"]
