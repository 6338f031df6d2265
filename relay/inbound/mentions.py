"""Signal mentions: U+FFFC placeholders at UTF-16 offsets, rewritten to ``@`` + a name.

A mention carries the mentioned person's UUID and number; relaying it as is would hand both
to every recipient. Each placeholder is replaced by ``@`` and what ``name_for`` gives (the
service gives ``?``: resolving a crafted mention would be an unmasking oracle), and no mention
data is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from relay.messages import Mention

PLACEHOLDER = "\ufffc"


def rewrite(text: str, mentions: Sequence[Mention], name_for: Callable[[str | None], str]) -> str:
    """``text`` with each valid mention span replaced by ``@`` + ``name_for(uuid)``.

    Offsets count UTF-16 code units (as Signal does). Spans that are out of range, overlap
    or split a surrogate pair are ignored; any placeholder left over is removed.
    """
    # A lone surrogate (JSON can carry one) becomes U+FFFD: one UTF-16 unit for one, so the
    # offsets still hold, and nothing undecodable is left for the splits below.
    text = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
    units = text.encode("utf-16-le")
    n_units = len(units) // 2
    # Right to left, so a replacement never moves the offsets still to come.
    limit = n_units
    for m in sorted(mentions, key=lambda m: m.start, reverse=True):
        start, end = m.start, m.start + m.length
        if m.length <= 0 or start < 0 or end > limit:
            continue
        try:
            before = units[: start * 2].decode("utf-16-le")
            units[start * 2 : end * 2].decode("utf-16-le")
            after = units[end * 2 :].decode("utf-16-le")
        except UnicodeDecodeError:
            continue
        replacement = "@" + name_for(m.uuid)
        units = (before + replacement + after).encode("utf-16-le")
        limit = start
    return units.decode("utf-16-le").replace(PLACEHOLDER, "")
