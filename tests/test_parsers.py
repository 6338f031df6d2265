"""Parsers that take outside input never crash and never let an identifier through."""

from __future__ import annotations

import contextlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.commands.table import parse
from relay.errors import CercleError
from relay.inbound.mentions import PLACEHOLDER, rewrite
from relay.language.durations import parse_duration
from relay.language.pseudonyms import NameRefused, clean_chosen, name_key
from relay.messages import Mention
from relay.phone import mask, normalize


@given(st.text())
def test_the_command_parser_takes_any_text(text: str) -> None:
    parsed = parse(text)
    if parsed is None:
        # A command is a slash and a word: "/ 0", "/" alone or plain text are not.
        assert not re.match(r"/\S", text.strip())
    else:
        assert parsed.word and not any(c.isspace() for c in parsed.word)
        assert parsed.args == parsed.args.strip()


@pytest.mark.parametrize(
    ("text", "word", "args"),
    [
        ("/help", "help", ""),
        ("  /Remove  Iris Sage  rude ", "remove", "Iris Sage  rude"),
        ("/RÉPONDRE Iris merci", "repondre", "Iris merci"),
        ("/staff\nline two", "staff", "line two"),
        ("/", None, None),
    ],
)
def test_command_words_are_folded_and_arguments_kept(
    text: str, word: str | None, args: str | None
) -> None:
    parsed = parse(text)
    assert (parsed.word, parsed.args) == (word, args) if parsed else word is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30m", 1800),
        ("2h", 7200),
        ("1d", 86400),
        ("1w", 604800),
        ("2 jours", 172800),
        ("1h30m", 5400),
        ("1sem", 604800),
        ("forever", None),
        ("", None),
        ("0m", None),
        ("5", None),
        ("1x", None),
        ("h1", None),
    ],
)
def test_durations_as_people_type_them(text: str, seconds: int | None) -> None:
    assert parse_duration(text) == seconds


@given(st.text(max_size=40))
def test_the_duration_parser_takes_any_text(text: str) -> None:
    result = parse_duration(text)
    assert result is None or result > 0


@given(
    st.text(max_size=60), st.lists(st.tuples(st.integers(-5, 70), st.integers(-2, 5)), max_size=5)
)
def test_mention_rewriting_never_crashes_and_never_keeps_placeholders(
    text: str, spans: list[tuple[int, int]]
) -> None:
    mentions = [
        Mention(start, length, "7d1f6a52-0000-4000-8000-000000000021") for start, length in spans
    ]
    out = rewrite(text, mentions, lambda _uuid: "Iris")
    assert PLACEHOLDER not in out
    assert "7d1f6a52" not in out or "7d1f6a52" in text


def test_mentions_use_utf16_offsets_after_emoji() -> None:
    text = f"💜 merci {PLACEHOLDER} et {PLACEHOLDER}!"
    first = len("💜 merci ".encode("utf-16-le")) // 2
    second = len(f"💜 merci {PLACEHOLDER} et ".encode("utf-16-le")) // 2

    out = rewrite(
        text,
        [Mention(first, 1, "a"), Mention(second, 1, "b")],
        lambda uuid: {"a": "Iris", "b": "Sage"}[uuid or ""],
    )

    assert out == "💜 merci @Iris et @Sage!"


@pytest.mark.parametrize(
    "raw", ["514-555-0142", "(514) 555-0142", "+1 514 555 0142", "1-514-555-0142"]
)
def test_numbers_are_normalized_to_e164(raw: str) -> None:
    assert normalize(raw) == "+15145550142"


@pytest.mark.parametrize("raw", ["hello", "555-0142", "+1 555 0100", "", "+999999999999"])
def test_invalid_numbers_are_refused_without_echo(raw: str) -> None:
    with pytest.raises(CercleError) as err:
        normalize(raw)
    assert raw not in err.value.safe_message or not raw


@given(st.text(max_size=30))
def test_phone_normalization_never_crashes(raw: str) -> None:
    with contextlib.suppress(CercleError):
        assert normalize(raw).startswith("+")


def test_masked_numbers_show_only_the_last_two_digits() -> None:
    assert mask("+15145550142") == "••••••••42"


@given(st.text(max_size=30))
def test_accepted_names_never_contain_digits_or_role_words(raw: str) -> None:
    try:
        name = clean_chosen(raw, set())
    except NameRefused:
        return
    assert not any(c.isdigit() or c.isnumeric() for c in name)
    assert "staff" not in name_key(name) and "equipe" not in name_key(name)
    assert 2 <= len(name) <= 20


def test_boundary_values_never_print_identifiers_or_words() -> None:
    from relay.messages import Channel, Inbound, Mention, Outgoing, QuoteOut, Sender

    uuid = "7d1f6a52-0000-4000-8000-000000000021"
    shown = repr(
        [
            Sender("+15145550121", uuid),
            Mention(0, 1, uuid),
            QuoteOut("1767225600000", by_recipient=False, text="my address"),
            Outgoing("+15145550121", "my address"),
            Inbound(
                channel=Channel.SMS,
                sender=Sender("+15145550121"),
                dedup_key="k",
                text="my address",
            ),
        ]
    )
    assert "5145550121" not in shown and uuid not in shown and "my address" not in shown
