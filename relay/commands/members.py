"""Commands every member may send: help, agreements, language, pause, name, staff, leave,
my data. Each handler registers its row of the table (:mod:`relay.commands.table`)."""

from __future__ import annotations

from datetime import timedelta

from relay.core import farewells
from relay.core.handlers import (
    CHANNEL_NAMES,
    ROLE_NAMES,
    STATE_NAMES,
    Context,
    Refusal,
    UsageError,
    allowed_commands,
    command,
    display_name,
    member_id,
    require_text,
)
from relay.core.outcome import (
    Audit,
    Outcome,
    Remove,
    Rename,
    Reply,
    RequestLeave,
    SetLang,
    SetPaused,
    ToGroup,
    ToStaff,
)
from relay.language.channels import PerChannel
from relay.language.durations import describe
from relay.language.i18n import Joined, Raw, Renderable, T, normalize_lang
from relay.language.pseudonyms import NameRefused, clean_chosen
from relay.language.texts import ConfigText
from relay.storage.models import Group, MemberState, Role

LEAVE_CONFIRM_WINDOW = timedelta(minutes=10)

# --- everyone -------------------------------------------------------------------------------


@command(
    "help",
    {"en": "help", "fr": "aide"},
    Role.MEMBER,
    T("/help"),
    T("what you can send"),
    before_consent=True,
)
def cmd_help(ctx: Context) -> Outcome:
    """List what this person may run, in their language."""
    channel = ctx.member.channel
    lines: list[Renderable] = [T("What you can send:")]
    lines.extend(
        Joined((cmd.usage_on(channel), Raw("—"), cmd.help_on(channel)), " ")
        for cmd in allowed_commands(ctx.member)
        if cmd.applies_to(ctx.group)
    )
    lines.append(
        T(
            "Anything else you write goes to the group under your name, {name}.",
            name=display_name(ctx.member),
        )
    )
    return Outcome.of(Reply(Joined(tuple(lines))))


@command(
    "rules",
    {"en": "rules", "fr": "regles"},
    Role.MEMBER,
    T("/rules"),
    T("the group agreements"),
    before_consent=True,
)
def cmd_rules(ctx: Context) -> Outcome:
    """The group agreements."""
    return Outcome.of(Reply(ConfigText(ctx.texts, "agreements")))


@command(
    "resources",
    {"en": "resources", "fr": "ressources"},
    Role.MEMBER,
    T("/resources"),
    T("help lines you can reach now"),
    before_consent=True,
)
def cmd_resources(ctx: Context) -> Outcome:
    """The organization's list of help lines."""
    return Outcome.of(Reply(ConfigText(ctx.texts, "resources")))


@command(
    "whoami",
    {"en": "whoami", "fr": "moi"},
    Role.MEMBER,
    T("/whoami"),
    T("your name, language and timer in this group"),
)
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


@command(
    "lang",
    {"en": "lang", "fr": "langue"},
    Role.MEMBER,
    T("/lang fr|en"),
    T("change your language"),
    before_consent=True,
)
def cmd_lang(ctx: Context) -> Outcome:
    """Switch the sender's language."""
    lang = normalize_lang(ctx.args)
    if lang is None:
        raise UsageError
    return Outcome.of(SetLang(lang), Reply(T("From now on, Cercle writes to you in English.")))


@command(
    "pause",
    {"en": "pause", "fr": "pause"},
    Role.MEMBER,
    T("/pause"),
    T("stop receiving group messages for a while"),
)
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


@command(
    "resume",
    {"en": "resume", "fr": "reprendre"},
    Role.MEMBER,
    T("/resume"),
    T("receive group messages again"),
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


@command(
    "name",
    {"en": "name", "fr": "nom"},
    Role.MEMBER,
    T("/name NEW NAME"),
    T("choose another name, if the group allows it"),
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


@command(
    "staff",
    {"en": "staff", "fr": "equipe"},
    Role.MEMBER,
    T("/staff MESSAGE"),
    T("write privately to the facilitators"),
)
def cmd_staff(ctx: Context) -> Outcome:
    """A private message to the facilitators only."""
    text = require_text(ctx)
    return Outcome.of(
        ToStaff(
            T("Private to staff from {name}: {text}", name=display_name(ctx.member), text=Raw(text))
        ),
        Reply(T("Sent privately to the facilitators. They will answer you privately.")),
    )


@command(
    "leave",
    {"en": "leave", "fr": "quitter"},
    Role.MEMBER,
    T("/leave"),
    T("leave the group and delete your data"),
    before_consent=True,
)
def cmd_leave(ctx: Context) -> Outcome:
    """Leave the group; asked twice so a slip of the thumb does not delete anyone."""
    requested = ctx.member.leave_requested_at
    if requested is not None and ctx.now - requested <= LEAVE_CONFIRM_WINDOW:
        return Outcome.of(
            Remove(
                member_id(ctx.member),
                farewells.left(),
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


def _group_line(group: Group) -> Renderable:
    """The group's name, except on a web page whose group chose not to show it there."""
    named = T("• group: {group}", group=Raw(group.name))
    if group.show_name:
        return named
    return PerChannel(named, {"web": T("• group: its name is not shown on this page")})


@command(
    "mydata",
    {"en": "mydata", "fr": "mesdonnees"},
    Role.MEMBER,
    T("/mydata"),
    T("what Cercle stores about you"),
    before_consent=True,
)
def cmd_mydata(ctx: Context) -> Outcome:
    """What Cercle holds about the sender, privately: nothing about anyone else, and not
    their number (they know it, and a screenshot of this reply should not show it)."""
    m = ctx.member
    lines: list[Renderable] = [
        T("What Cercle holds about you:"),
        _group_line(ctx.group),
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
    leave = Raw(ctx.word("leave"))
    lines.append(
        PerChannel(
            T(
                "Cercle also keeps your number, encrypted, to reach you: no one in the group can "
                "see it. Your messages are kept only until they are delivered, and the log of "
                "moderation actions names you only by your name here. To delete everything, "
                "send {leave}.",
                leave=leave,
            ),
            {
                "web": T(
                    "Cercle also keeps a scrambled form of the key your browser holds, to know "
                    "this page: it cannot be turned back into the key, and no one in the group "
                    "can see it. Your messages are kept only until this page has them, and the "
                    "log of moderation actions names you only by your name here. To delete "
                    "everything, send {leave}.",
                    leave=leave,
                )
            },
        )
    )
    return Outcome.of(Reply(Joined(tuple(lines))))
