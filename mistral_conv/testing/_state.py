"""The in-memory store of the local server: conversations and their entries."""

from __future__ import annotations

import random
import string
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from ..models import (
    AgentConversation,
    AgentHandoffEntry,
    CompletionArgs,
    Conversation,
    Entry,
    FunctionCallEntry,
    FunctionResultEntry,
    MessageInputEntry,
    MessageOutputEntry,
    ModelConversation,
    OutputEntry,
    ToolCallConfirmation,
    ToolExecutionEntry,
)

__all__ = [
    "Store",
    "StoredConversation",
    "apply_confirmations",
    "check_confirmations",
    "check_results",
    "echo_args",
    "input_entries",
    "new_id",
    "now",
    "stamp_output",
    "value",
]


def new_id(prefix: str) -> str:
    """An id in the API's style: a prefix and 32 hex digits."""
    return f"{prefix}_{uuid.uuid4().hex}"


def now() -> datetime:
    """The current time in UTC (encoded as RFC 3339 with microseconds and `Z`)."""
    return datetime.now(UTC)


@dataclass
class StoredConversation:
    """A conversation's record and its entries in append order."""

    record: Conversation
    entries: list[Entry] = field(default_factory=list)

    @property
    def model(self) -> str | None:
        return self.record.model if isinstance(self.record, ModelConversation) else None

    @property
    def agent_id(self) -> str | None:
        return self.record.agent_id if isinstance(self.record, AgentConversation) else None

    def touch(self) -> None:
        self.record = msgspec.structs.replace(self.record, updated_at=now())


class Store:
    """Conversations by id."""

    def __init__(self) -> None:
        self.conversations: dict[str, StoredConversation] = {}

    def get(self, conversation_id: str) -> StoredConversation | None:
        return self.conversations.get(conversation_id)

    def add(self, conversation: StoredConversation) -> None:
        self.conversations[conversation.record.id] = conversation

    def delete(self, conversation_id: str) -> bool:
        return self.conversations.pop(conversation_id, None) is not None

    def page(self, page: int, page_size: int, metadata: Any) -> list[Conversation]:
        """Newest first; `metadata`, when an object, must match key by key."""
        items = sorted(self.conversations.values(), key=lambda c: c.record.created_at, reverse=True)
        records = [c.record for c in items]
        if isinstance(metadata, dict) and metadata:
            records = [
                r
                for r in records
                if isinstance(r.metadata, dict) and all(r.metadata.get(k) == v for k, v in metadata.items())
            ]
        return records[page * page_size : (page + 1) * page_size]


def value(v: Any) -> Any:
    """`None` for an unset field, else the value."""
    return None if v is msgspec.UNSET else v


def echo_args(args: CompletionArgs | None) -> CompletionArgs:
    """Completion args as the server echoes them: every key, null when unset, tool_choice "auto"."""
    values: dict[str, Any] = {
        f: value(getattr(args, f)) if args else None for f in CompletionArgs.__struct_fields__
    }
    values["tool_choice"] = values["tool_choice"] or "auto"
    return CompletionArgs(**values)


def input_entries(inputs: Any) -> list[Entry]:
    """A request's `inputs` as entries, with ids and timestamps as the server stores them."""
    if inputs is msgspec.UNSET or inputs is None:
        return []
    if isinstance(inputs, str):
        inputs = [MessageInputEntry(role="user", content=inputs)]
    stamp = now()
    out: list[Entry] = []
    for e in inputs:
        prefix = "fr" if isinstance(e, FunctionResultEntry) else "msg"
        out.append(msgspec.structs.replace(e, id=new_id(prefix), created_at=stamp, completed_at=None))
    return out


def stamp_output(entry: OutputEntry, conversation: StoredConversation) -> OutputEntry:
    """An output entry with its id, timestamps and model or agent filled in."""
    stamp = now()
    who: dict[str, Any] = {
        "model": conversation.model or "mistral-medium-latest",
        "agent_id": conversation.agent_id,
    }
    if isinstance(entry, MessageOutputEntry):
        return msgspec.structs.replace(entry, id=new_id("msg"), created_at=stamp, completed_at=stamp, **who)
    if isinstance(entry, FunctionCallEntry):
        call_id = entry.tool_call_id or "".join(random.choices(string.ascii_letters + string.digits, k=9))
        return msgspec.structs.replace(
            entry, id=new_id("fc"), created_at=stamp, completed_at=None, tool_call_id=call_id, **who
        )
    if isinstance(entry, ToolExecutionEntry):
        return msgspec.structs.replace(
            entry, id=new_id("tool_exec"), created_at=stamp, completed_at=stamp, **who
        )
    if isinstance(entry, AgentHandoffEntry):
        return msgspec.structs.replace(entry, id=new_id("handoff"), created_at=stamp, completed_at=stamp)
    return entry


def check_results(history: list[Entry], inputs: list[Entry]) -> list[dict[str, Any]]:
    """Validation errors for `function.result` inputs answering no call of the conversation.

    A call counts when the stored history holds it, or when it comes earlier in the same inputs.
    """
    issued = {e.tool_call_id for e in history if isinstance(e, FunctionCallEntry)}
    problems: list[dict[str, Any]] = []
    for i, entry in enumerate(inputs):
        if isinstance(entry, FunctionCallEntry):
            issued.add(entry.tool_call_id)
        elif isinstance(entry, FunctionResultEntry) and entry.tool_call_id not in issued:
            message = f"No function.call with tool_call_id {entry.tool_call_id!r} in this conversation"
            problems.append(_problem(["body", "inputs", i, "tool_call_id"], message, entry.tool_call_id))
    return problems


def _problem(loc: list[Any], message: str, value: str) -> dict[str, Any]:
    """One item of a 422's `detail`."""
    return {"loc": loc, "msg": message, "type": "value_error", "input": value}


def check_confirmations(
    history: list[Entry], confirmations: list[ToolCallConfirmation]
) -> list[dict[str, Any]]:
    """Validation errors for confirmations naming no pending `function.call` (or one twice)."""
    pending = {
        e.tool_call_id
        for e in history
        if isinstance(e, FunctionCallEntry) and e.confirmation_status == "pending"
    }
    problems: list[dict[str, Any]] = []
    for i, confirmation in enumerate(confirmations):
        if confirmation.tool_call_id in pending:
            pending.discard(confirmation.tool_call_id)
            continue
        message = f"No pending function.call with tool_call_id {confirmation.tool_call_id!r}"
        loc = ["body", "tool_confirmations", i, "tool_call_id"]
        problems.append(_problem(loc, message, confirmation.tool_call_id))
    return problems


def apply_confirmations(history: list[Entry], confirmations: list[ToolCallConfirmation]) -> list[Entry]:
    """`history` with each confirmed call's `confirmation_status` set to allowed or denied."""
    answers = {c.tool_call_id: c.confirmation for c in confirmations}
    if not answers:
        return list(history)
    out: list[Entry] = []
    for e in history:
        if (
            isinstance(e, FunctionCallEntry)
            and e.confirmation_status == "pending"
            and e.tool_call_id in answers
        ):
            status = "allowed" if answers[e.tool_call_id] == "allow" else "denied"
            e = msgspec.structs.replace(e, confirmation_status=status)
        out.append(e)
    return out
