"""The command table: one entry per command, from which parsing, permissions and /help come.

Each entry has its words in French and English, the least role that may run it, a usage
line, a help line and a handler. Handlers read a :class:`Context` and return an
:class:`~relay.outcome.Outcome`; they never write or send. Permission is checked once, before
the handler, and fails closed: someone who may not run a command is answered exactly as if it
did not exist.
"""

from __future__ import annotations

import difflib
import importlib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from relay.durations import describe, parse_duration
from relay.i18n import LANGS, Joined, Raw, Renderable, T, normalize_lang
from relay.models import BanReason, Group, Member, MemberState, Role
from relay.outcome import (
    Audit,
    Ban,
    Mute,
    Outcome,
    Remove,
    Rename,
    Reply,
    RequestLeave,
    SetGroupTimer,
    SetLang,
    SetPaused,
    ToGroup,
    ToMember,
    ToStaff,
    Trust,
)
from relay.pseudonyms import NameRefused, clean_chosen, fold
from relay.texts import ConfigText, Texts

LEAVE_CONFIRM_WINDOW = timedelta(minutes=10)
DEFAULT_MUTE = timedelta(hours=1)
MAX_MUTE = timedelta(days=30)
MIN_TIMER, MAX_TIMER = 60, 12 * 7 * 86400
MAX_TEXT = 4000


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

    def find(self, name: str) -> Member | None:
        """The member of this group called ``name`` (case, accents, ``@`` ignored)."""
        key = fold(name.lstrip("@"))
        return next((m for m in self.roster if m.name_key == key and key), None)

    def split_target(self) -> tuple[Member, str]:
        """Split ``NAME rest`` where NAME may have spaces (``Iris Sage``): longest match wins.

        The rest is kept as typed (lines, spacing); a word without letters ("911", "💜") is
        never taken as part of a name, so it stays in the rest.
        """
        words = list(re.finditer(r"\S+", self.args))
        for i in range(len(words), 0, -1):
            if not all(fold(w.group()) for w in words[:i]):
                continue
            found = self.find(self.args[words[0].start() : words[i - 1].end()])
            if found is not None:
                return found, self.args[words[i - 1].end() :].strip()
        if not words:
            raise UsageError
        raise Refusal(T("There is no one called {name} in this group.", name=Raw(words[0].group())))

    def word(self, command: str) -> str:
        """The word for ``command`` in the sender's language, e.g. ``/quitter``."""
        return "/" + COMMANDS_BY_NAME[command].words[self.member.lang]


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


def member_id(member: Member) -> int:
    """A stored member's id (always set once the row exists)."""
    assert member.id is not None  # noqa: S101 - rows read from the database have ids
    return member.id


def _word_for(member: Member, command: str) -> Raw:
    """The command's word in ``member``'s language, e.g. ``/equipe`` for a French speaker."""
    return Raw("/" + COMMANDS_BY_NAME[command].words[member.lang])


def _outranks(actor: Member, target: Member) -> bool:
    return Role(actor.role).rank >= Role(target.role).rank


def _require_text(ctx: Context) -> str:
    text = ctx.args.strip()
    if not text:
        raise UsageError
    if len(text) > MAX_TEXT:
        raise Refusal(T("That message is too long ({n} characters at most).", n=MAX_TEXT))
    return text


def _target(ctx: Context, *, allow_self: bool = False) -> tuple[Member, str]:
    target, rest = ctx.split_target()
    if target.id == ctx.member.id and not allow_self:
        raise Refusal(T("You cannot use this command on yourself."))
    return target, rest


# --- everyone -------------------------------------------------------------------------------


def cmd_help(ctx: Context) -> Outcome:
    """List what this person may run, in their language."""
    lines: list[Renderable] = [T("What you can send:")]
    lines.extend(
        Joined((cmd.usage, Raw("—"), cmd.help), " ") for cmd in allowed_commands(ctx.member)
    )
    lines.append(
        T(
            "Anything else you write goes to the group under your name, {name}.",
            name=display_name(ctx.member),
        )
    )
    return Outcome.of(Reply(Joined(tuple(lines))))


def cmd_rules(ctx: Context) -> Outcome:
    """The group agreements."""
    return Outcome.of(Reply(ConfigText(ctx.texts, "agreements")))


