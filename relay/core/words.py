"""Words a person types, rendered in the reader's language (``/approuver``, ``EQUIPE``…).

Texts sent to several people at once (to all staff, say) are rendered once per language, so
a command word inside them must be a renderable too, not the sender's word.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.core.handlers import named

# The one-word answer that sends a message held outside open hours to the staff instead.
ANSWER_WORD = {"en": "STAFF", "fr": "EQUIPE"}
# What a survivor texts with an invite code; the word also chooses their language.
JOIN_WORD = {"en": "JOIN", "fr": "REJOINDRE"}
# After ``/delete NAME`` (or ``/delete`` replying to a message): everything that member wrote.
ALL_WORD = {"en": "all", "fr": "tout"}


@dataclass(frozen=True)
class CommandWord:
    """A command's word with its slash, in the reader's language."""

    name: str

    def render(self, lang: str) -> str:
        """``/approve`` in English, ``/approuver`` in French."""
        return "/" + named(self.name).words[lang]


@dataclass(frozen=True)
class Word:
    """One of the bare words above (``ANSWER_WORD``, ``JOIN_WORD``) in the reader's language."""

    words: dict[str, str]

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.words.items())))

    def render(self, lang: str) -> str:
        """The word in ``lang``."""
        return self.words.get(lang, self.words["en"])
