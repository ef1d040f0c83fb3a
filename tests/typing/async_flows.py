"""The async client as a typed user meets it: calls, narrowing, restart from history, streams, errors."""

from __future__ import annotations

from typing import assert_type

import msgspec

import mistral_conv as mc
from mistral_conv.models import (
    ConversationEvent,
    ConversationHistory,
    ConversationResponse,
    Entry,
    FunctionCallEntry,
    MessageOutputDeltaEvent,
    MessageOutputEntry,
    ResponseDoneEvent,
    UnknownEvent,
)
from mistral_conv.types import CompletionArgsParam, FunctionToolParam


def describe(event: ConversationEvent) -> str:
    """``event.type ==`` narrows the union, Unknown variant included."""
    if event.type == "message.output.delta":
        assert_type(event, MessageOutputDeltaEvent)
        return event.content if isinstance(event.content, str) else event.content.type
    if event.type == "conversation.response.done":
        assert_type(event, ResponseDoneEvent)
        return str(event.usage.total_tokens)
    if event.type == "unknown":
        assert_type(event, UnknownEvent)
        return event.type_name
    return event.type


def entry_text(entry: Entry) -> str:
    if entry.type == "message.output":
        assert_type(entry, MessageOutputEntry)
        return str(entry.content)
    if entry.type == "function.call":
        assert_type(entry, FunctionCallEntry)
        return entry.name
    return entry.type


async def run(client: mc.AsyncConversationsClient) -> list[str]:
    args: CompletionArgsParam = {"temperature": 0.2, "tool_choice": "auto", "reasoning_effort": "low"}
    weather: FunctionToolParam = {
        "type": "function",
        "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}},
    }
    first = await client.start(
        inputs="Hello", model="mistral-small-latest", completion_args=args, tools=[weather]
    )
    assert_type(first, ConversationResponse)
    assert_type(first.request_id, str | None)
    assert_type(first.raw_response, mc.ResponseInfo | None)

    history = await client.history(first.conversation_id)
    assert_type(history, ConversationHistory)
    # Restart from an entry of the history: ids of server entries are plain str.
    branch_from = history.entries[-1].id
    assert_type(branch_from, str)
    branch = await client.restart(first.conversation_id, from_entry_id=branch_from, inputs="Again")

    seen: list[str] = [entry_text(e) for e in history.entries]
    async with client.append_stream(branch.conversation_id, inputs="Stream it") as stream:
        assert_type(stream, mc.ConversationStream)
        async for event in stream:
            seen.append(describe(event))
    assert_type(stream.request_id, str | None)
    final = await stream.final_response()
    seen.append(final.output_text)

    page = await client.list(page_size=10)
    assert_type(page, mc.ConversationPage)
    seen += [c.id for c in page]
    info = await client.delete(branch.conversation_id)
    assert_type(info, mc.ResponseInfo)
    try:
        await client.get(branch.conversation_id)
    except mc.NotFoundError as exc:
        assert_type(exc.status, int)
        seen.append(exc.request_id or "")
    except mc.APIError as exc:
        assert_type(exc.request_id, str | None)
        raise
    return seen


class Person(msgspec.Struct):
    name: str
    age: int


def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


async def run_with_tools(client: mc.AsyncConversationsClient) -> str:
    conversation = client.conversation(model="mistral-small-latest", tools=[weather], output_type=Person)
    assert_type(conversation, mc.ConversationHandle[Person])
    out: list[str] = []
    async with conversation.stream("Who is Ada?") as run:
        async for event in run:
            if event.type == "local.tool.started":
                assert_type(event, mc.ToolCallStartedEvent)
                out.append(event.name)
            elif event.type == "local.function.result":
                out.append(event.entry.result)
        result = await run.final_result()
    assert_type(result, mc.RunResult[Person])
    assert_type(result.parsed, Person | None)
    if result.status == "paused" and result.state is not None:
        state = msgspec.json.decode(msgspec.json.encode(result.state), type=mc.RunState)
        result = await conversation.resume(state, {p.tool_call_id: "allow" for p in state.pending})
    if result.parsed is not None:
        out.append(result.parsed.name)
    return " ".join(out)


async def run_observed(base_url: str, api_key: str) -> list[str]:
    """Hooks with their typed events, and the pool's statistics."""
    seen: list[str] = []

    def on_request(event: mc.RequestEvent) -> None:
        seen.append(f"{event.operation} #{event.attempt}")

    def on_response(event: mc.ResponseEvent) -> None:
        assert_type(event.status, int | None)
        seen.append(f"{event.status} {event.request_id is not None}")

    def on_retry(event: mc.RetryEvent) -> None:
        assert_type(event.delay, float)
        seen.append(f"retry {event.error_type}")

    async with mc.AsyncConversationsClient(
        api_key, base_url=base_url, on_request=on_request, on_response=on_response, on_retry=on_retry
    ) as client:
        await client.start(model="mistral-small-latest", inputs="Hello")
        stats = client.pool_stats()
        assert_type(stats, mc.PoolStats | None)
        if stats is not None:
            seen.append(f"pool {stats.open} {stats.in_use} {stats.waiting} {stats.limit}")
    return seen
