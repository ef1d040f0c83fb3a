"""The SSE decoder against the WHATWG rules: every case fed whole, byte by byte, and in random chunkings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mistral_conv._sse import EventTooLarge, SSEDecoder, SSEFrame

from .conftest import EXAMPLES, REAL, chunked

BOM = b"\xef\xbb\xbf"

# (name, body, expected frames as (event, data, last id), expected final retry)
CASES: list[tuple[str, bytes, list[tuple[str, bytes, str | None]], int | None]] = [
    (
        "canonical LF",
        b"event: a\ndata: {}\n\nevent: b\ndata: [1]\n\n",
        [("a", b"{}", None), ("b", b"[1]", None)],
        None,
    ),
    (
        "CRLF line ends",
        b"event: a\r\ndata: 1\r\n\r\ndata: 2\r\n\r\n",
        [("a", b"1", None), ("message", b"2", None)],
        None,
    ),
    ("CR line ends", b"event: a\rdata: 1\r\rdata: 2\r\r", [("a", b"1", None), ("message", b"2", None)], None),
    (
        "mixed line ends",
        b"data: 1\r\n\ndata: 2\r\rdata: 3\n\r\n",
        [("message", b"1", None), ("message", b"2", None), ("message", b"3", None)],
        None,
    ),
    ("leading BOM stripped", BOM + b"data: x\n\n", [("message", b"x", None)], None),
    ("only one BOM stripped", BOM + BOM + b"data: x\n\ndata: y\n\n", [("message", b"y", None)], None),
    ("comments ignored", b": ping\ndata: x\n: another\n\n:\n\n", [("message", b"x", None)], None),
    (
        "data lines joined with LF",
        b"data: a\ndata: b\ndata:\ndata: c\n\n",
        [("message", b"a\nb\n\nc", None)],
        None,
    ),
    (
        "event name resets after dispatch",
        b"event: e\ndata: 1\n\ndata: 2\n\n",
        [("e", b"1", None), ("message", b"2", None)],
        None,
    ),
    ("last event name wins", b"event: a\nevent: b\ndata: 1\n\n", [("b", b"1", None)], None),
    (
        "id kept across events",
        b"id: 7\ndata: 1\n\ndata: 2\n\n",
        [("message", b"1", "7"), ("message", b"2", "7")],
        None,
    ),
    (
        "id with NUL ignored",
        b"id: 1\ndata: a\n\nid: x\x00y\ndata: b\n\n",
        [("message", b"a", "1"), ("message", b"b", "1")],
        None,
    ),
    ("retry digits", b"retry: 1500\ndata: a\n\n", [("message", b"a", None)], 1500),
    ("retry non-digits ignored", b"retry: 15x\ndata: a\n\nretry: -1\n\n", [("message", b"a", None)], None),
    (
        "line without colon is a field with empty value",
        b"data\n\ndata\ndata\n\n",
        [("message", b"", None), ("message", b"\n", None)],
        None,
    ),
    (
        "only one space removed",
        b"data:  two\n\ndata:none\n\n",
        [("message", b" two", None), ("message", b"none", None)],
        None,
    ),
    ("colon in value kept", b"data: a: b\n\n", [("message", b"a: b", None)], None),
    (
        "block without data not dispatched",
        b"event: x\n\nid: 3\n\nevent: y\ndata: 1\n\n",
        [("y", b"1", "3")],
        None,
    ),
    ("unknown fields ignored", b"...\nfoo: bar\ndata: 1\n\n", [("message", b"1", None)], None),
    (
        "U+2028 is not a line end",
        "data: a\u2028b\u2029c\x85d\n\n".encode(),
        [("message", "a\u2028b\u2029c\x85d".encode(), None)],
        None,
    ),
    (
        "blank lines between events",
        b"\n\n\ndata: 1\n\n\n\n\ndata: 2\n\n\n",
        [("message", b"1", None), ("message", b"2", None)],
        None,
    ),
    (
        "complete last block without blank line is dispatched",
        b"data: 1\n\nevent: done\ndata: 2\n",
        [("message", b"1", None), ("done", b"2", None)],
        None,
    ),
    ("complete last block ended by CR", b"data: 1\r", [("message", b"1", None)], None),
    ("line cut mid-way is discarded", b'data: 1\n\ndata: {"trunc', [("message", b"1", None)], None),
    ("cut line after complete lines", b"data: a\ndata: b", [("message", b"a", None)], None),
    ("event without space", b"event:x\ndata:y\n\n", [("x", b"y", None)], None),
    ("data before event in block", b"data: 1\nevent: e\n\n", [("e", b"1", None)], None),
    ("empty body", b"", [], None),
    ("only BOM", BOM, [], None),
]


def decode(
    chunks: list[bytes], max_event_size: int = 1 << 20
) -> tuple[list[tuple[str, bytes, str | None]], int | None]:
    d = SSEDecoder(max_event_size)
    frames: list[SSEFrame] = []
    for c in chunks:
        frames += d.feed(c)
    frames += d.close()
    return [(f.event, f.data, f.id) for f in frames], d.retry


@pytest.mark.parametrize(("name", "body", "expected", "retry"), CASES, ids=[c[0] for c in CASES])
def test_rule_whole_and_byte_by_byte(
    name: str, body: bytes, expected: list[tuple[str, bytes, str | None]], retry: int | None
) -> None:
    assert decode([body]) == (expected, retry)
    assert decode([body[i : i + 1] for i in range(len(body))]) == (expected, retry)


@pytest.mark.parametrize(("name", "body", "expected", "retry"), CASES, ids=[c[0] for c in CASES])
@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=12))
def test_rule_in_random_chunkings(
    name: str, body: bytes, expected: list[tuple[str, bytes, str | None]], retry: int | None, cuts: list[int]
) -> None:
    assert decode(chunked(body, cuts)) == (expected, retry)


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    assert decode([b"data: 1\r", b"\n\r", b"\ndata: 2\r\n\r\n"])[0] == [
        ("message", b"1", None),
        ("message", b"2", None),
    ]


def test_long_line_in_many_chunks() -> None:
    payload = b"x" * 300_000
    body = b"event: big\ndata: " + payload + b"\n\n"
    assert decode([body[i : i + 4096] for i in range(0, len(body), 4096)])[0] == [("big", payload, None)]


def test_event_larger_than_limit_raises() -> None:
    d = SSEDecoder(max_event_size=1000)
    with pytest.raises(EventTooLarge):
        for _ in range(20):
            d.feed(b"data: " + b"y" * 100)
    with pytest.raises(EventTooLarge):
        SSEDecoder(max_event_size=1000).feed(b"data: " + b"z" * 2000 + b"\n\n")


TRANSCRIPTS = sorted(EXAMPLES.glob("*.sse")) + sorted(REAL.glob("*.sse")) if EXAMPLES.is_dir() else []


@pytest.mark.skipif(not TRANSCRIPTS, reason="../shared/spec is absent")
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_transcripts_survive_any_chunking(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(TRANSCRIPTS))
    body = path.read_bytes()
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(body)), max_size=40))
    whole = decode([body])
    assert whole[0]  # every transcript has events
    assert decode(chunked(body, cuts)) == whole
    crlf = body.replace(b"\n", b"\r\n")
    assert decode(chunked(crlf, cuts)) == whole


def test_canonical_chunks_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    body = b"".join(b'event: e\ndata: {"i":%d}\n\n' % i for i in range(50))

    def general(self: SSEDecoder, block: bytes) -> SSEFrame:
        raise AssertionError("the general parser ran on canonical framing")

    monkeypatch.setattr(SSEDecoder, "_parse_block", general)
    assert SSEDecoder().feed_data(body) == [b'{"i":%d}' % i for i in range(50)]


def test_events_before_an_oversized_one_are_delivered_first() -> None:
    d = SSEDecoder(max_event_size=100)
    body = b"data: 1\n\ndata: 2\n\ndata: " + b"x" * 200 + b"\n\ndata: 3\n\n"
    assert d.feed_data(body) == [b"1", b"2"]
    with pytest.raises(EventTooLarge):
        d.feed_data(b"data: 4\n\n")
    with pytest.raises(EventTooLarge):
        d.close()


# Pieces that build canonical bodies and every near miss of the framing `feed_data` checks for.
SSE_PIECES = st.sampled_from(
    [
        b"event: ",
        b"event:",
        b"data: ",
        b"data:",
        b"id: 7",
        b"retry: 5",
        b": keep-alive",
        b"\n",
        b"\n\n",
        b"\r\n",
        b"\r",
        b" ",
        b"message.output.delta",
        b'{"type":"x","content":"a\\nb"}',
        b"[1]",
        b"event: a\ndata: {}\n\n",
        b"\n\nevent: ",
        b"\ndata: ",
    ]
)


@settings(max_examples=400)
@given(st.lists(SSE_PIECES, max_size=40), st.lists(st.integers(0, 300), max_size=8), st.integers(1, 64))
def test_feed_data_gives_the_data_of_the_general_parser(
    pieces: list[bytes], cuts: list[int], limit: int
) -> None:
    body = b"".join(pieces)
    fast, general = SSEDecoder(max_event_size=limit), SSEDecoder(max_event_size=limit)
    got: list[bytes] = []
    want: list[bytes] = []
    for chunk in chunked(body, cuts):
        try:
            got += fast.feed_data(chunk)
        except EventTooLarge:
            got.append(b"<too large>")
            break
    for chunk in chunked(body, cuts):
        try:
            want += [f.data for f in general.feed(chunk)]
        except EventTooLarge:
            want.append(b"<too large>")
            break
    assert got == want
    assert fast.last_event_id == general.last_event_id and fast.retry == general.retry


def test_feed_data_takes_the_canonical_framing_whole() -> None:
    body = b"".join(b'event: message.output.delta\ndata: {"i":%d}\n\n' % i for i in range(3))
    assert SSEDecoder().feed_data(body) == [b'{"i":0}', b'{"i":1}', b'{"i":2}']
    # A second line in a block (here an id) leaves the fast path, with the same data.
    d = SSEDecoder()
    assert d.feed_data(b"event: a\ndata: 1\nid: 9\n\nevent: b\ndata: 2\n\n") == [b"1", b"2"]
    assert d.last_event_id == "9"
