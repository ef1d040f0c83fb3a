"""The SSE encoder is the inverse of the project's decoder: whatever it writes decodes back exactly.

Budget: the ``suite`` hypothesis profile (``HYPOTHESIS_PROFILE=long`` for more examples).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mistral_conv import FunctionResultEvent, ToolCallStartedEvent
from mistral_conv._runs import RunEvent
from mistral_conv._streaming import decode_event
from mistral_conv.models import ConversationEvent, FunctionResultEntry, UnknownEvent
from mistral_conv.sse import SSEDecoder, SSEFrame, comment, encode, encode_event, encode_json

from .conftest import EXAMPLES, REAL, chunked, spec_files

TRANSCRIPTS = spec_files(EXAMPLES, "stream.*.sse") + spec_files(REAL, "*.sse")

# Any text, including line ends of every kind, NUL, a BOM and other Unicode line separators.
texts = st.lists(
    st.text(st.characters(codec="utf-8"), max_size=8)
    | st.sampled_from(["\n", "\r", "\r\n", " ", ":", "\0", "\ufeff", "\u2028", "\x85"]),
    max_size=12,
).map("".join)
names = texts.filter(lambda s: "\n" not in s and "\r" not in s)
ids = names.filter(lambda s: "\0" not in s)
retries = st.integers(min_value=0, max_value=2**63)
cuts = st.lists(st.integers(min_value=0, max_value=4096), max_size=12)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def decode(chunks: list[bytes]) -> tuple[list[SSEFrame], SSEDecoder]:
    decoder = SSEDecoder()
    frames = [f for chunk in chunks for f in decoder.feed(chunk)]
    return frames + decoder.close(), decoder


def lf(text: str) -> str:
    """``text`` with its line ends as the decoder rejoins them."""
    return re.sub(r"\r\n|\r", "\n", text)


# -- encode -------------------------------------------------------------------------------------


@given(data=texts, event=st.none() | names, id=st.none() | ids, retry=st.none() | retries, cuts=cuts)
def test_any_event_round_trips_in_any_chunking(
    data: str, event: str | None, id: str | None, retry: int | None, cuts: list[int]
) -> None:
    body = encode(data, event=event, id=id, retry=retry)
    assert body.endswith(b"\n\n")
    frames, decoder = decode(chunked(body, cuts))
    assert frames == [SSEFrame(event or "message", lf(data).encode(), id)]
    assert decoder.retry == retry and decoder.last_event_id == id


@given(events=st.lists(st.tuples(texts, st.none() | names, st.none() | ids), max_size=6), cuts=cuts)
def test_a_stream_of_events_and_comments_round_trips(
    events: list[tuple[str, str | None, str | None]], cuts: list[int]
) -> None:
    body = comment("hello")
    expected, last_id = [], None
    for data, event, id in events:
        body += encode(data, event=event, id=id) + comment(data)
        last_id = id if id is not None else last_id
        expected.append(SSEFrame(event or "message", lf(data).encode(), last_id))
    frames, _ = decode(chunked(body, cuts))
    assert frames == expected
    assert [f.data for f in frames] == SSEDecoder().feed_data(body)


def test_exact_bytes() -> None:
    assert encode("") == b"data: \n\n"
    assert encode(" x") == b"data:  x\n\n"  # the decoder strips one space: the other one is kept
    assert encode("a\n") == b"data: a\ndata: \n\n"
    assert encode("a\r\nb\rc", event="e", id="1", retry=0) == (
        b"event: e\nid: 1\nretry: 0\ndata: a\ndata: b\ndata: c\n\n"
    )
    assert encode("x", event="") == b"data: x\n\n"
    assert encode("x", id="") == b"id: \ndata: x\n\n"
    assert encode("é") == "data: é\n\n".encode()
    assert comment() == b":\n\n"
    assert comment("a\r\nb\n") == b": a\n: b\n: \n\n"


def test_edge_cases_decode_as_a_browser_sees_them() -> None:
    assert decode([encode("")])[0] == [SSEFrame("message", b"")]  # an empty data line still dispatches
    assert decode([encode("x", id="")])[0] == [SSEFrame("message", b"x", "")]  # "" resets the id
    frames, _ = decode([encode("x", id="7"), encode("y")])
    assert frames == [SSEFrame("message", b"x", "7"), SSEFrame("message", b"y", "7")]  # the id sticks


@given(text=texts, cuts=cuts)
def test_comments_decode_to_nothing(text: str, cuts: list[int]) -> None:
    body = comment(text) + comment()
    frames, decoder = decode(chunked(body, cuts))
    assert frames == [] and decoder.last_event_id is None and decoder.retry is None
    *lines, end, last = comment(text).split(b"\n")
    assert lines and all(line.startswith(b":") for line in lines) and end == last == b""


@given(before=texts, after=texts, brk=st.sampled_from(["\n", "\r", "\r\n"]))
def test_a_line_break_in_event_or_id_is_refused(before: str, after: str, brk: str) -> None:
    bad = before + brk + after
    with pytest.raises(ValueError, match=r"^event "):
        encode("x", event=bad)
    with pytest.raises(ValueError, match=r"^id "):
        encode("x", id=bad)
    with pytest.raises(ValueError, match=r"^event "):
        encode_json(1, event=bad)


@given(before=ids, after=ids)
def test_a_nul_in_id_is_refused(before: str, after: str) -> None:
    with pytest.raises(ValueError, match=r"^id "):
        encode("x", id=before + "\0" + after)
    assert decode([encode("x", event=before + "\0" + after)])[0][0].event == before + "\0" + after


@pytest.mark.parametrize("retry", [-1, -(2**70), True, 1.0, "5"])
def test_an_invalid_retry_is_refused(retry: Any) -> None:
    with pytest.raises(ValueError, match=r"^retry "):
        encode("x", retry=retry)


# -- encode_json --------------------------------------------------------------------------------


@given(value=json_values, event=st.none() | names, id=st.none() | ids, cuts=cuts)
def test_json_round_trips(value: Any, event: str | None, id: str | None, cuts: list[int]) -> None:
    body = encode_json(value, event=event, id=id)
    assert body.count(b"\ndata: ") + body.startswith(b"data: ") == 1  # compact JSON: one data line
    frames, _ = decode(chunked(body, cuts))
    assert len(frames) == 1 and frames[0].event == (event or "message") and frames[0].id == id
    assert frames[0].data == msgspec.json.encode(value)
    assert msgspec.json.decode(frames[0].data) == value


# -- encode_event -------------------------------------------------------------------------------


def transcript_events(path: Path) -> list[ConversationEvent]:
    frames, _ = decode([path.read_bytes()])
    return [decode_event(f.data) for f in frames]


def redecode(body: bytes) -> tuple[str, ConversationEvent]:
    frames, _ = decode([body])
    assert len(frames) == 1
    return frames[0].event, decode_event(frames[0].data)


@pytest.mark.skipif(not TRANSCRIPTS, reason="../shared/spec is absent")
@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.name)
def test_transcript_events_re_encode_to_equal_events(path: Path) -> None:
    events = transcript_events(path)
    assert events
    bodies = [encode_event(e) for e in events]
    for event, body in zip(events, bodies, strict=True):
        name, again = redecode(body)
        assert again == event
        if isinstance(event, UnknownEvent):
            assert name == (event.type_name or "message")
        else:
            assert name == event.type
            # The API's framing: one event line, one data line of compact JSON that starts with the type.
            head = f'event: {event.type}\ndata: {{"type":"{event.type}",'.encode()
            assert body.startswith(head) and body.count(b"\n") == 3
    # The whole relayed stream, in the decoder's fast path and its general one.
    whole = b"".join(bodies)
    assert [decode_event(d) for d in SSEDecoder().feed_data(whole)] == events
    assert [decode_event(f.data) for f in decode(chunked(whole, list(range(0, len(whole), 61))))[0]] == events


def test_local_run_events_carry_their_type() -> None:
    entry = FunctionResultEntry(tool_call_id="call_1", result='{"ok": true}\nsecond line')
    local: list[RunEvent] = [
        ToolCallStartedEvent(tool_call_id="call_1", name="get_weather", arguments={"city": "Paris"}),
        ToolCallStartedEvent(tool_call_id="call_2", name="noop", arguments=""),
        FunctionResultEvent(entry=entry),
    ]
    for event in local:
        body = encode_event(event, id="42")
        frames, _ = decode([body])
        assert frames[0].event == event.type and frames[0].id == "42"
        raw = msgspec.json.decode(frames[0].data)
        assert next(iter(raw)) == "type" and raw["type"] == event.type
        del raw["type"]
        assert msgspec.convert(raw, type(event)) == event


def test_unknown_events_keep_their_raw_data() -> None:
    raw = b'{"type":"future.event","x":[1,\n2]}'
    event = decode_event(raw)
    assert isinstance(event, UnknownEvent) and event.type_name == "future.event"
    assert encode_event(event) == b'event: future.event\ndata: {"type":"future.event","x":[1,\ndata: 2]}\n\n'
    assert redecode(encode_event(event)) == ("future.event", event)
    nameless = decode_event(b'{"x":1}')
    assert isinstance(nameless, UnknownEvent) and nameless.type_name == ""
    assert encode_event(nameless) == b'data: {"x":1}\n\n'
    broken = UnknownEvent(type_name="a\nb", data=b'{"type":"a\\nb"}')
    assert encode_event(broken, retry=10) == b'retry: 10\ndata: {"type":"a\\nb"}\n\n'
