"""Open hours: weekly sessions in the organization's time zone, and when a group is open.

A schedule is a compact spec that admins type and the database stores, e.g.
``tue 19:00-20:30; thu 10:00-11:30``. Days are written in English or French (``mar`` is
Tuesday). Each session is local wall-clock time in the group's time zone, so a Tuesday 19:00
session stays at 19:00 across daylight-saving changes. A session runs from its start
(included) to its end (excluded); one that ends before it starts runs past midnight.

A facilitator's ``/open`` or ``/close`` forces the state until the next scheduled boundary
(the next start or end of a session), or for the duration they give; in a group without a
schedule it lasts until undone. The schedule then takes over again by itself, so a
forgotten ``/open`` cannot leave a group open for weeks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date, format_time, get_day_names

from relay.errors import CercleError
from relay.language.i18n import T
from relay.storage.models import GroupPolicy

DAYS: dict[str, int] = {
    "mon": 0, "lun": 0, "monday": 0, "lundi": 0,
    "tue": 1, "mar": 1, "tuesday": 1, "mardi": 1,
    "wed": 2, "mer": 2, "wednesday": 2, "mercredi": 2,
    "thu": 3, "jeu": 3, "thursday": 3, "jeudi": 3,
    "fri": 4, "ven": 4, "friday": 4, "vendredi": 4,
    "sat": 5, "sam": 5, "saturday": 5, "samedi": 5,
    "sun": 6, "dim": 6, "sunday": 6, "dimanche": 6,
}  # fmt: skip
_DAY_CODES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = r"(\d{1,2})(?:[:h](\d{2})?)?"
_ENTRY = re.compile(rf"^\s*([a-z,+ ]+?)\s+{_TIME}\s*-\s*{_TIME}\s*$")
DEFAULT_TZ = "America/Toronto"


@dataclass(frozen=True, order=True)
class Slot:
    """One weekly session: a weekday (0 = Monday) and local start and end times."""

    weekday: int
    start: time
    end: time

    @property
    def crosses_midnight(self) -> bool:
        """Whether the session ends on the next day."""
        return self.end <= self.start

    def spec(self) -> str:
        """This session as typed, e.g. ``tue 19:00-20:30``."""
        return f"{_DAY_CODES[self.weekday]} {self.start:%H:%M}-{self.end:%H:%M}"


def zone(name: str) -> ZoneInfo:
    """The time zone called ``name`` (IANA, e.g. ``America/Toronto``), or a clear error."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CercleError(
            f"Unknown time zone {name!r}: use an IANA name such as America/Toronto "
            "(on a machine without system time zones, install the tzdata package)."
        ) from exc


def _clock(hour: str, minute: str | None) -> time:
    h, m = int(hour), int(minute or 0)
    if h == 24 and m == 0:
        return time(0, 0)
    if not (0 <= h < 24 and 0 <= m < 60):
        raise CercleError(f"{hour}:{minute or '00'} is not a time of day.")
    return time(h, m)


def parse_schedule(spec: str) -> tuple[Slot, ...]:
    """Sessions from a spec like ``tue 19:00-20:30; thu,fri 10h-11h30``.

    Entries are separated by ``;``; an entry may name several days (``tue,thu``). Raises
    :class:`CercleError` with a message that says what to type.
    """
    slots: set[Slot] = set()
    for raw in spec.lower().split(";"):
        if not raw.strip():
            continue
        match = _ENTRY.match(raw)
        if match is None:
            raise CercleError(
                f"Cannot read {raw.strip()!r}: write a day and hours, e.g. 'tue 19:00-20:30'."
            )
        days, h1, m1, h2, m2 = match.groups()
        start, end = _clock(h1, m1), _clock(h2, m2)
        if start == end:
            raise CercleError(f"{raw.strip()!r}: a session cannot end when it starts.")
        for day in re.split(r"[,+ ]+", days.strip()):
            if day not in DAYS:
                raise CercleError(f"{day!r} is not a day; use mon, tue, wed… or lun, mar, mer…")
            slots.add(Slot(DAYS[day], start, end))
    return tuple(sorted(slots))


def format_schedule(slots: Sequence[Slot]) -> str | None:
    """The canonical spec for ``slots`` (``None`` when there are none: always open)."""
    return "; ".join(s.spec() for s in sorted(slots)) or None


