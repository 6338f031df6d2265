"""What a command handler is: the context it reads, the refusals it raises, and the row that
registers it in the one command table.

A family module (:mod:`relay.commands.members`, …) decorates each handler with
:func:`command`; :mod:`relay.commands.table` imports every family, so the table is complete
once it is imported. Handlers read a :class:`Context` and return an
:class:`~relay.core.outcome.Outcome`; they never write or send.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from relay.core.outcome import Outcome
from relay.doors import MAX_TEXT as MAX_TEXT  # noqa: PLC0414 - the contract's, re-exported
from relay.language.i18n import LANGS, Raw, Renderable, T
from relay.language.pseudonyms import name_key
from relay.language.texts import Texts
from relay.storage.models import Group, Member, MemberState, Role

MIN_TIMER, MAX_TIMER = 60, 12 * 7 * 86400


class UsageError(Exception):
    """The arguments do not fit the command: answer with its usage line."""


class Refusal(Exception):  # noqa: N818 - reads as what happened
    """The command cannot do this; ``text`` tells the person why."""

    def __init__(self, text: Renderable) -> None:
        super().__init__("refused")
        self.text = text


def display_name(member: Member) -> Renderable:
    """A member's pseudonym as others see it: staff are always marked."""
    name = member.pseudonym or "?"
    return T("{name} (staff)", name=name) if Role(member.role).is_staff else Raw(name)


CHANNEL_NAMES: dict[str, T] = {
    "signal": T("Signal"),
    "sms": T("SMS"),
    "sandbox": T("the sandbox"),  # rehearsals only
    "web": T("web"),  # joined from a private link, in a browser
}
ROLE_NAMES: dict[str, T] = {
    Role.MEMBER: T("member"),
    Role.FACILITATOR: T("facilitator"),
    Role.ADMIN: T("admin"),
}
STATE_NAMES: dict[str, T] = {
    MemberState.INVITED: T("has not agreed yet"),
    MemberState.PENDING: T("waiting for approval"),
    MemberState.ACTIVE: T("active"),
    MemberState.PAUSED: T("paused"),
    MemberState.OPTED_OUT: T("opted out of SMS"),
    MemberState.REMOVED: T("removed"),
}


@dataclass(frozen=True)
class Context:
    """What a handler may read: the sender, their group, its roster, the arguments, the time."""

    member: Member
    group: Group
    roster: Sequence[Member]
    args: str
    now: datetime
    texts: Texts
    org_name: str
    # The message the command quotes, on the sender's phone: its id there, and its text as
    # the phone quoted it (``/delete``, ``/report``).
    quote_ref: str | None = None
    quote_text: str | None = None

    def find(self, name: str) -> Member | None:
        """The member of this group called ``name`` (case, accents, ``@`` ignored)."""
        key = name_key(name.lstrip("@"))
        return next((m for m in self.roster if m.name_key == key and key), None)

    def split_target(self) -> tuple[Member, str]:
        """Split ``NAME rest`` where NAME may have spaces (``Iris Sage``): longest match wins.

        The rest is kept as typed (lines, spacing); a word without letters ("911", "💜") is
        never taken as part of a name, so it stays in the rest.
        """
        words = list(re.finditer(r"\S+", self.args))
        for i in range(len(words), 0, -1):
            if not all(name_key(w.group()) for w in words[:i]):
                continue
            found = self.find(self.args[words[0].start() : words[i - 1].end()])
            if found is not None:
                return found, self.args[words[i - 1].end() :].strip()
        if not words:
            raise UsageError
        raise Refusal(T("There is no one called {name} in this group.", name=Raw(words[0].group())))

    def word(self, command: str) -> str:
        """The word for ``command`` in the sender's language, e.g. ``/quitter``."""
        return "/" + named(command).words[self.member.lang]


Handler = Callable[[Context], Outcome]


@dataclass(frozen=True)
class Command:
    """One row of the command table."""

    name: str
    words: dict[str, str]
    role: Role
    usage: T
    help: T
    handler: Handler
    before_consent: bool = False  # usable by someone who has not agreed yet
    # Whether the command means anything in a group (e.g. /video where it meets by video);
    # /help lists it only there. ``None``: in every group.
    applies: Callable[[Group], bool] | None = None
    # Other usage and help lines on some channels, ``{"sms": (usage, help)}``: a member
    # reached by SMS or the web page cannot quote a message, so "replying to a message" would
    # tell them of something they cannot do. /help and "Usage:" show the lines for theirs.
    on_channel: Mapping[str, tuple[T, T]] = field(default_factory=dict)

    def applies_to(self, group: Group) -> bool:
        """Whether /help lists this command in ``group``."""
        return self.applies is None or self.applies(group)

    def usage_on(self, channel: str) -> T:
        """The usage line for a member reached on ``channel``."""
        return self.on_channel.get(channel, (self.usage, self.help))[0]

    def help_on(self, channel: str) -> T:
        """The help line for a member reached on ``channel``."""
        return self.on_channel.get(channel, (self.usage, self.help))[1]


def member_id(member: Member) -> int:
    """A stored member's id (always set once the row exists)."""
    assert member.id is not None  # noqa: S101 - rows read from the database have ids
    return member.id


def require_text(ctx: Context) -> str:
    """The command's text argument: present, and not longer than a relayed message may be."""
    text = ctx.args.strip()
    if not text:
        raise UsageError
    if len(text) > MAX_TEXT:
        raise Refusal(T("That message is too long ({n} characters at most).", n=MAX_TEXT))
    return text


_REGISTERED: list[Command] = []
_BY_NAME: dict[str, Command] = {}


def command(
    name: str,
    words: dict[str, str],
    role: Role,
    usage: T,
    help_line: T,
    *,
    before_consent: bool = False,
    applies: Callable[[Group], bool] | None = None,
    on_channel: Mapping[str, tuple[T, T]] | None = None,
) -> Callable[[Handler], Handler]:
    """Register the decorated handler as a row of the command table, in definition order.

    Fails at import if the row is malformed (a language missing, a name or word taken twice),
    so a table that would misroute a command never loads.
    """

    def register(handler: Handler) -> Handler:
        taken = {w for c in _REGISTERED for w in c.words.values()}
        if name in _BY_NAME or set(words) != set(LANGS) or taken & set(words.values()):
            raise ValueError(f"command {name!r}: duplicate name or word, or a language missing")
        row = Command(
            name, words, role, usage, help_line, handler, before_consent, applies, on_channel or {}
        )
        _REGISTERED.append(row)
        _BY_NAME[name] = row
        return handler

    return register


def registered() -> tuple[Command, ...]:
    """Every registered row, in registration order (the order of /help)."""
    return tuple(_REGISTERED)


def named(name: str) -> Command:
    """The row called ``name`` (e.g. ``"leave"``)."""
    return _BY_NAME[name]


def allowed_commands(member: Member, *, consented: bool = True) -> list[Command]:
    """The commands ``member`` may run, in table order."""
    rank = Role(member.role).rank
    return [c for c in _REGISTERED if c.role.rank <= rank and (consented or c.before_consent)]
