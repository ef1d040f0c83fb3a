"""`TypedDict` forms of the request models, for callers who pass dicts instead of structs.

Each `…Param` mirrors one model of `mistral_conv.models` with its wire key names
(`schema`, `oauth2-token`, ...), so that a typo in a dict input fails in the type
checker. Keys that the API allows to be `null` accept `None`; an absent key means
the API's default.
"""

# No `from __future__ import annotations`: `TypedDict` reads `Required` at run time.
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, Required, TypeAlias, TypedDict

from .models.entries import Entry
from .models.literals import (
    Confirmation,
    ConfirmationStatus,
    ImageDetail,
    ModerationAction,
    ReasoningEffort,
    ResponseFormatType,
    Role,
    ToolChoice,
)

__all__ = [
    "APIKeyAuthParam",
    "AgentHandoffEntryParam",
    "ChunkParam",
    "CodeInterpreterToolParam",
    "CompletionArgsParam",
    "ConnectorAuthParam",
    "ConnectorToolParam",
    "DocumentLibraryToolParam",
    "DocumentURLChunkParam",
    "EntryParam",
    "FunctionCallEntryParam",
    "FunctionParam",
    "FunctionResultEntryParam",
    "FunctionToolParam",
    "GuardrailConfigParam",
    "ImageGenerationToolParam",
    "ImageURLChunkParam",
    "ImageURLParam",
    "Inputs",
    "JsonSchemaParam",
    "MessageInputEntryParam",
    "MessageOutputEntryParam",
    "ModerationLLMConfigParam",
    "OAuth2TokenAuthParam",
    "PredictionParam",
    "ReferenceChunkParam",
    "ResponseFormatParam",
    "TextChunkParam",
    "ThinkChunkParam",
    "ThinkingPartParam",
    "ToolCallConfirmationParam",
    "ToolConfigurationParam",
    "ToolExecutionEntryParam",
    "ToolFileChunkParam",
    "ToolParam",
    "ToolReferenceChunkParam",
    "WebSearchPremiumToolParam",
    "WebSearchToolParam",
]

# -- tools ------------------------------------------------------------------------------


class FunctionParam(TypedDict, total=False):
    """Mirrors `Function`."""

    name: Required[str]
    parameters: Required[dict[str, Any]]
    description: str
    strict: bool


class ToolConfigurationParam(TypedDict, total=False):
    """Mirrors `ToolConfiguration`."""

    exclude: list[str] | None
    include: list[str] | None
    requires_confirmation: list[str] | None


class FunctionToolParam(TypedDict, total=False):
    """Mirrors `FunctionTool`."""

    type: Required[Literal["function"]]
    function: Required[FunctionParam]


class WebSearchToolParam(TypedDict, total=False):
    """Mirrors `WebSearchTool`."""

    type: Required[Literal["web_search"]]
    tool_configuration: ToolConfigurationParam | None


class WebSearchPremiumToolParam(TypedDict, total=False):
    """Mirrors `WebSearchPremiumTool`."""

    type: Required[Literal["web_search_premium"]]
    tool_configuration: ToolConfigurationParam | None


class CodeInterpreterToolParam(TypedDict, total=False):
    """Mirrors `CodeInterpreterTool`."""

    type: Required[Literal["code_interpreter"]]
    tool_configuration: ToolConfigurationParam | None


class ImageGenerationToolParam(TypedDict, total=False):
    """Mirrors `ImageGenerationTool`."""

    type: Required[Literal["image_generation"]]
    tool_configuration: ToolConfigurationParam | None


class DocumentLibraryToolParam(TypedDict, total=False):
    """Mirrors `DocumentLibraryTool`."""

    type: Required[Literal["document_library"]]
    library_ids: Required[list[str]]
    tool_configuration: ToolConfigurationParam | None


class OAuth2TokenAuthParam(TypedDict):
    """Mirrors `OAuth2TokenAuth`."""

    type: Literal["oauth2-token"]
    value: str


class APIKeyAuthParam(TypedDict):
    """Mirrors `APIKeyAuth`."""

    type: Literal["api-key"]
    value: str


ConnectorAuthParam: TypeAlias = OAuth2TokenAuthParam | APIKeyAuthParam
"""Mirrors `ConnectorAuth`."""


class ConnectorToolParam(TypedDict, total=False):
    """Mirrors `ConnectorTool`."""

    type: Required[Literal["connector"]]
    connector_id: Required[str]
    authorization: ConnectorAuthParam | None
    tool_configuration: ToolConfigurationParam | None


ToolParam: TypeAlias = (
    FunctionToolParam
    | WebSearchToolParam
    | WebSearchPremiumToolParam
    | CodeInterpreterToolParam
    | ImageGenerationToolParam
    | DocumentLibraryToolParam
    | ConnectorToolParam
)
"""Any tool, as a dict: mirrors `Tool`."""

# -- completion arguments, guardrails, confirmations ------------------------------------


class PredictionParam(TypedDict, total=False):
    """Mirrors `Prediction`."""

    type: Literal["content"]
    content: str


class JsonSchemaParam(TypedDict, total=False):
    """Mirrors `JsonSchema` (the key is literally `schema`)."""

    name: Required[str]
    schema: Required[dict[str, Any]]
    description: str | None
    strict: bool


class ResponseFormatParam(TypedDict, total=False):
    """Mirrors `ResponseFormat`."""

    type: ResponseFormatType
    json_schema: JsonSchemaParam | None


