"""Output entries to stream events, and events to the exact SSE wire framing (§7.1)."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from ..models import (
    AgentHandoffDoneEvent,
    AgentHandoffEntry,
    AgentHandoffStartedEvent,
    ConversationEvent,
    ConversationUsage,
    FunctionCallDeltaEvent,
    FunctionCallEntry,
    MessageOutputDeltaEvent,
    MessageOutputEntry,
    OutputEntry,
    ResponseDoneEvent,
    ResponseErrorEvent,
    ResponseStartedEvent,
    TextChunk,
    ToolExecutionDoneEvent,
    ToolExecutionEntry,
    ToolExecutionStartedEvent,
    UnknownEntry,
)
from ._responders import Failure

__all__ = ["events_for", "frame"]

_encoder = msgspec.json.Encoder()


def _pieces(text: str, size: int) -> Iterator[str]:
    if not text:
        yield ""
        return
    for i in range(0, len(text), size):
        yield text[i : i + size]


def _entry_events(index: int, entry: OutputEntry, size: int) -> Iterator[ConversationEvent]:
    if isinstance(entry, MessageOutputEntry):
        assert isinstance(entry.id, str)
        common = {"id": entry.id, "output_index": index, "model": entry.model, "agent_id": entry.agent_id}
        chunks = [entry.content] if isinstance(entry.content, str) else entry.content
        for ci, chunk in enumerate(chunks):
            if isinstance(chunk, str | TextChunk):
                text = chunk if isinstance(chunk, str) else chunk.text
                for piece in _pieces(text, size):
                    yield MessageOutputDeltaEvent(content=piece, content_index=ci, **common)  # type: ignore[arg-type]
            else:
                yield MessageOutputDeltaEvent(content=chunk, content_index=ci, **common)  # type: ignore[arg-type]
    elif isinstance(entry, FunctionCallEntry):
        assert isinstance(entry.id, str)
        args = (
            entry.arguments
            if isinstance(entry.arguments, str)
            else msgspec.json.encode(entry.arguments).decode()
        )
        for piece in _pieces(args, size * 4):
            yield FunctionCallDeltaEvent(
                id=entry.id,
                output_index=index,
                name=entry.name,
                tool_call_id=entry.tool_call_id,
                arguments=piece,
                model=entry.model,
                agent_id=entry.agent_id,
                confirmation_status=entry.confirmation_status,
            )
    elif isinstance(entry, ToolExecutionEntry):
        assert isinstance(entry.id, str)
        yield ToolExecutionStartedEvent(
            id=entry.id,
            output_index=index,
            name=entry.name,
            arguments=entry.arguments,
            model=entry.model,
            agent_id=entry.agent_id,
        )
        yield ToolExecutionDoneEvent(id=entry.id, output_index=index, name=entry.name, info=entry.info)
    elif isinstance(entry, AgentHandoffEntry):
        assert isinstance(entry.id, str)
        yield AgentHandoffStartedEvent(
            id=entry.id,
            output_index=index,
            previous_agent_id=entry.previous_agent_id,
            previous_agent_name=entry.previous_agent_name,
        )
        yield AgentHandoffDoneEvent(
            id=entry.id,
            output_index=index,
            next_agent_id=entry.next_agent_id,
            next_agent_name=entry.next_agent_name,
        )
    elif isinstance(entry, UnknownEntry):  # pragma: no cover - responders produce known entries
        return


def events_for(
    conversation_id: str,
    outputs: list[OutputEntry],
    usage: ConversationUsage,
    failure: Failure | None,
    delta_chars: int,
) -> Iterator[ConversationEvent]:
    """The events a run streams: started, the outputs piece by piece, then done or error."""
    yield ResponseStartedEvent(conversation_id=conversation_id)
    for index, entry in enumerate(outputs):
        yield from _entry_events(index, entry, delta_chars)
    if failure is not None:
        yield ResponseErrorEvent(message=failure.message, code=failure.code)
    else:
        yield ResponseDoneEvent(usage=usage)


def frame(event: ConversationEvent) -> bytes:
    """One event in the wire framing: an `event:` line, one compact `data:` line, a blank line."""
    return b"event: " + event.type.encode() + b"\ndata: " + _encoder.encode(event) + b"\n\n"
