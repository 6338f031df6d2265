"""One logging set-up for every process, with a filter that masks identifiers.

The code never logs numbers, UUIDs, names or bodies; this filter is the second line of
defence for what a library or a mistake might let through.
"""

from __future__ import annotations

import logging
import re

_PATTERNS = (
    re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
    re.compile(r"\+?\d[\d ().-]{7,}\d"),
)
QUIET = ("httpx", "httpcore", "twilio", "twilio.http_client", "uvicorn.access", "alembic")


def redact(text: str) -> str:
    """``text`` with anything that looks like a phone number or a UUID masked."""
    for pattern in _PATTERNS:
        text = pattern.sub("[redacted]", text)
    return text


class RedactingFilter(logging.Filter):
    """Masks identifiers in the fully formatted message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


def configure_logging(level: int = logging.INFO) -> None:
    """Log to stderr through the redacting filter; keep chatty libraries to warnings."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
