"""What the local server answers: a default deterministic responder and a scripted one."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from msgspec import UNSET

from ..models import (
    AgentHandoffEntry,
    CompletionArgs,
    ConversationUsage,
    Entry,
    FunctionCallEntry,
    FunctionResultEntry,
    MessageInputEntry,
    MessageOutputEntry,
    OutputEntry,
    Tool,
    ToolCallConfirmation,
    ToolExecutionEntry,
    content_text,
)

__all__ = [
    "DefaultResponder",
    "Failure",
    "Responder",
    "ScriptedResponder",
    "Turn",
    "TurnContext",
    "call_function",
    "fail",
    "hand_off",
    "reply_text",
    "run_tool",
]


@dataclass(frozen=True)
class Failure:
    """A run that fails: a `conversation.response.error` event, or an HTTP 500 when not streamed."""

    message: str
    code: int = 3000


Output = OutputEntry | Failure


@dataclass
class TurnContext:
    """What a responder sees: the conversation so far and the new inputs.

    `history` already shows this request's confirmations (a confirmed call's
    `confirmation_status` is `"allowed"` or `"denied"`). `confirmations`: the
    `tool_confirmations` this append sent (empty otherwise). `completion_args`: what
    the request sent (`None` when it sent none). `tools`: the start request's tools,
    or the conversation's stored ones on append and restart (empty for agents).
    """

    conversation_id: str
    model: str | None
    agent_id: str | None
    history: list[Entry]
    inputs: list[Entry]
    confirmations: list[ToolCallConfirmation] = field(default_factory=list)
    completion_args: CompletionArgs | None = None
    tools: list[Tool] = field(default_factory=list)


@dataclass
class Turn:
    """A responder's answer: output entries (ids are filled in by the server), then maybe a failure."""

    outputs: list[OutputEntry] = field(default_factory=list)
    failure: Failure | None = None
    usage: ConversationUsage | None = None


class Responder(Protocol):
    """Anything that turns a `TurnContext` into a `Turn`."""

    def __call__(self, context: TurnContext) -> Turn: ...


def reply_text(text: str) -> MessageOutputEntry:
    """An assistant message."""
    return MessageOutputEntry(content=text)


def call_function(
    name: str, arguments: str | dict[str, Any], tool_call_id: str | None = None, *, pending: bool = False
) -> FunctionCallEntry:
    """A function call for the client to run (its `tool_call_id` is generated when not given).

    `pending=True`: the run paused before a tool that needs confirmation (the entry carries
    `confirmation_status="pending"`); answer it with an append's `tool_confirmations`.
    """
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return FunctionCallEntry(
        tool_call_id=tool_call_id or "",
        name=name,
        arguments=args,
        confirmation_status="pending" if pending else UNSET,
    )


def run_tool(name: str, arguments: str = "", info: dict[str, Any] | None = None) -> ToolExecutionEntry:
    """A server-side tool execution (web_search, code_interpreter, a connector, …)."""
    return ToolExecutionEntry(name=name, arguments=arguments, info=info if info is not None else {})


def hand_off(
    previous_agent_id: str, previous_agent_name: str, next_agent_id: str, next_agent_name: str
) -> AgentHandoffEntry:
    """A handoff between two agents."""
    return AgentHandoffEntry(
        previous_agent_id=previous_agent_id,
        previous_agent_name=previous_agent_name,
        next_agent_id=next_agent_id,
        next_agent_name=next_agent_name,
    )


def fail(message: str = "Response failed during handoff orchestration", code: int = 3000) -> Failure:
    """A failed run, as the API reports it."""
    return Failure(message, code)


def _words(entries: Iterable[Entry]) -> int:
    n = 0
    for e in entries:
        if isinstance(e, MessageInputEntry | MessageOutputEntry):
            n += len(content_text(e.content).split())
        elif isinstance(e, FunctionResultEntry):
            n += len(e.result.split())
    return n


def usage_for(context: TurnContext, outputs: Sequence[OutputEntry]) -> ConversationUsage:
    """Deterministic token counts: one token a word."""
    prompt = _words(context.history) + _words(context.inputs) + 1
    completion = _words(outputs) + 1
    return ConversationUsage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


class DefaultResponder:
    """A short deterministic answer derived from the last input."""

    def __call__(self, context: TurnContext) -> Turn:
        last = context.inputs[-1] if context.inputs else None
        if isinstance(last, FunctionResultEntry):
            text = f"The function returned {last.result}."
        elif isinstance(last, MessageInputEntry):
            said = content_text(last.content).strip()
            text = f'You said: "{said}". This answer comes from the local Conversations server.'
        elif context.confirmations:
            answers = ", ".join(f"{c.tool_call_id}: {c.confirmation}" for c in context.confirmations)
            text = f"Tool confirmations received ({answers})."
        else:
            text = "This answer comes from the local Conversations server."
        outputs: list[OutputEntry] = [reply_text(text)]
        return Turn(outputs, usage=usage_for(context, outputs))


class ScriptedResponder:
    """Plays queued turns in order; each turn is a list of outputs, and may end with a `fail`.

    When the script runs out, `fallback` answers (the default responder unless given).
    """

    def __init__(self, turns: Iterable[Sequence[Output]] = (), fallback: Responder | None = None) -> None:
        self._turns: deque[Sequence[Output]] = deque(turns)
        self._fallback = fallback or DefaultResponder()

    def add(self, *outputs: Output) -> None:
        """Queue one more turn."""
        self._turns.append(outputs)

    @property
    def remaining(self) -> int:
        """Turns not played yet."""
        return len(self._turns)

    def __call__(self, context: TurnContext) -> Turn:
        if not self._turns:
            return self._fallback(context)
        items = self._turns.popleft()
        outputs = [o for o in items if not isinstance(o, Failure)]
        failure = next((o for o in items if isinstance(o, Failure)), None)
        return Turn(outputs, failure, usage_for(context, outputs))
