"""Runs of text deltas read as strings only (`_fold.Fold`): the same events, state and texts as
decoding every event in full, whatever a hostile server puts around the run's head."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mistral_conv import AsyncConversationsClient
from mistral_conv._accumulate import StreamState, accumulate_batch
from mistral_conv._fold import EventNotJSON, Fold, decode_events
from mistral_conv._sse import SSEDecoder
from mistral_conv.models import ConversationEvent, MessageOutputDeltaEvent

from .conftest import chunked
from .loopback import Loopback, Sse

PATH = "/v1/conversations"
STARTED = b'{"type":"conversation.response.started","conversation_id":"c"}'
DONE = (
    b'{"type":"conversation.response.done",'
    b'"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}'
)


def head(output_index: int = 0, content_index: int = 0, msg: str = "m0") -> bytes:
    """A delta's bytes up to its content's value, in the API's order (content last)."""
    return (
        b'{"type":"message.output.delta","output_index":%d,"id":"%s","content_index":%d,'
        b'"model":"mistral-medium-latest","agent_id":null,"role":"assistant","content":'
    ) % (output_index, msg.encode(), content_index)


def delta(text: str, **where: Any) -> bytes:
    return head(**where) + json.dumps(text, ensure_ascii=False).encode() + b"}"


# Ways a server could shape one delta's data around the run's head: each is JSON the full decoder
# reads one way or another (or refuses), and the fold must read it the same way.
HOSTILE = [
    lambda h, t: h + t + b"}",
    lambda h, t: h + b" " + t + b"}",
    lambda h, t: h + t + b" }",
    lambda h, t: h + t + b"\t}",
    lambda h, t: h + t + b"\n}",
    lambda h, t: h + t + b'\n"x"}',
    lambda h, t: h + t + b"\r\n}",
    lambda h, t: h + t + b',"x":1}',
    lambda h, t: h + t + b',"content":"zz"}',
    lambda h, t: h + t + b',"id":"other"}',
    lambda h, t: h + t + b',"content_index":7}',
    lambda h, t: h + t + b"}}",
    lambda h, t: h + t + b"} ",
    lambda h, t: h + t,
    lambda h, t: h + b'"a" "b"}',
    lambda h, t: h + b'"a"\n"b"}',
    lambda h, t: h + b" }",
    lambda h, t: h + b"}",
    lambda h, t: h + b'"}',
    lambda h, t: h + b'"\\u0041\\n\\"q\\""}',
    lambda h, t: h + b'{"type":"text","text":"x"}}',
    lambda h, t: h + b'{"type":"thinking","thinking":[{"type":"text","text":"t"}]}}',
    lambda h, t: h + b"5}",
    lambda h, t: h + b"null}",
    lambda h, t: h + b'"\xff"}',
    lambda h, t: h + b'"a\x01b"}',
    lambda h, t: h.replace(b'"content_index":0', b'"content_index":1') + t + b"}",
    lambda h, t: h.replace(b'"id":"m0"', b'"id":"m1"') + t + b"}",
    lambda h, t: h.replace(b'"id":"m0"', b'"id":"m0,\\"content\\":\\""') + t + b"}",
    lambda h, t: h.replace(b'"role":"assistant"', b'"role":"assistant","content":"early"') + t + b"}",
    lambda h, t: h.replace(b'{"type"', b'{"created_at":"2025-01-01T00:00:00Z","type"') + t + b"}",
    lambda h, t: h.replace(b"{", b"{ ", 1) + t + b"}",
    lambda h, t: h[:-1] + b" :" + t + b"}",
    lambda h, t: b"not json",
    lambda h, t: DONE,
    lambda h, t: b'{"type":"brand.new","x":1}',
]

texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=8)
items = st.one_of(
    st.builds(
        lambda t, oi, ci: delta(t, output_index=oi, content_index=ci),
        texts,
        st.integers(0, 1),
        st.integers(0, 1),
    ),
    st.builds(
        lambda i, t: HOSTILE[i](head(), json.dumps(t).encode()), st.integers(0, len(HOSTILE) - 1), texts
    ),
)


def reference(batches: list[list[bytes]]) -> tuple[list[ConversationEvent], list[str], StreamState, bool]:
    """Every event decoded in full, folded by `accumulate_batch`: what the fold must equal."""
    state = StreamState()
    events: list[ConversationEvent] = []
    out: list[str] = []
    for datas in batches:
        try:
            batch = decode_events(datas)
        except EventNotJSON as exc:
            accumulate_batch(state, exc.decoded, out)
            return events + exc.decoded, out, state, True
        accumulate_batch(state, batch, out)
        events += batch
    return events, out, state, False


def folded(batches: list[list[bytes]]) -> tuple[list[ConversationEvent], list[str], StreamState, bool]:
    fold = Fold()
    events: list[ConversationEvent] = []
    out: list[str] = []
    for datas in batches:
        batch = fold.batch(datas)
        assert batch.n == len(batch.events())
        events += batch.events()
        out += batch.texts
        if batch.broken is not None:
            return events, out, fold.state, True
    return events, out, fold.state, False


def assert_same(batches: list[list[bytes]]) -> None:
    want_events, want_texts, want_state, want_broken = reference(batches)
    events, texts, state, broken = folded(batches)
    assert events == want_events
    assert [type(e) for e in events] == [type(e) for e in want_events]
    assert texts == want_texts
    assert broken == want_broken
    assert state.events == want_state.events
    assert state.response() == want_state.response()
    assert state.done == want_state.done


