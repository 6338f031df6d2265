"""One logging set-up for every process, with a filter that masks identifiers.

The code never logs numbers, UUIDs, names or bodies; this filter is the second line of
defence for what a library or a mistake might let through. It cannot recognise a name or a
message text: those must simply never be logged (a test runs a whole conversation and looks).

A value that looks like an identifier but is not about anyone (a Signal captcha challenge
token is shaped like a UUID, and an admin needs it) can be let through by naming it in the
record: ``log.warning("... %s", token, extra={NOT_PERSONAL: (token,)})``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import TextIO

# Separators people and libraries put inside numbers: spaces of every width (\s covers the
# no-break and thin spaces of French typography), dots, brackets, hyphens and dashes of every
# kind, and the invisible characters that can be slipped between digits.
_SEP = r"[\s().\-\u2010-\u2015\u2212\u00ad\u200b-\u200d\u2060\ufeff]"
_PATTERNS = (
    re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
    re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{32}(?![0-9a-fA-F])"),  # a UUID without dashes
    re.compile(rf"\+?\(?\d(?:\d|{_SEP}){{7,}}\d"),
)
MASK = "[redacted]"
NOT_PERSONAL = "not_personal"
QUIET = (
    "httpx",  # request lines hold URLs, and Signal's URLs hold numbers
    "httpcore",
    "twilio",
    "twilio.http_client",
    "uvicorn.access",  # query strings
    "alembic",
    "sqlalchemy.engine",  # statements with their parameters
    "PIL",  # chunk-by-chunk debug of every image
)
_KEEP_BASE = 0xE000  # private-use characters stand in for kept values while masking


def redact(text: str, keep: Iterable[str] = ()) -> str:
    """``text`` with anything that looks like a phone number or a UUID masked.

    Occurrences of the strings in ``keep`` are left as they are.
    """
    kept = [k for k in keep if k][:256]
    for i, value in enumerate(kept):
        text = text.replace(value, chr(_KEEP_BASE + i))
    for pattern in _PATTERNS:
        text = pattern.sub(MASK, text)
    for i, value in enumerate(kept):
        text = text.replace(chr(_KEEP_BASE + i), value)
    return text


class RedactingFilter(logging.Filter):
    """Masks identifiers in the fully formatted message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        keep = getattr(record, NOT_PERSONAL, ())
        keep = tuple(v for v in keep if isinstance(v, str)) if isinstance(keep, tuple) else ()
        message = record.getMessage()
        cleaned = redact(message, keep)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def configure_logging(level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Log to ``stream`` (stderr) through the redacting filter; keep chatty libraries to
    warnings."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
