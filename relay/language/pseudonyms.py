"""Pseudonyms: assigned from curated lists, chosen names checked so no one can pose as another.

A pseudonym is never derived from a number or a profile name and never contains a digit, so
nothing about a member's identity can travel in it.
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Collection

from relay.errors import CercleError
from relay.language.i18n import T
from relay.language.names import PSEUDONYMS, RESERVED_WORDS

MIN_LEN, MAX_LEN = 2, 20
_ALLOWED_PUNCT = {" ", "-", "'", "’"}


def name_key(name: str) -> str:
    """Case-, accent-, space- and punctuation-insensitive key for comparing names (what
    ``Member.name_key`` stores). Words are compared with :func:`relay.groups.policy.fold`."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(c for c in decomposed if c.isalpha() and not unicodedata.combining(c))


# Letters of other scripts that look like Latin ones once case is folded (Cyrillic "а" in
# "Fаcilitator", Greek "ο"...). Not the whole Unicode confusables table: the letters a name can
# be spelled with to pass for a role word or for another member in a French or English group.
_LOOKALIKES = str.maketrans(
    {
        **dict(zip("авгеһіјкмнорсԛтуўхѕԁԝӏ", "abrehijkmhopcqtyyxsdwl", strict=True)),
        **dict(zip("αβεζηικμνορτυχγ", "abezhikmvoptuxy", strict=True)),
        **dict(zip("ıȷɑɡɩʟօսᴀ", "ijagiloua", strict=True)),
    }
)


def skeleton(name: str) -> str:
    """:func:`name_key`, with letters of other scripts that look Latin mapped to those letters.

    Two names with the same skeleton look the same on a phone; compare skeletons to refuse a
    name that would pass for a taken one or for a role word.
    """
    return name_key(name).translate(_LOOKALIKES)


def assign(taken: Collection[str]) -> str:
    """A pseudonym not yet used in the group (``taken`` holds folded names).

    Draws at random from the curated list; when it is exhausted, pairs two list names
    (``Iris Sage``), which still reads well in both languages and has no digits.
    """
    looks_taken = {skeleton(t) for t in taken}
    free = [n for n in PSEUDONYMS if skeleton(n) not in looks_taken]
    if free:
        return secrets.choice(free)
    for _ in range(1000):
        name = f"{secrets.choice(PSEUDONYMS)} {secrets.choice(PSEUDONYMS)}"
        if skeleton(name) not in looks_taken and len(name) <= MAX_LEN:
            return name
    raise CercleError("No pseudonym is left for this group.")


def _reserved(name: str) -> bool:
    # Short role words (bot, team) must be whole words, or Talbot and Steam would be refused;
    # longer ones count anywhere, so "Staffie" or "Facilitatrice Jo" cannot pass.
    tokens = {skeleton(t) for t in name.replace("-", " ").replace("'", " ").split()}
    key = skeleton(name)
    return any((word in tokens) if len(word) <= 4 else (word in key) for word in RESERVED_WORDS)


class NameRefused(CercleError):  # noqa: N818 - reads as what happened
    """A chosen name that cannot be used; ``reason`` says why, in the member's language."""

    def __init__(self, reason: T) -> None:
        super().__init__(reason.msgid)
        self.reason = reason


def clean_chosen(raw: str, taken: Collection[str]) -> str:
    """Validate a name a member chose; return it tidied, or raise :class:`NameRefused`.

    Letters, spaces, hyphens and apostrophes only (no digits of any script), 2 to 20
    characters, not another member's name, and no role word such as *staff* or *équipe*,
    whatever the case, the accents, or lookalike letters of other scripts.
    """
    name = " ".join(unicodedata.normalize("NFC", raw).split())
    if not MIN_LEN <= len(name) <= MAX_LEN:
        raise NameRefused(T("A name must be 2 to 20 characters long."))
    if any(not (c.isalpha() or c in _ALLOWED_PUNCT) for c in name):
        raise NameRefused(T("A name may contain only letters, spaces, hyphens and apostrophes."))
    key = name_key(name)
    if len(key) < MIN_LEN:
        raise NameRefused(T("A name must be 2 to 20 characters long."))
    if _reserved(name):
        raise NameRefused(T("That name is reserved. Please choose another."))
    if key in taken or skeleton(name) in {skeleton(t) for t in taken}:
        raise NameRefused(T("That name is already taken in this group."))
    return name
