"""Status callbacks: parsing, monotonic ordering, repeats and out-of-order arrival."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bots.sms.errors import error_for_code
from bots.sms.webhook import (
    FormData,
    MalformedWebhookError,
    MessageStatus,
    is_final,
    may_replace,
    parse_status,
)
from relay.errors import PermanentError, Reason, RetryableError
from tests.fakes.twilio_server import ACCOUNT_SID, AUTH_TOKEN, sign
from tests.sms.conftest import PUBLIC, Core

SID = "SM" + "ab" * 16
S = MessageStatus


def status_form(status: str, code: str | None = None) -> FormData:
    pairs = [("MessageSid", SID), ("MessageStatus", status), ("AccountSid", ACCOUNT_SID)]
    if code is not None:
        pairs.append(("ErrorCode", code))
    return FormData(pairs)


def test_parse_status_with_error_code() -> None:
    update = parse_status(status_form("undelivered", "30003"))
    assert update is not None
    assert (update.message_sid, update.status, update.error_code) == (SID, S.UNDELIVERED, 30003)
    assert isinstance(error_for_code(update.error_code), PermanentError)


def test_blank_error_code_is_none() -> None:
    update = parse_status(status_form("sent", ""))
    assert update is not None
    assert update.error_code is None


def test_unknown_status_is_ignored_not_refused() -> None:
    assert parse_status(status_form("teleported")) is None


def test_bad_error_code_is_malformed() -> None:
    with pytest.raises(MalformedWebhookError):
        parse_status(status_form("failed", "abc"))


def test_forward_only() -> None:
    assert may_replace(None, S.QUEUED)
    assert may_replace(S.QUEUED, S.SENDING)
    assert may_replace(S.QUEUED, S.SENT)  # sending may be skipped
    assert may_replace(S.SENT, S.DELIVERED)
    assert may_replace(S.SENT, S.UNDELIVERED)
    assert may_replace(S.SENDING, S.FAILED)
    assert may_replace(S.ACCEPTED, S.QUEUED)


def test_repeats_and_late_arrivals_do_not_replace() -> None:
    assert not may_replace(S.SENT, S.SENT)
    assert not may_replace(S.SENT, S.QUEUED)
    assert not may_replace(S.DELIVERED, S.SENT)
    assert not may_replace(S.DELIVERED, S.UNDELIVERED)
    assert not may_replace(S.FAILED, S.DELIVERED)


def test_read_may_follow_delivered() -> None:
    assert may_replace(S.DELIVERED, S.READ)
    assert not may_replace(S.READ, S.DELIVERED)


def test_final_statuses() -> None:
    assert {s for s in S if is_final(s)} == {
        S.DELIVERED,
        S.UNDELIVERED,
        S.FAILED,
        S.CANCELED,
        S.READ,
    }


@given(st.permutations([S.QUEUED, S.SENDING, S.SENT, S.DELIVERED]))
def test_any_arrival_order_ends_at_delivered(order: list[MessageStatus]) -> None:
    current: MessageStatus | None = None
    for status in order:
        if may_replace(current, status):
            current = status
    assert current is S.DELIVERED


@given(st.lists(st.sampled_from(list(S)), min_size=1, max_size=12))
def test_once_final_stays_final(statuses: list[MessageStatus]) -> None:
    current: MessageStatus | None = None
    for status in statuses:
        if may_replace(current, status):
            was_final = current is not None and is_final(current)
            assert not was_final or (current is S.DELIVERED and status is S.READ)
            current = status


@pytest.mark.parametrize(
    ("code", "cls", "reason"),
    [
        (30003, PermanentError, Reason.UNREACHABLE),
        (30005, PermanentError, Reason.INVALID_NUMBER),
        (30006, PermanentError, Reason.UNREACHABLE),
        (30007, PermanentError, Reason.REJECTED),
        (30008, RetryableError, Reason.PROVIDER_DOWN),
        (30036, RetryableError, Reason.RATE_LIMITED),
    ],
)
def test_callback_error_codes(code: int, cls: type[Exception], reason: Reason) -> None:
    error = error_for_code(code)
    assert isinstance(error, cls)
    assert error.reason is reason


@pytest.mark.anyio
async def test_transcript_callbacks_reach_the_core(
    app_client: httpx.AsyncClient, core: Core
) -> None:
    for status, code in [("sent", None), ("undelivered", "30005"), ("sent", None)]:
        params = {"MessageSid": SID, "MessageStatus": status, "AccountSid": ACCOUNT_SID}
        if code:
            params["ErrorCode"] = code
        hook = sign(AUTH_TOKEN, PUBLIC + "/twilio/status", params)
        assert (await hook.post(app_client)).status_code == 204
    assert core.statuses == [
        (SID, S.SENT, None),
        (SID, S.UNDELIVERED, 30005),
        (SID, S.SENT, None),  # passed on; the core keeps the newest by may_replace
    ]
