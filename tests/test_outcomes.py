"""Exactly-once turns: a start, append or restart whose outcome is unknown is never sent again.

The local server stores a turn before it answers, then the injected fault strikes: the
caller must get the answer or ``RequestOutcomeUnknownError``, and the conversation must
hold the turn at most once. With ``retry_unknown_outcome=True`` the caller asked for
resending, and gets it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

import mistral_conv as mc
from mistral_conv import AsyncConversationsClient, Timeout
from mistral_conv.models import ConversationResponse, MessageInputEntry
from mistral_conv.testing import Fault, LocalConversationsServer

from .conftest import FAST_BACKOFF

FAULTS = {
    "connection dropped": Fault.drop(),
    "body cut": Fault.disconnect(after_events=1),
    "stall past the read limit": Fault.stall(1.0, after_events=1),
}
OPERATIONS = ("start", "append", "restart")


@pytest.fixture
async def server() -> AsyncIterator[LocalConversationsServer]:
    async with LocalConversationsServer(delta_chars=2) as s:
        yield s


def stored(server: LocalConversationsServer, text: str) -> int:
    """How many times a turn with this input was stored, over every conversation."""
    return sum(
        1
        for conversation in server.store.conversations.values()
        for entry in conversation.entries
        if isinstance(entry, MessageInputEntry) and entry.content == text
    )


async def run_turn(
    client: AsyncConversationsClient, operation: str, stream: bool, text: str, cid: str, entry_id: str
) -> ConversationResponse:
    if operation == "start":
        if stream:
            async with client.start_stream(inputs=text, model="m") as s:
                return await s.final_response()
        return await client.start(inputs=text, model="m")
    if operation == "append":
        if stream:
            async with client.append_stream(cid, inputs=text) as s:
                return await s.final_response()
        return await client.append(cid, inputs=text)
    if stream:
        async with client.restart_stream(cid, from_entry_id=entry_id, inputs=text) as s:
            return await s.final_response()
    return await client.restart(cid, from_entry_id=entry_id, inputs=text)


async def trial(
    server: LocalConversationsServer, fault: Fault, operation: str, stream: bool, *, retry_unknown: bool
) -> tuple[ConversationResponse | mc.MistralError, str, str]:
    """Inject ``fault`` on one turn; return what the caller got, the turn's text and the conversation."""
    timeout = Timeout(connect=5, read=0.2, total=5, first_event=2)
    opt_in = {"retry_unknown_outcome": True} if retry_unknown else {}
    async with AsyncConversationsClient(
        "k", base_url=server.url, timeout=timeout, backoff=FAST_BACKOFF, max_retries=2, **opt_in
    ) as client:
        first = await client.start(inputs="setup", model="m")
        entry_id = (await client.history(first.conversation_id)).entries[-1].id
        assert isinstance(entry_id, str)
        text = f"PAY INVOICE {uuid.uuid4().hex[:8]}"
        server.inject(fault, times=1, method="POST")
        try:
            got: ConversationResponse | mc.MistralError = await run_turn(
                client, operation, stream, text, first.conversation_id, entry_id
            )
        except mc.MistralError as exc:
            got = exc
    return got, text, first.conversation_id


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
async def test_a_turn_is_stored_at_most_once(
    fault: str, operation: str, stream: bool, server: LocalConversationsServer
) -> None:
    posts_before = sum(1 for m, _ in server.requests if m == "POST")
    got, text, cid = await trial(server, FAULTS[fault], operation, stream, retry_unknown=False)
    assert stored(server, text) <= 1
    assert sum(1 for m, _ in server.requests if m == "POST") - posts_before == 2  # setup, then the turn once
    assert isinstance(got, mc.RequestOutcomeUnknownError), got
    assert got.operation == operation and got.attempts == 1
    assert isinstance(got.__cause__, mc.APIConnectionError) and got.__cause__ is got.reason
    assert "may have run and been stored" in str(got)
    if operation == "append":
        assert got.conversation_id == cid
    if stream and fault != "connection dropped":  # the started event arrived: its conversation is known
        assert got.conversation_id is not None
        assert got.partial is not None and got.partial.conversation_id == got.conversation_id


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("operation", OPERATIONS)
async def test_retry_unknown_outcome_brings_resending_back(
    operation: str, stream: bool, server: LocalConversationsServer
) -> None:
    """The opt-in: the turn whose body was cut is sent again, succeeds, and is stored twice. (A stream
    is resent only until its first event: after that, its events were already handed out.)"""
    got, text, _ = await trial(
        server, Fault.disconnect(after_events=0), operation, stream, retry_unknown=True
    )
    assert isinstance(got, ConversationResponse), got
    assert stored(server, text) == 2


async def test_a_refused_turn_is_resent_and_stored_once(server: LocalConversationsServer) -> None:
    """429 and 503 say the turn was not processed: resending it is safe, and it is stored once."""
    async with AsyncConversationsClient("k", base_url=server.url, backoff=FAST_BACKOFF) as client:
        first = await client.start(inputs="setup", model="m")
        server.inject(Fault.error_status(503), times=1)
        server.inject(Fault.error_status(429, retry_after=0.001), times=1)
        reply = await client.append(first.conversation_id, inputs="only once")
    assert "only once" in reply.output_text
    assert stored(server, "only once") == 1
