"""The local server's rate-limit mode: token buckets, 429 with Retry-After, counters, nothing stored."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from mistral_conv import AsyncConversationsClient, AuthenticationError, RateLimitError
from mistral_conv.models import ConversationUsage
from mistral_conv.testing import (
    LocalConversationsServer,
    RateLimit,
    Responder,
    Turn,
    TurnContext,
    reply_text,
)

KEY = "local-key"
START = "POST /v1/conversations"


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def server(clock: FakeClock) -> AsyncIterator[LocalConversationsServer]:
    async with LocalConversationsServer(api_key=KEY, clock=clock) as s:
        yield s


@pytest.fixture
async def api(server: LocalConversationsServer) -> AsyncIterator[AsyncConversationsClient]:
    async with AsyncConversationsClient(KEY, base_url=server.url, max_retries=0) as c:
        yield c


async def refused(api: AsyncConversationsClient) -> RateLimitError:
    with pytest.raises(RateLimitError) as info:
        await api.start(inputs="Hi", model="m")
    return info.value


async def test_burst_beyond_the_bucket_gets_429_with_retry_after(
    server: LocalConversationsServer, api: AsyncConversationsClient
) -> None:
    server.rate_limit = RateLimit(requests_per_second=50, burst=3)
    for _ in range(3):
        await api.start(inputs="Hi", model="m")
    error = await refused(api)
    assert error.status == 429
    assert error.headers["retry-after"] == "1"  # 20 ms, rounded up to a whole second
    assert error.retry_after == 1.0
    assert "retry-after-ms" not in error.headers
    assert json.loads(error.body) == {
        "object": "error",
        "message": "Rate limit exceeded",
        "type": "rate_limited",
        "param": None,
        "code": "1300",
    }
    assert error.code == "1300"
    assert server.rejected == 1 and server.rejected_per_route == {START: 1}
    assert server.requests_per_route[START] == 4  # refused requests are counted too
    assert server.turns_stored == 3 and len(server.store.conversations) == 3


async def test_budget_returns_after_the_wait_and_429s_consume_nothing(
    server: LocalConversationsServer, api: AsyncConversationsClient, clock: FakeClock
) -> None:
    server.rate_limit = RateLimit(requests_per_second=50, burst=2, retry_after_ms=True)
    await api.start(inputs="Hi", model="m")
    await api.start(inputs="Hi", model="m")
    error = await refused(api)
    assert error.headers["retry-after"] == "1" and error.headers["retry-after-ms"] == "20"
    assert error.retry_after == pytest.approx(0.02)  # the SDK prefers the exact wait
    clock.advance(0.01)
    for _ in range(5):  # half-way there; retrying meanwhile takes nothing from the bucket
        assert (await refused(api)).headers["retry-after-ms"] == "10"
    clock.advance(0.01)
    await api.start(inputs="Hi", model="m")  # exactly one request's worth came back
    await refused(api)
    clock.advance(10)  # refills up to the burst, not beyond
    await api.start(inputs="Hi", model="m")
    await api.start(inputs="Hi", model="m")
    await refused(api)
    assert server.rejected == 8 and server.turns_stored == 5


async def test_every_route_counts_but_a_refused_key_does_not(
    server: LocalConversationsServer, api: AsyncConversationsClient, clock: FakeClock
) -> None:
    first = await api.start(inputs="Hi", model="m")
    cid = first.conversation_id
    server.rate_limit = RateLimit(requests_per_second=1, burst=5)
    async with AsyncConversationsClient("wrong", base_url=server.url, max_retries=0) as stranger:
        with pytest.raises(AuthenticationError):
            await stranger.list()
    await api.get(cid)
    await api.history(cid)
    await api.messages(cid)
    await api.list()
    await api.delete(cid)
    for call in (api.list(), api.get(cid), api.delete(cid)):
        with pytest.raises(RateLimitError):
            await call
    assert server.rejected_per_route == {
        "GET /v1/conversations": 1,
        "GET /v1/conversations/{id}": 1,
        "DELETE /v1/conversations/{id}": 1,
    }
    clock.advance(1)
    await api.list()


async def test_retry_after_is_the_wait_rounded_up_or_the_configured_value(
    server: LocalConversationsServer, api: AsyncConversationsClient, clock: FakeClock
) -> None:
    server.rate_limit = RateLimit(requests_per_second=0.25)  # burst: at least 1
    await api.start(inputs="Hi", model="m")
    assert (await refused(api)).headers["retry-after"] == "4"
    clock.advance(2.5)
    assert (await refused(api)).headers["retry-after"] == "2"  # 1.5 s left, rounded up
    server.rate_limit = RateLimit(requests_per_second=1, burst=1, retry_after=0.5, retry_after_ms=True)
    await api.start(inputs="Hi", model="m")  # a new limit starts with a full bucket
    error = await refused(api)
    assert error.headers["retry-after"] == "0.5" and error.headers["retry-after-ms"] == "500"
    assert error.retry_after == 0.5
    server.rate_limit = None
    for _ in range(20):
        await api.start(inputs="Hi", model="m")
    assert server.rejected == 3


def fixed_usage(tokens: int) -> Responder:
    def respond(context: TurnContext) -> Turn:
        return Turn([reply_text("ok")], usage=ConversationUsage(total_tokens=tokens))

    return respond


async def test_tokens_per_minute_charges_each_runs_total_tokens(
    server: LocalConversationsServer, api: AsyncConversationsClient, clock: FakeClock
) -> None:
    server.responder = fixed_usage(40)
    server.rate_limit = RateLimit(tokens_per_minute=60)  # one token a second, 60 at most
    first = await api.start(inputs="Hi", model="m")  # 60 -> 20
    assert first.usage.total_tokens == 40
    async with api.append_stream(first.conversation_id, inputs="Again") as stream:
        await stream.final_response()  # 20 -> -20: streamed runs are charged too
    error = await refused(api)
    assert error.headers["retry-after"] == "21"  # until one token is back
    with pytest.raises(RateLimitError):
        await api.append(first.conversation_id, inputs="More")
    await api.history(first.conversation_id)  # reads are not counted against tokens
    await api.list()
    clock.advance(20)
    assert (await refused(api)).headers["retry-after"] == "1"
    clock.advance(1)
    await api.start(inputs="Hi", model="m")
    assert server.rejected == 3 and server.turns_stored == 3


async def test_both_budgets_together_wait_for_the_longer(
    server: LocalConversationsServer, api: AsyncConversationsClient, clock: FakeClock
) -> None:
    server.responder = fixed_usage(100)
    server.rate_limit = RateLimit(requests_per_second=10, burst=5, tokens_per_minute=60)
    await api.start(inputs="Hi", model="m")  # tokens 60 -> -40
    assert (await refused(api)).headers["retry-after"] == "41"
    await api.list()  # requests still have room
    clock.advance(41)
    await api.start(inputs="Hi", model="m")


def stored(server: LocalConversationsServer, cid: str) -> tuple[int, int, int]:
    conversation = server.store.get(cid)
    assert conversation is not None
    return server.turns_stored, len(server.store.conversations), len(conversation.entries)


async def test_nothing_is_stored_for_a_refused_run(
    server: LocalConversationsServer, api: AsyncConversationsClient
) -> None:
    first = await api.start(inputs="Hi", model="m")
    cid = first.conversation_id
    server.rate_limit = RateLimit(requests_per_second=1, burst=1)
    await api.list()
    before = stored(server, cid)
    with pytest.raises(RateLimitError):
        await api.start(inputs="Refused", model="m", metadata={"item": "1"})
    with pytest.raises(RateLimitError):
        async with api.start_stream(inputs="Refused", model="m") as stream:
            await stream.final_response()
    with pytest.raises(RateLimitError):
        await api.append(cid, inputs="Refused")
    with pytest.raises(RateLimitError):
        await api.restart(cid, from_entry_id=first.outputs[0].id or "", inputs="Refused")
    assert stored(server, cid) == before and server.rejected == 4


async def test_constructor_argument_and_the_real_clock_under_concurrency() -> None:
    limit = RateLimit(requests_per_second=200, burst=10, retry_after_ms=True)
    async with (
        LocalConversationsServer(api_key=KEY, rate_limit=limit) as server,
        AsyncConversationsClient(KEY, base_url=server.url, max_retries=0) as api,
    ):
        assert server.rate_limit is limit
        results = await asyncio.gather(
            *(api.start(inputs=f"item {i}", model="m") for i in range(60)), return_exceptions=True
        )
        ok = [r for r in results if not isinstance(r, BaseException)]
        limited = [r for r in results if isinstance(r, RateLimitError)]
        assert len(ok) + len(limited) == 60
        assert 10 <= len(ok) < 60 and server.rejected == len(limited)
        assert server.turns_stored == len(ok) == len(server.store.conversations)
        assert all(e.retry_after is not None and 0 < e.retry_after <= 1 for e in limited)


def test_rate_limit_is_checked() -> None:
    with pytest.raises(ValueError, match="needs"):
        RateLimit()
    with pytest.raises(ValueError, match="requests_per_second"):
        RateLimit(requests_per_second=0)
    with pytest.raises(ValueError, match="burst"):
        RateLimit(requests_per_second=1, burst=0)
    with pytest.raises(ValueError, match="tokens_per_minute"):
        RateLimit(tokens_per_minute=0)
    with pytest.raises(ValueError, match="retry_after"):
        RateLimit(requests_per_second=1, retry_after=-1)
