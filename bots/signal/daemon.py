"""A client of signal-cli's own JSON-RPC daemon (``signal-cli -a NUMBER daemon --tcp …`` or
``--socket …``, with ``--receive-mode=manual``), for one account: the org's number.

Calls share one persistent connection (many in flight at once). Receiving uses a connection
of its own that subscribes (``subscribeReceive``): while it is open, signal-cli reads from
Signal and hands each message over; when it closes, signal-cli stops reading and Signal
keeps the messages until the next subscription. Every failure is a :mod:`relay.errors`
delivery error; nothing here logs a number, a uuid, a text or a filename.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from bots.signal.errors import SignalServiceError, error_for_result, error_for_rpc
from bots.signal.jsonrpc import JsonRpcConnection, JsonRpcError, Target
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
from relay.errors import DeliveryError, PermanentError, Reason

log = logging.getLogger(__name__)

DAEMON_MODE = "daemon"
SEND_TIMEOUT = 90.0
# The receive-mode probe looks this far back for the subscription made at connect time.
_PROBE_DEPTH = 16


def _timestamp(result: object) -> str | None:
    ts = result.get("timestamp") if isinstance(result, dict) else None
    return str(ts) if isinstance(ts, int) and not isinstance(ts, bool) else None


class DaemonClient:
    """signal-cli's daemon for the org's number; the same methods as the REST client
    (:class:`bots.signal.seam.SignalBackend`)."""

    def __init__(
        self,
        target: str,
        number: str,
        *,
        timeout: float = 30.0,
        send_timeout: float = SEND_TIMEOUT,
    ) -> None:
        self._target = Target.parse(target)
        self._number = number
        # Sends upload attachments to Signal through signal-cli: they may take longer.
        self._send_timeout = send_timeout
        self._rpc = JsonRpcConnection(self._target, timeout=timeout, receives=False)

    @property
    def number(self) -> str:
        """The org's own number."""
        return self._number

    @property
    def target(self) -> Target:
        """Where the daemon listens."""
        return self._target

    async def aclose(self) -> None:
        """Close the call connection."""
        await self._rpc.aclose()

    async def _call(
        self, method: str, what: str, params: dict[str, object] | None = None, **kw: Any
    ) -> Any:
        try:
            return await self._rpc.call(method, params, **kw)
        except JsonRpcError as exc:
            log.warning("signal %s: signal-cli error %s", what, exc.code)
            raise error_for_rpc(exc.code, exc.message, exc.data, what) from None

    async def _send_call(self, method: str, what: str, params: dict[str, object]) -> str | None:
        """A call answered with ``{timestamp, results}``: raise the first failed result."""
        result = await self._call(method, what, params, wait=self._send_timeout)
        results = result.get("results") if isinstance(result, dict) else None
        for entry in results if isinstance(results, list) else []:
            if isinstance(entry, dict) and entry.get("type") not in ("SUCCESS", None):
                raise error_for_result(entry, what)
        return _timestamp(result)

    # --- service ---------------------------------------------------------------------------

    async def about(self) -> About:
        """The daemon's version (``version``); mode ``daemon``."""
        try:
            result = await self._rpc.call("version", None, wait=10.0)
        except (DeliveryError, JsonRpcError) as exc:
            raise SignalServiceError(
                f"cannot reach signal-cli's daemon at {self._target} (SIGNAL_CLI): "
                f"{type(exc).__name__}"
            ) from None
        version = result.get("version") if isinstance(result, dict) else None
        return About(version=str(version or "unknown"), mode=DAEMON_MODE)

    async def check(self) -> About:
        """Check the daemon answers; return its version. A daemon that is not in manual
        receive mode is logged loudly (``cercle doctor`` fails on it) but used."""
        about = await self.about()
        log.info("signal-cli daemon %s", about.version)
        try:
            manual = await self.receive_mode_is_manual()
        except DeliveryError:
            manual = None
        if manual is False:
            log.error(
                "signal-cli's daemon is not in manual receive mode: messages that arrive "
                "while the worker is stopped are lost; restart it with --receive-mode=manual"
            )
        return about

    async def receive_mode_is_manual(self) -> bool | None:
        """Whether the daemon runs in ``manual`` receive mode; None when it cannot be told.

        How, from the protocol itself: in ``on-start`` and ``on-connection`` modes signal-cli
        subscribes every new connection as it opens (and in ``on-connection`` mode starts
        reading from Signal then), taking a subscription id from the one counter that
        ``subscribeReceive`` and ``subscribeCallEvents`` also draw from. In ``manual`` mode
        it subscribes nobody. So, on a fresh connection: ``subscribeCallEvents`` gives id K
        and reads no message; a subscription made at connect time has an id just below K
        (clients connecting at the same moment may take a few ids in between), and
        ``unsubscribeReceive`` with that id succeeds only on the connection that holds it.
        In ``manual`` mode each id below K is refused ("Unknown subscription id", -1).
        ``subscribeReceive`` is never called: it would make signal-cli hand messages to this
        short-lived connection, where they would be lost. ``subscribeCallEvents`` came with
        signal-cli 0.14.2; an older daemon cannot be probed (None).
        """
        rpc = JsonRpcConnection(self._target, timeout=10.0, receives=True)
        try:
            try:
                calls = await rpc.call("subscribeCallEvents")
            except JsonRpcError:
                return None
            if not isinstance(calls, int) or isinstance(calls, bool):
                return None
            for candidate in range(calls - 1, max(-1, calls - 1 - _PROBE_DEPTH), -1):
                try:
                    await rpc.call("unsubscribeReceive", {"subscription": candidate})
                except JsonRpcError:
                    continue
                return False  # this connection was subscribed as it opened: not manual
            with contextlib.suppress(JsonRpcError):
                await rpc.call("unsubscribeCallEvents", {"subscription": calls})
            return True
        finally:
            await rpc.aclose()

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
        """``send`` to one recipient; the message's Signal timestamp. No mentions ever
        (they would carry account ids)."""
        params: dict[str, object] = {"recipient": [recipient], "message": message}
        if attachments:
            params["attachment"] = [data_uri(f, i) for i, f in enumerate(attachments, 1)]
            if view_once:
                params["viewOnce"] = True
        if quote_timestamp is not None:
            params["quoteTimestamp"] = quote_timestamp
            if quote_author is not None:
                params["quoteAuthor"] = quote_author
            if quote_message is not None:
                params["quoteMessage"] = quote_message
        if edit_timestamp is not None:
            params["editTimestamp"] = edit_timestamp
        return await self._send_call("send", "send", params)

    async def react(
        self,
        recipient: str,
        emoji: str,
        *,
        target_author: str,
        target_timestamp: int,
        remove: bool = False,
    ) -> None:
        """``sendReaction`` (``remove`` takes it back)."""
        params: dict[str, object] = {
            "recipient": [recipient],
            "emoji": emoji,
            "targetAuthor": target_author,
            "targetTimestamp": target_timestamp,
        }
        if remove:
            params["remove"] = True
        await self._send_call("sendReaction", "react", params)

    async def remote_delete(self, recipient: str, timestamp: int) -> str | None:
        """``remoteDelete``: delete our message at ``timestamp``."""
        params: dict[str, object] = {"recipient": [recipient], "targetTimestamp": timestamp}
        return await self._send_call("remoteDelete", "remote delete", params)

    async def set_expiration(self, recipient: str, seconds: int) -> None:
        """``updateContact`` with ``expiration``: the conversation's timer (0 = off)."""
        await self._call(
            "updateContact", "set timer", {"recipient": recipient, "expiration": seconds}
        )

    # --- attachments -----------------------------------------------------------------------

    async def get_attachment(
        self, attachment_id: str, *, max_bytes: int = MAX_ATTACHMENT_BYTES
    ) -> bytes:
        """``getAttachment``: the bytes of a received attachment (base64 in the answer)."""
        check_attachment_id(attachment_id)
        result = await self._call(
            "getAttachment", "attachment fetch", {"id": attachment_id}, wait=self._send_timeout
        )
        encoded = result.get("data") if isinstance(result, dict) else None
        if not isinstance(encoded, str) or len(encoded) > (max_bytes * 4) // 3 + 4:
            raise PermanentError(Reason.REJECTED, "attachment fetch: missing or too large")
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise PermanentError(Reason.REJECTED, "attachment fetch: not base64") from None

    async def delete_attachment(self, attachment_id: str) -> None:
        """signal-cli has no method to delete a received attachment: it stays in its data
        directory (``attachments/``) until removed on that machine (docs/signal.md)."""
        log.debug("signal attachment: no delete method on signal-cli's daemon")

    # --- account -----------------------------------------------------------------------------

    async def submit_rate_limit_challenge(self, challenge_token: str, captcha: str) -> None:
        """``submitRateLimitChallenge`` with a solved captcha."""
        await self._call(
            "submitRateLimitChallenge",
            "rate-limit challenge",
            {"challenge": challenge_token.strip(), "captcha": captcha_link(captcha)},
        )

    async def register(self, captcha: str | None = None, *, voice: bool = False) -> None:
        """Not over a single-account daemon: say which signal-cli command to run."""
        voice_flag = " --voice" if voice else ""
        raise SignalServiceError(
            "signal-cli's daemon registers no number (it runs for one that is registered). "
            "Stop it and run on its machine: signal-cli -a NUMBER register"
            f"{voice_flag} --captcha LINK, then signal-cli -a NUMBER verify CODE."
        )

    async def verify(self, code: str, pin: str | None = None) -> None:
        """Not over a single-account daemon: say which signal-cli command to run."""
        raise SignalServiceError(
            "signal-cli's daemon verifies no number: stop it and run on its machine "
            "signal-cli -a NUMBER verify CODE (add --pin PIN if the number has one)."
        )

    async def trust_identity(self, member: str, verified_safety_number: str) -> None:
        """``trust`` with a safety number a person verified with the member."""
        await self._call(
            "trust",
            "trust identity",
            {"recipient": member, "verifiedSafetyNumber": verified_safety_number.replace(" ", "")},
        )

    async def trust_current_keys(self, member: str) -> None:
        """``trust`` with ``trustAllKnownKeys``, for ``/trust NAME`` after a person confirmed
        the new safety number with the member by another safe way."""
        await self._call(
            "trust", "trust identity", {"recipient": member, "trustAllKnownKeys": True}
        )

    async def set_profile(self, name: str, avatar: bytes | None = None) -> None:
        """``updateProfile``: the neutral name, and the avatar as a data URI."""
        params: dict[str, object] = {"givenName": name}
        if avatar is not None:
            encoded = base64.b64encode(avatar).decode("ascii")
            kind = "image/png" if avatar.startswith(b"\x89PNG") else "image/jpeg"
            params["avatar"] = f"data:{kind};base64,{encoded}"
        await self._call("updateProfile", "set profile", params)

    async def accounts(self) -> list[str]:
        """The account the daemon serves: a single-account daemon only starts for a
        registered number, and answers for no other."""
        await self.about()
        return [self._number]

    async def devices(self) -> list[Device]:
        """``listDevices``: the account's devices (1 is signal-cli)."""
        result = await self._call("listDevices", "devices")
        found: list[Device] = []
        for entry in result if isinstance(result, list) else []:
            device_id = entry.get("id") if isinstance(entry, dict) else None
            if isinstance(device_id, int) and not isinstance(device_id, bool):
                found.append(Device(device_id, str(entry.get("name") or "")))
        return found

    async def remove_device(self, device_id: int) -> None:
        """``removeDevice``: unlink another device."""
        if device_id <= 1:
            raise SignalServiceError("Device 1 is signal-cli itself: it cannot be unlinked.")
        await self._call("removeDevice", "remove device", {"deviceId": device_id})

    async def _statuses(self, numbers: Sequence[str]) -> list[dict[str, Any]]:
        result = await self._call("getUserStatus", "search", {"recipient": list(numbers)})
        return [e for e in result if isinstance(e, dict)] if isinstance(result, list) else []

    async def registered(self, numbers: Sequence[str]) -> dict[str, bool]:
        """``getUserStatus``: which numbers are on Signal."""
        if not numbers:
            return {}
        found: dict[str, bool] = dict.fromkeys(numbers, False)
        for entry in await self._statuses(numbers):
            if entry.get("recipient") in found:
                found[str(entry["recipient"])] = entry.get("isRegistered") is True
        return found

    async def is_registered(self, number: str) -> bool:
        """Whether one number is on Signal."""
        return (await self.registered([number])).get(number, False)

    async def account_id(self, number: str) -> str | None:
        """The account id (ACI) behind ``number`` from ``getUserStatus``, or None."""
        for entry in await self._statuses([number]):
            uuid = account_uuid(entry.get("uuid"))
            if entry.get("isRegistered") is True and uuid is not None:
                return uuid
        return None

    # --- receiving ---------------------------------------------------------------------------

    @asynccontextmanager
    async def receive_frames(
        self, *, keepalive: float | None = 20.0
    ) -> AsyncIterator[AsyncIterator[object]]:
        """Subscribe on a connection of its own; yield each ``{envelope, account}``.

        Closing the block closes the connection, which ends the subscription at once: from
        then on signal-cli reads nothing from Signal, which keeps the messages. Every
        ``keepalive`` seconds a ``version`` call checks the connection still carries answers
        (a daemon whose host vanished sends no end of connection); when one does not come
        back, the session ends and the receive loop opens a new one.
        """
        rpc = JsonRpcConnection(self._target, timeout=keepalive or 10.0)
        try:
            subscription = await rpc.call("subscribeReceive", None)
        except JsonRpcError as exc:
            await rpc.aclose()
            raise SignalServiceError(f"signal-cli refused to subscribe ({exc.code})") from None
        except BaseException:
            await rpc.aclose()
            raise

        async def ping() -> None:
            assert keepalive is not None  # noqa: S101 - only started with one
            while True:
                await asyncio.sleep(keepalive)
                try:
                    await rpc.call("version", None)
                except (DeliveryError, JsonRpcError):
                    log.warning("signal receive: signal-cli stopped answering")
                    rpc.notifications.put_nowait(None)
                    return

        async def frames() -> AsyncIterator[object]:
            while True:
                params = await rpc.notifications.get()
                if params is None:
                    log.info("signal receive: the connection to signal-cli ended")
                    return
                # In on-start and on-connection modes signal-cli also sends every message
                # without a subscription id; only ours is taken, so nothing comes twice.
                if params.get("subscription") == subscription and "result" in params:
                    yield params["result"]

        pinger = asyncio.ensure_future(ping()) if keepalive else None
        try:
            yield frames()
        finally:
            if pinger is not None:
                pinger.cancel()
                with contextlib.suppress(BaseException):
                    await pinger
            await rpc.aclose()
