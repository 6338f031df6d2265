"""The command table: every family of commands, imported here so that each registers its rows,
then the lookups the inbound path uses (parse, permission, suggestion).

A row has its words in French and English, the least role that may run it, a usage line, a
help line and a handler (see :func:`relay.core.handlers.command`). Permission is checked once,
here, and fails closed: someone who may not run a command is answered exactly as if it did not
exist. /help is built from the same rows.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

from relay.commands import facilitation, members, message_moderation, moderation, video
from relay.core.handlers import Command, allowed_commands, registered
from relay.storage.models import Member

# Imported for their rows, in /help order.
FAMILIES = (members, moderation, facilitation, message_moderation, video)
COMMANDS: tuple[Command, ...] = registered()
COMMANDS_BY_NAME = {c.name: c for c in COMMANDS}
_BY_WORD = {w: c for c in COMMANDS for w in c.words.values()}


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
