"""Every text Cercle sends exists in French and English."""

from __future__ import annotations

import string

from relay.language.i18n import LANGS, TN, T, gettext
from tests.i18n_tools import extracted, load, missing


def test_no_message_is_missing_in_either_language() -> None:
    assert missing() == []


def test_the_catalogues_hold_no_stale_entries() -> None:
    current = {k[0] if isinstance(k, tuple) else k for k in extracted()}
    for lang in LANGS:
        stale = {m.id[0] if isinstance(m.id, tuple) else m.id for m in load(lang) if m.id}
        assert stale - current == set(), f"{lang} has entries no code uses; run make messages"


def test_translations_keep_exactly_the_placeholders_of_the_english() -> None:
    def fields(s: str) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(s) if f}

    for msg in load("fr"):
        if not msg.id:
            continue
        source = msg.id[0] if isinstance(msg.id, tuple) else msg.id
        forms = msg.string if isinstance(msg.string, tuple) else (msg.string,)
        for form in forms:
            assert fields(form) == fields(source), source


def test_member_text_is_never_read_as_a_template() -> None:
    rendered = T("{name}: {text}", name="Iris", text="{name} {0} {text.__class__}").render("en")

    assert rendered == "Iris: {name} {0} {text.__class__}"


def test_french_plurals_treat_zero_and_one_as_singular() -> None:
    assert TN("{n} day", "{n} days", 1).render("fr") == "1 jour"
    assert TN("{n} day", "{n} days", 2).render("fr") == "2 jours"
    assert TN("{n} day", "{n} days", 0).render("en") == "0 days"
    assert gettext("fr", "Announcement sent.") != "Announcement sent."
