"""Handlers for the commands that run a group: open hours (/schedule, /open, /close), session
reminders (/reminders), invites (/invite), decisions on held messages (/approve, /reject), a
member's own exit word (/exitword) and the group's figures (/stats). Each registers its row of
the command table (:mod:`relay.commands.table`).

Like every handler they only read their :class:`~relay.core.handlers.Context` and return an
:class:`~relay.core.outcome.Outcome`. What depends on stored rows (the schedule, held messages,
invites) is a :class:`~relay.core.outcome.Deferred` effect, run by the service in the same
transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import col, func, select

from relay.core import farewells
from relay.core.handlers import (
    Context,
    Refusal,
    UsageError,
    command,
    display_name,
    member_id,
    registered,
)
from relay.core.outcome import Audit, Deferred, Outcome, Remove, Reply, Store, ToGroup
from relay.core.words import ANSWER_WORD, JOIN_WORD, CommandWord
from relay.groups import invites, policy, schedule
from relay.groups.policy import fold
from relay.groups.schedule import when
from relay.language.durations import parse_duration
from relay.language.i18n import Joined, Raw, Renderable, T
from relay.safety import decisions, quick_exit
from relay.storage.models import GroupPolicy, HeldMessage, Member, MemberState, Role

_ON = {"on", "oui", "yes", "activer", "active"}
_OFF = {"off", "non", "no", "desactiver", "none", "aucun"}


# Words an exit word must not be: they have other uses, or are sent without thinking.
def _not_exit_words() -> set[str]:
    return (
        {fold(w) for c in registered() for w in c.words.values()}
        | {fold(w) for w in (*ANSWER_WORD.values(), *JOIN_WORD.values())}
        | {"agree", "iagree", "accepte", "jaccepte", "accept", "daccord"}
        | {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "start", "unstop", "info"}
        | {"yes", "oui", "non", "merci", "thanks", "thank", "bonjour", "hello", "salut", "allo"}
        | {"okay", "help", "aide"}
        | _ON
        | _OFF
    )


def _policy(st: Store) -> GroupPolicy:
    assert st.group.id is not None  # noqa: S101 - a stored group has an id
    return policy.ensure_policy(st.s, st.group.id)


def _actor_id(st: Store) -> int:
    assert st.actor is not None and st.actor.id is not None  # noqa: S101 - commands have one
    return st.actor.id


# --- open hours ------------------------------------------------------------------------------


def _open_until(pol: GroupPolicy, until: datetime | None) -> datetime | None:
    """When an opened group actually closes: a session that starts at ``until`` runs on."""
    sched = schedule.Schedule.of(pol)
    if until is None or sched is None or not sched.in_session(until):
        return until
    running = sched.current_or_next(until)
    return running[1] if running else until


def _state_now(pol: GroupPolicy | None, now: datetime) -> Renderable:
    if schedule.is_open(pol, now):
        return T("The group is open now.")
    parts: list[Renderable] = [T("The group is closed now.")]
    opening = schedule.next_opening(pol, now)
    if opening is not None and pol is not None:
        parts.append(T("It opens again {when}.", when=when(opening, schedule.zone(pol.tz))))
    return Joined(tuple(parts), " ")


def _set_open(opening: bool, seconds: int | None) -> Deferred:
    def work(st: Store) -> Outcome:
        pol = _policy(st)
        sched = schedule.Schedule.of(pol)
        if schedule.is_open(pol, st.now) == opening and seconds is None:
            already = (
                T("The group is already open.") if opening else T("The group is already closed.")
            )
            return Outcome.of(Reply(already))
        if seconds is not None:
            until: datetime | None = st.now + timedelta(seconds=seconds)
        else:
            until = sched.next_boundary(st.now) if sched is not None else None
        if opening and sched is None and seconds is None:
            pol.override_open = pol.override_until = None  # an always-open group, reopened
        else:
            pol.override_open, pol.override_until = opening, until
        st.s.add(pol)
        text: Renderable
        if opening:
            closes = _open_until(pol, until)
            text = (
                Joined(
                    (
                        T("The group is open now."),
                        T("It stays open until {when}.", when=when(closes, schedule.zone(pol.tz))),
                    ),
                    " ",
                )
                if closes is not None
                else T("The group is open now.")
            )
        else:
            text = _state_now(pol, st.now)
        detail = f"{seconds}s" if seconds is not None else None
        return Outcome.of(ToGroup(text), Audit("open" if opening else "close", detail=detail))

    return Deferred(work)


def _duration_arg(ctx: Context) -> int | None:
    if not ctx.args.strip():
        return None
    seconds = parse_duration(ctx.args)
    if seconds is None or seconds > 7 * 86400:
        raise UsageError
    return seconds


@command(
    "schedule",
    {"en": "schedule", "fr": "horaire"},
    Role.MEMBER,
    T("/schedule"),
    T("when the group meets, and whether it is open now"),
)
def cmd_schedule(ctx: Context) -> Outcome:
    """When the group meets, and whether it is open now."""

    def work(st: Store) -> Outcome:
        pol = policy.policy_of(st.s, st.group.id)
        sched = schedule.Schedule.of(pol)
        lines: list[Renderable] = []
        if sched is None:
            lines.append(T("This group has no set hours: it is open at any time."))
        else:
            lines.append(T("This group meets at these times:"))
            lines.extend(
                T(
                    "• {day}, {start} to {end}",
                    day=schedule.DayName(slot.weekday),
                    start=schedule.ClockTime(slot.start),
                    end=schedule.ClockTime(slot.end),
                )
                for slot in sched.slots
            )
        lines.append(_state_now(pol, st.now))
        return Outcome.of(Reply(Joined(tuple(lines))))

    del ctx
    return Outcome.of(Deferred(work))


# --- reminders -------------------------------------------------------------------------------


@command(
    "reminders",
    {"en": "reminders", "fr": "rappels"},
    Role.MEMBER,
    T("/reminders on|off"),
    T("a message 30 minutes before each session"),
)
def cmd_reminders(ctx: Context) -> Outcome:
    """Turn the reminder before each session on or off."""
    arg = fold(ctx.args)
    if arg and arg not in _ON | _OFF:
        raise UsageError
    wanted = None if not arg else arg in _ON

    def work(st: Store) -> Outcome:
        own = policy.ensure_safety(st.s, _actor_id(st))
        if wanted is None:
            shown = T("Reminders are on.") if own.reminders else T("Reminders are off.")
            return Outcome.of(Reply(shown))
        own.reminders = wanted
        if not wanted:
            return Outcome.of(Reply(T("Reminders off.")))
        parts: list[Renderable] = [
            T("Reminders on: Cercle will write to you 30 minutes before each session.")
        ]
        if schedule.Schedule.of(policy.policy_of(st.s, st.group.id)) is None:
            parts.append(
                T("This group has no set hours yet, so there is nothing to remind you of.")
            )
        return Outcome.of(Reply(Joined(tuple(parts), " ")))

    return Outcome.of(Deferred(work))


# --- exit word -------------------------------------------------------------------------------


@command(
    "exitword",
    {"en": "exitword", "fr": "motdesortie"},
    Role.MEMBER,
    T("/exitword WORD"),
    T("a private word that, sent on its own, removes you at once and deletes your data"),
    before_consent=True,
)
def cmd_exitword(ctx: Context) -> Outcome:
    """Choose a private word that, sent on its own, removes you at once."""
    arg = ctx.args.strip()
    if not arg:
        return Outcome.of(Deferred(_show_exit_word))
    if fold(arg) in _OFF:
        return Outcome.of(_set_exit_word(None), Audit("exit_word", detail="cleared"))
    key = quick_exit.exit_word_key(arg)
    if key is None:
        raise Refusal(T("An exit word is a single word of 3 to 32 letters or digits."))
    if key in _not_exit_words():
        raise Refusal(
            T(
                "That word has another use or is too common; choose one you would never send "
                "by chance."
            )
        )
    return Outcome.of(_set_exit_word(key), Audit("exit_word", detail="set"))


def _set_exit_word(key: str | None) -> Deferred:
    def work(st: Store) -> Outcome:
        mid = _actor_id(st)
        if key is None:
            if (found := policy.safety_of(st.s, mid)) is not None:
                found.exit_word_hash = found.exit_word_enc = None
            return Outcome.of(Reply(T("Your exit word is removed.")))
        own = policy.ensure_safety(st.s, mid)
        own.exit_word_hash = quick_exit.exit_word_hash(st.relay.keys, mid, key)
        own.exit_word_enc = st.relay.keys.encrypt_text(
            quick_exit.exit_word_value(mid, key), quick_exit.EXIT_WORD_CONTEXT
        )
        return Outcome.of(
            Reply(
                T(
                    "Your exit word is set. If you ever send it on its own, you leave the group "
                    "at once, your data is deleted, and Cercle answers only: {reply} You may "
                    "want to delete the message where you typed it.",
                    reply=quick_exit.EXIT_REPLY,
                )
            )
        )

    return Deferred(work)


def _show_exit_word(st: Store) -> Outcome:
    own = policy.safety_of(st.s, _actor_id(st))
    if own is not None and own.exit_word_hash:
        return Outcome.of(
            Reply(T("Your exit word is set. Cercle does not show it, to keep it private."))
        )
    pol = policy.policy_of(st.s, st.group.id)
    if pol is not None and pol.exit_word:
        return Outcome.of(
            Reply(
                T(
                    "This group's exit word is {word}. Send it on its own to leave at once. "
                    "To choose your own, send {command} followed by a word.",
                    word=Raw(pol.exit_word.upper()),
                    command=CommandWord("exitword"),
                )
            )
        )
    return Outcome.of(
        Reply(
            T(
                "You have no exit word. To choose one, send {command} followed by a word you "
                "would never send by chance.",
                command=CommandWord("exitword"),
            )
        )
    )


# --- opening and closing now ----------------------------------------------------------------


@command(
    "open",
    {"en": "open", "fr": "ouvrir"},
    Role.FACILITATOR,
    T("/open [duration]"),
    T("open the group now, until the next scheduled start or end, or for a while"),
)
def cmd_open(ctx: Context) -> Outcome:
    """Open the group by hand, until the next scheduled start or end, or for a while."""
    return Outcome.of(_set_open(True, _duration_arg(ctx)))


@command(
    "close",
    {"en": "close", "fr": "fermer"},
    Role.FACILITATOR,
    T("/close [duration]"),
    T("close the group now, until the next scheduled start or end, or for a while"),
)
def cmd_close(ctx: Context) -> Outcome:
    """Close the group by hand, until the next scheduled start or end, or for a while."""
    return Outcome.of(_set_open(False, _duration_arg(ctx)))


# --- invites and decisions -------------------------------------------------------------------


@command(
    "invite",
    {"en": "invite", "fr": "inviter"},
    Role.FACILITATOR,
    T("/invite [valid for, e.g. 48h]"),
    T("a one-time code a vetted person texts to join"),
)
def cmd_invite(ctx: Context) -> Outcome:
    """A one-time code a vetted person texts to join, valid 48 hours unless told otherwise."""
    seconds = (
        parse_duration(ctx.args)
        if ctx.args.strip()
        else int(invites.DEFAULT_EXPIRY.total_seconds())
    )
    if seconds is None:
        raise UsageError
    expires = timedelta(seconds=seconds)
    if not timedelta(minutes=5) <= expires <= invites.MAX_EXPIRY:
        raise Refusal(T("An invite must last between 5 minutes and 14 days."))

    def work(st: Store) -> Outcome:
        assert st.actor is not None  # noqa: S101 - a command has a sender
        code = invites.create(
            st.s,
            st.relay.keys,
            st.group,
            st.now,
            expires=expires,
            created_by=st.actor.pseudonym or "?",
        )
        link = st.relay.join_link(code) if st.relay.join_link is not None else None
        return Outcome.of(Reply(invites.how_to_use(code, expires, link)))

    return Outcome.of(Deferred(work))


@command(
    "approve",
    {"en": "approve", "fr": "approuver"},
    Role.FACILITATOR,
    T("/approve NAME"),
    T("let a newcomer in, or send their held messages to the group"),
)
def cmd_approve(ctx: Context) -> Outcome:
    """Let a newcomer in, or send a member's held messages to the group."""
    target, _ = ctx.split_target()
    tid = member_id(target)

    def work(st: Store) -> Outcome:
        found = st.s.get(Member, tid)
        if found is None or found.state == MemberState.REMOVED:
            return Outcome()
        if found.state == MemberState.PENDING:
            return invites.admit(st, found)
        return decisions.release(st, found)

    return Outcome.of(Deferred(work))


