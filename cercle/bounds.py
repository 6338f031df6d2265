"""Bounds on what a request can carry in numbers and JSON, shared by every route.

A number the database cannot hold (26 digits overflow SQLite's and PostgreSQL's 64-bit integers)
or JSON nested 20,000 deep (Python's parser recurses) must get a 4xx, never a 500. Routes do not
each check: this module is the one place.

- Importing it makes Starlette's ``{name:int}`` path convertor match 1 to 18 digits only, so a
  longer number never reaches a route: the path does not match, 404.
- :func:`oversized_number` spots such a number in a query string (``cercle.web.Guard`` refuses
  the request with 400 before any route, the web door's included, reads it).
- :func:`query_int` reads a number from a query string or a form with the same bound.
- :func:`parse_json` refuses JSON that is too big or nested too deep before parsing it.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.convertors import Convertor, register_url_convertor

MAX_DIGITS = 18  # every 18-digit number fits a signed 64-bit integer
MAX_JSON_BYTES = 64 * 1024  # the passkey answers are a few KiB
MAX_JSON_DEPTH = 32  # WebAuthn's JSON is 4 deep


class BoundedIntConvertor(Convertor[int]):
    """Starlette's ``int`` path convertor, limited to numbers a database column can hold."""

    regex = "[0-9]{1,%d}" % MAX_DIGITS  # noqa: UP031 - a regex, not a message

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        if not 0 <= value < 10**MAX_DIGITS:
            raise ValueError("number out of bounds")
        return str(value)


register_url_convertor("int", BoundedIntConvertor())


def query_int(value: str | None, default: int) -> int:
    """A non-negative number of at most 18 digits from a query string or form, else ``default``."""
    if value is None or not value.isascii() or not value.isdigit() or len(value) > MAX_DIGITS:
        return default
    return int(value)


def oversized_number(query_string: bytes) -> bool:
    """Whether a query string carries a number longer than any route accepts (a value of more
    than 18 digits, with or without a sign): the web app answers 400 before any route runs."""
    for pair in query_string.split(b"&"):
        value = unquote_to_bytes(pair.partition(b"=")[2].replace(b"+", b" ")).strip()
        value = value.lstrip(b"+-").lstrip(b"0")  # int() reads a sign and leading zeros too
        if len(value) > MAX_DIGITS and value.isdigit():
            return True
    return False


class JSONTooDeepError(ValueError):
    """JSON refused before parsing: too big or nested too deep."""


def parse_json(body: bytes) -> Any:
    """``json.loads`` for untrusted bodies: :class:`ValueError` (never ``RecursionError``) for
    bad, too big or too deeply nested JSON."""
    if len(body) > MAX_JSON_BYTES:
        raise JSONTooDeepError("JSON too big")
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # closing quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise JSONTooDeepError("JSON nested too deep")
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return json.loads(body)


__all__ = ["MAX_DIGITS", "BoundedIntConvertor", "oversized_number", "parse_json", "query_int"]
