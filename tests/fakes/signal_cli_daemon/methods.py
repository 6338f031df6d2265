"""The methods of signal-cli's single-account daemon that Cercle calls, with their results
and errors as signal-cli's commands produce them.

Each handler takes the daemon fake and a :class:`Namespace` and returns the JSON result, or
raises :class:`RpcError` with the code signal-cli's command handler maps the command's
exception to: -1 user error, -3 IO error, -4 untrusted identity, -5 rate limit, -6 captcha
rejected, -32603 anything unexpected (``data.response`` carries the send results when the
command had written them before failing).
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid as uuidlib
from typing import TYPE_CHECKING, Any

from tests.fakes.signal_cli_daemon.params import MissingError, Namespace, WrongTypeError
from tests.fakes.signal_server import SentFile, SentMessage, _parse_data_uri

if TYPE_CHECKING:
    from tests.fakes.signal_cli_daemon.daemon import FakeSignalCliDaemon

USER_ERROR = -1
IO_ERROR = -3
UNTRUSTED_KEY_ERROR = -4
RATELIMIT_ERROR = -5
CAPTCHA_REJECTED_ERROR = -6
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_MENTION = re.compile(r"^(\d+):(\d+):(.+)$")


class RpcError(Exception):
    """A JSON-RPC error answer."""

    def __init__(self, code: int, message: str, data: object = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def _single(fake: FakeSignalCliDaemon, identifier: str | None) -> str:
    """CommandUtil.getSingleRecipientIdentifier: a number or an ACI, else a user error."""
    if identifier is None:
        raise MissingError("recipient")
    if _UUID.match(identifier) or _E164.match(identifier):
        return identifier
    raise RpcError(USER_ERROR, "Invalid phone number or uuid")


def _recipients(fake: FakeSignalCliDaemon, ns: Namespace) -> list[str]:
    if ns.string_list("group-id") or ns.string_list("username"):
        raise RpcError(USER_ERROR, "Group or username recipients are not modelled by this fake")
    recipients = [_single(fake, r) for r in ns.string_list("recipient") or []]
    if not recipients and not ns.boolean("note-to-self"):
        raise RpcError(USER_ERROR, "No recipients given")
    for recipient in recipients:
        if fake.phone_of(recipient) in fake.unregistered:
            raise RpcError(USER_ERROR, f"The user {recipient} is not registered.")
    return recipients


def _address(fake: FakeSignalCliDaemon, recipient: str) -> dict[str, Any]:
    number = fake.phone_of(recipient)
    return {
        "uuid": fake.uuid_of(number),
        "number": number if _E164.match(number) else None,
        "username": None,
    }


def _deliver(fake: FakeSignalCliDaemon, recipients: list[str], record: Any) -> dict[str, Any]:
    """One send to each recipient: results as signal-cli writes them, then its errors."""
    timestamp = fake.next_timestamp()
    results = []
    for recipient in recipients:
        entry: dict[str, Any] = {"recipientAddress": _address(fake, recipient)}
        kind, token, retry_after = fake.outcome_for(recipient)
        entry["type"] = kind
        if token is not None:
            entry["token"] = token
        if retry_after is not None:
            entry["retryAfterSeconds"] = retry_after
        if kind == "SUCCESS":
            record(recipient, timestamp)
        results.append(entry)
    result = {"timestamp": timestamp, "results": results}
    if results and not any(r["type"] == "SUCCESS" for r in results):
        data = {"response": result}
        if all(r["type"] == "IDENTITY_FAILURE" for r in results):
            raise RpcError(
                UNTRUSTED_KEY_ERROR, "Failed to send message due to untrusted identities", data
            )
        if all(r["type"] == "RATE_LIMIT_FAILURE" for r in results):
            raise RpcError(RATELIMIT_ERROR, "Failed to send message due to rate limiting", data)
        raise RpcError(USER_ERROR, "Failed to send message", data)
    return result


def _attachment(item: str) -> SentFile:
    try:
        return _parse_data_uri(item)
    except (binascii.Error, ValueError):
        raise RpcError(
            INTERNAL_ERROR,
            "Failed to send message: invalid attachment (AttachmentInvalidException)",
        ) from None


def send(fake: FakeSignalCliDaemon, ns: Namespace) -> Any:
    """``send``: a message to one or more recipients."""
    recipients = _recipients(fake, ns)
    message = ns.string("message") or ""
    files = tuple(_attachment(a) for a in ns.string_list("attachment") or [])
    for mention in ns.string_list("mention") or []:
        if not _MENTION.match(mention):
            raise RpcError(
                USER_ERROR,
                f"Invalid mention syntax ({mention}) expected 'start:length:recipientNumber'",
            )
    quote_ts = ns.integer("quote-timestamp")
    quote_author = ns.string("quote-author")
    if quote_ts is not None and quote_author is None:
        raise RpcError(USER_ERROR, "Quote author parameter is missing")
    if not message and not files and ns.string("sticker") is None and quote_ts is None:
        raise RpcError(
            USER_ERROR,
            "Sending empty message is not allowed, either a message, attachment or sticker "
            "must be given.",
        )
    edit_ts = ns.integer("edit-timestamp")
    view_once = ns.boolean("view-once")
    # The record keeps the REST fake's field names, so one transcript reads both fakes.
    body: dict[str, Any] = {"number": fake.number, "message": message}
    if quote_ts is not None:
        body |= {"quote_timestamp": quote_ts, "quote_author": quote_author}
        if (quote_message := ns.string("quote-message")) is not None:
            body["quote_message"] = quote_message
    if edit_ts is not None:
        body["edit_timestamp"] = edit_ts
    if view_once:
        body["view_once"] = True
    if mentions := ns.string_list("mention"):
        body["mentions"] = mentions
    fake.send_attempts.append(dict(ns.values))
    with fake._lock:
        failure = fake.send_failures.pop(0) if fake.send_failures else None
    if failure is not None:
        raise failure

    def record(recipient: str, timestamp: int) -> None:
        fake.sent.append(
            SentMessage(recipient, message, timestamp, body | {"recipients": [recipient]}, files)
        )
        fake.resolved.add(fake.phone_of(recipient))

    return _deliver(fake, recipients, record)


def send_reaction(fake: FakeSignalCliDaemon, ns: Namespace) -> Any:
    """``sendReaction``: an emoji on a message."""
    recipients = _recipients(fake, ns)
    emoji = ns.string("emoji")
    author = _single(fake, ns.string("target-author"))
    target = ns.required_integer("target-timestamp")
    if emoji is None:
        raise MissingError("emoji")
    remove = ns.boolean("remove")

    def record(recipient: str, timestamp: int) -> None:
        fake.reactions.append(
            {
                "recipient": recipient,
                "reaction": emoji,
                "target_author": author,
                "timestamp": target,
                "remove": remove,
            }
        )

    return _deliver(fake, recipients, record)


def remote_delete(fake: FakeSignalCliDaemon, ns: Namespace) -> Any:
    """``remoteDelete``: delete one of our messages at its recipients."""
    target = ns.required_integer("target-timestamp")
    recipients = _recipients(fake, ns)

    def record(recipient: str, timestamp: int) -> None:
        fake.remote_deletes.append({"recipient": recipient, "timestamp": target})

    return _deliver(fake, recipients, record)


def send_receipt(fake: FakeSignalCliDaemon, ns: Namespace) -> Any:
    """``sendReceipt``: a read (default) or viewed receipt for received messages."""
    recipient = _single(fake, ns.string("recipient"))
    targets = ns.values.get("targetTimestamp", ns.values.get("target-timestamp"))
    targets = targets if isinstance(targets, list) else [targets]
    if not all(isinstance(t, int) and not isinstance(t, bool) for t in targets):
        raise WrongTypeError("target-timestamp")
    ns.read.add("targetTimestamp")
    kind = ns.string("type") or "read"
    if kind not in ("read", "viewed"):
        raise RpcError(USER_ERROR, "Unknown receipt type: " + kind)
    return _deliver(fake, [recipient], lambda recipient, timestamp: None)


def update_contact(fake: FakeSignalCliDaemon, ns: Namespace) -> Any:
    """``updateContact``: here only the conversation's disappearing timer matters."""
    recipient = _single(fake, ns.string("recipient"))
    if fake.phone_of(recipient) in fake.unregistered:
        raise RpcError(USER_ERROR, f"The user {recipient} is not registered.")
    expiration = ns.integer("expiration")
    for name in ("name", "given-name", "family-name", "nick-given-name", "nick-family-name"):
        ns.string(name)
    ns.string("note")
    if expiration is not None:
        fake.timer_calls.append({"recipient": recipient, "expiration_in_seconds": expiration})
        fake.timers[fake.phone_of(recipient)] = expiration
    return {}


