"""An in-repo fake of signal-cli-rest-api (json-rpc mode), HTTP and receive websocket.

Every request body is validated against the vendored 0.101 spec with
``additionalProperties: false`` forced on every object, so a misspelt field fails the test
(violations are collected in ``fake.violations`` and answered with 400, as the real server
answers a body it cannot bind). Answers have the real server's shapes: a 201 JSON array
from ``/v2/send`` (or the one object of 0.100 and earlier), 429 with challenge tokens,
400 ``[413] Rate limit exceeded``, per-recipient failures.

Like the real server, frames injected while no websocket is attached are dropped.

Use::

    with run_fake_signal_server() as fake:
        client = SignalClient(fake.service, fake.number)
        alice = fake.member("+15145550121")
        ts = alice.says("hi")               # a frame on the receive websocket
        fake.sent_to("+15145550122")        # what the org sent that member

The server runs under uvicorn on 127.0.0.1 (ephemeral port) in a background thread; the
test side talks to it through thread-safe methods.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import io
import itertools
import json
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

SPEC_PATH = (
    Path(__file__).resolve().parent.parent / "fixtures" / ("signal-cli-rest-api-0.101.swagger.json")
)
ORG_NUMBER = "+15145550120"
ORG_UUID = "7d1f6a52-0000-4000-8000-0000000000b0"
_FIRST_TIMESTAMP = 1767225700000


# --- spec validation ---------------------------------------------------------------------


def _close_objects(node: Any) -> None:
    """Force additionalProperties: false on every object schema that lists properties."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close_objects(value)
    elif isinstance(node, list):
        for value in node:
            _close_objects(value)


class SpecValidator:
    """Validates bodies against the vendored spec's definitions, closed to unknown fields."""

    def __init__(self, path: Path = SPEC_PATH) -> None:
        spec = json.loads(path.read_text(encoding="utf-8"))
        definitions = copy.deepcopy(spec["definitions"])
        _close_objects(definitions)
        self._definitions = definitions

    def errors(self, definition: str, body: object) -> list[str]:
        """Each way ``body`` breaks ``definition`` (empty when it conforms)."""
        schema = {"$ref": f"#/definitions/{definition}", "definitions": self._definitions}
        validator = jsonschema.Draft4Validator(schema)
        return [f"{definition}: {e.message}" for e in validator.iter_errors(body)]


# --- records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentFile:
    """An attachment as the server decoded it from a data URI."""

    content_type: str
    filename: str
    data: bytes


@dataclass(frozen=True)
class SentMessage:
    """One accepted ``/v2/send`` to one recipient."""

    recipient: str
    message: str
    timestamp: int
    body: dict[str, Any]
    files: tuple[SentFile, ...] = ()

    @property
    def quote_author(self) -> str | None:
        """The quote's author as sent."""
        return self.body.get("quote_author")

    @property
    def quote_timestamp(self) -> int | None:
        """The quoted message's timestamp as sent."""
        return self.body.get("quote_timestamp")

    @property
    def edit_timestamp(self) -> int | None:
        """The edited message's timestamp as sent."""
        return self.body.get("edit_timestamp")


@dataclass
class _Connection:
    queue: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)


def _parse_data_uri(item: str) -> SentFile:
    """The server's own parsing (src/client/attachment.go, extractMetaData)."""
    index = item.rfind("base64,")
    if "data:" not in item or index == -1:
        return SentFile("", "", base64.b64decode(item, validate=True))
    mime, filename = "", ""
    for part in item[: index - 1].split(";"):
        if part.startswith("data:"):
            mime = part[len("data:") :]
        elif part.startswith("filename="):
            filename = part[len("filename=") :]
    return SentFile(mime, filename, base64.b64decode(item[index + len("base64,") :], validate=True))


def jpeg_with_gps(width: int = 32, height: int = 24) -> bytes:
    """A small JPEG whose EXIF holds GPS coordinates (a place in Montreal) and a camera."""
    image = Image.new("RGB", (width, height), (180, 120, 90))
    exif = Image.Exif()
    exif[0x010F] = "FakeCam"  # Make
    exif[0x0110] = "Model 5"  # Model
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"  # GPSLatitudeRef
    gps[2] = (45.0, 30.0, 17.0)  # GPSLatitude
    gps[3] = "W"  # GPSLongitudeRef
    gps[4] = (73.0, 34.0, 2.0)  # GPSLongitude
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


