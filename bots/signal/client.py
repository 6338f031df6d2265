"""An async client for the parts of signal-cli-rest-api (json-rpc mode) that Cercle uses.

One :class:`httpx.AsyncClient` serves every call, including the receive websocket. Every
failure is raised as a :mod:`relay.errors` delivery error (see :mod:`bots.signal.errors`);
start-up problems (wrong mode, unreachable) as :class:`SignalServiceError`. Nothing here
logs a number, a uuid, a text or a filename.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from bots.signal.errors import (
    SignalServiceError,
    decode_json,
    error_for_exception,
    error_for_recipient_reason,
    error_for_response,
)
from bots.signal.values import (
    MAX_ATTACHMENT_BYTES,
    About,
    Device,
    OutgoingFile,
    account_uuid,
    captcha_link,
    check_attachment_id,
    data_uri,
)
from bots.signal.websocket import websocket_frames
from relay.errors import PermanentError, Reason

log = logging.getLogger(__name__)

# Explicit timeouts: a hung signal-cli must turn into a retryable error, not a stuck worker.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
# Sending uploads attachments to Signal through signal-cli: allow it longer.
SEND_TIMEOUT = httpx.Timeout(90.0, connect=5.0)


def quiet_http_logs() -> None:
    """Keep httpx's per-request INFO lines out of the logs.

    httpx logs every request URL at INFO; ours carry numbers in paths and queries
    (``/v1/search/{org}?numbers={member}``). The logger's own level is set, so a root
    logger at DEBUG does not bring them back; a level set higher is kept.
    """
    httpx_log = logging.getLogger("httpx")
    if httpx_log.level < logging.WARNING:  # NOTSET (0) included
        httpx_log.setLevel(logging.WARNING)


def base_url_for(service: str) -> str:
    """``SIGNAL_SERVICE`` ("host:port", as signalbot takes it) as an http base URL."""
    service = service.strip().rstrip("/")
    if not service:
        raise SignalServiceError("SIGNAL_SERVICE is empty; set it to host:port")
    if "://" in service:
        return service
    return f"http://{service}"


def _send_timestamp(body: object) -> str | None:
    """The timestamp of a 201 send answer, and raise the first per-recipient failure.

    Builds after 0.100 answer a JSON array of ``{"timestamp", "errors"}``; 0.100 and earlier
    one object ``{"timestamp"}``. Both are accepted.
    """
    entries: list[Any] = body if isinstance(body, list) else [body]
    timestamp: str | None = None
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        ts = entry.get("timestamp")
        if timestamp is None and isinstance(ts, (str, int)) and not isinstance(ts, bool):
            timestamp = str(ts)
        errors = entry.get("errors")
        recipients = errors.get("recipients") if isinstance(errors, dict) else None
        for failure in recipients if isinstance(recipients, list) else []:
            if isinstance(failure, dict):
                raise error_for_recipient_reason(failure.get("reason"))
    return timestamp


class SignalClient:
    """signal-cli-rest-api for one account (the org's number).

    ``service`` is ``SIGNAL_SERVICE`` ("host:port"); ``number`` is ``SIGNAL_NUMBER``. Pass
    ``http`` to share a client (tests, respx); otherwise one is made and closed by
    :meth:`aclose` (or ``async with``).
    """

    def __init__(
        self,
        service: str,
        number: str,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        quiet_http_logs()
        self._base = base_url_for(service)
        self._service = service
        self._number = number
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(base_url=self._base, timeout=timeout)
        self._timeout = timeout

    @property
    def number(self) -> str:
        """The org's own number this client acts for."""
        return self._number

    @property
    def http(self) -> httpx.AsyncClient:
        """The shared HTTP client (the receive websocket uses it too)."""
        return self._http

    @property
    def receive_url(self) -> str:
        """The receive websocket URL for this account."""
        base = self._base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return f"{base}/v1/receive/{self._account_path()}"

    async def aclose(self) -> None:
        """Close the HTTP client if this object made it."""
        if self._own_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- plumbing ------------------------------------------------------------------------

    def _account_path(self) -> str:
        return quote(self._number, safe="+")

    def _url(self, path: str) -> str:
        return f"{self._base}{path}"

    async def _request(
        self,
        method: str,
        path: str,
        what: str,
        *,
        json: Mapping[str, object] | None = None,
        params: Mapping[str, str | Sequence[str]] | None = None,
        limits: httpx.Timeout | None = None,
    ) -> httpx.Response:
        """One call; any failure becomes a delivery error naming only ``what``."""
        try:
            response = await self._http.request(
                method,
                self._url(path),
                json=json,
                params=params,
                timeout=limits or self._timeout,
            )
        except httpx.HTTPError as exc:
            log.warning("signal %s: no answer (%s)", what, type(exc).__name__)
            raise error_for_exception(exc, what) from None
        if response.is_success:
            return response
        log.warning("signal %s: HTTP %s", what, response.status_code)
        raise error_for_response(response, what)

    # --- service ---------------------------------------------------------------------------

    async def about(self) -> About:
        """``GET /v1/about``: the service's version and mode."""
        try:
            response = await self._http.get(self._url("/v1/about"), timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise SignalServiceError(
                f"cannot reach signal-cli-rest-api at {self._service} (SIGNAL_SERVICE): "
                f"{type(exc).__name__}"
            ) from None
        if not response.is_success:
            raise SignalServiceError(
                f"signal-cli-rest-api at {self._service} answered /v1/about with "
                f"HTTP {response.status_code}; is SIGNAL_SERVICE right?"
            )
        body = decode_json(response)
        if not isinstance(body, dict):
            raise SignalServiceError(
                f"{self._service} (SIGNAL_SERVICE) does not look like signal-cli-rest-api"
            )
        build = body.get("build")
        return About(
            version=str(body.get("version") or "unknown"),
            mode=str(body.get("mode") or "unknown"),
            build=build if isinstance(build, int) and not isinstance(build, bool) else None,
        )

    async def check(self) -> About:
        """Check the service is reachable and in json-rpc mode; return what it said.

        Raises :class:`SignalServiceError` naming what is wrong and how to fix it.
        """
        about = await self.about()
        if about.mode != "json-rpc":
            raise SignalServiceError(
                f"signal-cli-rest-api at {self._service} runs in mode '{about.mode}'; "
                "Cercle needs the receive websocket of json-rpc mode: start the container "
                "with MODE=json-rpc"
            )
        log.info("signal-cli-rest-api %s in json-rpc mode", about.version)
        return about

    # --- messages --------------------------------------------------------------------------

    async def send(
        self,
        recipient: str,
        message: str,
        *,
        attachments: Sequence[OutgoingFile] = (),
        quote_timestamp: int | None = None,
        quote_author: str | None = None,
        quote_message: str | None = None,
        edit_timestamp: int | None = None,
        view_once: bool = False,
    ) -> str | None:
        """``POST /v2/send`` to one recipient; return the message's Signal timestamp.

        Mentions are never sent (they would carry uuids); text is sent as typed
        (``text_mode`` normal). Returns None when the server's 201 body had no readable
        timestamp (the message went out; there is just no id for later edits).
        """
        body: dict[str, object] = {
            "number": self._number,
            "recipients": [recipient],
            "message": message,
            "text_mode": "normal",
        }
        if attachments:
            body["base64_attachments"] = [data_uri(f, i) for i, f in enumerate(attachments, 1)]
            if view_once:
                # The server refuses view_once without an attachment.
                body["view_once"] = True
        if quote_timestamp is not None:
            body["quote_timestamp"] = quote_timestamp
            if quote_author is not None:
                body["quote_author"] = quote_author
            if quote_message is not None:
                body["quote_message"] = quote_message
        if edit_timestamp is not None:
            body["edit_timestamp"] = edit_timestamp
        response = await self._request("POST", "/v2/send", "send", json=body, limits=SEND_TIMEOUT)
        timestamp = _send_timestamp(decode_json(response))
        if timestamp is None:
            log.warning("signal send: HTTP %s without a readable timestamp", response.status_code)
        return timestamp

    async def react(
        self,
        recipient: str,
        emoji: str,
        *,
        target_author: str,
        target_timestamp: int,
        remove: bool = False,
    ) -> None:
        """``POST`` (or ``DELETE`` to remove) ``/v1/reactions/{number}``."""
        body: dict[str, object] = {
            "recipient": recipient,
            "reaction": emoji,
            "target_author": target_author,
            "timestamp": target_timestamp,
        }
        method = "DELETE" if remove else "POST"
        await self._request(method, f"/v1/reactions/{self._account_path()}", "react", json=body)

    async def remote_delete(self, recipient: str, timestamp: int) -> str | None:
        """``DELETE /v1/remote-delete/{number}``: delete our message at ``timestamp``."""
        response = await self._request(
            "DELETE",
            f"/v1/remote-delete/{self._account_path()}",
            "remote delete",
            json={"recipient": recipient, "timestamp": timestamp},
        )
        body = decode_json(response)
        ts = body.get("timestamp") if isinstance(body, dict) else None
        return str(ts) if isinstance(ts, (str, int)) and not isinstance(ts, bool) else None

    async def set_expiration(self, recipient: str, seconds: int) -> None:
        """``PUT /v1/contacts/{number}``: the conversation's disappearing timer (0 = off)."""
        await self._request(
            "PUT",
            f"/v1/contacts/{self._account_path()}",
            "set timer",
            json={"recipient": recipient, "expiration_in_seconds": seconds},
        )

    # --- attachments -----------------------------------------------------------------------

    def _attachment_path(self, attachment_id: str) -> str:
        check_attachment_id(attachment_id)
        return f"/v1/attachments/{quote(attachment_id, safe='')}"

    async def get_attachment(
        self, attachment_id: str, *, max_bytes: int = MAX_ATTACHMENT_BYTES
    ) -> bytes:
        """``GET /v1/attachments/{id}``: the file's bytes (at most ``max_bytes``)."""
        path = self._attachment_path(attachment_id)
        try:
            async with self._http.stream("GET", self._url(path), timeout=SEND_TIMEOUT) as response:
                if not response.is_success:
                    await response.aread()
                    log.warning("signal attachment fetch: HTTP %s", response.status_code)
                    raise error_for_response(response, "attachment fetch")
                chunks: list[bytes] = []
                total = 0
                async for chunk in response.aiter_bytes():
                    total += len(chunk)
                    if total > max_bytes:
                        raise PermanentError(Reason.REJECTED, "attachment fetch: too large")
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.HTTPError as exc:
            log.warning("signal attachment fetch: no answer (%s)", type(exc).__name__)
            raise error_for_exception(exc, "attachment fetch") from None

    async def delete_attachment(self, attachment_id: str) -> None:
        """``DELETE /v1/attachments/{id}``: remove the server's copy."""
        await self._request("DELETE", self._attachment_path(attachment_id), "attachment delete")

    # --- account -----------------------------------------------------------------------------

    async def submit_rate_limit_challenge(self, challenge_token: str, captcha: str) -> None:
        """``POST /v1/accounts/{number}/rate-limit-challenge`` with a solved captcha.

        ``captcha`` is what signalcaptchas.org gives (``signalcaptcha://…``; the scheme is
        added when missing); ``challenge_token`` comes from :class:`RateLimitedError`.
        """
        await self._request(
            "POST",
            f"/v1/accounts/{self._account_path()}/rate-limit-challenge",
            "rate-limit challenge",
            json={"challenge_token": challenge_token.strip(), "captcha": captcha_link(captcha)},
        )

    async def register(self, captcha: str | None = None, *, voice: bool = False) -> None:
        """``POST /v1/register/{number}``: ask Signal to send the org's number a code (by SMS,
        or by a call with ``voice``). ``captcha`` is a solved registration captcha."""
        body: dict[str, object] = {}
        if captcha:
            body["captcha"] = captcha_link(captcha)
        if voice:
            body["use_voice"] = True
        await self._registration("/v1/register/" + self._account_path(), body)

    async def verify(self, code: str, pin: str | None = None) -> None:
        """``POST /v1/register/{number}/verify/{code}``: finish a registration with the code
        Signal sent (``pin`` when the number has a registration lock)."""
        digits = code.strip().replace("-", "").replace(" ", "")
        if not re.fullmatch(r"[0-9]{6}", digits):
            raise SignalServiceError("The code Signal sends has six digits, e.g. 123-456.")
        path = f"/v1/register/{self._account_path()}/verify/{digits}"
        await self._registration(path, {"pin": pin} if pin else {})

    async def _registration(self, path: str, body: Mapping[str, object]) -> None:
        """One registration call; refusals become :class:`SignalServiceError` saying what to
        do (the server's words about the org's own number are read, never copied)."""
        try:
            response = await self._http.post(self._url(path), json=body, timeout=SEND_TIMEOUT)
        except httpx.HTTPError as exc:
            raise SignalServiceError(
                f"cannot reach signal-cli-rest-api at {self._service} (SIGNAL_SERVICE): "
                f"{type(exc).__name__}"
            ) from None
        if response.is_success:
            return
        text = response.text.lower()
        if "captcha" in text:
            raise SignalServiceError(
                "Signal asks for a captcha: solve one at "
                "signalcaptchas.org/registration/generate.html and pass its "
                "signalcaptcha:// link with --captcha (docs/signal.md §2)."
            )
        if "pin" in text or "locked" in text:
            raise SignalServiceError(
                "This number has a registration lock: add --pin with its Signal PIN."
            )
        if "verif" in text or "code" in text:
            raise SignalServiceError(
                "Signal did not accept that code: check it, or ask for a new one with "
                "`cercle signal register`."
            )
        if response.status_code == 429 or "rate" in text:
            raise SignalServiceError("Signal refuses for now (rate limit): wait an hour, retry.")
        raise SignalServiceError(
            f"signal-cli-rest-api refused the registration (HTTP {response.status_code}); "
            "its container log says why."
        )

    async def trust_identity(self, member: str, verified_safety_number: str) -> None:
        """``PUT /v1/identities/{number}/trust/{member}``: trust a member's new key.

        Only after a person confirmed the change with the member through another channel:
        a changed safety number is also what a stolen number looks like. ``member`` is the
        member's number or uuid.
        """
        await self._request(
            "PUT",
            f"/v1/identities/{self._account_path()}/trust/{quote(member, safe='+')}",
            "trust identity",
            json={"verified_safety_number": verified_safety_number.replace(" ", "")},
        )

    async def trust_current_keys(self, member: str) -> None:
        """``PUT /v1/identities/{number}/trust/{member}`` with ``trust_all_known_keys``.

        For ``/trust NAME``: a facilitator has confirmed with the member, by another safe way,
        that the new safety number is theirs. Never called without that person's decision.
        """
        await self._request(
            "PUT",
            f"/v1/identities/{self._account_path()}/trust/{quote(member, safe='+')}",
            "trust identity",
            json={"trust_all_known_keys": True},
        )

    async def set_profile(self, name: str, avatar: bytes | None = None) -> None:
        """``PUT /v1/profiles/{number}``: the name (and avatar) the org's number shows.

        A neutral profile ("Info", no picture) means a glance at a shared phone does not
        reveal a support group. ``avatar`` is the image's bytes (JPEG or PNG).
        """
        body: dict[str, object] = {"name": name}
        if avatar is not None:
            body["base64_avatar"] = base64.b64encode(avatar).decode("ascii")
        await self._request("PUT", f"/v1/profiles/{self._account_path()}", "set profile", json=body)

    async def accounts(self) -> list[str]:
        """``GET /v1/accounts``: the numbers registered (or linked) with the service."""
        body = decode_json(await self._request("GET", "/v1/accounts", "accounts"))
        return [str(n) for n in body if isinstance(n, str)] if isinstance(body, list) else []

    async def devices(self) -> list[Device]:
        """``GET /v1/devices/{number}``: the devices of the org's account (1 is signal-cli)."""
        response = await self._request("GET", f"/v1/devices/{self._account_path()}", "devices")
        body = decode_json(response)
        found: list[Device] = []
        for entry in body if isinstance(body, list) else []:
            device_id = entry.get("id") if isinstance(entry, dict) else None
            if isinstance(device_id, int) and not isinstance(device_id, bool):
                found.append(Device(device_id, str(entry.get("name") or "")))
        return found

    async def remove_device(self, device_id: int) -> None:
        """``DELETE /v1/devices/{number}/{deviceId}``: unlink another device from the org's
        number (signal-cli, the primary device, can)."""
        if device_id <= 1:
            raise SignalServiceError("Device 1 is signal-cli itself: it cannot be unlinked.")
        await self._request(
            "DELETE", f"/v1/devices/{self._account_path()}/{device_id}", "remove device"
        )

    async def registered(self, numbers: Sequence[str]) -> dict[str, bool]:
        """``GET /v1/search/{number}?numbers=…``: which numbers are on Signal.

        Numbers missing from the answer count as not registered.
        """
        if not numbers:
            return {}
        response = await self._request(
            "GET",
            f"/v1/search/{self._account_path()}",
            "search",
            params={"numbers": list(numbers)},
        )
        body = decode_json(response)
        found: dict[str, bool] = dict.fromkeys(numbers, False)
        for entry in body if isinstance(body, list) else []:
            if isinstance(entry, dict) and entry.get("number") in found:
                found[str(entry["number"])] = entry.get("registered") is True
        return found

    async def account_id(self, number: str) -> str | None:
        """The Signal account id (ACI UUID) behind ``number``, or None when the number is not
        on Signal or signal-cli cannot tell.

        ``/v1/search`` first: it makes signal-cli look the number up at Signal and keep the
        account id it found. ``/v1/identities`` then names it once a key is known, and
        ``/v1/contacts?all_recipients=true`` for any recipient signal-cli knows.
        """
        if not await self.is_registered(number):
            return None
        account = self._account_path()
        lookups: tuple[tuple[str, dict[str, str] | None], ...] = (
            (f"/v1/identities/{account}", None),
            (f"/v1/contacts/{account}", {"all_recipients": "true"}),
        )
        for path, params in lookups:
            body = decode_json(await self._request("GET", path, "account lookup", params=params))
            for entry in body if isinstance(body, list) else []:
                if not isinstance(entry, dict) or entry.get("number") != number:
                    continue
                if (found := account_uuid(entry.get("uuid"))) is not None:
                    return found
        return None

    async def is_registered(self, number: str) -> bool:
        """Whether one number is registered on Signal."""
        return (await self.registered([number])).get(number, False)

    # --- receiving ---------------------------------------------------------------------------

    def receive_frames(
        self, *, keepalive: float | None = 20.0
    ) -> AbstractAsyncContextManager[AsyncIterator[object]]:
        """The receive websocket: inside the block, each text frame until it closes.

        The server drops what arrives while no websocket is attached: reconnect at once.
        """
        return websocket_frames(self.receive_url, self._http, keepalive=keepalive)