def list_identities(fake: FakeSignalCliDaemon, ns: Namespace) -> Any:
    """``listIdentities``: the identity keys signal-cli knows, optionally for one number."""
    only = ns.string("number")
    found = []
    for number, uuid in fake.known():
        if only is not None and fake.phone_of(only) != number:
            continue
        found.append(
            {
                "number": number,
                "uuid": uuid,
                "fingerprint": "05 1a 2b",
                "safetyNumber": "12345 12345 12345 12345 12345 12345 12345 12345 12345 12345",
                "scannableSafetyNumber": base64.b64encode(b"scannable").decode(),
                "trustLevel": "UNTRUSTED" if number in fake.untrusted else "TRUSTED_UNVERIFIED",
                "addedTimestamp": 1767225600000,
            }
        )
    return found


def trust(fake: FakeSignalCliDaemon, ns: Namespace) -> Any:
    """``trust``: all known keys, or one verified safety number."""
    recipient = _single(fake, ns.string("recipient"))
    if fake.phone_of(recipient) in fake.unregistered:
        raise RpcError(USER_ERROR, f"The user {recipient} is not registered.")
    if ns.boolean("trust-all-known-keys"):
        fake.trusted.append((recipient, {"trust_all_known_keys": True}))
    else:
        number = ns.string("verified-safety-number")
        if number is None:
            raise RpcError(
                USER_ERROR,
                "You need to specify the fingerprint/safety number you have verified with "
                "-v SAFETY_NUMBER",
            )
        fake.trusted.append((recipient, {"verified_safety_number": number}))
    fake.untrusted.discard(fake.phone_of(recipient))
    return {}


