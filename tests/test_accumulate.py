"""accumulate(state, event) -> state, on its own: the rules of the wire reference §7.3."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from mistral_conv._accumulate import StreamState, accumulate, accumulate_batch
from mistral_conv.models import (
    AgentHandoffEntry,
    ConversationEvent,
    FunctionCallEntry,
    MessageOutputEntry,
    TextChunk,
    ThinkChunk,
    ToolExecutionEntry,
    ToolReferenceChunk,
)

decoder = msgspec.json.Decoder(ConversationEvent)


def fold(*events: dict[str, Any]) -> StreamState:
    state = StreamState()
    for e in events:
        state = accumulate(state, decoder.decode(msgspec.json.encode(e)))
    return state


def msg(content: Any, index: int = 0, output_index: int = 0, id: str = "m1") -> dict[str, Any]:
    return {
        "type": "message.output.delta",
        "id": id,
        "output_index": output_index,
        "content_index": index,
        "content": content,
    }


def test_string_deltas_concatenate_into_a_string() -> None:
    r = fold(
        {"type": "conversation.response.started", "conversation_id": "c"}, msg("Hel"), msg("lo")
    ).response()
    entry = r.outputs[0]
    assert r.conversation_id == "c"
    assert isinstance(entry, MessageOutputEntry) and entry.content == "Hello" and entry.id == "m1"


def test_chunk_objects_take_their_own_index_and_text_merges() -> None:
    ref = {"type": "tool_reference", "tool": "web_search", "title": "T", "url": "u"}
    entry = fold(msg("A"), msg("B"), msg(ref, 1), msg("C", 2), msg("D", 2)).response().outputs[0]
    assert isinstance(entry, MessageOutputEntry)
    assert entry.content == [
        TextChunk(text="AB"),
        ToolReferenceChunk(tool="web_search", title="T", url="u"),
        TextChunk(text="CD"),
    ]


def test_thinking_deltas_at_one_index_merge() -> None:
    t1 = {"type": "thinking", "thinking": [{"type": "text", "text": "a"}]}
    t2 = {"type": "thinking", "thinking": [{"type": "text", "text": "b"}]}
    entry = fold(msg(t1), msg(t2), msg("x", 1)).response().outputs[0]
    assert isinstance(entry, MessageOutputEntry) and isinstance(entry.content, list)
    think = entry.content[0]
    assert isinstance(think, ThinkChunk) and think.thinking == [TextChunk(text="ab")]
    assert entry.content[1] == TextChunk(text="x")


def test_parallel_function_calls_concatenate_per_output_index() -> None:
    def call(i: int, args: str) -> dict[str, Any]:
        return {
            "type": "function.call.delta",
            "id": f"fc{i}",
            "output_index": i,
            "name": "f",
            "tool_call_id": f"t{i}",
            "arguments": args,
        }

    outputs = fold(call(0, '{"a"'), call(1, '{"b"'), call(0, ": 1}"), call(1, ": 2}")).response().outputs
    assert [(o.tool_call_id, o.arguments) for o in outputs if isinstance(o, FunctionCallEntry)] == [
        ("t0", '{"a": 1}'),
        ("t1", '{"b": 2}'),
    ]


def test_interleaved_tool_executions_correlate_by_id() -> None:
    events = []
    for i in range(5):
        events.append(
            {
                "type": "tool.execution.started",
                "id": f"te{i}",
                "output_index": i,
                "name": f"tool{i}",
                "arguments": "{",
            }
        )
        events.append(
            {
                "type": "tool.execution.delta",
                "id": f"te{i}",
                "output_index": i,
                "name": f"tool{i}",
                "arguments": f'"n": {i}}}',
            }
        )
    for i in reversed(range(5)):
        events.append(
            {
                "type": "tool.execution.done",
                "id": f"te{i}",
                "output_index": i,
                "name": f"tool{i}",
                "info": {"i": i},
            }
        )
    outputs = fold(*events).response().outputs
    assert [(o.name, o.arguments, o.info) for o in outputs if isinstance(o, ToolExecutionEntry)] == [
        (f"tool{i}", f'{{"n": {i}}}', {"i": i}) for i in range(5)
    ]


def test_handoff_started_and_done_make_one_entry() -> None:
    outputs = (
        fold(
            {
                "type": "agent.handoff.started",
                "id": "h",
                "output_index": 0,
                "previous_agent_id": "a1",
                "previous_agent_name": "A",
            },
            {
                "type": "agent.handoff.done",
                "id": "h",
                "output_index": 0,
                "next_agent_id": "a2",
                "next_agent_name": "B",
            },
            msg("hi", output_index=1, id="m2"),
        )
        .response()
        .outputs
    )
    assert outputs[0] == AgentHandoffEntry(
        id="h", previous_agent_id="a1", previous_agent_name="A", next_agent_id="a2", next_agent_name="B"
    )
    assert isinstance(outputs[1], MessageOutputEntry)


def test_usage_and_done_and_error() -> None:
    s = fold(
        msg("x"), {"type": "conversation.response.done", "usage": {"prompt_tokens": 2, "total_tokens": 5}}
    )
    assert s.done and s.response().usage.total_tokens == 5
    e = fold(msg("x"), {"type": "conversation.response.error", "message": "bad", "code": 7})
    assert not e.done and e.error is not None and e.error.code == 7


def test_text_is_joined_once_not_concatenated_per_delta() -> None:
    class Counting(str):
        adds = 0

        def __add__(self, other: str) -> str:
            Counting.adds += 1
            return str.__add__(self, other)

    state = StreamState()
    for i in range(1000):
        event = decoder.decode(msgspec.json.encode(msg(f"{i},")))
        event.content = Counting(event.content)  # type: ignore[union-attr]
        state = accumulate(state, event)
    assert state.text == "".join(f"{i}," for i in range(1000))
    assert Counting.adds == 0


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["text", "text", "text", "chunk", "think", "call", "tool", "done"]),
            st.integers(0, 2),
            st.integers(0, 2),
            st.sampled_from(["m1", "m2"]),
        ),
        max_size=40,
    ),
    st.integers(1, 7),
)
def test_batch_equals_one_by_one(steps: list[tuple[str, int, int, str]], batch: int) -> None:
    events = []
    for i, (kind, oi, ci, mid) in enumerate(steps):
        if kind == "text":
            events.append(msg(f"t{i}", ci, oi, mid))
        elif kind == "chunk":
            events.append(msg({"type": "tool_reference", "tool": "w", "title": f"r{i}"}, ci, oi, mid))
        elif kind == "think":
            events.append(
                msg({"type": "thinking", "thinking": [{"type": "text", "text": f"k{i}"}]}, ci, oi, mid)
            )
        elif kind == "call":
            events.append(
                {
                    "type": "function.call.delta",
                    "id": mid,
                    "output_index": oi,
                    "name": "f",
                    "tool_call_id": "t",
                    "arguments": f"a{i}",
                }
            )
        elif kind == "tool":
            events.append(
                {
                    "type": "tool.execution.delta",
                    "id": mid,
                    "output_index": oi,
                    "name": "w",
                    "arguments": f"x{i}",
                }
            )
        else:
            events.append({"type": "conversation.response.done", "usage": {"total_tokens": i}})
    decoded = [decoder.decode(msgspec.json.encode(e)) for e in events]
    one = StreamState()
    for e in decoded:
        one = accumulate(one, e)
    many = StreamState()
    texts: list[str] = []
    for start in range(0, len(decoded), batch):
        many = accumulate_batch(many, decoded[start : start + batch], texts)
    assert many.response() == one.response() and many.events == one.events
    assert texts == [
        e["content"] for e in events if e["type"] == "message.output.delta" and isinstance(e["content"], str)
    ]
