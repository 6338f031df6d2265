"""Phrases that raise an alert to staff: immediate danger, self-harm.

Each language has a list in ``config/texts/<lang>/alert_phrases.txt``, one phrase per line
(``#`` starts a comment). A message matches when one of the phrases of *any* language
appears in it as whole words, ignoring case, accents and the kind of apostrophe: members
write in the language that comes to them in a hard moment, not the one they chose.
"""

from __future__ import annotations

import logging
import re
from functools import cache
from pathlib import Path

from relay.groups.policy import fold
from relay.language.i18n import LANGS

log = logging.getLogger(__name__)
FILE = "alert_phrases.txt"


def _phrase_pattern(phrase: str) -> str:
    words = [re.escape(w) for w in fold(phrase).split()]
    return r"\s+".join(words)


@cache
def _pattern(root: Path) -> re.Pattern[str] | None:
    phrases: list[str] = []
    for lang in LANGS:
        path = root / "texts" / lang / FILE
        if not path.is_file():
            log.warning("no alert phrases for %s: %s is missing", lang, FILE)
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            phrase = line.split("#", 1)[0].strip()
            if phrase and fold(phrase):
                phrases.append(_phrase_pattern(phrase))
    if not phrases:
        return None
    # Longest first, so the alternation prefers the fuller phrase; \w-boundaries both sides.
    phrases.sort(key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(phrases) + r")(?!\w)")


def _fold_text(text: str) -> str:
    # fold() trims punctuation at the ends only; inside, keep everything and compare words.
    return " ".join(fold(w) or w for w in text.split())


def matches(root: Path, text: str) -> bool:
    """Whether ``text`` contains an alert phrase of the config directory ``root``."""
    pattern = _pattern(root)
    return pattern is not None and pattern.search(_fold_text(text)) is not None
