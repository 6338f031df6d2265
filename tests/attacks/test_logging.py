"""Logs shipped to a third party: the redacting filter, the quiet libraries, and a whole
conversation logged at DEBUG that names no one.

Records are looked at twice: as the code emitted them (before the filter; nothing sensitive may
be there in the first place) and as the configured handler writes them (after the filter).
"""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path

import pytest

from cercle.logs import MASK, NOT_PERSONAL, RedactingFilter, configure_logging, redact
from relay.errors import RateLimitedError, Reason
from tests.attacks.conftest import Captured
from tests.room import Room

NUMBER = "+15145550121"
UUID = "7d1f6a52-0000-4000-8000-000000000021"
TOKEN = "5fad97ac-7d06-4e44-b18a-b950b20148ff"


def record(msg: object, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("relay.test", logging.INFO, __file__, 1, msg, args, exc_info)


def filtered(rec: logging.LogRecord) -> str:
    """What a handler with the filter writes for ``rec``."""
    handler = logging.StreamHandler(io.StringIO())
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.handle(rec)
    stream = handler.stream
    assert isinstance(stream, io.StringIO)
    return stream.getvalue()


# --- the filter ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "+15145550121",
        "15145550121",
        "5145550121",
        "514-555-0121",
        "514.555.0121",
        "514 555 0121",
        "(514) 555-0121",
        "+1 (514) 555-0121",
        "+1 514 555 0121",
        "1-514-555-0121",
        "+1\u00a0514\u00a0555\u00a00121",  # no-break spaces
        "+1\u202f514\u202f555\u202f0121",  # narrow no-break spaces (French typography)
        "514\u2011555\u20110121",  # non-breaking hyphens
        "514\u2013555\u20130121",  # en dashes
        "514\u200b555\u200b0121",  # zero-width spaces slipped between digits
        "\uff15\uff11\uff14\uff15\uff15\uff15\uff10\uff11\uff12\uff11",  # fullwidth digits
        "+33 6 12 34 56 78",
    ],
)
def test_phone_numbers_in_any_format_are_masked(number: str) -> None:
    out = filtered(record("sms to %s failed", number))

    assert out.strip() == f"sms to {MASK} failed"


@pytest.mark.parametrize(
    "text",
    [
        UUID,
        UUID.upper(),
        f"PNI:{UUID}",
        UUID.replace("-", ""),
        "a" * 32,
    ],
)
def test_uuids_with_or_without_dashes_are_masked(text: str) -> None:
    out = filtered(record("member %s", text))

    assert out.strip().endswith(MASK)
    assert "7d1f6a52" not in out and "0000" not in out


def test_identifiers_in_the_format_string_itself_are_masked() -> None:
    out = filtered(record(f"oops: {NUMBER} {UUID} 100%"))

    assert NUMBER not in out and UUID not in out
    assert out.strip() == f"oops: {MASK} {MASK} 100%"


def test_numeric_and_mapping_arguments_are_masked_too() -> None:
    assert NUMBER[1:] not in filtered(record("to %d", 15145550121))
    assert NUMBER not in filtered(record("to %(to)s", {"to": NUMBER}))


def test_what_operators_need_is_kept() -> None:
    for text in (
        "relayed to 14 recipients",
        "delivery failed on sms: RetryableError (network, attempt 3)",
        "web request failed: RuntimeError (ref 3fa2b1c0)",
        "twilio 21610: recipient replied STOP",
        "signal receive: reconnecting in 0.25 s",
        "signal send: HTTP 429",
        # The same from signal-cli's own daemon: its error codes and its version.
        "signal send: signal-cli error -32603",
        "signal-cli daemon 0.14.6",
        "signal frame dropped: exception_frame",
    ):
        assert filtered(record(text)).strip() == text


def _lookup(key: str) -> None:
    try:
        {}[key]
    except KeyError as inner:
        raise ValueError(f"no member {NUMBER}") from inner


def test_exception_text_and_its_cause_are_masked() -> None:
    try:
        _lookup(UUID)
    except ValueError as exc:
        rec = record("handling failed", exc=exc)

    out = filtered(rec)

    assert "ValueError" in out and "KeyError" in out
    assert NUMBER not in out and UUID not in out
    assert NUMBER not in (rec.exc_text or "")


def test_a_stack_dump_is_masked() -> None:
    rec = record("here")
    rec.stack_info = f'Stack (most recent call last):\n  File "x.py", line 1, in f({NUMBER!r})'

    assert NUMBER not in filtered(rec)


def test_an_argument_that_formats_nothing_by_itself_is_not_reinterpreted() -> None:
    # After masking, the message is final: a member's "%s" in it is not formatted again.
    out = filtered(record("text was %s", f"%s%s%n {NUMBER}"))

    assert out.strip() == f"text was %s%s%n {MASK}"


def test_a_value_declared_not_personal_is_kept() -> None:
    rec = record("run `cercle signal challenge %s CAPTCHA` for %s", TOKEN, NUMBER)
    setattr(rec, NOT_PERSONAL, (TOKEN,))

    out = filtered(rec)

    assert TOKEN in out and NUMBER not in out


def test_redact_keeps_only_what_it_is_asked_to_keep() -> None:
    assert redact(f"{TOKEN} {UUID}", keep=[TOKEN]) == f"{TOKEN} {MASK}"
    assert redact(f"{TOKEN} {UUID}", keep=[""]) == f"{MASK} {MASK}"


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["httpx", "httpcore", "twilio", "twilio.http_client", "uvicorn.access"]
)
def test_chatty_libraries_are_quieted_to_warnings(configured: Captured, name: str) -> None:
    logger = logging.getLogger(name)

    logger.info("GET http://127.0.0.1:8080/v1/receive/%s", NUMBER)

    assert logger.getEffectiveLevel() >= logging.WARNING
    assert "receive" not in configured.written
    assert logging.getLogger("relay").isEnabledFor(logging.DEBUG)


def test_the_configured_handler_masks_what_reaches_it(configured: Captured) -> None:
    logging.getLogger("cercle.test").warning("failed for %s (%s)", NUMBER, UUID)

    assert NUMBER not in configured.written and UUID not in configured.written
    assert f"failed for {MASK} ({MASK})" in configured.written


def test_configure_logging_writes_to_stderr_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging()
        logging.getLogger("cercle.test").warning("to stderr %s", NUMBER)
        (handler,) = root.handlers
        assert isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert NUMBER not in capsys.readouterr().err


def test_a_captcha_token_reaches_the_admin_through_the_filtered_log(
    configured: Captured, tmp_path: Path
) -> None:
    room = Room(tmp_path)
    alice, bob = room.member("alice"), room.member("bob")
    room.transport.fail_next(bob.number, RateLimitedError(Reason.CAPTCHA_REQUIRED, challenge=TOKEN))

    alice.says("hello")

    assert f"cercle signal challenge {TOKEN} CAPTCHA" in configured.written
    assert bob.number not in configured.written and "hello" not in configured.written