class CompletionArgsParam(TypedDict, total=False):
    """Mirrors `CompletionArgs`."""

    stop: str | list[str] | None
    presence_penalty: float | None
    frequency_penalty: float | None
    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    random_seed: int | None
    prediction: PredictionParam | None
    response_format: ResponseFormatParam | None
    tool_choice: ToolChoice
    reasoning_effort: ReasoningEffort | None


class ModerationLLMConfigParam(TypedDict, total=False):
    """Mirrors `ModerationLLMConfig`."""

    model_name: str
    custom_category_thresholds: dict[str, float | None] | None
    ignore_other_categories: bool
    action: ModerationAction


class GuardrailConfigParam(TypedDict, total=False):
    """Mirrors `GuardrailConfig`."""

    block_on_error: bool
    moderation_llm_v1: ModerationLLMConfigParam | None
    moderation_llm_v2: ModerationLLMConfigParam | None


class ToolCallConfirmationParam(TypedDict):
    """Mirrors `ToolCallConfirmation`."""

    tool_call_id: str
    confirmation: Confirmation


# -- content chunks ---------------------------------------------------------------------


class TextChunkParam(TypedDict):
    """Mirrors `TextChunk`."""

    type: Literal["text"]
    text: str


class ImageURLParam(TypedDict, total=False):
    """Mirrors `ImageURL`."""

    url: Required[str]
    detail: ImageDetail | None


class ImageURLChunkParam(TypedDict):
    """Mirrors `ImageURLChunk`."""

    type: Literal["image_url"]
    image_url: str | ImageURLParam


class DocumentURLChunkParam(TypedDict, total=False):
    """Mirrors `DocumentURLChunk`."""

    type: Required[Literal["document_url"]]
    document_url: Required[str]
    document_name: str | None


class ToolFileChunkParam(TypedDict, total=False):
    """Mirrors `ToolFileChunk`."""

    type: Required[Literal["tool_file"]]
    tool: Required[str]
    file_id: Required[str]
    file_name: str | None
    file_type: str | None


class ToolReferenceChunkParam(TypedDict, total=False):
    """Mirrors `ToolReferenceChunk`."""

    type: Required[Literal["tool_reference"]]
    tool: Required[str]
    title: Required[str]
    url: str | None
    favicon: str | None
    description: str | None


class ReferenceChunkParam(TypedDict):
    """Mirrors `ReferenceChunk` (only inside a thinking chunk)."""

    type: Literal["reference"]
    reference_ids: list[int | str]


ThinkingPartParam: TypeAlias = TextChunkParam | ToolReferenceChunkParam | ReferenceChunkParam
"""A part of a thinking chunk, as a dict: mirrors `ThinkingPart`."""


class ThinkChunkParam(TypedDict, total=False):
    """Mirrors `ThinkChunk`."""

    type: Required[Literal["thinking"]]
    thinking: Required[list[ThinkingPartParam]]
    signature: str | None
    closed: bool


ChunkParam: TypeAlias = (
    TextChunkParam
    | ImageURLChunkParam
    | DocumentURLChunkParam
    | ToolFileChunkParam
    | ToolReferenceChunkParam
    | ThinkChunkParam
)
"""A content chunk, as a dict (`tool_reference` only in assistant output)."""

# -- entries ----------------------------------------------------------------------------


class _EntryBaseParam(TypedDict, total=False):
    """The keys every entry has; a history entry replayed as a dict carries them."""

    object: Literal["entry"]
    id: str
    created_at: datetime | str
    completed_at: datetime | str | None


class MessageInputEntryParam(_EntryBaseParam, total=False):
    """Mirrors `MessageInputEntry` (`type` may be left out)."""

    type: Literal["message.input"]
    role: Required[Role]
    content: Required[str | list[ChunkParam]]
    prefix: bool


class MessageOutputEntryParam(_EntryBaseParam, total=False):
    """Mirrors `MessageOutputEntry`."""

    type: Required[Literal["message.output"]]
    content: Required[str | list[ChunkParam]]
    role: Literal["assistant"]
    agent_id: str | None
    model: str | None


class FunctionCallEntryParam(_EntryBaseParam, total=False):
    """Mirrors `FunctionCallEntry`."""

    type: Required[Literal["function.call"]]
    tool_call_id: Required[str]
    name: Required[str]
    arguments: Required[str | dict[str, Any]]
    agent_id: str | None
    model: str | None
    confirmation_status: ConfirmationStatus | None


class FunctionResultEntryParam(_EntryBaseParam, total=False):
    """Mirrors `FunctionResultEntry`."""

    type: Required[Literal["function.result"]]
    tool_call_id: Required[str]
    result: Required[str]


class ToolExecutionEntryParam(_EntryBaseParam, total=False):
    """Mirrors `ToolExecutionEntry`."""

    type: Required[Literal["tool.execution"]]
    name: Required[str]
    arguments: str
    info: dict[str, Any]
    agent_id: str | None
    model: str | None


class AgentHandoffEntryParam(_EntryBaseParam, total=False):
    """Mirrors `AgentHandoffEntry`."""

    type: Required[Literal["agent.handoff"]]
    previous_agent_id: Required[str]
    previous_agent_name: Required[str]
    next_agent_id: Required[str]
    next_agent_name: Required[str]


EntryParam: TypeAlias = (
    MessageInputEntryParam
    | MessageOutputEntryParam
    | FunctionCallEntryParam
    | FunctionResultEntryParam
    | ToolExecutionEntryParam
    | AgentHandoffEntryParam
)
"""Any entry, as a dict: mirrors `Entry`."""

Inputs: TypeAlias = str | Sequence[Entry | EntryParam]
"""What `inputs` accepts: a string (one user message) or a list of entries, as models or dicts."""
