"""The official mistralai SDK, pointed at the local server, runs all 11 operations cleanly."""

from __future__ import annotations

from typing import Any

import pytest

from mistral_conv.testing import (
    LocalConversationsServer,
    ScriptedResponder,
    call_function,
    hand_off,
    reply_text,
    run_tool,
)

mistralai = pytest.importorskip(
    "mistralai", reason="the official SDK is not installed (pip install -e '.[bench]')"
)
pydantic = pytest.importorskip("pydantic")


def rich_turn() -> list[Any]:
    return [
        hand_off("ag_1", "router", "ag_2", "helper"),
        run_tool("web_search", '{"q": "x"}', {"n": 1}),
        call_function("lookup", {"id": 3}),
        reply_text("done"),
    ]


def assert_clean(value: Any, path: str = "$") -> None:
    """No unknown class and no undeclared field anywhere in what the SDK decoded."""
    assert "unknown" not in type(value).__name__.lower(), f"{path}: {type(value).__name__}"
    if isinstance(value, pydantic.BaseModel):
        extra = value.__pydantic_extra__
        assert not extra, f"{path}: undeclared fields {extra}"
        for name in type(value).model_fields:
            assert_clean(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            assert_clean(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for k, item in value.items():
            assert_clean(item, f"{path}.{k}")


def test_official_sdk_runs_all_operations(mistral_server: LocalConversationsServer) -> None:
    from mistralai.client import Mistral

    mistral_server.responder = ScriptedResponder([rich_turn(), rich_turn()])
    sdk = Mistral(api_key="local-test-key", server_url=mistral_server.url)
    conv = sdk.beta.conversations
    started = conv.start(inputs="hello", agent_id="ag_1")
    assert_clean(started)
    assert [o.type for o in started.outputs] == [
        "agent.handoff",
        "tool.execution",
        "function.call",
        "message.output",
    ]
    cid = started.conversation_id
    events = list(conv.start_stream(inputs="hi", model="mistral-small-latest"))
    assert_clean(events)
    assert {e.event for e in events} >= {
        "agent.handoff.started",
        "tool.execution.started",
        "function.call.delta",
    }
    assert_clean(conv.append(conversation_id=cid, inputs="more"))
    assert_clean(list(conv.append_stream(conversation_id=cid, inputs="again")))
    history = conv.get_history(conversation_id=cid)
    assert_clean(history)
    entry = history.entries[0].id
    assert_clean(conv.restart(conversation_id=cid, from_entry_id=entry, inputs="branch"))
    assert_clean(list(conv.restart_stream(conversation_id=cid, from_entry_id=entry, inputs="branch")))
    assert_clean(conv.get(conversation_id=cid))
    listed = conv.list()
    assert_clean(listed)
    assert len(listed) >= 3
    assert_clean(conv.get_messages(conversation_id=cid))
    conv.delete(conversation_id=cid)
