"""Request bodies of start, append and restart (and their stream variants).

Unset fields are never sent. Like the official SDK, `stream` is always
sent, and append and restart always send `store` and `handoff_execution`
(the API's defaults), so that bodies are explicit about what they ask for.
"""

from typing import Any, TypeAlias

from msgspec import UNSET, UnsetType

from ._base import Model
from .entries import Entry
from .literals import HandoffExecution
from .tools import CompletionArgs, GuardrailConfig, Tool, ToolCallConfirmation

__all__ = [
    "AppendRequest",
    "HandoffExecution",
    "Inputs",
    "RestartRequest",
    "StartRequest",
]

Inputs: TypeAlias = str | list[Entry]


class StartRequest(Model, kw_only=True):
    """Body of `POST /v1/conversations`: exactly one of `model` / `agent_id`."""

    inputs: Inputs
    stream: bool = False
    store: bool | None | UnsetType = UNSET
    handoff_execution: HandoffExecution | None | UnsetType = UNSET
    instructions: str | None | UnsetType = UNSET
    tools: list[Tool] | None | UnsetType = UNSET
    completion_args: CompletionArgs | None | UnsetType = UNSET
    guardrails: list[GuardrailConfig] | None | UnsetType = UNSET
    name: str | None | UnsetType = UNSET
    description: str | None | UnsetType = UNSET
    metadata: dict[str, Any] | None | UnsetType = UNSET
    agent_id: str | None | UnsetType = UNSET
    agent_version: str | int | None | UnsetType = UNSET
    model: str | None | UnsetType = UNSET


class AppendRequest(Model, kw_only=True):
    """Body of `POST /v1/conversations/{id}`."""

    inputs: Inputs | UnsetType = UNSET
    stream: bool = False
    store: bool = True
    handoff_execution: HandoffExecution = "server"
    completion_args: CompletionArgs | UnsetType = UNSET
    tool_confirmations: list[ToolCallConfirmation] | None | UnsetType = UNSET


class RestartRequest(Model, kw_only=True):
    """Body of `POST /v1/conversations/{id}/restart`."""

    from_entry_id: str
    inputs: Inputs | UnsetType = UNSET
    stream: bool = False
    store: bool = True
    handoff_execution: HandoffExecution = "server"
    completion_args: CompletionArgs | UnsetType = UNSET
    guardrails: list[GuardrailConfig] | None | UnsetType = UNSET
    metadata: dict[str, Any] | None | UnsetType = UNSET
    agent_version: str | int | None | UnsetType = UNSET
