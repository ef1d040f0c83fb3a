"""Response bodies: runs, conversations, history, messages, and error bodies."""

from datetime import datetime
from typing import Any, TypeAlias

from msgspec import UNSET, UnsetType

from ._base import Model, Result
from .chunks import content_text
from .entries import Entry, MessageEntry, MessageOutputEntry, OutputEntry
from .tools import CompletionArgs, GuardrailConfig, Tool

__all__ = [
    "AgentConversation",
    "Conversation",
    "ConversationHistory",
    "ConversationMessages",
    "ConversationResponse",
    "ConversationUsage",
    "ErrorBody",
    "ModelConversation",
    "ValidationErrorItem",
]


class ConversationUsage(Model, kw_only=True):
    """Token usage of a run. `connectors` counts calls per tool (values seen as strings too)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    connector_tokens: int | None | UnsetType = UNSET
    connectors: dict[str, int | str] | None | UnsetType = UNSET


class ConversationResponse(Result, kw_only=True):
    """The result of start, append or restart: the new entries and the usage."""

    conversation_id: str
    outputs: list[OutputEntry]
    usage: ConversationUsage
    object: str = "conversation.response"
    guardrails: list[dict[str, Any]] | None | UnsetType = UNSET

    @property
    def output_text(self) -> str:
        """The text of every `message.output` entry, concatenated (chunks other than text skipped)."""
        texts = [content_text(e.content) for e in self.outputs if isinstance(e, MessageOutputEntry)]
        return texts[0] if len(texts) == 1 else "".join(texts)


class _ConversationBase(Result, kw_only=True):
    id: str
    created_at: datetime
    updated_at: datetime
    object: str = "conversation"
    name: str | None | UnsetType = UNSET
    description: str | None | UnsetType = UNSET
    metadata: dict[str, Any] | None | UnsetType = UNSET


class ModelConversation(_ConversationBase, kw_only=True):
    """A conversation with a model (`model` set)."""

    model: str
    instructions: str | None | UnsetType = UNSET
    tools: list[Tool] | UnsetType = UNSET
    completion_args: CompletionArgs | UnsetType = UNSET
    guardrails: list[GuardrailConfig] | None | UnsetType = UNSET


class AgentConversation(_ConversationBase, kw_only=True):
    """A conversation with an agent (`agent_id` set)."""

    agent_id: str
    agent_version: str | int | None | UnsetType = UNSET


Conversation: TypeAlias = ModelConversation | AgentConversation
"""A list item or the result of get. The wire has no tag: `agent_id` marks an agent conversation."""


class ConversationHistory(Result, kw_only=True):
    """Every entry of a conversation, in append order."""

    conversation_id: str
    entries: list[Entry]
    object: str = "conversation.history"


class ConversationMessages(Result, kw_only=True):
    """The `message.input` and `message.output` entries of a conversation."""

    conversation_id: str
    messages: list[MessageEntry]
    object: str = "conversation.messages"


class ValidationErrorItem(Model, kw_only=True):
    """One problem in a 422 body: where (`loc`), what (`msg`) and its kind (`type`)."""

    loc: list[str | int]
    msg: str
    type: str
    input: Any = UNSET
    ctx: dict[str, Any] | UnsetType = UNSET


class ErrorBody(Model, kw_only=True):
    """The error envelopes the API is known to send, merged (see the wire reference §8).

    `detail` is a list of validation items or a string; `message` a
    string or an object holding `detail`; `error` an object with a
    `message`; `code` an integer or a string.
    """

    detail: list[ValidationErrorItem] | str | None | UnsetType = UNSET
    message: str | dict[str, Any] | None | UnsetType = UNSET
    object: str | None | UnsetType = UNSET
    type: str | None | UnsetType = UNSET
    param: Any = UNSET
    code: int | str | None | UnsetType = UNSET
    error: dict[str, Any] | None | UnsetType = UNSET
