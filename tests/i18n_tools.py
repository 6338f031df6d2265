"""Extract translatable texts from the code and keep the gettext catalogues in step.

``python -m tests.i18n_tools update`` rewrites ``relay/locale/<lang>/LC_MESSAGES/cercle.po``
with every msgid the code uses, keeping existing translations (English msgstr defaults to the
msgid, so the English wording can be edited there too). ``check`` lists what is missing.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from relay.language.i18n import DOMAIN, LANGS, LOCALE_DIR

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"T": None, "TN": (1, 2)}


# Where texts are: the core, the staff console's code and templates (``_("…")``), and the
# web door's page texts, and the health checks' findings (the console shows them in the staff
# member's language).
SOURCES = {
    "relay": [("**.py", "python")],
    "cercle/console": [("**.py", "python"), ("templates/**.html", "jinja2.ext:babel_extract")],
    "bots/web": [("**.py", "python")],  # the web door's pages
    "cercle/health": [("**.py", "python")],
}


def extracted() -> dict[str | tuple[str, str], list[tuple[str, int]]]:
    """Every msgid in ``relay/`` and the console with where it appears."""
    found: dict[str | tuple[str, str], list[tuple[str, int]]] = {}
    for folder, method_map in SOURCES.items():
        for filename, lineno, message, _comments, _context in extract_from_dir(
            ROOT / folder,
            method_map=method_map,
            keywords={**KEYWORDS, "_": None, "t": None, "CercleError": None, "PasskeyError": None},
            options_map={"templates/**.html": {"trim_blocks": "true", "lstrip_blocks": "true"}},
            comment_tags=(),
            strip_comment_tags=True,
        ):
            key = message if isinstance(message, str) else (message[0], message[1])
            found.setdefault(key, []).append((f"{folder}/{filename}", lineno))
    return found


def po_path(lang: str) -> Path:
    """Where the catalogue of ``lang`` lives."""
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def load(lang: str) -> Catalog:
    """The catalogue of ``lang`` (empty if none yet)."""
    path = po_path(lang)
    if not path.exists():
        return Catalog(locale=lang, domain=DOMAIN)
    with path.open("rb") as fh:
        return read_po(fh, locale=lang)


def update() -> None:
    """Rewrite every catalogue with the current msgids, keeping translations."""
    messages = extracted()
    for lang in LANGS:
        old = load(lang)
        new = Catalog(locale=lang, domain=DOMAIN, project="Cercle", fuzzy=False)
        for key, locations in sorted(messages.items(), key=lambda kv: kv[1][0]):
            msgid = key[0] if isinstance(key, tuple) else key
            prev = old.get(msgid)
            if isinstance(key, tuple):
                string: str | tuple[str, str] = (
                    prev.string
                    if prev and prev.string
                    else ((key[0], key[1]) if lang == "en" else ("", ""))
                )
                new.add(key, string, locations=locations)
            else:
                text = prev.string if prev and prev.string else (key if lang == "en" else "")
                new.add(key, text, locations=locations)
        path = po_path(lang)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            write_po(fh, new, width=100, omit_header=False, sort_output=False)


def missing() -> list[str]:
    """``lang: msgid`` for every text that a catalogue lacks or leaves empty."""
    problems: list[str] = []
    for lang in LANGS:
        catalog = load(lang)
        for key in extracted():
            msgid = key[0] if isinstance(key, tuple) else key
            msg = catalog.get(msgid)
            strings = (
                (msg.string if isinstance(msg.string, tuple) else (msg.string,)) if msg else ()
            )
            if not msg or msg.fuzzy or not strings or not all(strings):
                problems.append(f"{lang}: {msgid!r}")
    return problems


if __name__ == "__main__":
    if sys.argv[1:] == ["update"]:
        update()
    for line in missing():
        print(line)
