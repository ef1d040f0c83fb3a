"""The blocking client as a typed user meets it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import assert_type

import mistral_conv as mc
from mistral_conv.models import ConversationEvent, ConversationResponse, MessageOutputDeltaEvent


def text_of(stream: mc.SyncConversationStream) -> Iterator[str]:
    for event in stream:
        assert_type(event, ConversationEvent)
        if event.type == "message.output.delta":
            assert_type(event, MessageOutputDeltaEvent)
            if isinstance(event.content, str):
                yield event.content


def run(client: mc.ConversationsClient) -> str:
    first = client.start(inputs="Hello", model="mistral-small-latest")
    assert_type(first, ConversationResponse)
    history = client.history(first.conversation_id)
    branch = client.restart(first.conversation_id, from_entry_id=history.entries[0].id, inputs="Again")
    with client.append_stream(branch.conversation_id, inputs="More") as stream:
        assert_type(stream, mc.SyncConversationStream)
        text = "".join(text_of(stream))
    for conversation in client.iter_conversations(page_size=2):
        assert_type(conversation.id, str)
    try:
        client.append("conv_missing", inputs="x", max_retries=0)
    except mc.RequestOutcomeUnknownError as exc:
        assert_type(exc.attempts, int)
    except mc.APIStatusError as exc:
        assert_type(exc.status, int)
    return text


def run_with_tools(client: mc.ConversationsClient) -> str:
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    conversation = client.conversation(model="mistral-small-latest", tools=[add])
    result = conversation.send("1 + 2?")
    assert_type(result.rounds, int)
    with conversation.stream("2 + 3?") as run:
        texts = list(run.text_stream())
    return result.output_text + "".join(texts)


def run_observed(base_url: str, api_key: str) -> list[str]:
    """Hooks and pool statistics on the blocking client."""
    seen: list[str] = []

    def on_response(event: mc.ResponseEvent) -> None:
        seen.append(f"{event.operation} {event.status}")

    with mc.ConversationsClient(api_key, base_url=base_url, on_response=on_response) as client:
        client.start(model="mistral-small-latest", inputs="Hello")
        stats = client.pool_stats()
        assert_type(stats, mc.PoolStats | None)
        if stats is not None:
            seen.append(f"in use {stats.in_use}")
    return seen
