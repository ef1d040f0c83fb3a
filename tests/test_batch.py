"""Batch runs over loopback: order, per-item errors, appends, resume without duplicates, shards."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import anyio
import msgspec
import pytest

from mistral_conv import AsyncConversationsClient
from mistral_conv.batch import BatchItem, BatchProgress, BatchResult, RateGate, run_batch, shard_of
from mistral_conv.testing import LocalConversationsServer, RateLimit

KEY = "local-key"


def stored_per_item(server: LocalConversationsServer) -> Counter[str]:
    return Counter(
        str((c.record.metadata or {}).get("mistral_conv_item"))
        for c in server.store.conversations.values()
        if isinstance(c.record.metadata, dict)
    )


async def test_results_come_in_input_order_with_appends_and_errors(server: LocalConversationsServer) -> None:
    items: list[BatchItem | str | dict[str, object]] = [f"question {i}" for i in range(30)]
    items.append({"id": "with-appends", "inputs": "first", "appends": ["second", "third"]})
    items.append({"id": "broken", "inputs": ""})
    seen: list[BatchProgress] = []
    async with AsyncConversationsClient(KEY, base_url=server.url) as client:
        results = await run_batch(
            client,
            items,
            model="m",
            concurrency=8,
            on_progress=lambda p: seen.append(msgspec.structs.replace(p)),
        )
    assert [r.index for r in results] == list(range(32))
    assert all("question" in r.output_text for r in results[:30])
    assert "third" in results[30].output_text and results[30].conversation_id
    broken = results[31]
    assert (
        broken.error is not None
        and broken.error.type == "InvalidRequestError"
        and "inputs" in broken.error.message
    )
    assert seen[-1].done == 32 and seen[-1].failed == 1 and max(p.in_flight for p in seen) <= 8
    assert stored_per_item(server) == Counter({str(i): 1 for i in range(30)} | {"with-appends": 1})


async def test_an_interrupted_batch_resumes_without_duplicates(
    server: LocalConversationsServer, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "done.jsonl"
    items = [{"id": f"item-{i}", "inputs": f"q{i}", "appends": ["more"]} for i in range(40)]
    async with AsyncConversationsClient(KEY, base_url=server.url) as client:
        finished: list[BatchResult] = []
        with anyio.move_on_after(30) as scope:

            def stop_midway(result: BatchResult) -> None:
                finished.append(result)
                if len(finished) == 15:
                    scope.cancel()  # as Ctrl+C would: starts and appends in flight are cut

            await run_batch(
                client, items, model="m", concurrency=10, checkpoint=checkpoint, on_result=stop_midway
            )
        assert scope.cancelled_caught
        assert 15 <= len(checkpoint.read_bytes().splitlines()) < 40
        results = await run_batch(
            client, items, model="m", concurrency=10, checkpoint=checkpoint, resume=True
        )
    assert [r.id for r in results] == [f"item-{i}" for i in range(40)] and all(r.ok for r in results)
    assert all("more" in r.output_text for r in results)
    assert stored_per_item(server) == Counter({f"item-{i}": 1 for i in range(40)})  # one conversation each
    assert len(checkpoint.read_bytes().splitlines()) >= 40


async def test_two_shards_split_the_input_disjointly(server: LocalConversationsServer) -> None:
    items = [f"q{i}" for i in range(60)]
    async with AsyncConversationsClient(KEY, base_url=server.url) as client:
        a = await run_batch(client, items, model="m", shard=(0, 2))
        b = await run_batch(client, items, model="m", shard=(1, 2))
    ids_a, ids_b = {r.id for r in a}, {r.id for r in b}
    assert ids_a and ids_b and not ids_a & ids_b and ids_a | ids_b == {str(i) for i in range(60)}
    assert all(shard_of(i, 2) == 0 for i in ids_a)


async def test_the_gate_pauses_everyone_and_adapts() -> None:
    now = [0.0]
    gate = RateGate(8, min_concurrency=2, clock=lambda: now[0])
    for _ in range(8):
        await gate.acquire()
    gate.release(clean=False)
    gate.throttled(1.0)
    assert gate.limit == 4 and gate.waiting
    with anyio.move_on_after(0.05) as scope:
        await gate.acquire()  # paused: nobody sends, whatever the free slots
    assert scope.cancelled_caught
    gate.throttled(1.0)
    assert gate.limit == 4  # more 429s of the same burst: one halving is enough
    now[0] = 1.5
    gate.throttled(1.0)
    now[0] = 3.0
    gate.throttled(1.0)
    assert gate.limit == 2  # never under the floor
    now[0] = 5.0
    gate.release(clean=True)
    gate.release(clean=True)
    assert gate.limit == 3 and not gate.waiting  # a limit's worth of clean answers: one more
    for _ in range(3):
        gate.release(clean=True)
    assert gate.limit == 4 and gate.in_flight == 2


async def test_bad_arguments_are_refused_before_anything_is_sent(server: LocalConversationsServer) -> None:
    async with AsyncConversationsClient(KEY, base_url=server.url) as client:
        with pytest.raises(ValueError, match="shard"):
            await run_batch(client, ["a"], model="m", shard=(2, 2))
        with pytest.raises(ValueError, match="unique"):
            await run_batch(client, [{"id": "x", "inputs": "a"}, {"id": "x", "inputs": "b"}], model="m")
    async with AsyncConversationsClient(KEY, base_url=server.url, max_connections=10) as small:
        if hasattr(small.transport, "max_connections"):  # the default transport states its pool size
            with pytest.raises(ValueError, match="max_connections=50"):
                await run_batch(small, ["a"], model="m", concurrency=50)
    assert server.requests == []


async def test_2000_items_at_concurrency_200_against_300_requests_per_second_lose_nothing() -> None:
    # A small burst: the first wave of 200 sends meets the limit however slow the machine is.
    limit = RateLimit(requests_per_second=300, burst=20, retry_after_ms=True)
    async with (
        LocalConversationsServer(api_key=KEY, rate_limit=limit) as server,
        AsyncConversationsClient(KEY, base_url=server.url, max_connections=200) as client,
    ):
        seen: list[BatchProgress] = []
        results = await run_batch(
            client,
            [f"q{i}" for i in range(2000)],
            model="m",
            concurrency=200,
            on_progress=lambda p: seen.append(msgspec.structs.replace(p)),
        )
    assert [r.id for r in results] == [str(i) for i in range(2000)] and all(r.ok for r in results)
    assert stored_per_item(server) == Counter({str(i): 1 for i in range(2000)})
    assert server.rejected > 0 and seen[-1].rate_limited == server.rejected  # the limit was met, and obeyed
    assert min(p.concurrency for p in seen) < 200 and any(p.waiting for p in seen)


async def test_resume_appends_what_is_missing_after_a_start_of_several_messages(
    server: LocalConversationsServer,
) -> None:
    from mistral_conv._batch import BATCH_KEY, ITEM_KEY

    inputs = [{"role": "user", "content": "part one"}, {"role": "user", "content": "part two"}]
    item = {"id": "multi", "inputs": inputs, "appends": ["follow-up A", "follow-up B"]}
    async with AsyncConversationsClient(KEY, base_url=server.url) as client:
        # what an interrupted run left: the start stored, no append yet
        await client.start(inputs=inputs, model="m", metadata={BATCH_KEY: "b1", ITEM_KEY: "multi"})  # type: ignore[arg-type]
        (result,) = await run_batch(client, [item], model="m", batch_id="b1", resume=True)
        history = await client.history(result.conversation_id or "")
    said = [e.content for e in history.entries if e.type == "message.input"]
    assert said == ["part one", "part two", "follow-up A", "follow-up B"] and result.resumed


def test_one_checkpoint_one_tag_however_its_path_is_spelt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mistral_conv._batch import _batch_id

    monkeypatch.chdir(tmp_path)
    assert (
        _batch_id("ck.jsonl", False)
        == _batch_id("./ck.jsonl", False)
        == _batch_id(tmp_path / "ck.jsonl", False)
    )
    assert _batch_id(None, False) != _batch_id(None, False)  # no checkpoint: a batch of its own
    with pytest.raises(ValueError, match="batch_id"):
        _batch_id(None, True)


async def test_the_tokens_per_minute_budget_holds_sends_back() -> None:
    now = [0.0]
    gate = RateGate(8, tokens_per_minute=600, clock=lambda: now[0])
    await gate.acquire(500)
    gate.release(clean=True)
    with anyio.move_on_after(0.05) as scope:
        await gate.acquire(500)  # 100 tokens left: the next 500 wait for the bucket
    assert scope.cancelled_caught
    gate.charge(-400)  # the answer used 100, not the 500 estimated
    await gate.acquire(500)


async def test_a_quota_that_never_comes_back_fails_the_item_instead_of_waiting_forever() -> None:
    limit = RateLimit(requests_per_second=0.001, burst=1, retry_after=0.01)
    async with (
        LocalConversationsServer(api_key=KEY, rate_limit=limit) as server,
        AsyncConversationsClient(KEY, base_url=server.url) as client,
    ):
        first, second = await run_batch(client, ["a", "b"], model="m", concurrency=1, max_attempts=1)
    assert first.ok and second.error is not None and second.error.type == "RateLimitError"