def get_user_status(fake: FakeSignalCliDaemon, ns: Namespace) -> Any:
    """``getUserStatus``: which numbers are on Signal, with their account id."""
    statuses = []
    for recipient in ns.string_list("recipient") or []:
        number = fake.phone_of(recipient)
        on_signal = number in fake.registered and number not in fake.unregistered
        if on_signal:
            fake.resolved.add(number)
        statuses.append(
            {
                "recipient": recipient,
                "number": number,
                "uuid": fake.uuid_of(number) if on_signal else None,
                "isRegistered": on_signal,
            }
        )
    return statuses


def update_profile(fake: FakeSignalCliDaemon, ns: Namespace) -> Any:
    """``updateProfile``: name and avatar (a path on the daemon's disk, or a data URI)."""
    given = ns.string("given-name") or ns.string("name")
    body: dict[str, Any] = {"name": given}
    avatar = ns.string("avatar")
    ns.string("family-name")
    ns.string("about")
    if avatar is not None:
        try:
            body["base64_avatar"] = base64.b64encode(_parse_data_uri(avatar).data).decode()
        except (binascii.Error, ValueError):
            raise RpcError(IO_ERROR, "Update profile error: avatar not readable") from None
    if ns.boolean("remove-avatar"):
        body["remove_avatar"] = True
    fake.profiles.append(body)
    return {}


def get_attachment(fake: FakeSignalCliDaemon, ns: Namespace) -> Any:
    """``getAttachment``: a received attachment's bytes, base64, from the daemon's disk."""
    attachment_id = ns.string("id")
    ns.string("recipient")
    ns.string("group-id")
    if attachment_id is None:
        raise RpcError(USER_ERROR, "MissingError attachment id parameter")
    data = fake.read_attachment(attachment_id)
    if data is None:
        raise RpcError(USER_ERROR, f"Could not find attachment with ID: {attachment_id}")
    fake.fetched_attachments.append(attachment_id)
    return {"data": base64.b64encode(data).decode("ascii")}


def submit_rate_limit_challenge(fake: FakeSignalCliDaemon, ns: Namespace) -> Any:
    """``submitRateLimitChallenge``: a solved captcha lifts the rate limit."""
    challenge = ns.string("challenge")
    captcha = ns.string("captcha")
    fake.challenges.append({"challenge_token": challenge, "captcha": captcha})
    if (
        challenge is not None
        and challenge == fake.captcha_token
        and (captcha or "").startswith("signalcaptcha://")
    ):
        fake.captcha_token = None
        return {}
    raise RpcError(
        CAPTCHA_REJECTED_ERROR,
        "Captcha rejected, it may be outdated, already used or solved from a different IP address.",
    )


def list_devices(fake: FakeSignalCliDaemon, ns: Namespace) -> Any:
    """``listDevices``: the devices of the account (1 is signal-cli itself)."""
    return [
        {
            "id": d["id"],
            "name": d["name"],
            "createdTimestamp": 1767225600000,
            "lastSeenTimestamp": 1767225600000,
        }
        for d in fake.devices
    ]


def remove_device(fake: FakeSignalCliDaemon, ns: Namespace) -> Any:
    """``removeDevice``: unlink a device."""
    device_id = ns.required_integer("device-id")
    kept = [d for d in fake.devices if d["id"] != device_id]
    if len(kept) == len(fake.devices):
        raise RpcError(IO_ERROR, "Error while removing device: device not found")
    fake.devices = kept
    return {}


def version(fake: FakeSignalCliDaemon, ns: Namespace) -> Any:
    """``version``."""
    return {"version": fake.version}


HANDLERS = {
    "send": send,
    "sendReaction": send_reaction,
    "remoteDelete": remote_delete,
    "sendReceipt": send_receipt,
    "updateContact": update_contact,
    "listIdentities": list_identities,
    "trust": trust,
    "getUserStatus": get_user_status,
    "updateProfile": update_profile,
    "getAttachment": get_attachment,
    "submitRateLimitChallenge": submit_rate_limit_challenge,
    "listDevices": list_devices,
    "removeDevice": remove_device,
    "version": version,
}


def new_uuid() -> str:
    """A fresh account id."""
    return str(uuidlib.uuid4())


def call(fake: FakeSignalCliDaemon, method: str, ns: Namespace) -> Any:
    """Run one method; type and null mistakes fail as they do in signal-cli's JVM."""
    try:
        return HANDLERS[method](fake, ns)
    except WrongTypeError:
        raise RpcError(INTERNAL_ERROR, "class cast failed (ClassCastException)") from None
    except MissingError:
        raise RpcError(INTERNAL_ERROR, "null (NullPointerException)") from None
