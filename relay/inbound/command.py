"""Command step: a slash command is looked up in the table (permission checked once, fail
closed), its handler runs on a :class:`~relay.core.handlers.Context`, and the outcome is
applied. Unknown and refused commands get the same answer.
"""

from __future__ import annotations

import logging

from relay.commands import table as commands
from relay.core.handlers import Context, Refusal, UsageError, named
from relay.core.outcome import Outcome, Reply
from relay.inbound.turn import Result, Turn, clean_text
from relay.language.i18n import Joined, Raw, T

log = logging.getLogger(__name__)


def run(turn: Turn, parsed: commands.Parsed, *, consented: bool = True) -> Result:
    """Run the slash command ``parsed`` for the sender, or answer that it is unknown."""
    m = turn.member
    cmd = commands.lookup(parsed.word, m, consented=consented)
    if cmd is None:
        near = commands.suggest(parsed.word, m, consented=consented)
        help_word = Raw("/" + named("help").words[m.lang])
        text = (
            T(
                "Unknown command. Did you mean {suggestion}? Send {help} for the list.",
                suggestion=Raw("/" + near),
                help=help_word,
            )
            if near
            else T("Unknown command. Send {help} for the list.", help=help_word)
        )
        turn.apply.apply(Outcome.of(Reply(text)))
        return Result.COMMAND
    ctx = Context(
        member=m,
        group=turn.group,
        roster=turn.apply.roster(),
        args=parsed.args,
        now=turn.now,
        texts=turn.relay.texts,
        org_name=turn.relay.org_name,
        quote_ref=turn.inbound.quote_ref,
        quote_text=clean_text(turn.inbound.quote_text or "") or None,
    )
    try:
        outcome = cmd.handler(ctx)
    except UsageError:
        outcome = Outcome.of(Reply(Joined((T("Usage:"), cmd.usage_on(m.channel)), " ")))
    except Refusal as exc:
        outcome = Outcome.of(Reply(exc.text))
    turn.apply.apply(outcome)
    return Result.COMMAND