def cmd_resources(ctx: Context) -> Outcome:
    """The organization's list of help lines."""
    return Outcome.of(Reply(ConfigText(ctx.texts, "resources")))


def cmd_whoami(ctx: Context) -> Outcome:
    """What the group knows about the sender, which is little."""
    m = ctx.member
    return Outcome.of(
        Reply(
            T(
                "You are {name} ({role}) in this group. Language: {lang}. You are reached by "
                "{channel}. Messages disappear after {timer}.",
                name=display_name(m),
                role=ROLE_NAMES[m.role],
                lang=Raw(m.lang),
                channel=CHANNEL_NAMES.get(m.channel, Raw(m.channel)),
                timer=describe(ctx.group.timer_seconds),
            )
        )
    )


def cmd_lang(ctx: Context) -> Outcome:
    """Switch the sender's language."""
    lang = normalize_lang(ctx.args)
    if lang is None:
        raise UsageError
    return Outcome.of(SetLang(lang), Reply(T("From now on, Cercle writes to you in English.")))


def cmd_pause(ctx: Context) -> Outcome:
    """Stop receiving group messages for a while."""
    if ctx.member.state == MemberState.PAUSED:
        return Outcome.of(
            Reply(
                T(
                    "You are already paused. Send {resume} to come back.",
                    resume=Raw(ctx.word("resume")),
                )
            )
        )
    return Outcome.of(
        SetPaused(paused=True),
        Reply(
            T(
                "Paused: you will not receive group messages until you send {resume}.",
                resume=Raw(ctx.word("resume")),
            )
        ),
        Audit("pause"),
    )


def cmd_resume(ctx: Context) -> Outcome:
    """Receive group messages again."""
    if ctx.member.state != MemberState.PAUSED:
        return Outcome.of(Reply(T("You are not paused.")))
    return Outcome.of(
        SetPaused(paused=False),
        Reply(T("Welcome back. You will receive group messages again.")),
        Audit("resume"),
    )


def cmd_name(ctx: Context) -> Outcome:
    """Choose another pseudonym, where the group allows it."""
    if not ctx.group.allow_rename:
        raise Refusal(T("In this group, names are given by Cercle and cannot be changed."))
    if not ctx.args.strip():
        raise UsageError
    taken = {m.name_key for m in ctx.roster if m.name_key and m.id != ctx.member.id}
    try:
        name = clean_chosen(ctx.args, taken)
    except NameRefused as exc:
        raise Refusal(exc.reason) from exc
    old = display_name(ctx.member)
    return Outcome.of(
        Rename(name),
        Reply(T("Your name is now {name}.", name=Raw(name))),
        ToGroup(T("{old} is now called {new}.", old=old, new=Raw(name)), exclude=ctx.member.id),
        Audit("rename", detail=None),
    )


def cmd_staff(ctx: Context) -> Outcome:
    """A private message to the facilitators only."""
    text = _require_text(ctx)
    return Outcome.of(
        ToStaff(
            T("Private to staff from {name}: {text}", name=display_name(ctx.member), text=Raw(text))
        ),
        Reply(T("Sent privately to the facilitators. They will answer you privately.")),
    )


def cmd_leave(ctx: Context) -> Outcome:
    """Leave the group; asked twice so a slip of the thumb does not delete anyone."""
    requested = ctx.member.leave_requested_at
    if requested is not None and ctx.now - requested <= LEAVE_CONFIRM_WINDOW:
        return Outcome.of(
            Remove(
                member_id(ctx.member),
                T(
                    "You have left the group. Your number and your data "
                    "have been deleted. Take care of yourself."
                ),
            ),
            ToGroup(
                T("{name} has left the group.", name=display_name(ctx.member)),
                exclude=ctx.member.id,
            ),
            Audit("leave", target=ctx.member.pseudonym),
        )
    return Outcome.of(
        RequestLeave(),
        Reply(
            T(
                "Do you want to leave the group? Your data will be deleted. To confirm, send "
                "{leave} again within 10 minutes.",
                leave=Raw(ctx.word("leave")),
            )
        ),
    )


# --- facilitators ---------------------------------------------------------------------------


def _last_active(member: Member, now: datetime) -> Renderable:
    if member.last_active_on is None:
        return T("never")
    days = (now.date() - member.last_active_on).days
    if days <= 0:
        return T("today")
    if days == 1:
        return T("yesterday")
    return T("{n} days ago", n=days)


