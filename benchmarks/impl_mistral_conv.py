"""mistral_conv, used the way its README shows."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from mistral_conv import AsyncConversationsClient


def client(url: str) -> AsyncConversationsClient:
    return AsyncConversationsClient("k", base_url=url, max_retries=0)


async def _stream(c: AsyncConversationsClient, n: int) -> str:
    async with c.start_stream(inputs=f"deltas:{n}", model="m") as stream:
        return "".join([t async for t in stream.text_stream()])


async def stream(url: str, n: int) -> str:
    async with client(url) as c:
        return await _stream(c, n)


async def many_streams(url: str, count: int, n: int) -> list[str]:
    async with client(url) as c:
        return list(await asyncio.gather(*(_stream(c, n) for _ in range(count))))


async def starts(url: str, total: int, concurrency: int) -> tuple[list[float], list[str]]:
    sem = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(c: AsyncConversationsClient) -> str:
        async with sem:
            t = time.perf_counter()
            result = await c.start(inputs="hello", model="m")
            latencies.append(time.perf_counter() - t)
            return result.output_text

    async with client(url) as c:
        texts = await asyncio.gather(*(one(c) for _ in range(total)))
    return latencies, list(texts)


async def history(url: str, n: int, repeat: int) -> tuple[list[float], dict[str, int]]:
    times: list[float] = []
    counts: dict[str, int] = {}
    async with client(url) as c:
        for _ in range(repeat):
            t = time.perf_counter()
            result = await c.history(f"hist_{n}")
            times.append(time.perf_counter() - t)
            counts = dict(Counter(e.type for e in result.entries))
    return times, counts


def import_and_construct() -> None:
    import mistral_conv

    mistral_conv.AsyncConversationsClient("k")
