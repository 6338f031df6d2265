"""Who is acting for the organization, as the audit trail names them.

The command line acts as ``admin``. The staff console runs the same core functions inside
:func:`acting_as` with the signed-in staff member's name (``staff:NAME``), so every audit row
the core writes says which person did it without each function taking an extra argument.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

DEFAULT_ACTOR = "admin"
_actor: ContextVar[str] = ContextVar("cercle_actor", default=DEFAULT_ACTOR)


def current_actor() -> str:
    """The name audit rows written now carry for the organization."""
    return _actor.get()


@contextmanager
def acting_as(name: str) -> Iterator[None]:
    """Audit what the core does inside this block as ``name``."""
    token = _actor.set(name)
    try:
        yield
    finally:
        _actor.reset(token)
