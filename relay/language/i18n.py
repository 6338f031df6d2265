"""Translations through gettext catalogues (``relay/locale/<lang>/LC_MESSAGES/cercle.po``).

Handlers never build final strings: they return :class:`T` values (an English msgid plus
parameters) and the text is rendered once per recipient, in the recipient's language.
Translators edit the ``.po`` files with any gettext tool; ``make messages`` re-extracts them.
Parameters are substituted with ``str.format_map`` into *our* template only, so text a member
typed is never interpreted as a format string.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Protocol, runtime_checkable

from babel.messages.pofile import read_po

LANGS = ("fr", "en")
DEFAULT_LANG = "fr"
LOCALE_DIR = Path(__file__).parent.parent / "locale"
DOMAIN = "cercle"


def normalize_lang(value: str | None) -> str | None:
    """Map user input like ``FR``, ``français`` or ``English`` to a supported code."""
    if not value:
        return None
    v = value.strip().lower()
    for code, words in {
        "fr": ("fr", "français", "francais", "french"),
        "en": ("en", "english", "anglais"),
    }.items():
        if v in words:
            return code
    return None


@dataclass(frozen=True)
class _Catalog:
    singular: dict[str, str]
    plural: dict[str, tuple[str, ...]]


@cache
def _catalog(lang: str) -> _Catalog:
    path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    singular: dict[str, str] = {}
    plural: dict[str, tuple[str, ...]] = {}
    if path.exists():
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=lang)
        for msg in catalog:
            if not msg.id or msg.fuzzy:
                continue
            if isinstance(msg.id, tuple):
                strings = tuple(msg.string) if isinstance(msg.string, tuple) else ()
                if all(strings):
                    plural[msg.id[0]] = strings
            elif isinstance(msg.id, str) and isinstance(msg.string, str) and msg.string:
                singular[msg.id] = msg.string
    return _Catalog(singular, plural)


def _plural_index(lang: str, n: int) -> int:
    # French treats 0 and 1 as singular; English only 1.
    return int(n > 1) if lang == "fr" else int(n != 1)


def gettext(lang: str, msgid: str) -> str:
    """The translation of ``msgid`` in ``lang``, or the msgid itself."""
    return _catalog(lang).singular.get(msgid, msgid)


def ngettext(lang: str, singular: str, plural: str, n: int) -> str:
    """The plural-aware translation."""
    forms = _catalog(lang).plural.get(singular)
    idx = _plural_index(lang, n)
    if forms and idx < len(forms):
        return forms[idx]
    return singular if idx == 0 else plural


class _SafeDict(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@runtime_checkable
class Renderable(Protocol):
    """Anything that can be shown to a person in their language."""

    def render(self, lang: str) -> str:
        """The text in ``lang``."""
        ...


def _render_param(value: object, lang: str) -> object:
    return value.render(lang) if isinstance(value, Renderable) else value


@dataclass(frozen=True)
class T:
    """A translatable text: English ``msgid`` and named parameters, rendered per language.

    Parameters may themselves be :class:`T` values (rendered in the same language).
    """

    msgid: str
    params: Mapping[str, object] = field(default_factory=dict)
    plural: str | None = None
    n: int | None = None

    def __init__(self, msgid: str, /, **params: object) -> None:
        object.__setattr__(self, "msgid", msgid)
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "plural", None)
        object.__setattr__(self, "n", None)

    def render(self, lang: str) -> str:
        """The text in ``lang`` with parameters filled in."""
        if self.plural is not None and self.n is not None:
            template = ngettext(lang, self.msgid, self.plural, self.n)
        else:
            template = gettext(lang, self.msgid)
        values = _SafeDict({k: _render_param(v, lang) for k, v in self.params.items()})
        return string.Formatter().vformat(template, (), values)


def TN(singular: str, plural: str, n: int, /, **params: object) -> T:  # noqa: N802 - gettext style
    """A plural-aware :class:`T`; ``n`` is also available to the template as ``{n}``."""
    t = T(singular, n=n, **params)
    object.__setattr__(t, "plural", plural)
    object.__setattr__(t, "n", n)
    return t


@dataclass(frozen=True)
class Raw:
    """Text that is the same in every language (e.g. a member's own words)."""

    text: str

    def render(self, lang: str) -> str:
        """The text itself."""
        return self.text


@dataclass(frozen=True)
class Joined:
    """Texts rendered together with a separator."""

    parts: tuple[Renderable, ...]
    sep: str = "\n"

    def render(self, lang: str) -> str:
        """All parts in ``lang``."""
        return self.sep.join(p.render(lang) for p in self.parts)
