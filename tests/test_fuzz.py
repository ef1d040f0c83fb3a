"""Hostile input: arbitrary bytes and JSON end only in events, models or the SDK's own errors.

Budget: the ``suite`` hypothesis profile here; ``HYPOTHESIS_PROFILE=long python -m pytest
tests/test_fuzz.py`` runs 5,000 examples per property.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mistral_conv import ResponseDecodeError, _wire
from mistral_conv._accumulate import StreamState, accumulate_batch
from mistral_conv._calls import RawResponse as Response
from mistral_conv._errors import APIStatusError, status_error
from mistral_conv._sse import EventTooLarge, SSEDecoder
from mistral_conv._streaming import EventNotJSON, decode_event, decode_events
from mistral_conv._wire import HISTORY, MESSAGES, RESPONSE
from mistral_conv.models import (
    AgentConversation,
    ConversationHistory,
    ConversationMessages,
    ConversationResponse,
    ModelConversation,
    UnknownEvent,
)
from mistral_conv.models._base import TOO_DEEP
from mistral_conv.models._decoders import ConversationDecoder

from .conftest import chunked

LIMIT = 256
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
type_names = st.sampled_from(
    [
        "message.output.delta",
        "function.call.delta",
        "tool.execution.started",
        "conversation.response.done",
        "conversation.response.error",
        "agent.handoff.done",
        "message.input",
        "message.output",
        "function.call",
        "text",
        "thinking",
        "brand.new",
    ]
)
objects_with_type = st.builds(
    lambda t, rest: {**rest, "type": t},
    type_names,
    st.dictionaries(st.text(max_size=10), json_values, max_size=5),
)


@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=20))
def test_arbitrary_bytes_give_frames_or_event_too_large(data: bytes, cuts: list[int]) -> None:
    for method in ("feed", "feed_data"):
        d = SSEDecoder(max_event_size=LIMIT)
        try:
            for chunk in chunked(data, cuts):
                out = getattr(d, method)(chunk)
                assert isinstance(out, list)
                assert d._size <= LIMIT  # memory stays bounded by the event limit
            d.close()
        except EventTooLarge:
            pass


bad_utf8_json = st.builds(
    lambda prefix, raw: prefix + b'"' + raw + b'"}',
    st.sampled_from(
        [b'{"type":"message.output.delta","id":', b'{"type":', b'{"conversation_id":', b"[", b""]
    ),
    st.binary(min_size=1, max_size=8),
)


# JSON nested past what any decoder goes (msgspec and Python both stop near 1,000 levels),
# in the places a hostile server would put it: a field, a list, an error body, an event.
def _nested(depth: int, kind: str, prefix: bytes) -> bytes:
    inner = b"[" * depth + b"1" + b"]" * depth if kind == "list" else b'{"a":' * depth + b"1" + b"}" * depth
    return prefix + inner + (b"}" if prefix else b"")


deeply_nested = st.builds(
    _nested,
    st.integers(1_000, 20_000),
    st.sampled_from(["list", "object"]),
    st.sampled_from(
        [b"", b'{"type":"message.output.delta","id":"m","content":', b'{"conversation_id":"c","x":']
    ),
)


@given(st.binary(max_size=600) | bad_utf8_json | deeply_nested)
def test_arbitrary_event_data_is_an_event_or_event_not_json(data: bytes) -> None:
    """JSON of any shape is an event (an ``UnknownEvent`` at worst); anything else raises the one
    typed error, the same in the batch decoder, and only when the bytes are not readable JSON."""
    try:
        event = decode_event(data)
    except EventNotJSON as exc:
        if TOO_DEEP in str(exc):  # refused by design, whatever depth the caller's stack leaves
            with pytest.raises(EventNotJSON):
                decode_events([data])
            return
        try:
            msgspec.json.decode(data)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            pass
        else:
            raise AssertionError("readable JSON was refused") from None
        with pytest.raises(EventNotJSON):
            decode_events([data])
        return
    assert event.type is not None
    assert decode_events([data]) == [event]


@given(objects_with_type | json_values)
def test_arbitrary_json_events_decode_or_become_unknown(value: Any) -> None:
    data = msgspec.json.encode(value)
    event = decode_event(data)
    if isinstance(event, UnknownEvent):
        assert event.data == data
    state = accumulate_batch(StreamState(), [event])
    state.response()  # whatever arrived can always be rebuilt


def stream_strategy() -> st.SearchStrategy[list[dict[str, Any]]]:
    text = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)
    delta = st.builds(
        lambda t, oi, ci: {
            "type": "message.output.delta",
            "id": f"m{oi}",
            "output_index": oi,
            "content_index": ci,
            "content": t,
        },
        text,
        st.integers(0, 2),
        st.integers(0, 2),
    )
    call = st.builds(
        lambda a, oi: {
            "type": "function.call.delta",
            "id": f"f{oi}",
            "output_index": oi,
            "name": "f",
            "tool_call_id": "t",
            "arguments": a,
        },
        text,
        st.integers(3, 4),
    )
    return st.lists(delta | call, max_size=25)


@given(
    stream_strategy(),
    st.lists(st.integers(0, 5000), max_size=30),
    st.sampled_from([b"\n", b"\r\n", b"\r"]),
    st.booleans(),
)
def test_valid_streams_survive_any_chunking(
    events: list[dict[str, Any]], cuts: list[int], newline: bytes, comments: bool
) -> None:
    events = [{"type": "conversation.response.started", "conversation_id": "c"}, *events]
    blocks = []
    for e in events:
        lines = [b"event: " + e["type"].encode(), b"data: " + json.dumps(e, ensure_ascii=False).encode()]
        if comments:
            lines.insert(0, b": keep-alive")
        blocks.append(newline.join(lines) + newline + newline)
    body = b"".join(blocks)
    d = SSEDecoder()
    datas: list[bytes] = []
    for chunk in chunked(body, cuts):
        datas += d.feed_data(chunk)
    datas += [f.data for f in d.close()]
    assert [json.loads(x) for x in datas] == events
    whole = StreamState()
    accumulate_batch(whole, decode_events([json.dumps(e).encode() for e in events]))
    pieces = StreamState()
    accumulate_batch(pieces, decode_events(datas))
    assert pieces.response() == whole.response()


DECODERS: list[tuple[Any, Any]] = [
    (RESPONSE.decode, ConversationResponse),
    (HISTORY.decode, ConversationHistory),
    (MESSAGES.decode, ConversationMessages),
    (ConversationDecoder.one, ModelConversation | AgentConversation),
    (ConversationDecoder.many, list),
]


@given(
    st.sampled_from(DECODERS),
    objects_with_type | json_values | st.binary(max_size=200) | bad_utf8_json | deeply_nested,
)
def test_response_decoders_give_a_model_or_response_decode_error(
    decoder: tuple[Any, Any], value: Any
) -> None:
    decode, expected = decoder
    body = value if isinstance(value, bytes) else msgspec.json.encode(value)
    try:
        result = _wire.decode(Response(200, {}, body, None), decode)
    except ResponseDecodeError as exc:
        assert exc.body == body
        return
    assert isinstance(result, expected)


@given(st.integers(400, 599), json_values | st.binary(max_size=200) | bad_utf8_json | deeply_nested)
def test_error_bodies_always_give_a_status_error(status: int, value: Any) -> None:
    body = value if isinstance(value, bytes) else msgspec.json.encode(value)
    err = status_error(status, body)
    assert isinstance(err, APIStatusError) and err.status == status and str(err)
