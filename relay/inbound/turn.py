"""One inbound message while it is handled: its sender, their group, its record, and the
applier that turns outcomes into state and outbox rows, all in one transaction."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlmodel import Session

from relay.core.outcome import Service
from relay.doors import Result as Result  # noqa: PLC0414 - the contract's, re-exported
from relay.inbound.apply import Applier
from relay.messages import Inbound
from relay.safety.flood import FloodLimit
from relay.storage.models import Group, Member
from relay.storage.models import Inbound as InboundRow

# Bidirectional overrides and isolates could make "Willow: …" display as someone else's name.
_BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def clean_text(text: str) -> str:
    """Member text made safe to display: no control or bidi-override characters, trimmed.

    A lone surrogate (JSON can carry one; UTF-8 cannot) becomes U+FFFD.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    kept = (
        "\ufffd" if unicodedata.category(c) == "Cs" else c
        for c in text
        if c in "\n\t" or (unicodedata.category(c) != "Cc" and c not in _BIDI_CONTROLS)
    )
    return "".join(kept).strip()


class InboundService(Service, Protocol):
    """The service as the inbound path uses it: what handlers see, and the flood limit."""

    @property
    def flood_limit(self) -> FloodLimit:
        """How many messages a member may send in a window before they are held back."""
        ...


@dataclass
class Turn:
    """The handling of one inbound message from a known member (what
    :class:`relay.safety.protocols.Turn` describes)."""

    relay: InboundService
    s: Session
    inbound: Inbound
    now: datetime
    member: Member
    group: Group
    row: InboundRow
    apply: Applier
