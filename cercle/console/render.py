"""Pages in the staff member's language: Jinja2 templates whose texts go through the same
gettext catalogues as everything Cercle sends (``_("…")`` in templates, :class:`T` here)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from relay.language.i18n import T

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
LANG_NAMES = {"fr": "Français", "en": "English"}


@cache
def environment() -> Environment:
    """The template environment (autoescaped, strict about missing values)."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(name: str, lang: str, values: dict[str, Any]) -> str:
    """``name`` rendered in ``lang``."""

    def translate(msgid: str, **params: object) -> str:
        return T(msgid, **params).render(lang)

    other = "en" if lang == "fr" else "fr"
    return (
        environment()
        .get_template(name)
        .render(
            _=translate,
            lang=lang,
            other_lang=other,
            other_lang_name=LANG_NAMES[other],
            **values,
        )
    )