@dataclass(frozen=True)
class Schedule:
    """A group's weekly sessions in its time zone."""

    slots: tuple[Slot, ...]
    tz: ZoneInfo

    @classmethod
    def of(cls, policy: GroupPolicy | None) -> Schedule | None:
        """The schedule a policy row holds, or ``None`` when the group is always open."""
        if policy is None or not policy.schedule:
            return None
        return cls(parse_schedule(policy.schedule), zone(policy.tz))

    def occurrences(self, around: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Sessions (UTC start, UTC end) from the day before ``around`` to a week after it,
        in order of start."""
        today = around.astimezone(self.tz).date()
        found: list[tuple[datetime, datetime]] = []
        for offset in range(-1, 9):
            day = today + timedelta(days=offset)
            for slot in self.slots:
                if slot.weekday != day.weekday():
                    continue
                end_day = day + timedelta(days=1) if slot.crosses_midnight else day
                found.append((self._utc(day, slot.start), self._utc(end_day, slot.end)))
        yield from sorted(found)

    def _utc(self, day: date, at: time) -> datetime:
        # Wall-clock time in the zone; zoneinfo picks the offset in force on that day.
        return datetime.combine(day, at, tzinfo=self.tz).astimezone(UTC)

    def in_session(self, now: datetime) -> bool:
        """Whether a session is running at ``now`` (start included, end excluded)."""
        return any(start <= now < end for start, end in self.occurrences(now))

    def current_or_next(self, now: datetime) -> tuple[datetime, datetime] | None:
        """The session running at ``now``, else the next one to start."""
        return next(((s, e) for s, e in self.occurrences(now) if e > now), None)

    def next_start(self, now: datetime) -> tuple[datetime, datetime] | None:
        """The next session that starts after ``now``."""
        return next(((s, e) for s, e in self.occurrences(now) if s > now), None)

    def next_boundary(self, now: datetime) -> datetime | None:
        """The next time a session starts or ends after ``now``."""
        times = [t for pair in self.occurrences(now) for t in pair if t > now]
        return min(times, default=None)

    def nth_end(self, now: datetime, n: int) -> datetime:
        """When the ``n``-th session from ``now`` ends (counting one running now)."""
        seen, cursor = 0, now
        while True:
            start_end = self.current_or_next(cursor)
            if start_end is None:
                raise CercleError("This group has no sessions to count.")
            seen += 1
            if seen >= n:
                return start_end[1]
            cursor = start_end[1]


def override_active(policy: GroupPolicy | None, now: datetime) -> bool:
    """Whether a facilitator's /open or /close is in force at ``now``."""
    return (
        policy is not None
        and policy.override_open is not None
        and (policy.override_until is None or now < policy.override_until)
    )


def is_open(policy: GroupPolicy | None, now: datetime) -> bool:
    """Whether members' messages reach the group at ``now``."""
    if policy is not None and override_active(policy, now):
        return bool(policy.override_open)
    schedule = Schedule.of(policy)
    return schedule is None or schedule.in_session(now)


def next_opening(policy: GroupPolicy | None, now: datetime) -> datetime | None:
    """When a closed group next opens by its schedule (``None``: only by hand)."""
    schedule = Schedule.of(policy)
    if schedule is None:
        return None
    after = now
    if policy is not None and override_active(policy, now) and policy.override_until:
        after = policy.override_until
    nxt = schedule.current_or_next(after)
    if nxt is None:
        return None
    return max(nxt[0], after)


# --- dates and times in the member's language ------------------------------------------------

_DAY_PATTERN = {"fr": "EEEE d MMMM", "en": "EEEE, MMMM d"}
_LOCALES = {"fr": "fr_CA", "en": "en_CA"}
# "7:00 PM": en_CA's "p.m." ends a sentence with a double full stop.
_TIME_PATTERN = {"fr": "short", "en": "h:mm a"}


def _plain(text: str) -> str:
    # CLDR puts narrow and ordinary no-break spaces in times and dates; on SMS either one
    # forces the whole message out of GSM-7 into UCS-2 (70 characters a segment, not 160).
    return text.replace("\u202f", " ").replace("\u00a0", " ")


def _time(at: time | datetime, lang: str) -> str:
    locale = "en" if lang == "en" else _LOCALES.get(lang, "fr_CA")
    return _plain(format_time(at, _TIME_PATTERN.get(lang, "short"), locale=locale))


@dataclass(frozen=True)
class LocalTime:
    """A moment shown in the group's time zone and the reader's language.

    ``style`` is ``day`` (*Tuesday, January 13*), ``time`` (*7:00 PM* / *19 h 00*) or
    ``date`` (*March 31, 2027* / *31 mars 2027*).
    """

    at: datetime
    tz: ZoneInfo
    style: str = "day"

    def render(self, lang: str) -> str:
        """The moment in ``lang``."""
        local = self.at.astimezone(self.tz)
        locale = _LOCALES.get(lang, "fr_CA")
        if self.style == "time":
            return _time(local, lang)
        if self.style == "date":
            return _plain(format_date(local, "long", locale=locale))
        return _plain(format_date(local, _DAY_PATTERN.get(lang, _DAY_PATTERN["fr"]), locale=locale))


@dataclass(frozen=True)
class DayName:
    """A weekday's name in the reader's language (0 = Monday)."""

    weekday: int

    def render(self, lang: str) -> str:
        """*Tuesday* / *mardi*."""
        names = get_day_names("wide", locale=_LOCALES.get(lang, "fr_CA"))
        return _plain(str(names[self.weekday]))


@dataclass(frozen=True)
class ClockTime:
    """A time of day in the reader's language."""

    at: time

    def render(self, lang: str) -> str:
        """*7:00 PM* / *19 h 00*."""
        return _time(self.at, lang)


def when(at: datetime, tz: ZoneInfo) -> T:
    """A day and time, e.g. *Tuesday, January 13 at 7:00 PM* / *mardi 13 janvier à 19 h 00*."""
    return T("{day} at {time}", day=LocalTime(at, tz, "day"), time=LocalTime(at, tz, "time"))