@given(st.lists(items, max_size=60), st.lists(st.integers(0, 60), max_size=6), st.integers(0, 40))
def test_a_fold_equals_decoding_every_event_in_full(datas: list[bytes], cuts: list[int], run: int) -> None:
    # A long canonical run first, so that the fast path is on when the hostile data comes.
    body = [STARTED, *(delta(f"w{i} ") for i in range(run)), *datas, DONE]
    assert_same(chunked(body, cuts))


@pytest.mark.parametrize("shape", range(len(HOSTILE)))
@pytest.mark.parametrize("where", [1, 5, 30])
def test_each_hostile_shape_inside_a_run_reads_as_in_full(shape: int, where: int) -> None:
    datas = [delta(f"w{i}") for i in range(40)]
    datas[where] = HOSTILE[shape](head(), b'"X"')
    for batches in (
        [[STARTED, *datas, DONE]],
        [[STARTED, datas[0]], datas[1:], [DONE]],
        [[d] for d in datas],
    ):
        assert_same(batches)


def test_a_run_of_deltas_is_read_as_strings_and_built_as_events_only_when_read() -> None:
    fold = Fold()
    first = fold.batch([STARTED, delta("a"), delta("b")])
    batch = fold.batch([delta(f"w{i}") for i in range(100)])
    assert batch.texts == [f"w{i}" for i in range(100)]
    assert batch._events is None and len(batch._pieces) == 1 and isinstance(batch._pieces[0], tuple)
    events = batch.events()
    assert events == decode_events([delta(f"w{i}") for i in range(100)])
    assert all(type(e) is MessageOutputDeltaEvent for e in events)
    assert fold.state.events == 103 and fold.state.response().output_text == "ab" + "".join(batch.texts)
    assert first.n == 3 and batch.n == 100


def test_deltas_with_a_field_that_changes_each_time_stop_being_looked_at() -> None:
    fold = Fold()
    datas = [
        delta(f"w{i}").replace(b'{"type"', b'{"created_at":"2025-01-01T00:00:%02dZ","type"' % i)
        for i in range(40)
    ]
    batch = fold.batch(datas)
    assert batch.texts == [f"w{i}" for i in range(40)]
    assert fold._misses >= 8 and fold._head is None  # looked at a few, then no more


def test_the_canonical_split_of_a_chunk_that_ends_mid_event_keeps_the_rest() -> None:
    body = b"".join(b"event: message.output.delta\ndata: " + delta(f"w{i}") + b"\n\n" for i in range(50))
    for cut in range(1, len(body), 37):
        d = SSEDecoder()
        datas = d.feed_data(body[:cut]) + d.feed_data(body[cut:])
        assert datas == [delta(f"w{i}") for i in range(50)]
    for rest in (
        b"event: x",
        b"event: x\ndata: y",
        b"event: x\nda",
        b"data: y",
        b"\ndata: y",
        b":c\ndata: y",
    ):
        d = SSEDecoder()
        assert d.feed_data(body + rest) == [delta(f"w{i}") for i in range(50)]
        assert d.feed_data(b"\n\n") == ([b"y"] if rest.endswith(b"y") else [])


def test_a_key_that_ends_in_content_is_not_taken_for_content() -> None:
    # `"x\\"content":"..."` holds the bytes `"content":"`: a head cut there would read the value
    # of the key `x"content` as the content. The head's comma rules it out.
    base = head()[: -len(b'"content":')]

    def shaped(text: str) -> bytes:
        return base + b'"content":"real","x\\"content":"' + text.encode() + b'"}'

    datas = [STARTED, shaped("real"), *(shaped(f"w{i}") for i in range(20)), DONE]
    assert_same([datas])
    assert_same([[d] for d in datas])
    assert reference([datas])[2].response().output_text == "real" * 21


@given(st.lists(st.integers(0, 8000), max_size=12))
def test_a_run_over_any_chunking_reads_as_in_full(cuts: list[int]) -> None:
    body = b"".join(
        b"event: %s\ndata: %s\n\n" % (json.loads(d)["type"].encode(), d)
        for d in [STARTED, *(delta(f"w{i} ") for i in range(60)), delta("x", content_index=1), DONE]
    )
    d = SSEDecoder()
    batches = [d.feed_data(chunk) for chunk in chunked(body, cuts)]
    assert_same(batches)


async def test_texts_read_after_a_break_out_of_the_events_are_the_rest_of_the_run(
    client: AsyncConversationsClient, loopback: Loopback
) -> None:
    datas = [STARTED, *(delta(f"w{i} ") for i in range(300)), DONE]
    body = b"".join(b"event: e\ndata: " + d + b"\n\n" for d in datas)
    loopback.reply("POST", PATH, Sse([body]))
    async with client.start_stream(inputs="hi", model="m") as stream:
        first: list[ConversationEvent] = []
        async for event in stream:
            first.append(event)
            if len(first) == 120:
                break
        rest = [text async for text in stream.text_stream()]
    assert first == decode_events(datas)[:120]
    assert rest == [f"w{i} " for i in range(119, 300)]
    assert (await stream.final_response()).output_text == "".join(f"w{i} " for i in range(300))
