"""Server-sent events of the stream endpoints, a tagged union on `type`."""

from datetime import datetime
from typing import Any, ClassVar, Literal, TypeAlias

from msgspec import UNSET, UnsetType

from ._base import Tagged
from .chunks import Chunk
from .literals import ConfirmationStatus
from .responses import ConversationUsage

__all__ = [
    "AgentHandoffDoneEvent",
    "AgentHandoffStartedEvent",
    "ConversationEvent",
    "FunctionCallDeltaEvent",
    "KnownEvent",
    "MessageOutputDeltaEvent",
    "ResponseDoneEvent",
    "ResponseErrorEvent",
    "ResponseStartedEvent",
    "ToolExecutionDeltaEvent",
    "ToolExecutionDoneEvent",
    "ToolExecutionStartedEvent",
    "UnknownEvent",
]


class _Event(Tagged, kw_only=True):
    created_at: datetime | UnsetType = UNSET


class _OutputEvent(_Event, kw_only=True):
    id: str
    output_index: int = 0


class ResponseStartedEvent(_Event, tag="conversation.response.started", kw_only=True):
    """The run started; `conversation_id` is the id to append to next."""

    type: ClassVar[Literal["conversation.response.started"]] = "conversation.response.started"
    conversation_id: str


class ResponseDoneEvent(_Event, tag="conversation.response.done", kw_only=True):
    """The run finished; the stream ends after it."""

    type: ClassVar[Literal["conversation.response.done"]] = "conversation.response.done"
    usage: ConversationUsage


class ResponseErrorEvent(_Event, tag="conversation.response.error", kw_only=True):
    """The run failed; the stream ends after it."""

    type: ClassVar[Literal["conversation.response.error"]] = "conversation.response.error"
    message: str
    code: int


class MessageOutputDeltaEvent(_OutputEvent, tag="message.output.delta", kw_only=True):
    """A piece of an assistant message: a text fragment, or one whole chunk object."""

    type: ClassVar[Literal["message.output.delta"]] = "message.output.delta"
    content: str | Chunk
    content_index: int = 0
    model: str | None | UnsetType = UNSET
    agent_id: str | None | UnsetType = UNSET
    role: str = "assistant"


class FunctionCallDeltaEvent(_OutputEvent, tag="function.call.delta", kw_only=True):
    """A fragment of a function call's `arguments`; concatenate per `output_index`."""

    type: ClassVar[Literal["function.call.delta"]] = "function.call.delta"
    name: str
    tool_call_id: str
    arguments: str
    model: str | None | UnsetType = UNSET
    agent_id: str | None | UnsetType = UNSET
    confirmation_status: ConfirmationStatus | None | UnsetType = UNSET


class ToolExecutionStartedEvent(_OutputEvent, tag="tool.execution.started", kw_only=True):
    """A server-side tool started (`arguments` defaults to `""`: older streams lack it)."""

    type: ClassVar[Literal["tool.execution.started"]] = "tool.execution.started"
    name: str
    arguments: str = ""
    model: str | None | UnsetType = UNSET
    agent_id: str | None | UnsetType = UNSET


class ToolExecutionDeltaEvent(_OutputEvent, tag="tool.execution.delta", kw_only=True):
    """A fragment of a tool execution's arguments."""

    type: ClassVar[Literal["tool.execution.delta"]] = "tool.execution.delta"
    name: str
    arguments: str


class ToolExecutionDoneEvent(_OutputEvent, tag="tool.execution.done", kw_only=True):
    """A server-side tool finished; `info` holds its details."""

    type: ClassVar[Literal["tool.execution.done"]] = "tool.execution.done"
    name: str
    info: dict[str, Any] | UnsetType = UNSET


class AgentHandoffStartedEvent(_OutputEvent, tag="agent.handoff.started", kw_only=True):
    """A handoff started, away from `previous_agent_id`."""

    type: ClassVar[Literal["agent.handoff.started"]] = "agent.handoff.started"
    previous_agent_id: str
    previous_agent_name: str


class AgentHandoffDoneEvent(_OutputEvent, tag="agent.handoff.done", kw_only=True):
    """A handoff finished, to `next_agent_id`."""

    type: ClassVar[Literal["agent.handoff.done"]] = "agent.handoff.done"
    next_agent_id: str
    next_agent_name: str


class UnknownEvent(Tagged, tag="mistral_conv.unknown", kw_only=True):
    """An event this SDK version cannot decode: an unknown `type`, or a payload that
    does not match its type. `type` is `"unknown"`; `type_name` is the type the
    server sent (empty when it sent none) and `data` the raw JSON bytes."""

    type: ClassVar[Literal["unknown"]] = "unknown"
    type_name: str
    data: bytes


KnownEvent: TypeAlias = (
    ResponseStartedEvent
    | ResponseDoneEvent
    | ResponseErrorEvent
    | MessageOutputDeltaEvent
    | FunctionCallDeltaEvent
    | ToolExecutionStartedEvent
    | ToolExecutionDeltaEvent
    | ToolExecutionDoneEvent
    | AgentHandoffStartedEvent
    | AgentHandoffDoneEvent
)
"""Any event of a type this SDK version knows."""

ConversationEvent: TypeAlias = KnownEvent | UnknownEvent
"""Any event a stream yields: a known one, or an `UnknownEvent`."""
