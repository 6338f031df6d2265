"""Message moderation: ``/delete`` takes a message back from every phone, ``/report`` tells the
facilitators about one. Each handler registers its row of the table
(:mod:`relay.commands.table`).

Both act on the message the sender quotes (replies to) on their phone; ``/delete NAME [n]``
also works without a quote, for facilitators on SMS. ``/delete NAME all`` (or ``/delete all``
replying to a message) takes back everything that member wrote inside the recall window, one
message after another through the same removal. What needs stored rows runs as a
:class:`~relay.core.outcome.Deferred` effect in the transaction of the command; the data side of a
removal is :mod:`relay.delivery.recall`.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta

from sqlmodel import col, select

from relay.core.handlers import (
    MAX_TEXT,
    Context,
    Refusal,
    UsageError,
    command,
    display_name,
    member_id,
)
from relay.core.outcome import Audit, Deferred, Effect, Outcome, Reply, Store, ToMember, ToStaff
from relay.core.words import ALL_WORD, CommandWord, Word
from relay.delivery import recall, reports
from relay.language.channels import PerChannel
from relay.language.i18n import TN, Joined, Raw, Renderable, T
from relay.storage.models import Inbound, Member, MemberState, Role

log = logging.getLogger(__name__)

MAX_AT_ONCE = 20  # /delete NAME n
REPORTS_PER_WINDOW = 3
REPORT_WINDOW = timedelta(hours=1)
_REPORT_KEY = "member_report"  # the reporter's counter in relay.reports' table
_MAX_QUOTED = 600  # characters of quoted text passed on to staff

_GONE = T(
    "That message cannot be taken back: it is not a group message, or it was already removed "
    "or has expired."
)


def _actor(st: Store) -> Member:
    assert st.actor is not None  # noqa: S101 - a command has a sender
    return st.actor


def _may_remove(actor: Member, author: Member) -> bool:
    """Staff remove members' messages; a facilitator's only another facilitator or an admin
    (or themselves), as with /remove."""
    return Role(actor.role).rank >= Role(author.role).rank


def _quoted(st: Store, ref: str | None) -> tuple[Inbound, Member | None] | None:
    """The group message the sender quotes, and its author (``None`` once removed)."""
    found = recall.find_quoted(st.s, member_id(_actor(st)), ref)
    message = st.s.get(Inbound, found) if found is not None else None
    if message is None or message.group_id != st.group.id or not message.relayed:
        return None
    author = st.s.get(Member, message.member_id) if message.member_id is not None else None
    if author is not None and author.state == MemberState.REMOVED:
        author = None
    return message, author


# --- /delete ---------------------------------------------------------------------------------


@command(
    "delete",
    {"en": "delete", "fr": "effacer"},
    Role.FACILITATOR,
    T(
        "/delete [reason], replying to a message (/delete all [reason]: everything its author "
        "wrote); or /delete NAME [how many | all]"
    ),
    T("take messages back from every phone; their author is told privately"),
    on_channel={
        channel: (
            T("/delete NAME [how many | all] [reason]"),
            T("take messages back from every phone; their author is told privately"),
        )
        for channel in ("sms", "web")
    },
)
def cmd_delete(ctx: Context) -> Outcome:
    """Take a message back: the one quoted, or NAME's last one (or last ``n``); with ``all``,
    everything that member wrote inside the recall window."""
    if ctx.quote_ref:
        ref = ctx.quote_ref
        everything, reason = _everything(ctx.args.strip())
        if everything:
            return Outcome.of(Deferred(lambda st: _delete_all_quoted(st, ref, reason)))
        return Outcome.of(Deferred(lambda st: _delete_quoted(st, ref, reason)))
    author, rest = ctx.split_target()
    everything, rest = _everything(rest)
    count, reason = 1, rest
    if not everything and (match := re.fullmatch(r"(\d{1,3})(?:\s+(.*))?", rest, re.DOTALL)):
        count, reason = int(match.group(1)), (match.group(2) or "").strip()
    if not 1 <= count <= MAX_AT_ONCE:
        raise Refusal(T("You can take back 1 to {n} messages at once.", n=MAX_AT_ONCE))
    if not _may_remove(ctx.member, author):
        raise Refusal(T("You cannot remove {name}'s messages.", name=display_name(author)))
    aid = member_id(author)
    if everything:
        return Outcome.of(Deferred(lambda st: _delete_all(st, aid, reason)))
    return Outcome.of(Deferred(lambda st: _delete_last(st, aid, count, reason)))


_ALL_KEYS = frozenset(w.casefold() for w in ALL_WORD.values())


def _everything(rest: str) -> tuple[bool, str]:
    """Whether ``rest`` starts with the word for "all" (either language), and what follows."""
    if not rest.strip():
        return False, rest
    first, *tail = rest.split(maxsplit=1)
    if first.casefold() in _ALL_KEYS:
        return True, "".join(tail).strip()
    return False, rest


def _delete_quoted(st: Store, ref: str, reason: str) -> Outcome:
    found = _quoted(st, ref)
    if found is None:
        return Outcome.of(Reply(_GONE))
    message, author = found
    if author is not None and not _may_remove(_actor(st), author):
        return Outcome.of(
            Reply(T("You cannot remove {name}'s messages.", name=display_name(author)))
        )
    if message.received_at < st.now - recall.RECALL_WINDOW:
        return _too_old(st, [message], author)
    return _remove(st, [message], author, reason)


def _delete_last(st: Store, author_id: int, count: int, reason: str) -> Outcome:
    author = st.s.get(Member, author_id)
    assert author is not None  # noqa: S101 - found in the roster of this transaction
    latest = list(
        st.s.exec(
            select(Inbound)
            .where(
                col(Inbound.member_id) == author_id,
                col(Inbound.group_id) == st.group.id,
                col(Inbound.relayed).is_(True),
            )
            .order_by(col(Inbound.received_at).desc(), col(Inbound.id).desc())
            .limit(count)
        ).all()
    )
    if not latest:
        return Outcome.of(
            Reply(T("{name} has no message in the group to take back.", name=display_name(author)))
        )
    cutoff = st.now - recall.RECALL_WINDOW
    recent = [m for m in latest if m.received_at >= cutoff]
    if not recent:
        return _too_old(st, latest, author)
    outcome = _remove(st, recent, author, reason)
    if old := [m for m in latest if m.received_at < cutoff]:
        # Copies of the older ones not yet sent still stop.
        unsent = sum(recall.cancel_unsent(st.s, m.id, st.now) for m in old if m.id is not None)
        note = _older_than_window(len(old))
        outcome.effects.insert(0, Reply(Joined((note, _unsent(unsent)), " ") if unsent else note))
    return outcome


def _delete_all_quoted(st: Store, ref: str, reason: str) -> Outcome:
    """``/delete all`` replying to a message: everything its author wrote (works after the
    author was removed, when their name no longer does)."""
    found = _quoted(st, ref)
    author_id = found[0].member_id if found is not None else None
    if found is None or author_id is None:
        return Outcome.of(Reply(_GONE))
    author = found[1]
    if author is not None and not _may_remove(_actor(st), author):
        return Outcome.of(
            Reply(T("You cannot remove {name}'s messages.", name=display_name(author)))
        )
    return _delete_all(st, author_id, reason)


def _delete_all(st: Store, author_id: int, reason: str) -> Outcome:
    """Take back every message the member wrote that is still inside the recall window."""
    author: Member | None = st.s.get(Member, author_id)
    if author is not None and author.state == MemberState.REMOVED:
        author = None  # a former member: named as such
    theirs = (
        col(Inbound.member_id) == author_id,
        col(Inbound.group_id) == st.group.id,
        col(Inbound.relayed).is_(True),
    )
    cutoff = st.now - recall.RECALL_WINDOW
    recent = list(
        st.s.exec(
            select(Inbound)
            .where(*theirs, col(Inbound.received_at) >= cutoff)
            .order_by(col(Inbound.received_at), col(Inbound.id))
        ).all()
    )
    if recent:
        return _remove(st, recent, author, reason, action="message_delete_all")
    older = list(
        st.s.exec(
            select(Inbound)
            .where(*theirs)
            .order_by(col(Inbound.received_at).desc(), col(Inbound.id).desc())
            .limit(MAX_AT_ONCE)
        ).all()
    )
    if older:
        return _too_old(st, older, author)
    name: Renderable = display_name(author) if author else T("a former member")
    return Outcome.of(Reply(T("{name} has no message in the group to take back.", name=name)))


def _older_than_window(n: int) -> Renderable:
    hours = int(recall.RECALL_WINDOW.total_seconds() // 3600)
    return TN(
        "{n} of those messages is more than {hours} hours old. Phones no longer accept a delete "
        "for it, so it stays where it was delivered; ask the members to delete it themselves.",
        "{n} of those messages are more than {hours} hours old. Phones no longer accept a delete "
        "for them, so they stay where they were delivered; ask the members to delete them "
        "themselves.",
        n,
        hours=hours,
    )


def _too_old(st: Store, messages: list[Inbound], author: Member | None) -> Outcome:
    """Past the window nothing on phones can be recalled; copies not yet sent still stop."""
    unsent = sum(recall.cancel_unsent(st.s, m.id, st.now) for m in messages if m.id is not None)
    hours = int(recall.RECALL_WINDOW.total_seconds() // 3600)
    parts: list[Renderable] = [
        TN(
            "Not removed: that message is more than {hours} hours old. Phones no longer accept "
            "a delete for it, so Cercle cannot take it back; ask the members to delete it "
            "themselves.",
            "Not removed: those messages are more than {hours} hours old. Phones no longer "
            "accept a delete for them, so Cercle cannot take them back; ask the members to "
            "delete them themselves.",
            len(messages),
            hours=hours,
        )
    ]
    if unsent:
        parts.append(_unsent(unsent))
    return Outcome.of(
        Reply(Joined(tuple(parts), " ")),
        Audit(
            "message_delete_late",
            target=author.pseudonym if author else None,
            detail=f"n={len(messages)} unsent={unsent}",
        ),
    )


def _unsent(n: int) -> Renderable:
    return TN(
        "{n} copy not yet sent will never be sent.",
        "{n} copies not yet sent will never be sent.",
        n,
    )


def _remove(
    st: Store,
    messages: list[Inbound],
    author: Member | None,
    reason: str,
    *,
    action: str = "message_delete",
) -> Outcome:
    actor = _actor(st)
    done = recall.Recall()
    for message in messages:
        done.add(recall.take_back(st.s, st.writer, message, st.now))
    author_name: Renderable = display_name(author) if author else T("a former member")
    summary = _summary(done)

    def removed(by: Renderable | None) -> Renderable:
        if by is None:
            return TN(
                "Removed {n} message by {name}.",
                "Removed {n} messages by {name}.",
                done.messages,
                name=author_name,
            )
        return TN(
            "{actor} removed {n} message by {name}.",
            "{actor} removed {n} messages by {name}.",
            done.messages,
            actor=by,
            name=author_name,
        )

    # The other facilitators hear of it too, and of SMS copies that stay on phones.
    sms = summary[-1:] if done.sms else []
    effects: list[Effect] = [
        Reply(Joined((removed(None), *summary), " ")),
        ToStaff(Joined((removed(display_name(actor)), *sms), " ")),
    ]
    if author is not None and author.id != actor.id:
        effects.append(ToMember(member_id(author), _to_author(done.messages, reason)))
    effects.append(Audit(action, target=author.pseudonym if author else None, detail=done.code))
    log.info("message removed by staff: %s", done.code)  # counts only, never who or what
    return Outcome(effects)


def _summary(done: recall.Recall) -> list[Renderable]:
    """What became of the copies, for staff; the SMS part last. For several messages the
    counts are of copies, since one phone may hold several."""
    many = done.messages > 1
    parts: list[Renderable] = []
    if done.deleted:
        parts.append(
            TN(
                "{n} copy is being deleted from phones and pages.",
                "{n} copies are being deleted from phones and pages.",
                done.deleted,
            )
            if many
            else TN(
                "It is being deleted from {n} phone.",
                "It is being deleted from {n} phones.",
                done.deleted,
            )
        )
    if done.unsent:
        parts.append(_unsent(done.unsent))
    if done.too_old:
        parts.append(
            TN(
                "{n} copy was delivered too long ago to be taken back.",
                "{n} copies were delivered too long ago to be taken back.",
                done.too_old,
            )
        )
    if done.sms:
        parts.append(
            TN(
                "{n} copy had already been delivered by SMS and cannot be taken back. Cercle "
                "sends those members nothing more about it.",
                "{n} copies had already been delivered by SMS and cannot be taken back. Cercle "
                "sends those members nothing more about it.",
                done.sms,
            )
            if many
            else TN(
                "{n} member on SMS had already received it: an SMS cannot be taken back. "
                "Cercle sends them nothing more about it.",
                "{n} members on SMS had already received it: an SMS cannot be taken back. "
                "Cercle sends them nothing more about it.",
                done.sms,
            )
        )
    return parts


def _to_author(n: int, reason: str) -> Renderable:
    told: Renderable = (
        T("A facilitator removed your message from the group.")
        if n == 1
        else T("A facilitator removed {n} of your messages from the group.", n=n)
    )
    if reason:
        told = Joined((told, T("Reason: {reason}", reason=Raw(reason[:MAX_TEXT]))))
    return told


# --- after /remove ---------------------------------------------------------------------------

RECENT = timedelta(hours=1)  # /remove suggests taking back what was written this recently


def suggest_delete_all(author_id: int, name: Renderable) -> Deferred:
    """After ``/remove``: if the member wrote in the last hour, tell the facilitator how to
    take it all back. Their name no longer works once they are removed, so the suggestion
    is to reply to one of their messages with ``/delete all``."""

    def suggest(st: Store) -> Outcome:
        wrote = st.s.exec(
            select(Inbound.id).where(
                col(Inbound.member_id) == author_id,
                col(Inbound.group_id) == st.group.id,
                col(Inbound.relayed).is_(True),
                col(Inbound.received_at) >= st.now - RECENT,
            )
        ).first()
        if wrote is None:
            return Outcome.of()
        return Outcome.of(
            Reply(
                T(
                    "{name} wrote in the last hour, and those messages are still on members' "
                    "phones. To take back everything they wrote, reply to one of their messages "
                    "with {delete_all}.",
                    name=name,
                    delete_all=Joined((CommandWord("delete"), Word(ALL_WORD)), " "),
                )
            )
        )

    return Deferred(suggest)


# --- /report ---------------------------------------------------------------------------------


@command(
    "report",
    {"en": "report", "fr": "signaler"},
    Role.MEMBER,
    T("/report [why], replying to a message"),
    T("tell the facilitators privately about a message; its author will not know"),
    on_channel={
        channel: (
            T("/report"),
            T(
                "a message cannot be quoted here: to report one, write to the facilitators with "
                "/staff MESSAGE; only they will read it"
            ),
        )
        for channel in ("sms", "web")
    },
)
def cmd_report(ctx: Context) -> Outcome:
    """Tell the facilitators privately about the quoted message."""
    if not ctx.quote_ref:
        raise Refusal(
            PerChannel(
                T(
                    "To report a message, reply to it (quote it) with {report}. On SMS, write to "
                    "the facilitators with {staff}.",
                    report=CommandWord("report"),
                    staff=CommandWord("staff"),
                ),
                {
                    "web": T(
                        "To report a message from this page, write to the facilitators with "
                        "{staff}: only they will read it.",
                        staff=CommandWord("staff"),
                    ),
                    "sms": T(
                        "A text message cannot be quoted. To report a message, write to the "
                        "facilitators with {staff}: only they will read it.",
                        staff=CommandWord("staff"),
                    ),
                    "signal": T(
                        "To report a message, reply to it (quote it) with {report}.",
                        report=CommandWord("report"),
                    ),
                },
            )
        )
    why = ctx.args.strip()
    if len(why) > MAX_TEXT:
        raise UsageError
    ref, quoted = ctx.quote_ref, (ctx.quote_text or "").strip()
    return Outcome.of(Deferred(lambda st: _report(st, ref, quoted, why)))


def _report(st: Store, ref: str, quoted: str, why: str) -> Outcome:
    reporter = _actor(st)
    found = _quoted(st, ref)
    if found is None:
        return Outcome.of(
            Reply(
                T(
                    "That is not a message from the group, or it has expired. You can still "
                    "write to the facilitators with {staff}.",
                    staff=CommandWord("staff"),
                )
            )
        )
    _, author = found
    if author is not None and author.id == reporter.id:
        return Outcome.of(Reply(T("That is your own message.")))
    if not _report_allowed(st):
        return Outcome.of(
            Reply(
                T(
                    "You have sent several reports in the last hour; the facilitators have "
                    "them. You can also write to them with {staff}.",
                    staff=CommandWord("staff"),
                )
            )
        )
    staff = [
        m
        for m in st.s.exec(
            select(Member).where(
                col(Member.group_id) == st.group.id, col(Member.state) == MemberState.ACTIVE
            )
        ).all()
        if Role(m.role).is_staff and m.id not in (reporter.id, author.id if author else None)
    ]
    note = _report_note(reporter, author, quoted, why)
    st.writer.fan_out(staff, note)
    if not staff:
        return Outcome.of(
            Reply(
                T(
                    "No facilitator can receive a report right now. If you are in danger, "
                    "send {resources}.",
                    resources=CommandWord("resources"),
                )
            )
        )
    return Outcome.of(
        Reply(
            T(
                "Thank you. Your report went privately to the facilitators; the person you "
                "reported will not know."
            )
        ),
        Audit("report", target=author.pseudonym if author else None),
    )


def _report_note(reporter: Member, author: Member | None, quoted: str, why: str) -> Renderable:
    text = quoted[:_MAX_QUOTED]  # cleaned like any member text before the command ran
    parts: list[Renderable] = [
        T(
            "Report from {reporter} about a message by {author}:",
            reporter=display_name(reporter),
            author=display_name(author) if author else T("a former member"),
        ),
        T("“{text}”", text=Raw(text)) if text else T("(their phone did not include the text)"),
    ]
    if why:
        parts.append(T("Why: {why}", why=Raw(why)))
    parts.append(T("To take it back, reply to it with {delete}.", delete=CommandWord("delete")))
    return Joined(tuple(parts))


def _report_allowed(st: Store) -> bool:
    """At most :data:`REPORTS_PER_WINDOW` reports per member per :data:`REPORT_WINDOW`."""
    reporter = member_id(_actor(st))
    repeats = reports.count_in_window(st.s, reporter, _REPORT_KEY, st.now, REPORT_WINDOW)
    return repeats < REPORTS_PER_WINDOW
