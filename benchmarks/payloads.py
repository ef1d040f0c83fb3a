"""The pre-rendered bodies the benchmark server sends, and the results a client must decode from them."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

CONVERSATION_ID = "conv_0195b0c3d4e5f6a7b8c9d0e1f2a3b4c5"
MESSAGE_ID = "msg_0195b0c3d4e5f6a7b8c9d0e1f2a3b4c6"
START_TEXT = "Hello from the benchmark server."


def token(i: int) -> str:
    return f"w{i % 97} "


def stream_text(n: int) -> str:
    """The text a stream of ``n`` deltas concatenates to."""
    return "".join(token(i) for i in range(n))


def _sse(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"


@cache
def stream_body(n: int) -> bytes:
    """An SSE body in Mistral's framing: started, ``n`` message deltas, done."""
    parts = [_sse({"type": "conversation.response.started", "conversation_id": CONVERSATION_ID})]
    for i in range(n):
        parts.append(
            _sse(
                {
                    "type": "message.output.delta",
                    "output_index": 0,
                    "id": MESSAGE_ID,
                    "content_index": 0,
                    "model": "mistral-medium-latest",
                    "agent_id": None,
                    "role": "assistant",
                    "content": token(i),
                }
            )
        )
    parts.append(
        _sse(
            {
                "type": "conversation.response.done",
                "usage": {"prompt_tokens": 12, "completion_tokens": n, "total_tokens": n + 12},
            }
        )
    )
    return "".join(parts).encode()


@cache
def start_body() -> bytes:
    return json.dumps(
        {
            "object": "conversation.response",
            "conversation_id": CONVERSATION_ID,
            "outputs": [
                {
                    "object": "entry",
                    "type": "message.output",
                    "created_at": "2026-03-13T14:30:04.002817Z",
                    "completed_at": "2026-03-13T14:30:04.790114Z",
                    "model": "mistral-medium-latest",
                    "agent_id": None,
                    "id": MESSAGE_ID,
                    "role": "assistant",
                    "content": START_TEXT,
                }
            ],
            "usage": {
                "prompt_tokens": 11,
                "completion_tokens": 7,
                "total_tokens": 18,
                "connector_tokens": None,
                "connectors": None,
            },
        },
        separators=(",", ":"),
    ).encode()


HISTORY_KINDS = ("message.input", "function.call", "function.result", "tool.execution", "message.output")


def _entry(i: int) -> dict[str, Any]:
    kind = HISTORY_KINDS[i % len(HISTORY_KINDS)]
    base = {
        "object": "entry",
        "type": kind,
        "created_at": "2026-03-13T14:30:02.410233Z",
        "completed_at": None,
        "id": f"e_{i:032x}",
    }
    if kind == "message.input":
        return {
            **base,
            "role": "user",
            "content": f"Question number {i}: what is the weather?",
            "prefix": False,
        }
    if kind == "function.call":
        return {
            **base,
            "model": "mistral-medium-latest",
            "agent_id": None,
            "tool_call_id": f"t{i:08d}",
            "name": "get_weather",
            "arguments": '{"city": "Paris", "unit": "celsius"}',
            "confirmation_status": None,
        }
    if kind == "function.result":
        return {**base, "tool_call_id": f"t{i:08d}", "result": '{"temperature": 18}'}
    if kind == "tool.execution":
        return {
            **base,
            "completed_at": "2026-03-13T14:30:03.410233Z",
            "model": "mistral-medium-latest",
            "agent_id": None,
            "name": "web_search",
            "arguments": '{"query": "weather"}',
            "info": {"results": 3},
        }
    return {
        **base,
        "completed_at": "2026-03-13T14:30:04.790114Z",
        "model": "mistral-medium-latest",
        "agent_id": None,
        "role": "assistant",
        "content": [
            {"type": "text", "text": f"Answer {i}: it is 18 degrees"},
            {
                "type": "tool_reference",
                "tool": "web_search",
                "title": "Weather",
                "url": "https://example.com/w",
            },
        ],
    }


@cache
def history_body(n: int) -> bytes:
    entries = [_entry(i) for i in range(n)]
    return json.dumps(
        {"object": "conversation.history", "conversation_id": CONVERSATION_ID, "entries": entries},
        separators=(",", ":"),
    ).encode()


def history_counts(n: int) -> dict[str, int]:
    """How many entries of each type a history of ``n`` entries holds."""
    counts = dict.fromkeys(HISTORY_KINDS, 0)
    for i in range(n):
        counts[HISTORY_KINDS[i % len(HISTORY_KINDS)]] += 1
    return counts
