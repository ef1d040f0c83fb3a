"""The TypedDicts of ``mistral_conv.types`` agree with the request models, key for key."""

from __future__ import annotations

from typing import Any, Literal, TypedDict, get_args, get_type_hints

import msgspec
import pytest

from mistral_conv import models as m
from mistral_conv import types as t

# fmt: off
CONF: t.ToolConfigurationParam = {"exclude": ["a"], "include": None, "requires_confirmation": ["b"]}
FUNC: t.FunctionParam = {"name": "f", "parameters": {"type": "object"}, "description": "d", "strict": True}
KEY: t.APIKeyAuthParam = {"type": "api-key", "value": "key"}
PRED: t.PredictionParam = {"type": "content", "content": "x"}
SCHEMA: t.JsonSchemaParam = {"name": "s", "schema": {"type": "object"}, "description": None, "strict": True}
FORMAT: t.ResponseFormatParam = {"type": "json_schema", "json_schema": SCHEMA}
ARGS: t.CompletionArgsParam = {
    "stop": ["\n"], "presence_penalty": 0.5, "frequency_penalty": -0.5, "temperature": 0.2, "top_p": None,
    "max_tokens": 10, "random_seed": 1, "prediction": PRED, "response_format": FORMAT, "tool_choice": "any",
    "reasoning_effort": None,
}
MOD: t.ModerationLLMConfigParam = {
    "model_name": "m", "custom_category_thresholds": {"pii": 0.5, "law": None},
    "ignore_other_categories": True, "action": "block",
}
GUARD: t.GuardrailConfigParam = {"block_on_error": True, "moderation_llm_v1": None, "moderation_llm_v2": MOD}
TEXT: t.TextChunkParam = {"type": "text", "text": "hi"}
IMG: t.ImageURLParam = {"url": "https://x/y.png", "detail": "high"}
IMG_CHUNK: t.ImageURLChunkParam = {"type": "image_url", "image_url": IMG}
DOC: t.DocumentURLChunkParam = {"type": "document_url", "document_url": "https://x/d", "document_name": "d"}
FILE: t.ToolFileChunkParam = {
    "type": "tool_file", "tool": "code_interpreter", "file_id": "f", "file_name": None, "file_type": "png",
}
TREF: t.ToolReferenceChunkParam = {
    "type": "tool_reference", "tool": "web_search", "title": "t", "url": "u", "favicon": None,
    "description": "d",
}
REF: t.ReferenceChunkParam = {"type": "reference", "reference_ids": [1, "2"]}
THINK: t.ThinkChunkParam = {
    "type": "thinking", "thinking": [TEXT, TREF, REF], "signature": "s", "closed": True,
}


class _Base(TypedDict):  # the keys every entry shares, as a replayed history entry has them
    object: Literal["entry"]
    id: str
    created_at: str
    completed_at: None


B: _Base = {"object": "entry", "id": "e", "created_at": "2025-05-01T12:00:00Z", "completed_at": None}
M_IN: t.MessageInputEntryParam = {
    **B, "type": "message.input", "role": "user", "content": [TEXT, IMG_CHUNK, DOC, FILE, THINK],
    "prefix": False,
}
M_OUT: t.MessageOutputEntryParam = {
    **B, "type": "message.output", "content": [TEXT, TREF], "role": "assistant", "agent_id": None,
    "model": "m",
}
CALL: t.FunctionCallEntryParam = {
    **B, "type": "function.call", "tool_call_id": "c", "name": "f", "arguments": {"a": 1}, "agent_id": "a",
    "model": None, "confirmation_status": "pending",
}
RESULT: t.FunctionResultEntryParam = {**B, "type": "function.result", "tool_call_id": "c", "result": "{}"}
EXEC: t.ToolExecutionEntryParam = {
    **B, "type": "tool.execution", "name": "web_search", "arguments": "{}", "info": {"k": 1},
    "agent_id": None, "model": "m",
}
HANDOFF: t.AgentHandoffEntryParam = {
    **B, "type": "agent.handoff", "previous_agent_id": "a", "previous_agent_name": "A", "next_agent_id": "b",
    "next_agent_name": "B",
}
CONFIRM: t.ToolCallConfirmationParam = {"tool_call_id": "c", "confirmation": "deny"}
OAUTH: t.OAuth2TokenAuthParam = {"type": "oauth2-token", "value": "tok"}
CONNECTOR: t.ConnectorToolParam = {
    "type": "connector", "connector_id": "c", "authorization": KEY, "tool_configuration": CONF,
}
LIBRARY: t.DocumentLibraryToolParam = {
    "type": "document_library", "library_ids": ["l"], "tool_configuration": CONF,
}

