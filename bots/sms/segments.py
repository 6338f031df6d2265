"""SMS encoding, segment counting and a readable splitter.

Carriers bill and deliver SMS in segments: a text that fits the GSM 03.38 alphabet travels as
7-bit GSM (160 septets, 153 per segment once concatenated; the extension characters
``^{}\\[~]|€`` and form feed take two septets), anything else as UCS-2 (70 UTF-16 units, 67
per segment). Twilio refuses bodies over 1600 characters. The core prefixes each relayed text
with ``"Pseudonym: "``; :func:`split_message` cuts a long one into numbered parts, at
paragraph, sentence or word boundaries, never inside a grapheme cluster (emoji ZWJ sequences,
flags, skin tones, combining accents).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum

MAX_BODY_CHARS = 1600

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM_SINGLE, GSM_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


class Encoding(StrEnum):
    """How a text travels over SMS."""

    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


def encoding_of(text: str) -> Encoding:
    """GSM-7 when every character is in the basic or extension table, else UCS-2."""
    if all(c in GSM_BASIC or c in GSM_EXTENSION for c in text):
        return Encoding.GSM7
    return Encoding.UCS2


def _units(ch: str, enc: Encoding) -> int:
    if enc is Encoding.GSM7:
        return 2 if ch in GSM_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1  # a surrogate pair in UTF-16


def segment_count(text: str) -> int:
    """How many SMS segments ``text`` costs (1 for an empty text).

    Concatenated segments cannot split an escape pair (GSM) or a surrogate pair (UCS-2), so
    characters are packed greedily rather than divided by 153/67.
    """
    enc = encoding_of(text)
    single, multi = (GSM_SINGLE, GSM_MULTI) if enc is Encoding.GSM7 else (UCS2_SINGLE, UCS2_MULTI)
    total = sum(_units(c, enc) for c in text)
    if total <= single:
        return 1
    segments, used = 1, 0
    for c in text:
        n = _units(c, enc)
        if used + n > multi:
            segments += 1
            used = 0
        used += n
    return segments


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """Encoding, units (septets or UTF-16 units) and segments of a text."""

    encoding: Encoding
    units: int
    segments: int


def segment_info(text: str) -> SegmentInfo:
    """Encoding, length in its units, and segment count of ``text``."""
    enc = encoding_of(text)
    return SegmentInfo(enc, sum(_units(c, enc) for c in text), segment_count(text))


# --- grapheme clusters (cheap approximation of UAX #29, enough for relayed chat text) ---

_ZWJ = "\u200d"


def _extends(ch: str) -> bool:
    """True when ``ch`` attaches to the character before it."""
    cp = ord(ch)
    return (
        unicodedata.combining(ch) != 0
        or unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or 0xFE00 <= cp <= 0xFE0F  # variation selectors (emoji vs text style)
        or 0x1F3FB <= cp <= 0x1F3FF  # skin-tone modifiers
        or 0xE0020 <= cp <= 0xE007F  # tag characters (subdivision flags)
        or ch == _ZWJ
    )


def _is_regional_indicator(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def graphemes(text: str) -> list[str]:
    """Split ``text`` into user-perceived characters (approximate grapheme clusters)."""
    clusters: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = i + 1
        if text[i] == "\r" and j < n and text[j] == "\n":
            j += 1
        elif _is_regional_indicator(text[i]) and j < n and _is_regional_indicator(text[j]):
            j += 1  # a flag is a pair of regional indicators
        while j < n:
            if _extends(text[j]):
                j += 1
                if text[j - 1] == _ZWJ and j < n:
                    j += 1  # the character a ZWJ joins belongs to the same cluster
            else:
                break
        clusters.append(text[i:j])
        i = j
    return clusters


# --- splitting ---

_SENTENCE_END = (".", "!", "?", "…", ";", ":")


def _marker(i: int, n: int) -> str:
    return f" ({i}/{n})"


def _fits(part: str, max_chars: int, max_segments: int | None) -> bool:
    if len(part) > max_chars:
        return False
    return max_segments is None or segment_count(part) <= max_segments


def _best_cut(clusters: list[str], start: int, end: int) -> int:
    """Where to end a part that may run from ``start`` up to ``end`` (exclusive) clusters.

    Prefers a paragraph break, then a line break, then a sentence end, then a space, as long
    as the cut keeps at least half the room; otherwise cuts at ``end`` (a very long word).
    """
    floor = start + max(1, (end - start) // 2)
    for level in range(4):
        for k in range(end, floor - 1, -1):
            # a cut at k means clusters[start:k] form the part and clusters[k] is whitespace
            if k >= len(clusters):
                return k
            c = clusters[k]
            prev = clusters[k - 1] if k - 1 >= start else ""
            nxt = clusters[k + 1] if k + 1 < len(clusters) else ""
            if level == 0 and c == "\n" and nxt == "\n":
                return k
            if level == 1 and c == "\n":
                return k
            if level == 2 and c.isspace() and prev.endswith(_SENTENCE_END):
                return k
            if level == 3 and c.isspace():
                return k
    return end


def _split_with(
    clusters: list[str],
    n_guess: int,
    max_chars: int,
    max_segments: int | None,
    continuation_prefix: str,
) -> list[str] | None:
    chunks: list[str] = []
    i = 0
    while i < len(clusters) and clusters[i].isspace():
        i += 1
    while i < len(clusters):
        index = len(chunks) + 1
        prefix = continuation_prefix if index > 1 else ""
        marker = _marker(index, n_guess)

        def fits(k: int, prefix: str = prefix, marker: str = marker, i: int = i) -> bool:
            return _fits(prefix + "".join(clusters[i:k]) + marker, max_chars, max_segments)

        if not fits(i + 1):
            return None  # limits too tight for even one character
        lo, hi = i + 1, len(clusters)  # largest k with fits(k): binary search
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(mid):
                lo = mid
            else:
                hi = mid - 1
        cut = lo if lo == len(clusters) else _best_cut(clusters, i, lo)
        chunks.append("".join(clusters[i:cut]).rstrip())
        i = cut
        while i < len(clusters) and clusters[i].isspace():
            i += 1
    return chunks


def split_message(
    text: str,
    *,
    max_chars: int = MAX_BODY_CHARS,
    max_segments: int | None = None,
    continuation_prefix: str = "",
) -> list[str]:
    """Cut ``text`` into SMS bodies, each ≤ ``max_chars`` and ≤ ``max_segments`` segments.

    A text that already fits comes back unchanged as a one-item list. Otherwise each part
    ends with a ``" (i/n)"`` marker, and parts after the first start with
    ``continuation_prefix`` (e.g. ``"Willow: "``, so a part read alone still says who wrote
    it). Whitespace at the cuts is dropped; no word is cut unless it alone exceeds a part.
    """
    if _fits(text, max_chars, max_segments):
        return [text]
    clusters = graphemes(text)
    n_guess = 9
    chunks: list[str] | None = None
    for _ in range(6):  # the marker width depends on the part count: iterate to a fixed point
        chunks = _split_with(clusters, n_guess, max_chars, max_segments, continuation_prefix)
        if chunks is None:
            raise ValueError("limits too small to hold any text with a part marker")
        if len(str(len(chunks))) <= len(str(n_guess)):
            break  # the real markers are no wider than the ones the parts were sized with
        n_guess = len(chunks)
    assert chunks is not None  # noqa: S101 - the loop ran at least once
    n = len(chunks)
    return [
        (continuation_prefix if i > 1 else "") + chunk + _marker(i, n)
        for i, chunk in enumerate(chunks, start=1)
    ]
