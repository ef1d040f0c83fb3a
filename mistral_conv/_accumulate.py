"""Stream accumulation: `accumulate(state, event) -> state`, and the response it rebuilds.

`accumulate` does no I/O and touches nothing but `state`; it is linear in
the length of the stream (text fragments are collected and joined once, by
`StreamState.response`). Rebuilding follows the wire reference §7.3:
entries are keyed by `output_index` and `id`; string deltas with the same
`content_index` concatenate; a chunk object takes its own index; function
call and tool arguments concatenate in arrival order; consecutive thinking
deltas at one `content_index` merge.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from msgspec import UNSET

from .models import (
    AgentHandoffDoneEvent,
    AgentHandoffEntry,
    AgentHandoffStartedEvent,
    Chunk,
    ConversationEvent,
    ConversationResponse,
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
    ThinkChunk,
    ToolExecutionDeltaEvent,
    ToolExecutionDoneEvent,
    ToolExecutionEntry,
    ToolExecutionStartedEvent,
    UnknownEvent,
)

__all__ = ["StreamState", "accumulate", "accumulate_batch"]


class _Message:
    __slots__ = ("all_text", "event", "last_index", "pieces", "text")

    def __init__(self, event: MessageOutputDeltaEvent) -> None:
        self.event = event
        self.pieces: list[list[str] | Chunk] = []
        self.text: list[str] | None = None
        self.last_index = -1
        self.all_text = True

    def add(self, index: int, content: str | Chunk) -> None:
        if isinstance(content, str):
            if self.text is not None and index == self.last_index:
                self.text.append(content)
                return
            self.text = [content]
            self.pieces.append(self.text)
        else:
            self.all_text = False
            self.text = None
            last = self.pieces[-1] if self.pieces else None
            if isinstance(content, ThinkChunk) and index == self.last_index and isinstance(last, ThinkChunk):
                last.thinking.extend(content.thinking)
            elif isinstance(content, ThinkChunk):
                self.pieces.append(
                    ThinkChunk(
                        thinking=list(content.thinking), signature=content.signature, closed=content.closed
                    )
                )
            else:
                self.pieces.append(content)
        self.last_index = index

    def entry(self) -> MessageOutputEntry:
        e = self.event
        content: str | list[Chunk]
        if self.all_text:
            content = "".join(s for piece in self.pieces for s in piece)  # type: ignore[union-attr]
        else:
            chunks: list[Chunk] = []
            for piece in self.pieces:
                if isinstance(piece, list):
                    chunks.append(TextChunk(text="".join(piece)))
                elif isinstance(piece, ThinkChunk):
                    # A new chunk each time: a snapshot must not change when later deltas extend
                    # the builder's own chunk.
                    chunks.append(
                        ThinkChunk(
                            thinking=_merge_text(piece.thinking),
                            signature=piece.signature,
                            closed=piece.closed,
                        )
                    )
                else:
                    chunks.append(piece)
            content = _merge_text(chunks)
        return MessageOutputEntry(id=e.id, content=content, model=e.model, agent_id=e.agent_id)


C = TypeVar("C", bound=msgspec.Struct)


def _merge_text(chunks: list[C]) -> list[C]:
    """Adjacent text chunks merged into one (each run joined once: linear)."""
    out: list[C] = []
    run: list[str] = []
    for chunk in chunks:
        if isinstance(chunk, TextChunk):
            run.append(chunk.text)
            continue
        if run:
            out.append(TextChunk(text="".join(run)))  # type: ignore[arg-type]
            run = []
        out.append(chunk)
    if run:
        out.append(TextChunk(text="".join(run)))  # type: ignore[arg-type]
    return out


class _FunctionCall:
    __slots__ = ("args", "event")

    def __init__(self, event: FunctionCallDeltaEvent) -> None:
        self.event = event
        self.args: list[str] = []

    def entry(self) -> FunctionCallEntry:
        e = self.event
        return FunctionCallEntry(
            id=e.id,
            tool_call_id=e.tool_call_id,
            name=e.name,
            arguments="".join(self.args),
            model=e.model,
            agent_id=e.agent_id,
            confirmation_status=e.confirmation_status,
        )


class _ToolExecution:
    # `head`: the arguments of started events (normally one), which come before every delta's.
    __slots__ = ("args", "event", "head", "info", "name")

    def __init__(
        self, event: ToolExecutionStartedEvent | ToolExecutionDeltaEvent | ToolExecutionDoneEvent
    ) -> None:
        self.event = event
        self.name = event.name
        self.head: list[str] = []
        self.args: list[str] = []
        self.info: dict[str, Any] | Any = UNSET

    def entry(self) -> ToolExecutionEntry:
        e = self.event
        arguments = "".join(reversed(self.head)) + "".join(self.args)
        entry = ToolExecutionEntry(id=e.id, name=self.name, arguments=arguments, info=self.info)
        if isinstance(e, ToolExecutionStartedEvent):
            entry.model, entry.agent_id = e.model, e.agent_id
        return entry


class _Handoff:
    __slots__ = ("done", "id", "started")

    def __init__(self, event_id: str) -> None:
        self.id = event_id
        self.started: AgentHandoffStartedEvent | None = None
        self.done: AgentHandoffDoneEvent | None = None

    def entry(self) -> AgentHandoffEntry:
        s, d = self.started, self.done
        return AgentHandoffEntry(
            id=self.id,
            previous_agent_id=s.previous_agent_id if s else "",
            previous_agent_name=s.previous_agent_name if s else "",
            next_agent_id=d.next_agent_id if d else "",
            next_agent_name=d.next_agent_name if d else "",
        )


_Builder = _Message | _FunctionCall | _ToolExecution | _Handoff


class StreamState:
    """What a stream has delivered so far. `response()` rebuilds it as a ConversationResponse."""

    __slots__ = ("builders", "conversation_id", "done", "error", "events", "hot", "usage")

    def __init__(self) -> None:
        # The text run the last string delta extended: (id, output_index, content_index, parts).
        self.hot: tuple[str, int, int, list[str]] | None = None
        self.conversation_id: str | None = None
        self.builders: dict[tuple[int, str], _Builder] = {}
        self.usage: ConversationUsage | None = None
        self.done = False
        self.error: ResponseErrorEvent | None = None
        self.events = 0

    def response(self) -> ConversationResponse:
        """The response as far as it arrived (usage is zero until the done event)."""
        order = sorted(self.builders.items(), key=lambda kv: kv[0][0])
        outputs: list[OutputEntry] = [b.entry() for _, b in order]
        return ConversationResponse(
            conversation_id=self.conversation_id or "",
            outputs=outputs,
            usage=self.usage or ConversationUsage(),
        )

    @property
    def text(self) -> str:
        """The text of every message so far."""
        return self.response().output_text


def accumulate(state: StreamState, event: ConversationEvent | UnknownEvent) -> StreamState:
    """Fold one event into `state` and return it."""
    state.events += 1
    state.hot = None
    if isinstance(event, MessageOutputDeltaEvent):
        key = (event.output_index, event.id)
        b = state.builders.get(key)
        if not isinstance(b, _Message):
            b = state.builders[key] = _Message(event)
        b.add(event.content_index, event.content)
        if b.text is not None:
            state.hot = (event.id, event.output_index, event.content_index, b.text)
    elif isinstance(event, FunctionCallDeltaEvent):
        key = (event.output_index, event.id)
        f = state.builders.get(key)
        if not isinstance(f, _FunctionCall):
            f = state.builders[key] = _FunctionCall(event)
        f.args.append(event.arguments)
        f.event = event
    elif isinstance(event, ToolExecutionStartedEvent | ToolExecutionDeltaEvent | ToolExecutionDoneEvent):
        _tool(state, event)
    elif isinstance(event, AgentHandoffStartedEvent | AgentHandoffDoneEvent):
        key = (event.output_index, event.id)
        h = state.builders.get(key)
        if not isinstance(h, _Handoff):
            h = state.builders[key] = _Handoff(event.id)
        if isinstance(event, AgentHandoffStartedEvent):
            h.started = event
        else:
            h.done = event
    elif isinstance(event, ResponseStartedEvent):
        state.conversation_id = event.conversation_id
    elif isinstance(event, ResponseDoneEvent):
        state.usage = event.usage
        state.done = True
    elif isinstance(event, ResponseErrorEvent):
        state.error = event
    return state


def accumulate_batch(
    state: StreamState, events: list[ConversationEvent | UnknownEvent], texts: list[str] | None = None
) -> StreamState:
    """Fold `events` into `state`: exactly `accumulate` on each, with a fast path for runs of
    string deltas that extend the same text (the bulk of every stream).

    When `texts` is given, the string deltas of `events` are appended to it, in order.
    """
    extended = 0
    i, n = 0, len(events)
    while i < n:
        hot = state.hot
        if hot is not None:
            hot_id, hot_output, hot_content, parts = hot
            append = parts.append
            start = len(parts)
            for event in events[i:] if i else events:
                if (
                    event.__class__ is not MessageOutputDeltaEvent
                    or event.id != hot_id
                    or event.content_index != hot_content
                    or event.output_index != hot_output
                ):
                    break
                content = event.content
                if content.__class__ is not str:
                    break
                append(content)
            taken = len(parts) - start
            if taken:
                i += taken
                extended += taken
                if texts is not None:
                    texts += parts[start:]
            if i == n:
                break
        event = events[i]
        accumulate(state, event)
        if (
            texts is not None
            and event.__class__ is MessageOutputDeltaEvent
            and event.content.__class__ is str
        ):
            texts.append(event.content)
        i += 1
    state.events += extended
    return state


def _tool(
    state: StreamState,
    event: ToolExecutionStartedEvent | ToolExecutionDeltaEvent | ToolExecutionDoneEvent,
) -> None:
    key = (event.output_index, event.id)
    b = state.builders.get(key)
    if not isinstance(b, _ToolExecution):
        b = state.builders[key] = _ToolExecution(event)
    if isinstance(event, ToolExecutionStartedEvent):
        b.event = event
        b.head.append(event.arguments)  # each goes before the ones already seen: joined reversed
    elif isinstance(event, ToolExecutionDeltaEvent):
        b.args.append(event.arguments)
    else:
        b.info = event.info
