"""Every payload of the wire reference decodes; every example request is built equal to it as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from mistral_conv import AsyncConversationsClient, InvalidRequestError, ResponseDecodeError, _wire
from mistral_conv._calls import RawResponse as Response
from mistral_conv.models import (
    AgentConversation,
    ConversationHistory,
    ConversationMessages,
    ConversationResponse,
    Entry,
    ModelConversation,
    ToolExecutionEntry,
    Unknown,
)
from mistral_conv.models._decoders import ConversationDecoder, ModelDecoder
from mistral_conv.models.requests import AppendRequest, RestartRequest, StartRequest

from .conftest import EXAMPLES, REAL, spec_files
from .loopback import Json, Loopback, Sse, sse_body

# Files that real/README.md marks as docs mistakes, synthetic API-reference stubs, or not JSON.
EXPECTED_FAILURES = {
    "apiref_start_response_example.json",
    "apiref_append_response_example.json",
    "apiref_restart_response_example.json",
    "apiref_history_response_example.json",
    "apiref_messages_response_example.json",
    "docs_response_pending_confirmation_abbreviated.json",
    "docs_start_output_is_agent_object.json",
    "docs_list_conversations.verbatim.txt",
}


def decoder_for(name: str) -> Any:
    """Which endpoint's decoder a payload file belongs to, from its name."""
    if "list" in name:
        return ConversationDecoder.many
    if "get" in name:
        return ConversationDecoder.one
    if "history" in name:
        return ModelDecoder(ConversationHistory).decode
    if "messages" in name:
        return ModelDecoder(ConversationMessages).decode
    if name.startswith("docs_entry_"):
        return ModelDecoder(Entry).decode
    if "response" in name or "start_output" in name:
        return ModelDecoder(ConversationResponse).decode
    return None


RESPONSE_FILES = [
    p
    for p in spec_files(EXAMPLES, "conversation_*.json") + spec_files(REAL, "*")
    if decoder_for(p.name) is not None and not p.name.endswith((".sse", ".md"))
]


def assert_no_unknown(obj: Any) -> None:
    """No Unknown… struct anywhere: every type in the spec is modelled."""
    if isinstance(obj, Unknown):
        raise AssertionError(f"decoded as unknown: {obj.type}")
    if isinstance(obj, msgspec.Struct):
        for f in obj.__struct_fields__:
            assert_no_unknown(getattr(obj, f))
    elif isinstance(obj, list):
        for x in obj:
            assert_no_unknown(x)


@pytest.mark.skipif(not RESPONSE_FILES, reason="../shared/spec is absent")
@pytest.mark.parametrize("path", RESPONSE_FILES, ids=lambda p: p.name)
def test_response_payload_decodes(path: Path) -> None:
    data = path.read_bytes()
    decode = decoder_for(path.name)
    resp = Response(200, {}, data, "req-1")
    if path.name in EXPECTED_FAILURES:
        with pytest.raises(ResponseDecodeError) as info:
            _wire.decode(resp, decode)
        assert info.value.body == data and info.value.request_id == "req-1"
        return
    result = _wire.decode(resp, decode)
    assert_no_unknown(result)
    raw = json.loads(data)
    if isinstance(result, ConversationResponse):
        assert [e.type for e in result.outputs] == [o["type"] for o in raw["outputs"]]
        assert result.conversation_id == raw["conversation_id"]
    elif isinstance(result, list):
        assert len(result) == len(raw)
        for item, r in zip(result, raw, strict=True):
            assert isinstance(item, AgentConversation if "agent_id" in r else ModelConversation)
    elif isinstance(result, ConversationHistory):
        assert [e.type for e in result.entries] == [e["type"] for e in raw["entries"]]


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/spec is absent")
def test_old_tool_execution_without_arguments_defaults_to_empty_string() -> None:
    data = (REAL / "docs_response_websearch_agent.json").read_bytes()
    result = ModelDecoder(ConversationResponse).decode(data)
    tool = result.outputs[0]
    assert isinstance(tool, ToolExecutionEntry)
    assert tool.name == "web_search" and tool.arguments == ""


REQUEST_FILES = spec_files(EXAMPLES, "request.*.json")
MODELS = {"start": StartRequest, "append": AppendRequest, "restart": RestartRequest}


