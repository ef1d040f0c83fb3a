"""Tools a model conversation may use, completion arguments and guardrails."""

from typing import Any, ClassVar, Literal, TypeAlias

import msgspec
from msgspec import UNSET, UnsetType

from ._base import Model, Tagged, Unknown
from .literals import (
    Confirmation,
    ModerationAction,
    ReasoningEffort,
    ResponseFormatType,
    ToolChoice,
)

__all__ = [
    "APIKeyAuth",
    "CodeInterpreterTool",
    "CompletionArgs",
    "ConnectorAuth",
    "ConnectorTool",
    "DocumentLibraryTool",
    "Function",
    "FunctionTool",
    "GuardrailConfig",
    "ImageGenerationTool",
    "JsonSchema",
    "ModerationLLMConfig",
    "OAuth2TokenAuth",
    "Prediction",
    "ResponseFormat",
    "Tool",
    "ToolCallConfirmation",
    "ToolConfiguration",
    "UnknownTool",
    "WebSearchPremiumTool",
    "WebSearchTool",
]


class Function(Model, kw_only=True):
    """A client-side function: its name, JSON Schema `parameters`, description and strictness."""

    name: str
    parameters: dict[str, Any]
    description: str | UnsetType = UNSET
    strict: bool | UnsetType = UNSET


class ToolConfiguration(Model, kw_only=True):
    """Tool names inside a built-in tool or connector to exclude, include or confirm first."""

    exclude: list[str] | None | UnsetType = UNSET
    include: list[str] | None | UnsetType = UNSET
    requires_confirmation: list[str] | None | UnsetType = UNSET


class FunctionTool(Tagged, tag="function", kw_only=True):
    """A function the model may call; the caller runs it and appends the result."""

    type: ClassVar[Literal["function"]] = "function"
    function: Function


class WebSearchTool(Tagged, tag="web_search", kw_only=True):
    """Built-in web search."""

    type: ClassVar[Literal["web_search"]] = "web_search"
    tool_configuration: ToolConfiguration | None | UnsetType = UNSET


class WebSearchPremiumTool(Tagged, tag="web_search_premium", kw_only=True):
    """Built-in premium web search."""

    type: ClassVar[Literal["web_search_premium"]] = "web_search_premium"
    tool_configuration: ToolConfiguration | None | UnsetType = UNSET


class CodeInterpreterTool(Tagged, tag="code_interpreter", kw_only=True):
    """Built-in code interpreter."""

    type: ClassVar[Literal["code_interpreter"]] = "code_interpreter"
    tool_configuration: ToolConfiguration | None | UnsetType = UNSET


class ImageGenerationTool(Tagged, tag="image_generation", kw_only=True):
    """Built-in image generation."""

    type: ClassVar[Literal["image_generation"]] = "image_generation"
    tool_configuration: ToolConfiguration | None | UnsetType = UNSET


class DocumentLibraryTool(Tagged, tag="document_library", kw_only=True):
    """Search in document libraries, by library id."""

    type: ClassVar[Literal["document_library"]] = "document_library"
    library_ids: list[str]
    tool_configuration: ToolConfiguration | None | UnsetType = UNSET


class OAuth2TokenAuth(Tagged, tag="oauth2-token", kw_only=True):
    """Connector authorization by OAuth2 token."""

    type: ClassVar[Literal["oauth2-token"]] = "oauth2-token"
    value: str


class APIKeyAuth(Tagged, tag="api-key", kw_only=True):
    """Connector authorization by API key."""

    type: ClassVar[Literal["api-key"]] = "api-key"
    value: str


ConnectorAuth: TypeAlias = OAuth2TokenAuth | APIKeyAuth
"""How a connector authenticates: an OAuth2 token or an API key."""


class ConnectorTool(Tagged, tag="connector", kw_only=True):
    """A connector (an MCP-style tool server registered with Mistral)."""

    type: ClassVar[Literal["connector"]] = "connector"
    connector_id: str
    authorization: ConnectorAuth | None | UnsetType = UNSET
    tool_configuration: ToolConfiguration | None | UnsetType = UNSET


class UnknownTool(Unknown, kw_only=True):
    """A tool of a type this SDK version does not know; `data` keeps it whole."""


Tool: TypeAlias = (
    FunctionTool
    | WebSearchTool
    | WebSearchPremiumTool
    | CodeInterpreterTool
    | ImageGenerationTool
    | DocumentLibraryTool
    | ConnectorTool
    | UnknownTool
)
"""Any tool."""


class Prediction(Model, kw_only=True):
    """Predicted output content."""

    type: str = "content"
    content: str | UnsetType = UNSET


class JsonSchema(Model, kw_only=True):
    """A named JSON Schema for structured output (the wire key is literally `schema`)."""

    name: str
    schema_: dict[str, Any] = msgspec.field(name="schema")
    description: str | None | UnsetType = UNSET
    strict: bool | UnsetType = UNSET


class ResponseFormat(Model, kw_only=True):
    """Output format: `"text"`, `"json_object"` or `"json_schema"`."""

    type: ResponseFormatType | UnsetType = UNSET
    json_schema: JsonSchema | None | UnsetType = UNSET


class CompletionArgs(Model, kw_only=True):
    """Sampling and output settings. The server echoes every key, with `null` when unset."""

    stop: str | list[str] | None | UnsetType = UNSET
    presence_penalty: float | None | UnsetType = UNSET
    frequency_penalty: float | None | UnsetType = UNSET
    temperature: float | None | UnsetType = UNSET
    top_p: float | None | UnsetType = UNSET
    max_tokens: int | None | UnsetType = UNSET
    random_seed: int | None | UnsetType = UNSET
    prediction: Prediction | None | UnsetType = UNSET
    response_format: ResponseFormat | None | UnsetType = UNSET
    tool_choice: ToolChoice | UnsetType = UNSET
    reasoning_effort: ReasoningEffort | None | UnsetType = UNSET


class ModerationLLMConfig(Model, kw_only=True):
    """A moderation model's settings (`moderation_llm_v1` or `moderation_llm_v2`)."""

    model_name: str | UnsetType = UNSET
    custom_category_thresholds: dict[str, float | None] | None | UnsetType = UNSET
    ignore_other_categories: bool | UnsetType = UNSET
    action: ModerationAction | UnsetType = UNSET


class GuardrailConfig(Model, kw_only=True):
    """Guardrails for a conversation."""

    block_on_error: bool | UnsetType = UNSET
    moderation_llm_v1: ModerationLLMConfig | None | UnsetType = UNSET
    moderation_llm_v2: ModerationLLMConfig | None | UnsetType = UNSET


class ToolCallConfirmation(Model, kw_only=True):
    """The answer to a pending function call: `"allow"` or `"deny"`."""

    tool_call_id: str
    confirmation: Confirmation
