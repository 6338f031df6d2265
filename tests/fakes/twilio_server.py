"""A loopback fake of Twilio's Messages API, and a signer for Twilio's webhooks.

``FakeTwilio`` serves, on 127.0.0.1 and an ephemeral port, in a background thread:

- ``POST /2010-04-01/Accounts/{AC}/Messages.json``: checks basic auth, validates like Twilio
  (21211 bad To, 21602 no body, 21617 body too long, 21603/21604 no sender), records the
  message, answers 201 with Twilio's JSON (``sid`` "SM…", ``status`` "queued", or
  "accepted" and ``num_segments`` "0" through a Messaging Service, as Twilio does).
- ``DELETE …/Messages/{Sid}.json``: 204; 404 (20404) if unknown; 409 (20009) while the
  message is not final, as Twilio refuses to delete a message in flight.
- ``GET …/Messages/{MM}/Media/{ME}``: 302 to a "CDN" URL on a second loopback address
  (127.0.0.2 when the OS allows, so a cross-origin redirect is really exercised); the CDN
  records whether credentials reached it. ``DELETE …/Media/{ME}.json``: 204.
- configurable failures: ``fail_next(n, status, code, delay)`` and ``fail_for(to, …)``.

It also builds signed webhooks (inbound SMS and status callbacks) with the real
``twilio.request_validator.RequestValidator``, for posting to the app under test.

Error messages quote the number, as Twilio's do, so tests can check nothing copies them.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import anyio
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC00000000000000000000000000000001"
AUTH_TOKEN = "fake-auth-token-0001"
SERVICE_SID = "MG00000000000000000000000000000001"
ORG_NUMBER = "+15145550120"

_ERROR_TEXT = {
    20003: "Authenticate",
    20009: "Cannot delete message because delivery has not been completed.",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    21211: "The 'To' number {to} is not a valid phone number.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by {to}",
    21602: "Message body is required.",
    21603: "The 'From' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient {to}",
    21612: "The 'To' phone number: {to}, is not currently reachable via SMS.",
    21614: "'To' number {to} is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
}

FINAL = {"delivered", "undelivered", "failed", "canceled", "read"}


def new_sid(prefix: str) -> str:
    """A random Twilio-shaped SID (two letters and 32 hex digits)."""
    return prefix + secrets.token_hex(16)


@dataclass
class FakeMessage:
    """One message as the fake recorded it."""

    sid: str
    to: str
    body: str
    from_: str | None
    messaging_service_sid: str | None
    status_callback: str | None
    validity_period: int | None
    media_urls: list[str]
    status: str = "queued"

    def __repr__(self) -> str:
        return f"FakeMessage({self.sid}, {self.status})"


@dataclass
class _Failure:
    status: int
    code: int | None
    delay: float = 0.0
    record: bool = False  # record the message anyway (a timeout after Twilio took it)


@dataclass
class _Media:
    content_type: str
    data: bytes
    deleted: bool = False
    cdn_saw_auth: bool | None = None


@dataclass
class FakeTwilio:
    """The fake. Use as a context manager, or call :meth:`start` / :meth:`stop`."""

    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    messages: list[FakeMessage] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    _failures: list[_Failure] = field(default_factory=list)
    _by_to: dict[str, _Failure] = field(default_factory=dict)
    _media: dict[str, _Media] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    base_url: str = ""
    cdn_base_url: str = ""
    account_status: str = "active"  # or "suspended", "closed"

    # --- test API ---

    def sent_to(self, number: str) -> list[FakeMessage]:
        """Messages accepted for ``number``, oldest first."""
        with self._lock:
            return [m for m in self.messages if m.to == number]

    def reset(self) -> None:
        """Forget what earlier tests left: messages sent and deleted, and failures still to come
        (one fake serves a whole session)."""
        with self._lock:
            self.messages.clear()
            self.deleted.clear()
            self._failures.clear()
            self._by_to.clear()

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 500,
        code: int | None = None,
        delay: float = 0.0,
        record: bool = False,
    ) -> None:
        """The next ``n`` sends fail with ``status``/``code`` (after ``delay`` seconds).

        A ``delay`` longer than the client's read timeout makes a timeout; ``record=True``
        also records the message, as when Twilio took it but the answer was lost.
        """
        with self._lock:
            self._failures.extend(_Failure(status, code, delay, record) for _ in range(n))

    def fail_for(self, to: str, *, status: int = 400, code: int = 21610) -> None:
        """Every send to ``to`` fails (e.g. 21610: the member texted STOP)."""
        with self._lock:
            self._by_to[to] = _Failure(status, code)

    def set_status(self, sid: str, status: str) -> None:
        """Move a message to ``status`` (e.g. "delivered", which makes it deletable)."""
        with self._lock:
            for m in self.messages:
                if m.sid == sid:
                    m.status = status

    def add_media(self, content_type: str, data: bytes) -> tuple[str, str, str]:
        """Store an inbound MMS attachment; return (MessageSid, MediaUrl, media SID).

        The URL names api.twilio.com, as real webhooks do; the client under test must map it
        onto its configured API base (this fake).
        """
        message_sid, media_sid = new_sid("MM"), new_sid("ME")
        with self._lock:
            self._media[media_sid] = _Media(content_type, data)
        url = (
            f"https://api.twilio.com/2010-04-01/Accounts/{self.account_sid}"
            f"/Messages/{message_sid}/Media/{media_sid}"
        )
        return message_sid, url, media_sid

    def media_deleted(self, media_sid: str) -> bool:
        """Whether the media was deleted through the API."""
        return self._media[media_sid].deleted

    def cdn_saw_credentials(self, media_sid: str) -> bool | None:
        """Whether the CDN request for this media carried an Authorization header."""
        return self._media[media_sid].cdn_saw_auth

    # --- server ---

    def _authorized(self, request: Request) -> bool:
        expected = httpx.BasicAuth(self.account_sid, self.auth_token)
        header = next(expected.auth_flow(httpx.Request("GET", "http://x"))).headers
        return request.headers.get("authorization") == header["Authorization"]

    def _error(self, status: int, code: int | None, to: str = "") -> JSONResponse:
        text = _ERROR_TEXT.get(code or 0, "Internal error").format(to=to)
        payload: dict[str, Any] = {
            "code": code,
            "message": text,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        return JSONResponse(payload, status_code=status)

    def _message_json(self, m: FakeMessage) -> dict[str, Any]:
        now = formatdate(usegmt=True)
        base = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{m.sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": m.body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": m.from_,
            "messaging_service_sid": m.messaging_service_sid,
            "num_media": str(len(m.media_urls)),
            "num_segments": "0" if m.messaging_service_sid else str(_segments(m.body)),
            "price": None,
            "price_unit": "USD",
            "sid": m.sid,
            "status": m.status,
            "subresource_uris": {"media": f"{base}/Media.json"},
            "to": m.to,
            "uri": f"{base}.json",
        }

    async def _create(self, request: Request) -> Response:
        if request.path_params["account"] != self.account_sid or not self._authorized(request):
            return self._error(401, 20003)
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        media_urls = [v for k, v in parse_qsl((await request.body()).decode()) if k == "MediaUrl"]
        to = form.get("To", "")
        with self._lock:
            failure = self._by_to.get(to) or (self._failures.pop(0) if self._failures else None)
        if failure is not None:
            if failure.delay:
                await anyio.sleep(failure.delay)
            if not failure.record:
                return self._error(failure.status, failure.code, to)
        if not (to.startswith("+") and to[1:].isdigit() and 8 <= len(to) <= 16):
            return self._error(400, 21211, to)
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return self._error(400, 21603)
        body = form.get("Body", "")
        if not body and not media_urls:
            return self._error(400, 21602)
        if len(body) > 1600:
            return self._error(400, 21617)
        service = form.get("MessagingServiceSid") or None
        validity = form.get("ValidityPeriod")
        message = FakeMessage(
            sid=new_sid("MM" if media_urls else "SM"),
            to=to,
            body=body,
            from_=form.get("From") or None,
            messaging_service_sid=service,
            status_callback=form.get("StatusCallback") or None,
            validity_period=int(validity) if validity else None,
            media_urls=media_urls,
            status="accepted" if service else "queued",
        )
        with self._lock:
            self.messages.append(message)
        if failure is not None:  # recorded, but the answer is an error (or lost)
            return self._error(failure.status, failure.code, to)
        return JSONResponse(self._message_json(message), status_code=201)

    async def _account(self, request: Request) -> Response:
        if request.path_params["account"] != self.account_sid or not self._authorized(request):
            return self._error(401, 20003)
        return JSONResponse(
            {
                "sid": self.account_sid,
                "owner_account_sid": self.account_sid,
                "friendly_name": "Fake account",
                "status": self.account_status,
                "type": "Full",
                "auth_token": self.auth_token,
                "date_created": formatdate(usegmt=True),
                "date_updated": formatdate(usegmt=True),
                "uri": f"/2010-04-01/Accounts/{self.account_sid}.json",
                "subresource_uris": {},
            }
        )

    async def _delete_message(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._error(401, 20003)
        sid = request.path_params["sid"]
        with self._lock:
            found = [m for m in self.messages if m.sid == sid]
            if not found:
                return self._error(404, 20404)
            if found[0].status not in FINAL:
                return self._error(409, 20009)
            self.messages.remove(found[0])
            self.deleted.append(sid)
        return Response(status_code=204)

    async def _media_get(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._error(401, 20003)
        media = self._media.get(request.path_params["media"])
        if media is None or media.deleted:
            return self._error(404, 20404)
        return RedirectResponse(
            f"{self.cdn_base_url}/cdn/{request.path_params['media']}", status_code=302
        )

    async def _media_delete(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._error(401, 20003)
        media = self._media.get(request.path_params["media"])
        if media is None or media.deleted:
            return self._error(404, 20404)
        media.deleted = True
        return Response(status_code=204)

    async def _cdn(self, request: Request) -> Response:
        media = self._media.get(request.path_params["media"])
        if media is None or media.deleted:
            return Response(status_code=404)
        media.cdn_saw_auth = "authorization" in request.headers
        return Response(media.data, media_type=media.content_type)

    def app(self) -> ASGIApp:
        """The ASGI app (usable in-process too, with ``httpx.ASGITransport``)."""
        prefix = "/2010-04-01/Accounts/{account}/Messages"
        inner = Starlette(
            routes=[
                Route(prefix + ".json", self._create, methods=["POST"]),
                Route("/2010-04-01/Accounts/{account}.json", self._account, methods=["GET"]),
                Route(prefix + "/{sid}.json", self._delete_message, methods=["DELETE"]),
                Route(prefix + "/{msg}/Media/{media}.json", self._media_delete, methods=["DELETE"]),
                Route(prefix + "/{msg}/Media/{media}", self._media_get, methods=["GET"]),
                Route("/cdn/{media}", self._cdn, methods=["GET"]),
            ]
        )

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                self.requests.append((scope["method"], scope["path"]))
            await inner(scope, receive, send)

        return app

    def start(self) -> FakeTwilio:
        """Serve on 127.0.0.1 (and 127.0.0.2 for the CDN when possible), in a thread."""
        api_sock = _bind("127.0.0.1")
        sockets = [api_sock]
        try:
            cdn_sock = _bind("127.0.0.2")
            sockets.append(cdn_sock)
        except OSError:
            cdn_sock = api_sock  # not every OS routes all of 127/8 to loopback
        self.base_url = f"http://127.0.0.1:{api_sock.getsockname()[1]}"
        host, port = cdn_sock.getsockname()[:2]
        self.cdn_base_url = f"http://{host}:{port}"
        config = uvicorn.Config(self.app(), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": sockets}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake Twilio did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop the server and wait for its thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- webhooks to the app under test ---

    def status_callback(
        self, sid: str, status: str, error_code: int | None = None
    ) -> SignedWebhook:
        """A signed status callback for a message this fake accepted (to its StatusCallback)."""
        with self._lock:
            m = next(m for m in self.messages if m.sid == sid)
            m.status = status
        assert m.status_callback, "the message was sent without a StatusCallback"
        params = {
            "SmsSid": sid,
            "SmsStatus": status,
            "MessageStatus": status,
            "To": m.to,
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": m.from_ or ORG_NUMBER,
            "ApiVersion": "2010-04-01",
        }
        if m.messaging_service_sid:
            params["MessagingServiceSid"] = m.messaging_service_sid
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return sign(self.auth_token, m.status_callback, params)

    def inbound(
        self,
        public_url: str,
        from_: str,
        body: str,
        *,
        media: list[tuple[str, str]] | None = None,
        message_sid: str | None = None,
        opt_out_type: str | None = None,
        account_sid: str | None = None,
    ) -> SignedWebhook:
        """A signed inbound SMS/MMS webhook, with Twilio's geo fields, for ``public_url``.

        ``media`` is a list of (MediaUrl, content type) pairs from :meth:`add_media`.
        """
        sid = message_sid or new_sid("MM" if media else "SM")
        params = {
            "ToCountry": "CA",
            "ToState": "QC",
            "SmsMessageSid": sid,
            "NumMedia": str(len(media or [])),
            "ToCity": "MONTREAL",
            "FromZip": "",
            "SmsSid": sid,
            "FromState": "QC",
            "SmsStatus": "received",
            "FromCity": "MONTREAL",
            "Body": body,
            "FromCountry": "CA",
            "To": ORG_NUMBER,
            "ToZip": "",
            "NumSegments": "1",
            "MessageSid": sid,
            "AccountSid": account_sid or self.account_sid,
            "From": from_,
            "ApiVersion": "2010-04-01",
        }
        for i, (url, content_type) in enumerate(media or []):
            params[f"MediaUrl{i}"] = url
            params[f"MediaContentType{i}"] = content_type
        if opt_out_type:
            params["OptOutType"] = opt_out_type
        return sign(self.auth_token, public_url, params)


@dataclass(frozen=True)
class SignedWebhook:
    """A form body signed the way Twilio signs it, and where it was meant to go."""

    url: str  # the public URL it was signed for
    params: dict[str, str]
    signature: str

    @property
    def path_and_query(self) -> str:
        """The path (and query) to post to on whatever host the app is reached at."""
        parts = urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    @property
    def body(self) -> bytes:
        """The urlencoded body."""
        return urlencode(self.params).encode()

    def headers(self, signature: str | None = "default") -> dict[str, str]:
        """Request headers; pass ``signature=None`` to leave the signature out."""
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if signature == "default":
            headers["X-Twilio-Signature"] = self.signature
        elif signature is not None:
            headers["X-Twilio-Signature"] = signature
        return headers

    async def post(self, client: httpx.AsyncClient, **overrides: Any) -> httpx.Response:
        """Post it to ``client`` (e.g. an ASGI client at the app's internal address)."""
        return await client.post(
            self.path_and_query, content=overrides.get("body", self.body), headers=self.headers()
        )


def sign(token: str, url: str, params: dict[str, str]) -> SignedWebhook:
    """Sign ``params`` for ``url`` with the real twilio ``RequestValidator``."""
    signature = RequestValidator(token).compute_signature(url, params)
    return SignedWebhook(url, dict(params), signature)


def _bind(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, 0))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _segments(body: str) -> int:
    # Rough, as Twilio's own answer is an estimate too; GSM-vs-UCS-2 by ASCII only.
    single, multi = (160, 153) if body.isascii() else (70, 67)
    return 1 if len(body) <= single else -(-len(body) // multi)