def call_for(path: Path) -> tuple[str, bool, dict[str, Any]]:
    op = path.name.split(".")[1]
    stream = op.endswith("_stream")
    kwargs = json.loads(path.read_bytes())
    assert kwargs.pop("stream") is stream
    return op.removesuffix("_stream"), stream, kwargs


def as_structs(op: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The same arguments, with every nested value converted to the SDK's structs."""
    model = msgspec.convert(kwargs, MODELS[op])
    return {k: getattr(model, k) for k in kwargs}


async def run(client: AsyncConversationsClient, op: str, stream: bool, kwargs: dict[str, Any]) -> None:
    args = [] if op == "start" else ["conv_1"]
    method = getattr(client, f"{op}_stream" if stream else op)
    if stream:
        async with method(*args, **kwargs) as s:
            await s.final_response()
    else:
        await method(*args, **kwargs)


@pytest.mark.skipif(not REQUEST_FILES, reason="../shared/spec is absent")
@pytest.mark.parametrize("form", ["dicts", "structs"])
@pytest.mark.parametrize("path", REQUEST_FILES, ids=lambda p: p.name)
async def test_request_body_equals_example(
    path: Path, form: str, loopback: Loopback, client: AsyncConversationsClient
) -> None:
    op, stream, kwargs = call_for(path)
    expected = json.loads(path.read_bytes())  # noqa: ASYNC240 (a small local file)
    route = {"start": "/v1/conversations", "append": "/v1/conversations/conv_1"}.get(
        op, "/v1/conversations/conv_1/restart"
    )
    done = sse_body(
        {"type": "conversation.response.started", "conversation_id": "conv_1"},
        {"type": "conversation.response.done", "usage": {}},
    )
    reply = Sse([done]) if stream else Json({"conversation_id": "conv_1", "outputs": [], "usage": {}})
    loopback.reply("POST", route, reply)
    if form == "structs":
        kwargs = as_structs(op, kwargs)
    await run(client, op, stream, kwargs)
    sent = loopback.requests[-1]
    assert json.loads(sent.body) == expected
    assert sent.headers["Accept"] == ("text/event-stream" if stream else "application/json")
    assert sent.body == msgspec.json.encode(json.loads(sent.body))  # compact JSON


REAL_REQUESTS = [p for p in spec_files(REAL, "*request*.json")]


def real_call(path: Path) -> tuple[str, bool, dict[str, Any], dict[str, Any]]:
    """The call a real request payload stands for, and the body the SDK should send for it."""
    raw = json.loads(path.read_bytes())
    if isinstance(raw, list):  # a bare tools array from the docs
        raw = {"inputs": "hi", "model": "m", "tools": raw}
    op = "append" if "append" in path.name else "restart" if "restart" in path.name else "start"
    stream = bool(raw.pop("stream", False)) or "_stream_" in path.name
    expected = dict(raw, stream=stream)
    if op != "start":
        expected.setdefault("store", True)
        expected.setdefault("handoff_execution", "server")
    if isinstance(raw.get("inputs"), list):
        expected["inputs"] = [dict(e, type=e.get("type", "message.input")) for e in raw["inputs"]]
    return op, stream, raw, expected


@pytest.mark.skipif(not REAL_REQUESTS, reason="../shared/spec is absent")
@pytest.mark.parametrize("path", REAL_REQUESTS, ids=lambda p: p.name)
async def test_real_request_payload_is_accepted_and_sent_as_given(
    path: Path, loopback: Loopback, client: AsyncConversationsClient
) -> None:
    op, stream, kwargs, expected = real_call(path)
    done = sse_body(
        {"type": "conversation.response.started", "conversation_id": "conv_1"},
        {"type": "conversation.response.done", "usage": {}},
    )
    reply = Sse([done]) if stream else Json({"conversation_id": "conv_1", "outputs": [], "usage": {}})
    for route in ("/v1/conversations", "/v1/conversations/conv_1", "/v1/conversations/conv_1/restart"):
        loopback.reply("POST", route, reply)
    if path.name.startswith("apiref_start"):
        # The API reference's generated stub has neither model nor agent_id: refused before sending.
        with pytest.raises(InvalidRequestError, match="model/agent_id"):
            await run(client, op, stream, kwargs)
        assert loopback.requests == []
        return
    await run(client, op, stream, kwargs)
    assert json.loads(loopback.requests[-1].body) == expected
