"""Encoding, segment counts and the splitter."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bots.sms.segments import (
    MAX_BODY_CHARS,
    Encoding,
    encoding_of,
    graphemes,
    segment_count,
    segment_info,
    split_message,
)

MARKER = re.compile(r" \((\d+)/(\d+)\)$")


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("", Encoding.GSM7, 1),
        ("a" * 160, Encoding.GSM7, 1),
        ("a" * 161, Encoding.GSM7, 2),
        ("a" * 306, Encoding.GSM7, 2),
        ("a" * 307, Encoding.GSM7, 3),
        ("€" * 80, Encoding.GSM7, 1),  # 160 septets: extension chars count 2
        ("€" * 81, Encoding.GSM7, 2),
        ("Bonsoir à toutes, ça va ?", Encoding.UCS2, 1),  # ç is not in GSM 03.38
        ("è" * 160, Encoding.GSM7, 1),
        ("ç" * 70, Encoding.UCS2, 1),
        ("ç" * 71, Encoding.UCS2, 2),
        ("ç" * 134, Encoding.UCS2, 2),
        ("ç" * 135, Encoding.UCS2, 3),
        ("😀" * 35, Encoding.UCS2, 1),  # 70 UTF-16 units
        ("😀" * 36, Encoding.UCS2, 2),
    ],
)
def test_encoding_and_segments(text: str, encoding: Encoding, segments: int) -> None:
    assert encoding_of(text) is encoding
    assert segment_count(text) == segments


def test_escape_pair_is_not_split_across_segments() -> None:
    # 152 'a' + '€' = 154 septets: the € cannot straddle the 153 boundary.
    text = "a" * 152 + "€" + "a" * 10
    assert segment_info(text).units == 164
    assert segment_count(text) == 2
    assert segment_count("a" * 152 + "€" * 77) == 3  # 152+154 = 306, but the pair moves


def test_graphemes_keep_emoji_sequences_whole() -> None:
    family = "👩\u200d👩\u200d👧\u200d👦"
    assert graphemes(f"a{family}b🇨🇦👍🏽e\u0301") == ["a", family, "b", "🇨🇦", "👍🏽", "e\u0301"]


def test_short_text_is_untouched() -> None:
    assert split_message("Willow: hi") == ["Willow: hi"]


def test_long_text_is_numbered_and_split_at_sentences() -> None:
    sentence = "Merci pour ce partage, c'est important. "
    parts = split_message("Willow: " + sentence * 60, continuation_prefix="Willow: ")
    assert len(parts) == 2
    assert parts[0].startswith("Willow: Merci")
    assert parts[0].endswith("important. (1/2)")
    assert parts[1].startswith("Willow: Merci")
    assert parts[1].endswith("(2/2)")
    assert all(len(p) <= MAX_BODY_CHARS for p in parts)


def test_paragraph_break_preferred() -> None:
    text = "a " * 500 + "\n\n" + "b " * 500
    parts = split_message(text, max_chars=1200)
    assert parts[0].rstrip(" (1/2)").endswith("a")
    assert parts[1].startswith("b")


def test_single_segment_parts() -> None:
    parts = split_message("word " * 100, max_segments=1)
    assert all(segment_count(p) == 1 for p in parts)
    assert len(parts) == 4


def test_very_long_word_is_cut_hard() -> None:
    parts = split_message("x" * 4000)
    assert [len(p) for p in parts][:2] == [1600, 1600]
    assert "".join(MARKER.sub("", p) for p in parts) == "x" * 4000


def test_more_than_nine_parts_get_wider_markers() -> None:
    parts = split_message("mot " * 1000, max_segments=1)
    assert len(parts) >= 10
    assert parts[-1].endswith(f"({len(parts)}/{len(parts)})")
    assert all(segment_count(p) == 1 for p in parts)


def test_impossible_limits() -> None:
    with pytest.raises(ValueError, match="too small"):
        split_message("hello world", max_chars=5)


words = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Zs", "Zl", "Zp", "Cc")),
    min_size=1,
    max_size=12,
)
emoji = st.sampled_from(["👩\u200d👩\u200d👧", "🇨🇦", "👍🏽", "e\u0301", "❤️", "😀"])
separators = st.sampled_from([" ", " ", " ", ". ", "\n", "\n\n"])


@st.composite
def texts(draw: st.DrawFn) -> str:
    pieces = draw(st.lists(st.tuples(st.one_of(words, emoji), separators), max_size=400))
    return "".join(w + s for w, s in pieces)


@settings(max_examples=60, deadline=None)
@given(texts(), st.sampled_from([None, 1, 2, 3]), st.sampled_from([1600, 400, 200]))
def test_split_properties(text: str, max_segments: int | None, max_chars: int) -> None:
    parts = split_message(
        text, max_chars=max_chars, max_segments=max_segments, continuation_prefix="Ivy: "
    )
    for part in parts:
        assert len(part) <= max_chars
        if max_segments is not None:
            assert segment_count(part) <= max_segments
    if len(parts) == 1 and not MARKER.search(parts[0]):
        assert parts == [text]
        return
    chunks = []
    for i, part in enumerate(parts, start=1):
        match = MARKER.search(part)
        assert match is not None
        assert (int(match[1]), int(match[2])) == (i, len(parts))
        chunk = part[: match.start()]
        if i > 1:
            assert chunk.startswith("Ivy: ")
            chunk = chunk[len("Ivy: ") :]
        chunks.append(chunk)
        # never cut inside a grapheme cluster
        assert not chunk.endswith("\u200d")
        assert "".join(graphemes(chunk)) == chunk
    # words come back in order (words here are shorter than any part)
    assert " ".join(chunks).split() == text.split()
    # and every chunk is a run of whole clusters of the original text
    original = graphemes(text)
    for chunk in chunks:
        cl = graphemes(chunk)
        assert any(original[k : k + len(cl)] == cl for k in range(len(original)))