@command(
    "reject",
    {"en": "reject", "fr": "refuser"},
    Role.FACILITATOR,
    T("/reject NAME"),
    T("turn a newcomer away, or delete their held messages"),
)
def cmd_reject(ctx: Context) -> Outcome:
    """Turn a newcomer away, or drop a member's held messages."""
    target, _ = ctx.split_target()
    tid = member_id(target)

    def work(st: Store) -> Outcome:
        found = st.s.get(Member, tid)
        if found is None or found.state == MemberState.REMOVED:
            return Outcome()
        if found.state == MemberState.PENDING:
            return Outcome.of(
                Audit("reject_join", target=found.pseudonym),
                Remove(tid, farewells.not_admitted()),
                Reply(
                    T(
                        "{name} was not admitted; their number is deleted.",
                        name=display_name(found),
                    )
                ),
            )
        return decisions.drop(st, found)

    return Outcome.of(Deferred(work))


# --- stats -----------------------------------------------------------------------------------


@command(
    "stats",
    {"en": "stats", "fr": "stats"},
    Role.FACILITATOR,
    T("/stats"),
    T("messages held, muted or rate-limited lately, and what waits now"),
)
def cmd_stats(ctx: Context) -> Outcome:
    """Counts of messages that were held, muted or rate-limited, and what waits now."""

    def work(st: Store) -> Outcome:
        gid = st.group.id
        assert gid is not None  # noqa: S101 - a stored group has an id
        counts = policy.tallies(st.s, gid, (st.now - timedelta(days=6)).date())
        waiting = st.s.exec(
            select(func.count()).where(
                col(HeldMessage.group_id) == gid,
                col(HeldMessage.reason).in_(["review", "alert"]),
                col(HeldMessage.expires_at) > st.now,
            )
        ).one()
        members = st.s.exec(
            select(Member).where(
                col(Member.group_id) == gid, col(Member.state) != MemberState.REMOVED
            )
        ).all()
        pending = sum(1 for m in members if m.state == MemberState.PENDING)
        muted = sum(1 for m in members if m.muted_until is not None and m.muted_until > st.now)

        def n(kind: policy.Tally) -> int:
            return counts.get(kind, 0)

        lines: tuple[Renderable, ...] = (
            T("In the last 7 days:"),
            T("• sent outside open hours: {n}", n=n(policy.Tally.CLOSED)),
            T("• held for a facilitator: {n}", n=n(policy.Tally.REVIEW)),
            T("• alerts to staff: {n}", n=n(policy.Tally.ALERT)),
            T("• sent while muted: {n}", n=n(policy.Tally.MUTED)),
            T("• over the flood limit or in a cooldown: {n}", n=n(policy.Tally.LIMITED)),
            T("Now:"),
            T("• messages waiting for a decision: {n}", n=waiting),
            T("• newcomers waiting for approval: {n}", n=pending),
            T("• members muted: {n}", n=muted),
        )
        return Outcome.of(Reply(Joined(lines)))

    del ctx
    return Outcome.of(Deferred(work))