# (struct, a fully populated dict of its TypedDict ``<struct name>Param``)
CASES: list[tuple[type[msgspec.Struct], Any]] = [
    (m.Function, FUNC), (m.ToolConfiguration, CONF), (m.FunctionTool, {"type": "function", "function": FUNC}),
    (m.WebSearchTool, {"type": "web_search", "tool_configuration": CONF}),
    (m.WebSearchPremiumTool, {"type": "web_search_premium", "tool_configuration": None}),
    (m.CodeInterpreterTool, {"type": "code_interpreter", "tool_configuration": CONF}),
    (m.ImageGenerationTool, {"type": "image_generation", "tool_configuration": CONF}),
    (m.DocumentLibraryTool, LIBRARY), (m.ConnectorTool, CONNECTOR), (m.OAuth2TokenAuth, OAUTH),
    (m.APIKeyAuth, KEY), (m.Prediction, PRED), (m.JsonSchema, SCHEMA), (m.ResponseFormat, FORMAT),
    (m.CompletionArgs, ARGS), (m.ModerationLLMConfig, MOD), (m.GuardrailConfig, GUARD),
    (m.ToolCallConfirmation, CONFIRM), (m.TextChunk, TEXT), (m.ImageURL, IMG), (m.ImageURLChunk, IMG_CHUNK),
    (m.DocumentURLChunk, DOC), (m.ToolFileChunk, FILE), (m.ToolReferenceChunk, TREF), (m.ReferenceChunk, REF),
    (m.ThinkChunk, THINK), (m.MessageInputEntry, M_IN), (m.MessageOutputEntry, M_OUT),
    (m.FunctionCallEntry, CALL), (m.FunctionResultEntry, RESULT), (m.ToolExecutionEntry, EXEC),
    (m.AgentHandoffEntry, HANDOFF),
]
# fmt: on
parametrize = pytest.mark.parametrize(("struct", "sample"), CASES, ids=[c[0].__name__ for c in CASES])


@parametrize
def test_keys_match_fields(struct: type[msgspec.Struct], sample: Any) -> None:
    td: Any = getattr(t, struct.__name__ + "Param")
    tag = struct.__struct_config__.tag_field  # "type" on tagged structs: a ClassVar, not a field
    fields = msgspec.structs.fields(struct)
    assert (td.__required_keys__ | td.__optional_keys__) - {tag} == {f.encode_name for f in fields}
    assert td.__required_keys__ - {tag} == {f.encode_name for f in fields if f.required}
    if tag is not None:  # the tag key is required (a message.input may leave it out) and is the struct's tag
        assert (tag in td.__required_keys__) == (struct is not m.MessageInputEntry)
        assert get_args(get_type_hints(td)[tag]) == (struct.__struct_config__.tag,)


@parametrize
def test_full_sample_converts(struct: type[msgspec.Struct], sample: Any) -> None:
    td: Any = getattr(t, struct.__name__ + "Param")
    assert set(sample) == td.__required_keys__ | td.__optional_keys__  # fully populated
    assert msgspec.to_builtins(msgspec.convert(sample, struct)) == sample  # and round-trips unchanged


def test_all_is_sorted_and_complete() -> None:
    public = {n for n in vars(t) if n.endswith("Param") and not n.startswith("_")} | {"Inputs"}
    assert t.__all__ == sorted(t.__all__)
    assert set(t.__all__) == public
