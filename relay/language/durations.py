"""Durations as people type them (``30m``, ``2h``, ``1d``, ``1w``, French ``2j``, ``1sem``)."""

from __future__ import annotations

import re

from relay.language.i18n import TN, Joined, T

_UNITS: dict[str, int] = {
    "s": 1, "sec": 1,
    "m": 60, "min": 60,
    "h": 3600, "hr": 3600,
    "d": 86400, "j": 86400, "day": 86400, "days": 86400, "jour": 86400, "jours": 86400,
    "w": 604800, "sem": 604800, "week": 604800, "weeks": 604800, "semaine": 604800,
    "semaines": 604800,
}  # fmt: skip
_PART = re.compile(r"(\d{1,4})\s*([a-z]+)")


def parse_duration(text: str) -> int | None:
    """Seconds for ``text`` like ``1h30m`` or ``2 jours``; ``None`` if it is not a duration."""
    s = text.strip().lower()
    if not s:
        return None
    total, pos = 0, 0
    for match in _PART.finditer(s):
        if s[pos : match.start()].strip():
            return None
        unit = _UNITS.get(match.group(2))
        if unit is None:
            return None
        total += int(match.group(1)) * unit
        pos = match.end()
    if s[pos:].strip() or total <= 0:
        return None
    return total


def describe(seconds: int) -> T | Joined:
    """A duration in words, largest units first, e.g. *1 week*, *1 day and 12 hours*."""
    weeks, rest = divmod(max(seconds, 0), 604800)
    days, rest = divmod(rest, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    # Each unit is written out so the catalogue extractor sees every msgid.
    parts: list[T] = [
        part
        for count, part in (
            (weeks, TN("{n} week", "{n} weeks", weeks)),
            (days, TN("{n} day", "{n} days", days)),
            (hours, TN("{n} hour", "{n} hours", hours)),
            (minutes, TN("{n} minute", "{n} minutes", minutes)),
            (secs, TN("{n} second", "{n} seconds", secs)),
        )
        if count
    ]
    if not parts:
        return TN("{n} second", "{n} seconds", 0)
    if len(parts) == 1:
        return parts[0]
    # Two largest units are precise enough for people ("1 day and 12 hours").
    return Joined((parts[0], T("and"), parts[1]), " ")
