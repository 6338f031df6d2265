"""Quick exit, and what is checked before anything else on the inbound path (:func:`first`).

The exit word works in every state: the sender is removed at once, with an innocuous reply.
An invite code sent by a member never reaches the group, and a newcomer waiting for approval
is told to wait.
"""

from __future__ import annotations

import hmac
import re
from typing import Any

from sqlmodel import Session

from relay.core.handlers import display_name
from relay.core.outcome import (
    Audit,
    Outcome,
    Remove,
    Reply,
    ToGroup,
    ToStaff,
)
from relay.groups import policy
from relay.groups.invites import normalize_code, parse_join
from relay.groups.policy import fold
from relay.language.channels import PerChannel
from relay.language.i18n import T
from relay.messages import InboundKind
from relay.safety.protocols import Handled, Turn
from relay.storage.crypto import DataKeys
from relay.storage.models import (
    Member,
    MemberState,
)

EXIT_REPLY = T("Subscription cancelled.")


_EXIT_WORD = re.compile(r"[^\W_]{3,32}")


def exit_word_key(word: str) -> str | None:
    """The folded form of an exit word, or ``None`` if it cannot be one (one word, 3 to 32
    letters or digits)."""
    key = fold(word)
    return key if _EXIT_WORD.fullmatch(key) else None


EXIT_WORD_CONTEXT = "member_safety.exit_word"


EXIT_WORD_KIND = "exitword"


def exit_word_value(member_id: int, key: str) -> str:
    """What is hashed (and sealed) for a member's own exit word: the member id is mixed in so
    two members with the same word do not share a hash."""
    return f"{member_id}:{key}"


def exit_word_hash(keys: DataKeys, member_id: int, key: str) -> str:
    """The keyed hash stored for a member's own exit word."""
    return keys.lookup_hash(exit_word_value(member_id, key), EXIT_WORD_KIND)


def is_exit_word(s: Session, keys: DataKeys, member: Member, text: str) -> bool:
    """Whether ``text`` is, on its own, this member's exit word (their own word if they chose
    one, else the group's default)."""
    key = exit_word_key(text) if len(text) <= 64 else None
    if key is None or member.id is None:
        return False
    own = policy.safety_of(s, member.id)
    if own is not None and own.exit_word_hash:
        # During a key rotation the stored hash may still be the previous key's.
        candidates = keys.lookup_hashes(exit_word_value(member.id, key), EXIT_WORD_KIND)
        return any(hmac.compare_digest(own.exit_word_hash, h) for h in candidates)
    group_policy = policy.policy_of(s, member.group_id)
    return group_policy is not None and group_policy.exit_word == key


def quick_exit(turn: Turn) -> None:
    """Remove the sender at once: data deleted, an innocuous reply, staff told by pseudonym."""
    m = turn.member
    assert m.id is not None  # noqa: S101 - a stored member has an id
    name = display_name(m)
    effects: list[Any] = [
        Audit("quick_exit", target=m.pseudonym),
        ToStaff(
            T(
                "{name} sent their exit word: they have left the group, and their number and "
                "data are deleted. Do not try to reach them at this number; follow your safety "
                "plan.",
                name=name,
            )
        ),
    ]
    if m.state in (MemberState.ACTIVE, MemberState.PAUSED):
        effects.append(ToGroup(T("{name} is no longer in the group.", name=name), exclude=m.id))
    # The reply names no group and no organization: it may be read on a phone someone checks.
    effects.append(Remove(m.id, EXIT_REPLY))
    turn.apply.apply(Outcome(effects))


def _looks_like_join(text: str | None) -> bool:
    parsed = parse_join(text)
    return parsed is not None and normalize_code(parsed[1]) is not None


def first(turn: Turn) -> Handled | None:
    """Before consent, commands and relaying: the exit word, and newcomers awaiting approval."""
    ib, m = turn.inbound, turn.member
    if (
        ib.kind == InboundKind.MESSAGE
        and ib.text
        and is_exit_word(turn.s, turn.relay.keys, m, ib.text)
    ):
        quick_exit(turn)
        return Handled.STATE
    if ib.kind == InboundKind.MESSAGE and _looks_like_join(ib.text):
        # An invite code must never reach the group. Whether it is valid is not said either:
        # members get no oracle for codes.
        turn.apply.apply(
            Outcome.of(
                Reply(
                    PerChannel(
                        T(
                            "This number is already in a group, so that code was not used, and "
                            "it was not shared with the group."
                        ),
                        {
                            "web": T(
                                "This page is already in a group, so that code was not used, "
                                "and it was not shared with the group."
                            )
                        },
                    )
                )
            )
        )
        return Handled.HELD_BACK
    if m.state == MemberState.PENDING:
        turn.apply.apply(
            Outcome.of(
                Reply(
                    T(
                        "A facilitator has not confirmed your place yet. Cercle will write to "
                        "you as soon as they do."
                    )
                )
            )
        )
        return Handled.HELD_BACK
    return None
