"""Request hooks (on_request, on_response, on_retry) and pool statistics, against the local server."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mistral_conv import (
    AsyncConversationsClient,
    ConversationsClient,
    InvalidRequestError,
    MistralError,
    PoolStats,
    RequestEvent,
    ResponseEvent,
    RetryEvent,
    Timeout,
)
from mistral_conv.testing import Fault, LocalConversationsServer
from mistral_conv.transport import HTTPRequest, HTTPResponse, Transport

from .conftest import FAST_BACKOFF

KEY = "sk-KEY-never-in-a-hook-0123456789"
MODEL = "mistral-small-latest"


@pytest.fixture
async def server() -> AsyncIterator[LocalConversationsServer]:
    async with LocalConversationsServer(api_key=KEY) as s:
        yield s


class Recorder:
    def __init__(self) -> None:
        self.events: list[RequestEvent | ResponseEvent | RetryEvent] = []
        self.threads: set[int] = set()

    def __call__(self, event: RequestEvent | ResponseEvent | RetryEvent) -> None:
        self.events.append(event)
        self.threads.add(threading.get_ident())

    def options(self) -> dict[str, Any]:
        return {"on_request": self, "on_response": self, "on_retry": self}

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


async def test_a_retried_call_fires_each_hook_in_order(server: LocalConversationsServer) -> None:
    seen = Recorder()
    server.inject(Fault.error_status(429, retry_after=0.001))
    async with AsyncConversationsClient(
        KEY, base_url=server.url, backoff=FAST_BACKOFF, **seen.options()
    ) as client:
        response = await client.start(model=MODEL, inputs="hi")
    assert [type(e).__name__ for e in seen.events] == [
        "RequestEvent",
        "ResponseEvent",
        "RetryEvent",
        "RequestEvent",
        "ResponseEvent",
    ]
    first, second = seen.of(RequestEvent)
    assert (first.attempt, second.attempt) == (1, 2)
    assert first.operation == "start" and first.method == "POST" and first.stream is False
    assert first.url == f"{server.url}/v1/conversations"
    refused, answered = seen.of(ResponseEvent)
    assert (refused.status, answered.status) == (429, 200)
    assert answered.request_id == response.request_id is not None
    assert answered.elapsed >= 0 and answered.error_type is None
    [retry] = seen.of(RetryEvent)
    assert retry.attempt == 1 and retry.status == 429 and retry.error_type == "RateLimitError"
    assert retry.outcome == "refused by the server"
    assert retry.request_id == refused.request_id
    assert retry.delay >= 0
    assert KEY not in repr(seen.events)


async def test_a_stream_and_a_read_fire_hooks_too(server: LocalConversationsServer) -> None:
    seen = Recorder()
    options = seen.options()
    async with AsyncConversationsClient(
        KEY, base_url=server.url, backoff=FAST_BACKOFF, retry_unknown_outcome=True, **options
    ) as client:
        # The connection drops before an answer; the start is sent again (retry_unknown_outcome).
        server.inject(Fault.drop())
        async with client.start_stream(model=MODEL, inputs="hi") as stream:
            async for _ in stream:
                pass
        cid = stream.conversation_id
        assert cid is not None
        await client.history(cid)
    start, again, history = seen.of(RequestEvent)
    assert start.stream is True and start.operation == "start" and start.conversation_id is None
    assert again.attempt == 2 and again.stream is True
    assert history.operation == "history" and history.conversation_id == cid and history.stream is False
    dropped, streamed, read = seen.of(ResponseEvent)
    assert dropped.status is None and dropped.error_type is not None and dropped.attempt == 1
    assert (streamed.status, read.status) == (200, 200)
    [retry] = seen.of(RetryEvent)
    assert retry.operation == "start" and retry.outcome == "outcome unknown" and retry.status is None
    assert retry.error_type == "APIConnectionError"


async def test_a_hook_that_raises_is_logged_and_the_call_goes_on(
    server: LocalConversationsServer, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: RequestEvent) -> None:
        raise RuntimeError("a bug in the hook")

    caplog.set_level(logging.WARNING, logger="mistral_conv")
    async with AsyncConversationsClient(KEY, base_url=server.url, on_request=broken) as client:
        response = await client.start(model=MODEL, inputs="hi")
    assert response.outputs
    [record] = [r for r in caplog.records if r.name == "mistral_conv"]
    assert record.levelno == logging.WARNING
    assert "RequestEvent hook raised" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


async def test_an_attempt_cut_by_a_time_limit_still_gets_its_response_event(
    server: LocalConversationsServer,
) -> None:
    # The time limit cancels the attempt inside the transport: a cancellation, not an Exception.
    seen = Recorder()
    server.inject(Fault.stall(30))
    async with AsyncConversationsClient(
        KEY, base_url=server.url, backoff=FAST_BACKOFF, max_retries=0, **seen.options()
    ) as client:
        with pytest.raises(MistralError):
            await client.start(model=MODEL, inputs="hi", timeout=Timeout(total=0.05))
    assert [type(e).__name__ for e in seen.events] == ["RequestEvent", "ResponseEvent"]
    [answer] = seen.of(ResponseEvent)
    assert answer.attempt == 1 and answer.status is None and answer.error_type == "CancelledError"


async def test_a_cancelled_attempt_still_gets_its_response_event(server: LocalConversationsServer) -> None:
    seen = Recorder()
    server.inject(Fault.stall(30))
    async with AsyncConversationsClient(KEY, base_url=server.url, **seen.options()) as client:
        call = asyncio.ensure_future(client.start(model=MODEL, inputs="hi"))
        await wait_until(lambda: seen.events, "the attempt is sent")
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
    assert [type(e).__name__ for e in seen.events] == ["RequestEvent", "ResponseEvent"]
    assert seen.of(ResponseEvent)[0].error_type == "CancelledError"


async def test_a_hook_returning_an_awaitable_is_warned_about_and_the_call_goes_on(
    server: LocalConversationsServer, caplog: pytest.LogCaptureFixture
) -> None:
    queue: asyncio.Queue[RequestEvent] = asyncio.Queue()
    caplog.set_level(logging.WARNING, logger="mistral_conv")

    # A common slip: queue.put is a coroutine function (put_nowait is the hook's call).
    def on_request(event: RequestEvent) -> Any:
        return queue.put(event)

    async with AsyncConversationsClient(KEY, base_url=server.url, on_request=on_request) as client:
        await client.start(model=MODEL, inputs="hi")
    [record] = [r for r in caplog.records if r.name == "mistral_conv"]
    assert "RequestEvent hook returned an awaitable" in record.getMessage()
    assert queue.empty()


async def test_hook_events_never_show_credentials_of_the_base_url() -> None:
    seen = Recorder()
    async with LocalConversationsServer() as server:
        host = server.url.split("://", 1)[1]
        async with AsyncConversationsClient(
            base_url=f"http://gateway-user:gateway-SECRET@{host}", **seen.options()
        ) as client:
            await client.start(model=MODEL, inputs="hi")
    assert seen.events
    assert all(e.url == f"{server.url}/v1/conversations" for e in seen.events)
    assert "SECRET" not in repr(seen.events)


def test_the_blocking_client_runs_hooks_on_its_loop_thread() -> None:
    seen = Recorder()
    with (
        LocalConversationsServer(api_key=KEY) as server,
        ConversationsClient(KEY, base_url=server.url, **seen.options()) as client,
    ):
        client.start(model=MODEL, inputs="hi")
        stats = client.pool_stats()
    assert [type(e).__name__ for e in seen.events] == ["RequestEvent", "ResponseEvent"]
    assert seen.threads and threading.get_ident() not in seen.threads
    assert stats is not None and stats.in_use == 0 and stats.waiting == 0 and stats.open <= 1


def test_the_blocking_clients_pool_stats_can_be_read_from_its_own_hook() -> None:
    stats: list[PoolStats | None] = []
    with LocalConversationsServer(api_key=KEY) as server:
        client = ConversationsClient(
            KEY, base_url=server.url, on_response=lambda _: stats.append(client.pool_stats())
        )
        with client:
            client.start(model=MODEL, inputs="hi")
    assert len(stats) == 1 and stats[0] is not None and stats[0].open == 1


# -- pool statistics ---------------------------------------------------------------------


async def wait_until(condition: Any, what: str) -> None:
    """Let other tasks run, a turn of the loop at a time, until ``condition`` holds (bounded)."""
    for _ in range(100_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never: {what}")


async def test_pool_stats_under_load(server: LocalConversationsServer) -> None:
    async with AsyncConversationsClient(KEY, base_url=server.url, max_connections=2) as client:
        assert client.pool_stats() == PoolStats(open=0, in_use=0, waiting=0, limit=2)
        server.inject(Fault.trickle(0.01), times=2)  # two streams that stay open while read slowly
        first = await client.start_stream(model=MODEL, inputs="one").open()
        second = await client.start_stream(model=MODEL, inputs="two").open()
        assert client.pool_stats() == PoolStats(open=2, in_use=2, waiting=0, limit=2)
        third = asyncio.ensure_future(client.start(model=MODEL, inputs="three"))
        fourth = asyncio.ensure_future(client.start(model=MODEL, inputs="four"))
        await wait_until(lambda: client.pool_stats().waiting == 2, "two calls wait for a connection")  # type: ignore[union-attr]
        assert client.pool_stats() == PoolStats(open=2, in_use=2, waiting=2, limit=2)
        assert not third.done() and not fourth.done()
        await first.aclose()  # its connection is closed (unread body): a new one serves the waiting calls
        await asyncio.gather(third, fourth)
        stats = client.pool_stats()
        assert stats is not None
        assert (stats.in_use, stats.waiting) == (1, 0)  # the second stream still holds one
        await second.aclose()
        stats = client.pool_stats()
        assert stats is not None
        assert (stats.in_use, stats.waiting) == (0, 0) and stats.open <= 2
    assert client.pool_stats() == PoolStats(open=0, in_use=0, waiting=0, limit=2)


class Delegating:
    """A transport of a caller's own, without ``pool_stats``."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        return await self.inner.send(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_transport_without_pool_stats_reports_none(server: LocalConversationsServer) -> None:
    async with AsyncConversationsClient(KEY, base_url=server.url) as plain:
        async with AsyncConversationsClient(
            KEY, base_url=server.url, transport=Delegating(plain.transport)
        ) as client:
            await client.start(model=MODEL, inputs="hi")
            assert client.pool_stats() is None
        assert plain.pool_stats() is not None


async def test_an_async_function_is_refused_as_a_hook() -> None:
    async def on_retry(event: RetryEvent) -> None:
        pass

    with pytest.raises(InvalidRequestError, match="on_retry: must be a plain function"):
        AsyncConversationsClient(KEY, base_url="http://127.0.0.1:9", on_retry=on_retry)  # type: ignore[arg-type]


def test_an_object_with_an_async_call_is_refused_as_a_hook() -> None:
    class Exporter:
        async def __call__(self, event: RequestEvent) -> None:
            pass

    with pytest.raises(InvalidRequestError, match="on_request: must be a plain function"):
        AsyncConversationsClient(KEY, base_url="http://127.0.0.1:9", on_request=Exporter())  # type: ignore[arg-type]
