"""The official mistralai SDK (installed through the ``bench`` extra)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any


def client(url: str) -> Any:
    from mistralai.client import Mistral

    return Mistral(api_key="k", server_url=url)


async def _stream(c: Any, n: int) -> str:
    events = await c.beta.conversations.start_stream_async(inputs=f"deltas:{n}", model="m")
    parts: list[str] = []
    async with events as stream:
        async for event in stream:
            if event.event == "message.output.delta" and isinstance(event.data.content, str):
                parts.append(event.data.content)
    return "".join(parts)


async def stream(url: str, n: int) -> str:
    return await _stream(client(url), n)


async def many_streams(url: str, count: int, n: int) -> list[str]:
    c = client(url)
    return list(await asyncio.gather(*(_stream(c, n) for _ in range(count))))


async def starts(url: str, total: int, concurrency: int) -> tuple[list[float], list[str]]:
    c = client(url)
    sem = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one() -> str:
        async with sem:
            t = time.perf_counter()
            result = await c.beta.conversations.start_async(inputs="hello", model="m")
            latencies.append(time.perf_counter() - t)
            return str(result.outputs[0].content)

    texts = await asyncio.gather(*(one() for _ in range(total)))
    return latencies, list(texts)


async def history(url: str, n: int, repeat: int) -> tuple[list[float], dict[str, int]]:
    c = client(url)
    times: list[float] = []
    counts: dict[str, int] = {}
    for _ in range(repeat):
        t = time.perf_counter()
        result = await c.beta.conversations.get_history_async(conversation_id=f"hist_{n}")
        times.append(time.perf_counter() - t)
        counts = dict(Counter(e.type for e in result.entries))
    return times, counts


def import_and_construct() -> None:
    from mistralai.client import Mistral

    Mistral(api_key="k")
