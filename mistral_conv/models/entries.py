"""Conversation entries: the items of `inputs`, `outputs`, history and messages.

Every entry is a member of a tagged union on `type`. Fields that the API
may omit default to `msgspec.UNSET` (absent), which is distinct from
`None` (sent as `null`); both occur in real payloads.
"""

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias, cast

from msgspec import UNSET, UnsetType

from ._base import Tagged, Unknown
from .chunks import Chunk
from .literals import ConfirmationStatus, Role

__all__ = [
    "AgentHandoffEntry",
    "Entry",
    "FunctionCallEntry",
    "FunctionResultEntry",
    "MessageEntry",
    "MessageInputEntry",
    "MessageOutputEntry",
    "OutputEntry",
    "ToolExecutionEntry",
    "UnknownEntry",
]


class _Entry(Tagged, kw_only=True):
    object: str = "entry"
    if TYPE_CHECKING:
        id: str = cast("str", UNSET)
        """The entry's id. Every entry the server returns has one, so it is typed `str`; on an
        entry built here it is `msgspec.UNSET` (falsy) and is not sent."""
    else:
        id: str | UnsetType = UNSET
    created_at: datetime | UnsetType = UNSET
    completed_at: datetime | None | UnsetType = UNSET


class MessageInputEntry(_Entry, tag="message.input", kw_only=True):
    """A user message, or an assistant prefill with `prefix=True`."""

    type: ClassVar[Literal["message.input"]] = "message.input"
    role: Role
    content: str | list[Chunk]
    prefix: bool = False


class MessageOutputEntry(_Entry, tag="message.output", kw_only=True):
    """An assistant message."""

    type: ClassVar[Literal["message.output"]] = "message.output"
    content: str | list[Chunk]
    role: Literal["assistant"] = "assistant"
    agent_id: str | None | UnsetType = UNSET
    model: str | None | UnsetType = UNSET


class FunctionCallEntry(_Entry, tag="function.call", kw_only=True):
    """A call of a client-side function; answer it with a `FunctionResultEntry`.

    `arguments` is usually a JSON-encoded string, sometimes an object.
    `confirmation_status` is `"pending"` when the server waits for a
    tool confirmation.
    """

    type: ClassVar[Literal["function.call"]] = "function.call"
    tool_call_id: str
    name: str
    arguments: str | dict[str, Any]
    agent_id: str | None | UnsetType = UNSET
    model: str | None | UnsetType = UNSET
    confirmation_status: ConfirmationStatus | None | UnsetType = UNSET


class FunctionResultEntry(_Entry, tag="function.result", kw_only=True):
    """The result of a function call; `result` is a string (JSON-encode structured results)."""

    type: ClassVar[Literal["function.result"]] = "function.result"
    tool_call_id: str
    result: str


class ToolExecutionEntry(_Entry, tag="tool.execution", kw_only=True):
    """A server-side tool run (built-in tool or connector).

    `arguments` defaults to `""`: payloads from before July 2025 lack it.
    """

    type: ClassVar[Literal["tool.execution"]] = "tool.execution"
    name: str
    arguments: str = ""
    info: dict[str, Any] | UnsetType = UNSET
    agent_id: str | None | UnsetType = UNSET
    model: str | None | UnsetType = UNSET


class AgentHandoffEntry(_Entry, tag="agent.handoff", kw_only=True):
    """A handoff from one agent to another."""

    type: ClassVar[Literal["agent.handoff"]] = "agent.handoff"
    previous_agent_id: str
    previous_agent_name: str
    next_agent_id: str
    next_agent_name: str


class UnknownEntry(Unknown, kw_only=True):
    """An entry of a type this SDK version does not know; `data` keeps it whole."""

    @property
    def id(self) -> str:
        """The entry's id, read from `data` (empty when it has none)."""
        value = self.data.get("id")
        return value if isinstance(value, str) else ""


Entry: TypeAlias = (
    MessageInputEntry
    | MessageOutputEntry
    | FunctionCallEntry
    | FunctionResultEntry
    | ToolExecutionEntry
    | AgentHandoffEntry
    | UnknownEntry
)
"""Any entry: what `inputs` accepts and what history holds."""

OutputEntry: TypeAlias = (
    MessageOutputEntry | FunctionCallEntry | ToolExecutionEntry | AgentHandoffEntry | UnknownEntry
)
"""An entry that a run produces (`ConversationResponse.outputs`)."""

MessageEntry: TypeAlias = MessageInputEntry | MessageOutputEntry | UnknownEntry
"""An item of `ConversationMessages.messages`."""
