"""Each channel's words: a web member is never told of a number, an operator's own files keep
working, and a per-channel file wins over the general one."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from relay.core import farewells
from relay.language.channels import PerChannel, depends_on_channel, for_channel
from relay.language.i18n import LANGS, Joined, T
from relay.language.texts import ConfigText, Texts, default_config_dir
from relay.messages import Channel
from tests.room import Room

PHONE = re.compile(r"\b(numbers?|num[ée]ros?|phones?|t[ée]l[ée]phones?|sms|textos?)\b", re.I)
FAREWELLS = [
    farewells.left,
    farewells.removed_by_facilitator,
    farewells.removed_by_organization,
    farewells.not_admitted,
    farewells.group_closed,
]


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("farewell", FAREWELLS, ids=lambda f: f.__name__)
def test_a_web_member_is_told_their_key_is_deleted_a_phone_member_their_number(
    farewell: object, lang: str
) -> None:
    text = farewell()  # type: ignore[operator]
    web = for_channel(text, "web").render(lang)
    assert PHONE.findall(web) == [] and re.search(r"\b(key|clé)\b", web)
    for channel in ("signal", "sms"):
        assert re.search(r"num[ée]ro|number", for_channel(text, channel).render(lang))


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", ["about", "privacy", "web_notice", "how_to_leave"])
def test_the_shipped_web_texts_speak_of_no_phone(name: str, lang: str) -> None:
    texts = Texts(default_config_dir())
    words = ConfigText(texts, name, (("timer", "1 week"),)).for_channel("web").render(lang)
    assert PHONE.findall(words) == [], words


def test_a_channel_file_wins_and_the_general_file_is_the_fallback(tmp_path: Path) -> None:
    shutil.copytree(default_config_dir() / "texts", tmp_path / "texts")
    (tmp_path / "texts" / "en" / "agreements.signal.txt").write_text("Signal's own words.")
    texts = Texts(tmp_path)
    agreements = ConfigText(texts, "agreements")
    assert for_channel(agreements, "signal").render("en") == "Signal's own words."
    general = (tmp_path / "texts" / "en" / "agreements.txt").read_text().strip()
    assert for_channel(agreements, "sms").render("en") == general
    assert agreements.render("en") == general
    # A channel's words in one language only: the other language would read other words.
    assert texts.check() == [
        "config/texts/fr/agreements.signal.txt is missing "
        "(config/texts/en/agreements.signal.txt exists)"
    ]
    assert Texts(default_config_dir()).check() == []


def test_consent_versions_follow_the_words_each_channel_was_shown(tmp_path: Path) -> None:
    shutil.copytree(default_config_dir() / "texts", tmp_path / "texts")
    before = Texts(tmp_path).consent_version("en", False)
    (tmp_path / "texts" / "en" / "privacy.signal.txt").write_text("Other words.")
    assert Texts(tmp_path).consent_version("en", False) != before


def test_channel_words_reach_inside_joined_texts_and_parameters() -> None:
    inner = PerChannel(T("Your number"), {"web": T("Your key")})
    text = Joined((T("Note: {what}", what=inner), T("Take care.")))
    assert depends_on_channel(text) and not depends_on_channel(T("Take care."))
    assert for_channel(text, "web").render("en") == "Note: Your key\nTake care."
    assert for_channel(text, "sms").render("en") == "Note: Your number\nTake care."
    assert text.render("en") == "Note: Your number\nTake care."


@pytest.mark.parametrize(
    ("text", "who", "body"),
    [
        ("Sage: hello", "Sage", "hello"),
        ("Prairie : bonjour", "Prairie", "bonjour"),
        ("Sage (staff): welcome: all", "Sage (staff)", "welcome: all"),
        ("Thank you. You are now in the group as Sage.", None, None),
        ("In this group: Sage, Willow", None, None),
    ],
)
def test_the_page_sets_a_speaker_apart_from_their_words(
    text: str, who: str | None, body: str | None
) -> None:
    from datetime import UTC, datetime

    from relay.doors import Copy, CopyKind

    now = datetime.now(UTC)
    copy = Copy(1, CopyKind.MESSAGE, "r", None, text, now, now)
    assert copy.speaker == (who, body if who else text)
    assert Copy(1, CopyKind.OWN, "r", None, text, now, now).speaker == (None, text)


@pytest.mark.parametrize(
    ("channel", "told"),
    [
        (
            Channel.SMS,
            "A text message cannot be quoted. To report a message, write to the "
            "facilitators with /staff: only they will read it.",
        ),
        (Channel.SIGNAL, "To report a message, reply to it (quote it) with /report."),
    ],
)
def test_a_report_without_a_quote_is_explained_in_the_channels_words(
    tmp_path: Path, channel: Channel, told: str
) -> None:
    room = Room(tmp_path, channel=channel)
    room.facilitator("fac")
    bob = room.member("bob")

    bob.says("/report")

    assert bob.last == told
