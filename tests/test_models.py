"""Model behaviour: unknown types kept, unknown fields ignored, optional vs nullable, request encoding."""

from __future__ import annotations

import msgspec
import pytest
from msgspec import UNSET

from mistral_conv.models import (
    ConversationResponse,
    ConversationUsage,
    Function,
    FunctionCallEntry,
    FunctionTool,
    MessageInputEntry,
    MessageOutputEntry,
    ModelConversation,
    TextChunk,
    ThinkChunk,
    UnknownChunk,
    UnknownEntry,
    UnknownTool,
    WebSearchTool,
)
from mistral_conv.models._decoders import ConversationDecoder, ModelDecoder
from mistral_conv.models.requests import StartRequest

response = ModelDecoder(ConversationResponse)


def test_unknown_entry_and_chunk_keep_raw_data() -> None:
    data = (
        b'{"conversation_id":"c","usage":{},"outputs":['
        b'{"type":"video.output","object":"entry","frames":[1,2]},'
        b'{"type":"message.output","content":[{"type":"text","text":"a"},{"type":"hologram","z":1}]}]}'
    )
    r = response.decode(data)
    unknown, message = r.outputs
    assert isinstance(unknown, UnknownEntry)
    assert (
        unknown.type == "unknown"
        and unknown.type_name == "video.output"
        and unknown.data
        == {
            "type": "video.output",
            "object": "entry",
            "frames": [1, 2],
        }
    )
    assert isinstance(message, MessageOutputEntry) and isinstance(message.content, list)
    assert message.content[0] == TextChunk(text="a")
    chunk = message.content[1]
    assert isinstance(chunk, UnknownChunk) and chunk.type_name == "hologram" and chunk.data["z"] == 1


def test_unknown_chunk_inside_thinking() -> None:
    data = (
        b'{"conversation_id":"c","usage":{},"outputs":[{"type":"message.output","content":'
        b'[{"type":"thinking","thinking":[{"type":"text","text":"t"},{"type":"sketch","s":2}]}]}]}'
    )
    message = response.decode(data).outputs[0]
    assert isinstance(message, MessageOutputEntry) and isinstance(message.content, list)
    think = message.content[0]
    assert isinstance(think, ThinkChunk)
    assert isinstance(think.thinking[1], UnknownChunk) and think.thinking[1].type_name == "sketch"


def test_unknown_tool_type_in_conversation() -> None:
    data = (
        b'{"id":"c","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","model":"m",'
        b'"tools":[{"type":"web_search"},{"type":"teleport","range":5}]}'
    )
    conv = ConversationDecoder.one(data)
    assert isinstance(conv, ModelConversation) and isinstance(conv.tools, list)
    assert isinstance(conv.tools[0], WebSearchTool)
    assert isinstance(conv.tools[1], UnknownTool) and conv.tools[1].data == {"type": "teleport", "range": 5}


def test_unknown_fields_are_ignored() -> None:
    data = b'{"conversation_id":"c","usage":{"prompt_tokens":3,"new":1},"outputs":[],"brand_new":{"x":1}}'
    r = response.decode(data)
    assert r.usage.prompt_tokens == 3


def test_missing_type_is_an_error_not_unknown() -> None:
    with pytest.raises(msgspec.ValidationError):
        response.decode(b'{"conversation_id":"c","usage":{},"outputs":[{"content":"x"}]}')


def test_optional_and_nullable_are_distinct() -> None:
    absent = response.decode(
        b'{"conversation_id":"c","usage":{},"outputs":[{"type":"message.output","content":"x"}]}'
    )
    null = response.decode(
        b'{"conversation_id":"c","usage":{"connector_tokens":null},"outputs":'
        b'[{"type":"message.output","content":"x","agent_id":null}]}'
    )
    a, n = absent.outputs[0], null.outputs[0]
    assert isinstance(a, MessageOutputEntry) and isinstance(n, MessageOutputEntry)
    assert a.agent_id is UNSET and n.agent_id is None
    assert absent.usage.connector_tokens is UNSET and null.usage.connector_tokens is None


def test_usage_connectors_accept_strings() -> None:
    r = response.decode(b'{"conversation_id":"c","outputs":[],"usage":{"connectors":{"web_search":"1"}}}')
    assert r.usage.connectors == {"web_search": "1"}
    assert ConversationUsage().total_tokens == 0


def test_function_call_arguments_string_or_object() -> None:
    for args in (b'"{\\"a\\": 1}"', b'{"a": 1}'):
        data = (
            b'{"conversation_id":"c","usage":{},"outputs":[{"type":"function.call","tool_call_id":"t","name":"f","arguments":'
            + args
            + b"}]}"
        )
        call = response.decode(data).outputs[0]
        assert isinstance(call, FunctionCallEntry)
        assert call.arguments in ('{"a": 1}', {"a": 1})


def test_request_omits_unset_and_keeps_explicit_null() -> None:
    body = msgspec.json.encode(
        StartRequest(
            inputs=[MessageInputEntry(role="user", content="hi")],
            model="m",
            instructions=None,
            tools=[FunctionTool(function=Function(name="f", parameters={"type": "object"}))],
        )
    )
    assert body == (
        b'{"inputs":[{"type":"message.input","object":"entry","role":"user","content":"hi","prefix":false}],'
        b'"stream":false,"instructions":null,"tools":[{"type":"function","function":{"name":"f",'
        b'"parameters":{"type":"object"}}}],"model":"m"}'
    )


def test_type_property() -> None:
    assert MessageInputEntry(role="user", content="x").type == "message.input"
    assert UnknownEntry(type_name="x.y", data={}).type == "unknown"