def cmd_who(ctx: Context) -> Outcome:
    """The roster: pseudonyms, roles, transport, state, last activity. Never numbers."""
    lines: list[Renderable] = [T("In this group:")]
    for m in sorted(ctx.roster, key=lambda m: (-Role(m.role).rank, m.name_key or "")):
        state: Renderable = STATE_NAMES[m.state]
        if m.muted_until is not None and m.muted_until > ctx.now:
            state = T("muted")
        lines.append(
            T(
                "• {name}: {role}, {channel}, {state}, last active: {when}",
                name=display_name(m),
                role=ROLE_NAMES[m.role],
                channel=CHANNEL_NAMES.get(m.channel, Raw(m.channel)),
                state=state,
                when=_last_active(m, ctx.now),
            )
        )
    return Outcome.of(Reply(Joined(tuple(lines))))


def cmd_remove(ctx: Context) -> Outcome:
    """Remove a member; their data is deleted and they are told why if a reason is given."""
    target, reason = _target(ctx)
    if not _outranks(ctx.member, target):
        raise Refusal(T("You cannot remove {name}.", name=display_name(target)))
    farewell: Renderable = T(
        "A facilitator has removed you from the group. Your number and your data have been deleted."
    )
    if reason.strip():
        farewell = Joined((farewell, T("Reason: {reason}", reason=Raw(reason.strip()))))
    return Outcome.of(
        Remove(member_id(target), farewell),
        ToGroup(
            T("{name} is no longer in the group.", name=display_name(target)), exclude=target.id
        ),
        Audit("remove", target=target.pseudonym),
    )


def cmd_mute(ctx: Context) -> Outcome:
    """Mute a member for a while (default one hour)."""
    target, rest = _target(ctx)
    if not _outranks(ctx.member, target):
        raise Refusal(T("You cannot mute {name}.", name=display_name(target)))
    seconds = parse_duration(rest) if rest.strip() else int(DEFAULT_MUTE.total_seconds())
    if seconds is None or seconds > MAX_MUTE.total_seconds():
        raise UsageError
    until = ctx.now + timedelta(seconds=seconds)
    return Outcome.of(
        Mute(member_id(target), until),
        ToMember(
            member_id(target),
            T(
                "A facilitator has muted you for {duration}. Your messages will not be sent "
                "to the group until then. You can still write to the facilitators with "
                "{staff}.",
                duration=describe(seconds),
                staff=_word_for(target, "staff"),
            ),
        ),
        Reply(
            T(
                "{name} is muted for {duration}.",
                name=display_name(target),
                duration=describe(seconds),
            )
        ),
        Audit("mute", target=target.pseudonym, detail=f"{seconds}s"),
    )


def cmd_unmute(ctx: Context) -> Outcome:
    """Lift a mute."""
    target, _ = _target(ctx)
    return Outcome.of(
        Mute(member_id(target), None),
        ToMember(member_id(target), T("You can write to the group again.")),
        Reply(T("{name} can write to the group again.", name=display_name(target))),
        Audit("unmute", target=target.pseudonym),
    )


def cmd_announce(ctx: Context) -> Outcome:
    """A message to everyone, marked as coming from staff."""
    text = _require_text(ctx)
    return Outcome.of(
        ToGroup(
            T("Announcement from {name}: {text}", name=display_name(ctx.member), text=Raw(text)),
            exclude=ctx.member.id,
        ),
        Reply(T("Announcement sent.")),
        Audit("announce"),
    )


def cmd_reply(ctx: Context) -> Outcome:
    """A private answer to one member; neither side sees the other's number."""
    target, text = _target(ctx)
    if not text.strip():
        raise UsageError
    if len(text) > MAX_TEXT:
        raise Refusal(T("That message is too long ({n} characters at most).", n=MAX_TEXT))
    return Outcome.of(
        ToMember(
            member_id(target),
            T(
                "Private message from {name}: {text}",
                name=display_name(ctx.member),
                text=Raw(text.strip()),
            ),
        ),
        Reply(T("Sent privately to {name}.", name=display_name(target))),
        Audit("reply", target=target.pseudonym),
    )


