"""Hypothesis: the parser never raises, whatever a frame holds."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bots.signal.envelope import Dropped, ParsedMessage, parse_frame
from relay.messages import Channel
from tests.signal.conftest import ORG, fixture_frames

FRAMES = [frame for _, frame in fixture_frames()]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)

# Values a field may be garbled into: wrong types, nulls, odd numbers and strings.
garbage = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=8)
    | st.just("")
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=4), st.integers(), max_size=2)
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            paths += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            paths += _paths(value, (*prefix, index))
    return paths


@st.composite
def mutated_frames(draw: st.DrawFn) -> Any:
    """A fixture frame with some fields nulled, removed or garbled."""
    frame = copy.deepcopy(draw(st.sampled_from(FRAMES)))
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        paths = _paths(frame)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = frame
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["null", "remove", "garble"]))
        if action == "remove" and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = None if action == "null" else draw(garbage)
    return frame


def _check(result: object) -> None:
    assert isinstance(result, (ParsedMessage, Dropped))
    if isinstance(result, ParsedMessage):
        inbound = result.inbound
        assert inbound.channel is Channel.SIGNAL
        assert inbound.sender.address or inbound.sender.uuid
        assert inbound.dedup_key.startswith("signal:")


@settings(max_examples=120, deadline=None)
@given(json_values)
def test_any_json_value_is_parsed_or_dropped(value: object) -> None:
    _check(parse_frame(json.dumps(value)))
    _check(parse_frame(value))


@settings(max_examples=120, deadline=None)
@given(st.dictionaries(st.text(max_size=12), json_values, max_size=5))
def test_any_envelope_object_is_parsed_or_dropped(envelope: dict[str, Any]) -> None:
    _check(parse_frame({"envelope": envelope, "account": ORG}, own_number=ORG))


@settings(max_examples=500, deadline=None)
@given(mutated_frames())
def test_fixture_frames_with_fields_nulled_removed_or_garbled_never_raise(frame: Any) -> None:
    _check(parse_frame(json.dumps(frame), own_number=ORG))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_any_text_or_bytes_is_parsed_or_dropped(raw: str | bytes) -> None:
    _check(parse_frame(raw))


@settings(max_examples=200, deadline=None)
@given(mutated_frames())
def test_a_sync_message_is_never_parsed_as_a_message(frame: Any) -> None:
    envelope = frame.get("envelope") if isinstance(frame, dict) else None
    if isinstance(envelope, dict):
        frame.pop("exception", None)  # an exception frame carries no content at all
        envelope["syncMessage"] = {"sentMessage": {"message": "typed on a linked desktop"}}
        assert isinstance(parse_frame(json.dumps(frame)), Dropped)