# --- the fake ----------------------------------------------------------------------------


class FakeSignalServer:
    """State and behaviour of the fake; :func:`run_fake_signal_server` serves it."""

    kind = "rest"

    def __init__(self, number: str = ORG_NUMBER, *, mode: str = "json-rpc") -> None:
        self.number = number
        self.mode = mode
        self.version = "0.101"
        self.legacy_send_response = False  # answer /v2/send with one object, as 0.100 did
        self.send_delay = 0.0  # seconds each /v2/send takes (real signal-cli: 50-300 ms)
        self.service = ""  # "127.0.0.1:port" once running
        self.validator = SpecValidator()
        self._lock = threading.Lock()
        self._clock = itertools.count(_FIRST_TIMESTAMP)
        # records, read by tests
        self.violations: list[str] = []
        self.sent: list[SentMessage] = []
        self.send_attempts: list[dict[str, Any]] = []
        self.reactions: list[dict[str, Any]] = []
        self.remote_deletes: list[dict[str, Any]] = []
        self.timers: dict[str, int] = {}
        self.timer_calls: list[dict[str, Any]] = []
        self.attachments: dict[str, tuple[str, bytes]] = {}
        self.fetched_attachments: list[str] = []
        self.deleted_attachments: list[str] = []
        self.challenges: list[dict[str, Any]] = []
        self.registered: set[str] = set()
        # Account UUID → number, as signal-cli resolves recipients given either way.
        self.numbers_by_uuid: dict[str, str] = {}
        self.trusted: list[tuple[str, dict[str, Any]]] = []
        self.profiles: list[dict[str, Any]] = []  # bodies of PUT /v1/profiles/{number}
        # The org's account: registered (as most tests assume) unless a test says otherwise.
        self.account_registered = True
        self.devices: list[dict[str, Any]] = [_device(1, "signal-cli")]
        self.registrations: list[dict[str, Any]] = []  # bodies of POST /v1/register/{number}
        self.verification_code: str | None = None  # sent "by SMS" after a registration
        self.registration_pin: str | None = None  # a registration lock on the number
        self.captcha_for_registration = True  # Signal asks new registrations for a captcha
        # Numbers signal-cli has looked up or written to: it knows their account id.
        self.resolved: set[str] = set()
        self.frames_delivered = 0
        self.frames_dropped = 0
        self.connections_opened = 0
        # behaviour, set by tests
        self._send_failures: list[tuple[int, Any]] = []
        self._recipient_failures: dict[str, list[str]] = {}
        self._captcha_token: str | None = None
        # server side, set while running
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._connections: list[_Connection] = []
        self.app = self._build_app()

    # --- test API: behaviour ---------------------------------------------------------------

    def next_timestamp(self) -> int:
        """A fresh, increasing Signal timestamp."""
        with self._lock:
            return next(self._clock)

    def addressed_requests(self) -> list[tuple[str, dict[str, Any]]]:
        """(recipient, body) for every accepted request that reaches someone (/v2/send, a
        reaction, a remote delete, a contact update), body as it came: once per recipient
        named. Reactions carry one field the fake adds, ``remove`` (the HTTP method)."""
        with self._lock:
            bodies = [*self.send_attempts, *self.reactions, *self.remote_deletes]
            bodies += self.timer_calls
        found: list[tuple[str, dict[str, Any]]] = []
        for body in bodies:
            named = body.get("recipients") or [body.get("recipient")]
            found.extend((r, body) for r in named if isinstance(r, str))
        return found

    def fail_next_send(self, status: int, body: Any) -> None:
        """Answer the next /v2/send with ``status`` and JSON ``body`` (e.g. 400 [413])."""
        with self._lock:
            self._send_failures.append((status, body))

    def fail_recipient(self, number: str, reason: str) -> None:
        """The next send to ``number`` is answered 201 with this per-recipient reason."""
        with self._lock:
            self._recipient_failures.setdefault(number, []).append(reason)

    def require_captcha(self, token: str = "5fad97ac-7d06-4e44-b18a-b950b20148ff") -> None:  # noqa: S107
        """Answer every send with 429 and ``token`` until that challenge is submitted."""
        with self._lock:
            self._captcha_token = token

    def link_device(self, name: str = "Signal Desktop") -> None:
        """Someone links another device (a phone, a Signal Desktop) to the org's number."""
        with self._lock:
            self.devices.append(_device(len(self.devices) + 1, name))

    def store_attachment(self, attachment_id: str, content_type: str, data: bytes) -> None:
        """Hold a received attachment, as signal-cli does after receiving it."""
        with self._lock:
            self.attachments[attachment_id] = (content_type, data)

    def phone_of(self, recipient: str) -> str:
        """The number a recipient given by number or account UUID reaches."""
        return self.numbers_by_uuid.get(recipient, recipient)

    def sent_to(self, recipient: str) -> list[SentMessage]:
        """Messages the org sent ``recipient`` (a number or an account UUID; accepted only)."""
        with self._lock:
            return [m for m in self.sent if self.phone_of(m.recipient) == self.phone_of(recipient)]

    def member(
        self, number: str | None, uuid: str | None = None, *, profile_name: str = "Profile Name"
    ) -> FakeMember:
        """A simulated member who writes to the org's number."""
        member = FakeMember(self, number, uuid or str(uuidlib.uuid4()), profile_name)
        if number is not None:
            self.registered.add(number)
            self.numbers_by_uuid[member.uuid] = number
        return member

    # --- test API: receive websocket -------------------------------------------------------

    @property
    def connected(self) -> int:
        """How many receive websockets are attached now."""
        return len(self._connections)

    @property
    def subscribed(self) -> int:
        """Receive websockets attached now (the daemon fake's name for its subscribers)."""
        return len(self._connections)

    def push(self, frame: dict[str, Any] | str) -> bool:
        """Send one frame to every attached websocket; dropped (False) when none is."""
        text = frame if isinstance(frame, str) else json.dumps(frame)
        return bool(self._call(self._enqueue, ("frame", text)))

    def close_websockets(self, code: int = 1000) -> None:
        """Close every receive websocket with a close frame (1000 = clean)."""
        self._call(self._enqueue, ("close", code))

    def abort_websockets(self) -> None:
        """Drop every receive websocket's TCP connection without a close frame."""
        self._call(self._abort)

    async def wait_connected(self, opened: int = 1, within: float = 5.0) -> None:
        """Wait (without blocking the caller's loop) until ``opened`` websockets were opened
        in total and one is attached now."""
        with anyio.fail_after(within):
            # Polled: the state changes in the server's thread, not on this loop.
            while self.connections_opened < opened or not self._connections:
                await anyio.sleep(0.01)

    async def wait_until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Poll ``predicate`` until true."""
        with anyio.fail_after(within):
            while not predicate():
                await anyio.sleep(0.01)

    # --- frames members and linked devices produce ----------------------------------------

    def linked_device_says(self, text: str, to: str) -> int:
        """A syncMessage: the org typed ``text`` to ``to`` on a linked Signal Desktop."""
        ts = self.next_timestamp()
        envelope = {
            "source": self.number,
            "sourceNumber": self.number,
            "sourceUuid": ORG_UUID,
            "sourceName": "Org",
            "sourceDevice": 2,
            "timestamp": ts,
            "syncMessage": {
                "sentMessage": {
                    "destination": to,
                    "destinationNumber": to,
                    "destinationUuid": None,
                    "timestamp": ts,
                    "message": text,
                    "expiresInSeconds": 0,
                    "viewOnce": False,
                }
            },
        }
        self.push({"envelope": envelope, "account": self.number})
        return ts

    def error_frame(self, text: str = "websocket: close 1006 (abnormal closure)") -> bool:
        """An ``{"error": ...}`` frame from the REST layer."""
        return self.push({"error": text})

    # --- plumbing ----------------------------------------------------------------------------

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._loop is None:
            raise RuntimeError("the fake is not running")

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=5)

    def _enqueue(self, item: tuple[str, Any]) -> bool:
        if not self._connections:
            if item[0] == "frame":
                self.frames_dropped += 1  # the real server drops it too
            return False
        for conn in self._connections:
            conn.queue.put_nowait(item)
        if item[0] == "frame":
            self.frames_delivered += 1
        return True

    def _abort(self) -> None:
        from uvicorn.protocols.websockets.wsproto_impl import WSProtocol

        assert self._server is not None
        for protocol in list(self._server.server_state.connections):
            if isinstance(protocol, WSProtocol):
                protocol.transport.abort()

    def _violation(self, definition: str, body: object) -> JSONResponse | None:
        errors = self.validator.errors(definition, body)
        if not errors:
            return None
        with self._lock:
            self.violations.extend(errors)
        return JSONResponse({"error": "Couldn't process request - invalid request"}, 400)

    def _wrong_account(self, request: Request) -> JSONResponse | None:
        if request.path_params.get("number") == self.number:
            return None
        # The real text names the number; the client must never copy it anywhere.
        number = request.path_params.get("number")
        return JSONResponse({"error": f"User {number} is not registered."}, 400)

    async def _json(self, request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except ValueError:
            return None

    # --- HTTP handlers -----------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/about", self._about, methods=["GET"]),
                Route("/v2/send", self._send, methods=["POST"]),
                Route("/v1/reactions/{number}", self._reaction, methods=["POST", "DELETE"]),
                Route("/v1/remote-delete/{number}", self._remote_delete, methods=["DELETE"]),
                Route("/v1/contacts/{number}", self._contact, methods=["PUT"]),
                Route("/v1/contacts/{number}", self._contacts, methods=["GET"]),
                Route("/v1/identities/{number}", self._identities, methods=["GET"]),
                Route("/v1/attachments/{attachment}", self._attachment, methods=["GET", "DELETE"]),
                Route(
                    "/v1/accounts/{number}/rate-limit-challenge",
                    self._challenge,
                    methods=["POST"],
                ),
                Route("/v1/search/{number}", self._search, methods=["GET"]),
                Route("/v1/identities/{number}/trust/{member}", self._trust, methods=["PUT"]),
                Route("/v1/profiles/{number}", self._profile, methods=["PUT"]),
                Route("/v1/accounts", self._accounts, methods=["GET"]),
                Route("/v1/devices/{number}", self._devices, methods=["GET"]),
                Route("/v1/devices/{number}/{device}", self._unlink, methods=["DELETE"]),
                Route("/v1/register/{number}", self._register, methods=["POST"]),
                Route("/v1/register/{number}/verify/{token}", self._verify, methods=["POST"]),
                WebSocketRoute("/v1/receive/{number}", self._receive),
            ]
        )

    async def _about(self, request: Request) -> Response:
        return JSONResponse(
            {
                "versions": ["v1", "v2"],
                "build": 2,
                "mode": self.mode,
                "version": self.version,
                "capabilities": {"v2/send": ["quotes", "mentions"]},
            }
        )

    async def _send(self, request: Request) -> Response:
        if self.send_delay:
            await asyncio.sleep(self.send_delay)  # other requests go on meanwhile
        body = await self._json(request)
        if (bad := self._violation("api.SendMessageV2", body)) is not None:
            return bad
        with self._lock:
            self.send_attempts.append(body)
            failure = self._send_failures.pop(0) if self._send_failures else None
            captcha = self._captcha_token
        if failure is not None:
            return JSONResponse(failure[1], failure[0])
        if captcha is not None:
            return JSONResponse(
                {
                    "error": "Failed to send message due to rate limiting. Use the attached "
                    "challenge tokens to lift the rate limit restrictions via the "
                    "'/v1/accounts/{number}/rate-limit-challenge' endpoint.",
                    "challenge_tokens": [captcha],
                    "account": body["number"],
                },
                429,
            )
        if body["number"] != self.number:
            return JSONResponse({"error": f"User {body['number']} is not registered."}, 400)
        if not body["recipients"]:
            return JSONResponse(
                {"error": "Couldn't process request - please provide at least one recipient"}, 400
            )
        if body.get("view_once") and not body.get("base64_attachments"):
            return JSONResponse(
                {"error": "'view_once' can only be set for image attachments!"}, 400
            )
        try:
            files = tuple(_parse_data_uri(a) for a in body.get("base64_attachments", []))
        except (binascii.Error, ValueError):
            return JSONResponse({"error": "illegal base64 data"}, 400)
        timestamp = self.next_timestamp()
        failures = []
        with self._lock:
            for recipient in body["recipients"]:
                reasons = self._recipient_failures.get(self.phone_of(recipient))
                if reasons:
                    failures.append(
                        {
                            "number": recipient,
                            "uuid": str(uuidlib.uuid4()),
                            "reason": reasons.pop(0),
                        }
                    )
                    continue
                self.sent.append(SentMessage(recipient, body["message"], timestamp, body, files))
                if recipient in self.registered:  # signal-cli looked the number up to send
                    self.resolved.add(recipient)
        entry: dict[str, Any] = {"timestamp": str(timestamp)}
        if failures:
            entry["errors"] = {"recipients": failures}
        if self.legacy_send_response:
            return JSONResponse(entry, 201)
        return JSONResponse([entry], 201)

    async def _reaction(self, request: Request) -> Response:
        if (bad := self._wrong_account(request)) is not None:
            return bad
        body = await self._json(request)
        remove = request.method == "DELETE"
        definition = "api.RemoveReactionRequest" if remove else "api.SendReactionRequest"
        if (bad := self._violation(definition, body)) is not None:
            return bad
        with self._lock:
            self.reactions.append(body | {"remove": remove})
        return Response(status_code=204)

    async def _remote_delete(self, request: Request) -> Response:
        if (bad := self._wrong_account(request)) is not None:
            return bad
        body = await self._json(request)
        if (bad := self._violation("api.RemoteDeleteRequest", body)) is not None:
            return bad
        with self._lock:
            self.remote_deletes.append(body)
        return JSONResponse({"timestamp": str(self.next_timestamp())}, 201)

    async def _contact(self, request: Request) -> Response:
        if (bad := self._wrong_account(request)) is not None:
            return bad
        body = await self._json(request)
        if (bad := self._violation("api.UpdateContactRequest", body)) is not None:
            return bad
        with self._lock:
            self.timer_calls.append(body)
            if "expiration_in_seconds" in body:
                self.timers[self.phone_of(body["recipient"])] = body["expiration_in_seconds"]
        return Response(status_code=204)

    async def _attachment(self, request: Request) -> Response:
        attachment_id = request.path_params["attachment"]
        with self._lock:
            held = self.attachments.get(attachment_id)
            if held is not None and request.method == "DELETE":
                del self.attachments[attachment_id]
                self.deleted_attachments.append(attachment_id)
            elif held is not None:
                self.fetched_attachments.append(attachment_id)
        if held is None:
            return JSONResponse({"error": "file does not exist"}, 404)
        if request.method == "DELETE":
            return Response(status_code=204)
        return Response(held[1], media_type=held[0])

    async def _challenge(self, request: Request) -> Response:
        if (bad := self._wrong_account(request)) is not None:
            return bad
        body = await self._json(request)
        if (bad := self._violation("api.RateLimitChallengeRequest", body)) is not None:
            return bad
        with self._lock:
            self.challenges.append(body)
            if body["challenge_token"] == self._captcha_token and body["captcha"].startswith(
                "signalcaptcha://"
            ):
                self._captcha_token = None
                return Response(status_code=204)
        return JSONResponse({"error": "Invalid captcha or challenge token"}, 400)

    async def _trust(self, request: Request) -> Response:
        if (bad := self._wrong_account(request)) is not None:
            return bad
        body = await self._json(request)
        if (bad := self._violation("api.TrustIdentityRequest", body)) is not None:
            return bad
        with self._lock:
            self.trusted.append((request.path_params["member"], body))
        return Response(status_code=204)

    async def _profile(self, request: Request) -> Response:
        if (bad := self._wrong_account(request)) is not None:
            return bad
        body = await self._json(request)
        if (bad := self._violation("api.UpdateProfileRequest", body)) is not None:
            return bad
        avatar = body.get("base64_avatar")
        if avatar is not None:
            try:
                base64.b64decode(avatar, validate=True)
            except (binascii.Error, ValueError):
                return JSONResponse({"error": "illegal base64 data"}, 400)
        with self._lock:
            self.profiles.append(body)
        return Response(status_code=204)

    async def _search(self, request: Request) -> Response:
        if (bad := self._wrong_account(request)) is not None:
            return bad
        numbers = request.query_params.getlist("numbers")
        if not numbers:
            return JSONResponse({"error": "Please provide numbers to query for"}, 400)
        with self._lock:
            self.resolved.update(n for n in numbers if n in self.registered)
        return JSONResponse([{"number": n, "registered": n in self.registered} for n in numbers])

    def _known(self) -> list[tuple[str, str]]:
        """(number, account id) of every recipient signal-cli resolved."""
        with self._lock:
            return [(n, u) for u, n in self.numbers_by_uuid.items() if n in self.resolved]

    async def _identities(self, request: Request) -> Response:
        if (bad := self._wrong_account(request)) is not None:
            return bad
        return JSONResponse(
            [
                {
                    "number": number,
                    "uuid": uuid,
                    "status": "TRUSTED_UNVERIFIED",
                    "fingerprint": "05 1a 2b",
                    "safety_number": "123451234512345123451234512345123451234512345123",
                    "added": "2026-11-29T10:00:00Z",
                }
                for number, uuid in self._known()
            ]
        )

    async def _contacts(self, request: Request) -> Response:
        if (bad := self._wrong_account(request)) is not None:
            return bad
        if request.query_params.get("all_recipients") != "true":
            return JSONResponse([])  # only saved contacts: the org saves none
        return JSONResponse(
            [
                {
                    "number": number,
                    "uuid": uuid,
                    "name": "",
                    "profile_name": "Profile Name",
                    "username": "",
                    "color": "",
                    "blocked": False,
                    "message_expiration": "0",
                    "given_name": "",
                    "note": "",
                    "nickname": {"name": "", "given_name": "", "family_name": ""},
                    "profile": {
                        "given_name": "Profile",
                        "lastname": "Name",
                        "about": "",
                        "has_avatar": False,
                        "last_updated_timestamp": 0,
                    },
                }
                for number, uuid in self._known()
            ]
        )

    async def _accounts(self, request: Request) -> Response:
        return JSONResponse([self.number] if self.account_registered else [])

    async def _devices(self, request: Request) -> Response:
        if (bad := self._wrong_account(request)) is not None or not self.account_registered:
            return bad or JSONResponse({"error": "User is not registered."}, 400)
        with self._lock:
            return JSONResponse(list(self.devices))

    async def _unlink(self, request: Request) -> Response:
        if (bad := self._wrong_account(request)) is not None:
            return bad
        with self._lock:
            kept = [d for d in self.devices if str(d["id"]) != request.path_params["device"]]
            if len(kept) == len(self.devices):
                return JSONResponse({"error": "Device does not exist"}, 400)
            self.devices = kept
        return Response(status_code=204)

    async def _registration_body(
        self, request: Request, definition: str
    ) -> tuple[dict[str, Any], Response | None]:
        """The optional JSON body of a registration call, checked against the spec."""
        if request.path_params.get("number") != self.number:
            return {}, JSONResponse({"error": "Invalid phone number"}, 400)
        raw = await request.body()
        body = json.loads(raw) if raw else {}
        return body, self._violation(definition, body)

    async def _register(self, request: Request) -> Response:
        body, bad = await self._registration_body(request, "api.RegisterNumberRequest")
        if bad is not None:
            return bad
        with self._lock:
            self.registrations.append(body)
            if self.captcha_for_registration and not str(body.get("captcha", "")).startswith(
                "signalcaptcha://"
            ):
                return JSONResponse({"error": "Captcha required for verification"}, 400)
            self.verification_code = f"{100000 + len(self.registrations):06d}"
        return Response(status_code=201)

    async def _verify(self, request: Request) -> Response:
        body, bad = await self._registration_body(request, "api.VerifyNumberSettings")
        if bad is not None:
            return bad
        with self._lock:
            code = request.path_params["token"].replace("-", "")
            if self.verification_code is None or code != self.verification_code:
                return JSONResponse({"error": "Verify error: Invalid verification code"}, 400)
            if self.registration_pin is not None and body.get("pin") != self.registration_pin:
                return JSONResponse(
                    {
                        "error": "Verify error: Account is pin locked, but pin data has been "
                        "supplied that is incorrect"
                    },
                    400,
                )
            self.account_registered = True
            self.verification_code = None
        return JSONResponse("", 201)

    async def _receive(self, websocket: WebSocket) -> None:
        if websocket.path_params.get("number") != self.number:
            await websocket.close(code=1008)
            return
        await websocket.accept()
        conn = _Connection()
        self._connections.append(conn)
        self.connections_opened += 1
        try:
            async with anyio.create_task_group() as tg:

                async def watch_client() -> None:
                    with contextlib.suppress(WebSocketDisconnect):
                        while True:
                            await websocket.receive_text()
                    tg.cancel_scope.cancel()

                tg.start_soon(watch_client)
                while True:
                    kind, value = await conn.queue.get()
                    if kind == "frame":
                        await websocket.send_text(value)
                    elif kind == "close":
                        # Stop listening first, so the client's close reply ends nothing twice.
                        self._connections.remove(conn)
                        await websocket.close(code=value)
                        tg.cancel_scope.cancel()
                        return
        except Exception:  # noqa: BLE001, S110  (an aborted socket ends the handler)
            pass
        finally:
            if conn in self._connections:
                self._connections.remove(conn)


def _device(device_id: int, name: str) -> dict[str, Any]:
    """A ``client.ListDevicesResponse``."""
    return {
        "id": device_id,
        "name": name,
        "creation_timestamp": _FIRST_TIMESTAMP,
        "last_seen_timestamp": _FIRST_TIMESTAMP,
    }


class FakeMember:
    """A member writing to the org's number; each method pushes one frame and returns its
    Signal timestamp (dropped by the fake if no receive websocket is attached)."""

    def __init__(self, fake: FakeSignalServer, number: str | None, uuid: str, name: str) -> None:
        self.fake = fake
        self.number = number
        self.uuid = uuid
        self.profile_name = name
        self.timer = 604800

    def _envelope(self, ts: int, **content: Any) -> dict[str, Any]:
        envelope = {
            "source": self.number or self.uuid,
            "sourceNumber": self.number,
            "sourceUuid": self.uuid,
            "sourceName": self.profile_name,
            "sourceDevice": 1,
            "timestamp": ts,
            "serverReceivedTimestamp": ts + 60,
            "serverDeliveredTimestamp": ts + 90,
        }
        return {"envelope": envelope | content, "account": self.fake.number}

    def _data(self, ts: int, **fields: Any) -> dict[str, Any]:
        data = {
            "timestamp": ts,
            "message": None,
            "expiresInSeconds": self.timer,
            "viewOnce": False,
        }
        return data | fields

    def _push_data(self, **fields: Any) -> int:
        ts = self.fake.next_timestamp()
        self.fake.push(self._envelope(ts, dataMessage=self._data(ts, **fields)))
        return ts

    def frame(self, text: str) -> dict[str, Any]:
        """The frame of a text message, not pushed: push it yourself, once or more (Signal
        and signal-cli can hand the same message over again)."""
        ts = self.fake.next_timestamp()
        return self._envelope(ts, dataMessage=self._data(ts, message=text))

    def says(self, text: str, **fields: Any) -> int:
        """A plain text message (extra dataMessage fields may be given)."""
        return self._push_data(message=text, **fields)

    def quotes(self, target_ts: int, text: str, quoted_text: str = "") -> int:
        """A reply quoting the message the org sent this member at ``target_ts``."""
        quote = {
            "id": target_ts,
            "author": self.fake.number,
            "authorNumber": self.fake.number,
            "authorUuid": ORG_UUID,
            "text": quoted_text,
            "attachments": [],
        }
        return self._push_data(message=text, quote=quote)

    def mentions(self, other: FakeMember, before: str = "thanks ", after: str = " !") -> int:
        """A message mentioning ``other`` (U+FFFC placeholder, UTF-16 offsets)."""
        start = len(before.encode("utf-16-le")) // 2
        mention = {
            "name": other.profile_name,
            "number": other.number,
            "uuid": other.uuid,
            "start": start,
            "length": 1,
        }
        return self._push_data(message=f"{before}\ufffc{after}", mentions=[mention])

    def reacts(self, emoji: str, target_ts: int, *, remove: bool = False) -> int:
        """An emoji reaction on the org's message at ``target_ts``."""
        reaction = {
            "emoji": emoji,
            "targetAuthor": self.fake.number,
            "targetAuthorNumber": self.fake.number,
            "targetAuthorUuid": ORG_UUID,
            "targetSentTimestamp": target_ts,
            "isRemove": remove,
        }
        return self._push_data(reaction=reaction)

    def edits(self, target_ts: int, text: str) -> int:
        """An edit of this member's own message at ``target_ts``."""
        ts = self.fake.next_timestamp()
        edit = {"targetSentTimestamp": target_ts, "dataMessage": self._data(ts, message=text)}
        self.fake.push(self._envelope(ts, editMessage=edit))
        return ts

    def deletes(self, target_ts: int) -> int:
        """A remote delete of this member's own message at ``target_ts``."""
        return self._push_data(remoteDelete={"timestamp": target_ts})

    def sets_timer(self, seconds: int) -> int:
        """The member changes the conversation's disappearing timer (0 = off)."""
        self.timer = seconds
        return self._push_data(isExpirationUpdate=True)

    def sends_photo(self, text: str | None = None, filename: str = "IMG_0042.jpg") -> int:
        """A JPEG with GPS EXIF; the fake holds its bytes until fetched and deleted."""
        data = jpeg_with_gps()
        attachment_id = f"{uuidlib.uuid4().hex[:20]}.jpg"
        self.fake.store_attachment(attachment_id, "image/jpeg", data)
        attachment = {
            "contentType": "image/jpeg",
            "filename": filename,
            "id": attachment_id,
            "size": len(data),
            "width": 32,
            "height": 24,
            "caption": None,
            "uploadTimestamp": int(time.time() * 1000),
        }
        return self._push_data(message=text, attachments=[attachment])

    def types(self) -> int:
        """A typing indicator (never relayed)."""
        ts = self.fake.next_timestamp()
        self.fake.push(self._envelope(ts, typingMessage={"action": "STARTED", "timestamp": ts}))
        return ts

    def cannot_be_decrypted(
        self, text: str = "org.signal.libsignal.protocol.InvalidMessageException: decryption failed"
    ) -> int:
        """A message from this member that signal-cli could not decrypt: its receive handler
        (JsonReceiveMessageHandler) writes ``exception`` ({message, type}) beside an envelope
        that names the sender (from the exception) and holds no content. Signal-cli's own
        text ``text`` may quote anything."""
        ts = self.fake.next_timestamp()
        frame = self._envelope(ts)
        frame["exception"] = {"message": text, "type": "ProtocolInvalidMessageException"}
        self.fake.push(frame)
        return ts

    def changes_safety_number(self) -> int:
        """The exception frame signal-cli emits when this member's identity key changed."""
        ts = self.fake.next_timestamp()
        frame = self._envelope(ts)
        frame["exception"] = {"message": "Untrusted identity", "type": "UntrustedIdentityException"}
        self.fake.push(frame)
        return ts


@contextlib.contextmanager
def run_fake_signal_server(
    number: str = ORG_NUMBER, *, mode: str = "json-rpc"
) -> Iterator[FakeSignalServer]:
    """Serve a fresh fake on 127.0.0.1 (ephemeral port) in a background thread."""
    fake = FakeSignalServer(number, mode=mode)
    config = uvicorn.Config(
        fake.app,
        host="127.0.0.1",
        port=0,
        ws="wsproto",
        lifespan="off",
        access_log=False,  # access lines would carry numbers in paths
        log_config=None,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    ready = threading.Event()

    def serve() -> None:
        loop = asyncio.new_event_loop()
        fake._loop = loop
        fake._server = server
        ready.set()
        loop.run_until_complete(server.serve())
        loop.close()

    thread = threading.Thread(target=serve, name="fake-signal-server", daemon=True)
    thread.start()
    ready.wait(5)
    deadline = time.monotonic() + 5
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake signal server did not start")
        time.sleep(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    fake.service = f"127.0.0.1:{port}"
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(5)