def cmd_timer(ctx: Context) -> Outcome:
    """Set the group's disappearing timer, for every conversation."""
    seconds = parse_duration(ctx.args)
    if seconds is None:
        raise UsageError
    if not MIN_TIMER <= seconds <= MAX_TIMER:
        raise Refusal(T("The timer must be between 1 minute and 12 weeks."))
    return Outcome.of(
        SetGroupTimer(seconds),
        ToGroup(
            T(
                "A facilitator set messages in this group to disappear after {timer}.",
                timer=describe(seconds),
            )
        ),
        Audit("timer", detail=f"{seconds}s"),
    )


def cmd_trust(ctx: Context) -> Outcome:
    """Accept a member's new safety number after checking with them by another safe way."""
    target, _ = _target(ctx)
    return Outcome.of(
        Trust(member_id(target)),
        Reply(T("Messages to {name} will go out again.", name=display_name(target))),
        Audit("trust", target=target.pseudonym),
    )


def cmd_mydata(ctx: Context) -> Outcome:
    """What Cercle holds about the sender, privately: nothing about anyone else, and not
    their number (they know it, and a screenshot of this reply should not show it)."""
    m = ctx.member
    lines: list[Renderable] = [
        T("What Cercle holds about you:"),
        T("• group: {group}", group=Raw(ctx.group.name)),
        T("• your name here: {name}", name=display_name(m)),
        T("• role: {role}", role=ROLE_NAMES[m.role]),
        T("• language: {lang}", lang=Raw(m.lang)),
        T("• reached by: {channel}", channel=CHANNEL_NAMES.get(m.channel, Raw(m.channel))),
        T(
            "• agreed to the group agreements on {day} (version {version})",
            day=Raw(m.consented_at.date().isoformat()),
            version=Raw(m.consent_version or "?"),
        )
        if m.consented_at is not None
        else T("• has not agreed to the group agreements yet"),
        T("• messages disappear after: {timer}", timer=describe(ctx.group.timer_seconds)),
        T("• state: {state}", state=STATE_NAMES[m.state]),
    ]
    if m.muted_until is not None and m.muted_until > ctx.now:
        lines.append(
            T("• muted until {when} (UTC)", when=Raw(m.muted_until.strftime("%Y-%m-%d %H:%M")))
        )
    lines.append(
        T("• last active on {day}", day=Raw(m.last_active_on.isoformat()))
        if m.last_active_on is not None
        else T("• last active: never")
    )
    lines.append(
        T(
            "Cercle also keeps your number, encrypted, to reach you: no one in the group can see "
            "it. Your messages are kept only until they are delivered, and the log of moderation "
            "actions names you only by your name here. To delete everything, send {leave}.",
            leave=Raw(ctx.word("leave")),
        )
    )
    return Outcome.of(Reply(Joined(tuple(lines))))


def cmd_ban(ctx: Context) -> Outcome:
    """Remove someone and ban their number from every group of the organization."""
    target, _ = _target(ctx)
    if not _outranks(ctx.member, target):
        raise Refusal(T("You cannot ban {name}.", name=display_name(target)))
    return Outcome.of(
        Ban(member_id(target), BanReason.STAFF),
        Remove(
            member_id(target),
            T(
                "A facilitator has removed you from the group. Your number and your data have "
                "been deleted."
            ),
        ),
        ToGroup(
            T("{name} is no longer in the group.", name=display_name(target)), exclude=target.id
        ),
        Reply(
            T(
                "{name} is removed, and their number can no longer join any group of the "
                "organization.",
                name=display_name(target),
            )
        ),
        Audit("ban", target=target.pseudonym),
    )


def _handled_in(module: str, name: str) -> Handler:
    """A handler that lives in another module, looked up when first run: those modules use
    this one's helpers (Context, display_name), so importing them here would be circular."""

    def handler(ctx: Context) -> Outcome:
        found: Handler = getattr(importlib.import_module(module), name)
        return found(ctx)

    handler.__doc__ = f"{module}.{name}"
    return handler


_SAFETY = "relay.safety_commands"

