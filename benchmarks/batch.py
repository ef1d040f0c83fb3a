"""``python -m benchmarks.batch``: a batch at the rate limit, against a naive per-request-retry loop.

The local server runs in rate-limit mode (a token bucket of ``--rate`` requests per second,
``Retry-After`` in whole seconds as the API sends it). ITEMS starts go at concurrency
CONCURRENCY through:

* ``batch``: ``mistral_conv.batch.run_batch``: one shared pause after a 429, adaptive concurrency;
* ``naive``: ``asyncio.gather`` over a semaphore, each ``client.start(...)`` with the SDK's own retries: every
  request backs off on its own, as a hand-written loop over the SDK does.

Printed per implementation: items answered, items lost (failed after their retries), 429s,
requests sent, wall time and its ratio to ITEMS / rate (the floor that the limit allows).
Both run in the same process against the same server, one after the other, ``--rounds`` times.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from mistral_conv import AsyncConversationsClient, MistralError
from mistral_conv.batch import run_batch
from mistral_conv.testing import LocalConversationsServer, RateLimit

KEY = "bench-key"


async def _batch(client: AsyncConversationsClient, prompts: list[str], concurrency: int) -> int:
    results = await run_batch(client, prompts, model="m", concurrency=concurrency)
    return sum(1 for r in results if r.ok)


async def _naive(client: AsyncConversationsClient, prompts: list[str], concurrency: int) -> int:
    gate = asyncio.Semaphore(concurrency)

    async def one(prompt: str) -> bool:
        async with gate:
            try:
                await client.start(inputs=prompt, model="m")  # the SDK's own retries (2 by default)
            except MistralError:
                return False
            return True

    return sum(await asyncio.gather(*(one(p) for p in prompts)))


async def measure(name: str, items: int, concurrency: int, rate: float) -> dict[str, Any]:
    """One run of one implementation against a fresh rate-limited server."""
    prompts = [f"item {i}" for i in range(items)]
    limit = RateLimit(requests_per_second=rate)
    async with (
        LocalConversationsServer(api_key=KEY, rate_limit=limit) as server,
        AsyncConversationsClient(KEY, base_url=server.url, max_connections=concurrency) as client,
    ):
        started = time.perf_counter()
        answered = await (_batch if name == "batch" else _naive)(client, prompts, concurrency)
        wall = time.perf_counter() - started
        stored = len(server.store.conversations)
    return {
        "answered": answered,
        "lost": items - answered,
        "stored": stored,
        "429s": server.rejected,
        "requests": sum(server.requests_per_route.values()),
        "wall_s": wall,
        "ratio": wall / (items / rate),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows: dict[str, list[dict[str, Any]]] = {"batch": [], "naive": []}
    for _ in range(args.rounds):
        for name in rows:
            rows[name].append(await measure(name, args.items, args.concurrency, args.rate))
    print(
        f"{args.items} starts at concurrency {args.concurrency} against {args.rate:g} requests/s "
        f"(medians of {args.rounds} rounds)\n"
    )
    print("| implementation | answered | lost | 429s | requests sent | wall s | wall / (items / rate) |")
    print("|---|---|---|---|---|---|---|")
    for name, runs in rows.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        counts = " | ".join(f"{med[k]:.0f}" for k in ("answered", "lost", "429s", "requests"))
        print(f"| {name} | {counts} | {med['wall_s']:.2f} | {med['ratio']:.2f} |")


if __name__ == "__main__":
    asyncio.run(main())