COMMANDS: tuple[Command, ...] = (
    Command(
        "help",
        {"en": "help", "fr": "aide"},
        Role.MEMBER,
        T("/help"),
        T("what you can send"),
        cmd_help,
        before_consent=True,
    ),
    Command(
        "rules",
        {"en": "rules", "fr": "regles"},
        Role.MEMBER,
        T("/rules"),
        T("the group agreements"),
        cmd_rules,
        before_consent=True,
    ),
    Command(
        "resources",
        {"en": "resources", "fr": "ressources"},
        Role.MEMBER,
        T("/resources"),
        T("help lines you can call or text now"),
        cmd_resources,
        before_consent=True,
    ),
    Command(
        "whoami",
        {"en": "whoami", "fr": "moi"},
        Role.MEMBER,
        T("/whoami"),
        T("your name, language and timer in this group"),
        cmd_whoami,
    ),
    Command(
        "lang",
        {"en": "lang", "fr": "langue"},
        Role.MEMBER,
        T("/lang fr|en"),
        T("change your language"),
        cmd_lang,
        before_consent=True,
    ),
    Command(
        "pause",
        {"en": "pause", "fr": "pause"},
        Role.MEMBER,
        T("/pause"),
        T("stop receiving group messages for a while"),
        cmd_pause,
    ),
    Command(
        "resume",
        {"en": "resume", "fr": "reprendre"},
        Role.MEMBER,
        T("/resume"),
        T("receive group messages again"),
        cmd_resume,
    ),
    Command(
        "name",
        {"en": "name", "fr": "nom"},
        Role.MEMBER,
        T("/name NEW NAME"),
        T("choose another name, if the group allows it"),
        cmd_name,
    ),
    Command(
        "staff",
        {"en": "staff", "fr": "equipe"},
        Role.MEMBER,
        T("/staff MESSAGE"),
        T("write privately to the facilitators"),
        cmd_staff,
    ),
    Command(
        "leave",
        {"en": "leave", "fr": "quitter"},
        Role.MEMBER,
        T("/leave"),
        T("leave the group and delete your data"),
        cmd_leave,
        before_consent=True,
    ),
    Command(
        "who",
        {"en": "who", "fr": "qui"},
        Role.FACILITATOR,
        T("/who"),
        T("who is in the group: names, roles, Signal or SMS, state"),
        cmd_who,
    ),
    Command(
        "remove",
        {"en": "remove", "fr": "retirer"},
        Role.FACILITATOR,
        T("/remove NAME [reason]"),
        T("remove someone and delete their data"),
        cmd_remove,
    ),
    Command(
        "mute",
        {"en": "mute", "fr": "sourdine"},
        Role.FACILITATOR,
        T("/mute NAME [duration, e.g. 30m, 2h, 1d]"),
        T("stop someone's messages reaching the group for a while"),
        cmd_mute,
    ),
    Command(
        "unmute",
        {"en": "unmute", "fr": "reactiver"},
        Role.FACILITATOR,
        T("/unmute NAME"),
        T("lift a mute"),
        cmd_unmute,
    ),
    Command(
        "announce",
        {"en": "announce", "fr": "annonce"},
        Role.FACILITATOR,
        T("/announce MESSAGE"),
        T("send a message to everyone, marked as staff"),
        cmd_announce,
    ),
    Command(
        "reply",
        {"en": "reply", "fr": "repondre"},
        Role.FACILITATOR,
        T("/reply NAME MESSAGE"),
        T("answer someone privately"),
        cmd_reply,
    ),
    Command(
        "timer",
        {"en": "timer", "fr": "minuteur"},
        Role.FACILITATOR,
        T("/timer DURATION (e.g. 1d, 1w)"),
        T("set how long messages last before they disappear"),
        cmd_timer,
    ),
    Command(
        "trust",
        {"en": "trust", "fr": "confiance"},
        Role.FACILITATOR,
        T("/trust NAME"),
        T("after a safety number change, once you have checked with them"),
        cmd_trust,
    ),
    Command(
        "mydata",
        {"en": "mydata", "fr": "mesdonnees"},
        Role.MEMBER,
        T("/mydata"),
        T("what Cercle stores about you"),
        cmd_mydata,
        before_consent=True,
    ),
    Command(
        "ban",
        {"en": "ban", "fr": "bannir"},
        Role.FACILITATOR,
        T("/ban NAME"),
        T("remove someone and keep their number out of every group"),
        cmd_ban,
    ),
    # Open hours, invites, decisions and safety (issue 7): handlers in relay/safety_commands.py.
    Command(
        "schedule",
        {"en": "schedule", "fr": "horaire"},
        Role.MEMBER,
        T("/schedule"),
        T("when the group meets, and whether it is open now"),
        _handled_in(_SAFETY, "cmd_schedule"),
    ),
    Command(
        "reminders",
        {"en": "reminders", "fr": "rappels"},
        Role.MEMBER,
        T("/reminders on|off"),
        T("a message 30 minutes before each session"),
        _handled_in(_SAFETY, "cmd_reminders"),
    ),
    Command(
        "exitword",
        {"en": "exitword", "fr": "motdesortie"},
        Role.MEMBER,
        T("/exitword WORD"),
        T("a private word that, sent on its own, removes you at once and deletes your data"),
        _handled_in(_SAFETY, "cmd_exitword"),
        before_consent=True,
    ),
    Command(
        "open",
        {"en": "open", "fr": "ouvrir"},
        Role.FACILITATOR,
        T("/open [duration]"),
        T("open the group now, until the next scheduled start or end, or for a while"),
        _handled_in(_SAFETY, "cmd_open"),
    ),
    Command(
        "close",
        {"en": "close", "fr": "fermer"},
        Role.FACILITATOR,
        T("/close [duration]"),
        T("close the group now, until the next scheduled start or end, or for a while"),
        _handled_in(_SAFETY, "cmd_close"),
    ),
    Command(
        "invite",
        {"en": "invite", "fr": "inviter"},
        Role.FACILITATOR,
        T("/invite [valid for, e.g. 48h]"),
        T("a one-time code a vetted person texts to join"),
        _handled_in(_SAFETY, "cmd_invite"),
    ),
    Command(
        "approve",
        {"en": "approve", "fr": "approuver"},
        Role.FACILITATOR,
        T("/approve NAME"),
        T("let a newcomer in, or send their held messages to the group"),
        _handled_in(_SAFETY, "cmd_approve"),
    ),
    Command(
        "reject",
        {"en": "reject", "fr": "refuser"},
        Role.FACILITATOR,
        T("/reject NAME"),
        T("turn a newcomer away, or delete their held messages"),
        _handled_in(_SAFETY, "cmd_reject"),
    ),
    Command(
        "stats",
        {"en": "stats", "fr": "stats"},
        Role.FACILITATOR,
        T("/stats"),
        T("messages held, muted or rate-limited lately, and what waits now"),
        _handled_in(_SAFETY, "cmd_stats"),
    ),
)
COMMANDS_BY_NAME = {c.name: c for c in COMMANDS}
_BY_WORD = {w: c for c in COMMANDS for w in c.words.values()}
assert all(set(c.words) == set(LANGS) for c in COMMANDS)  # noqa: S101 - table sanity


def _fold_word(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_COMMAND = re.compile(r"/(\S+)(?:\s+(.*))?\Z", re.DOTALL)


@dataclass(frozen=True)
class Parsed:
    """A slash command split into its word and arguments."""

    word: str
    args: str


def parse(text: str) -> Parsed | None:
    """``/word args`` → :class:`Parsed`; anything not starting with ``/`` → ``None``."""
    match = _COMMAND.match(text.strip())
    if match is None:
        return None
    # Folding can turn odd characters into spaces (NFKD): a command word never has any.
    word = "".join(_fold_word(match.group(1)).split())
    return Parsed(word, (match.group(2) or "").strip())


def allowed_commands(member: Member, *, consented: bool = True) -> list[Command]:
    """The commands ``member`` may run, in table order."""
    rank = Role(member.role).rank
    return [c for c in COMMANDS if c.role.rank <= rank and (consented or c.before_consent)]


def lookup(word: str, member: Member, *, consented: bool = True) -> Command | None:
    """The command ``word`` names, if ``member`` may run it; otherwise ``None`` (fail closed)."""
    cmd = _BY_WORD.get(word)
    if cmd is None or cmd not in allowed_commands(member, consented=consented):
        return None
    return cmd


def suggest(word: str, member: Member, *, consented: bool = True) -> str | None:
    """The nearest word among those ``member`` may run, in their language first."""
    allowed = allowed_commands(member, consented=consented)
    words = [c.words[member.lang] for c in allowed] + [
        w for c in allowed for lang, w in c.words.items() if lang != member.lang
    ]
    close = difflib.get_close_matches(word, words, n=1, cutoff=0.6)
    return close[0] if close else None
