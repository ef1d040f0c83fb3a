"""The floor: hand-written aiohttp + msgspec in tight loops, no SDK."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import datetime
from typing import Any

import aiohttp
import msgspec

HEADERS = {"Authorization": "Bearer k", "Content-Type": "application/json"}


class Delta(msgspec.Struct):
    type: str
    content: Any = None


class Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class Output(msgspec.Struct):
    type: str
    content: Any = None


class StartResponse(msgspec.Struct):
    conversation_id: str
    outputs: list[Output]
    usage: Usage


class Text(msgspec.Struct, tag_field="type", tag="text"):
    text: str


class Ref(msgspec.Struct, tag_field="type", tag="tool_reference"):
    tool: str
    title: str
    url: str | None = None


class MessageInput(msgspec.Struct, tag_field="type", tag="message.input"):
    id: str
    created_at: datetime
    completed_at: datetime | None
    role: str
    content: str | list[Text | Ref]
    prefix: bool = False


class MessageOutput(msgspec.Struct, tag_field="type", tag="message.output"):
    id: str
    created_at: datetime
    completed_at: datetime | None
    content: str | list[Text | Ref]
    model: str | None = None
    agent_id: str | None = None
    role: str = "assistant"


class FunctionCall(msgspec.Struct, tag_field="type", tag="function.call"):
    id: str
    created_at: datetime
    completed_at: datetime | None
    tool_call_id: str
    name: str
    arguments: str | dict[str, Any]
    model: str | None = None
    agent_id: str | None = None
    confirmation_status: str | None = None


class FunctionResult(msgspec.Struct, tag_field="type", tag="function.result"):
    id: str
    created_at: datetime
    completed_at: datetime | None
    tool_call_id: str
    result: str


class ToolExecution(msgspec.Struct, tag_field="type", tag="tool.execution"):
    id: str
    created_at: datetime
    completed_at: datetime | None
    name: str
    arguments: str = ""
    info: dict[str, Any] | None = None
    model: str | None = None
    agent_id: str | None = None


class History(msgspec.Struct):
    conversation_id: str
    entries: list[MessageInput | MessageOutput | FunctionCall | FunctionResult | ToolExecution]


delta_decoder = msgspec.json.Decoder(Delta)
start_decoder = msgspec.json.Decoder(StartResponse)
history_decoder = msgspec.json.Decoder(History)


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))


async def stream(url: str, n: int) -> str:
    async with session() as s:
        return await _stream(s, url, n)


async def _stream(s: aiohttp.ClientSession, url: str, n: int) -> str:
    body = msgspec.json.encode({"inputs": f"deltas:{n}", "stream": True, "model": "m"})
    parts: list[str] = []
    async with s.post(
        f"{url}/v1/conversations", data=body, headers={**HEADERS, "Accept": "text/event-stream"}
    ) as resp:
        rest = b""
        async for chunk in resp.content.iter_any():
            blocks = (rest + chunk).split(b"\n\n")
            rest = blocks.pop()
            for block in blocks:
                event = delta_decoder.decode(block[block.find(b"data: ") + 6 :])
                if event.type == "message.output.delta":
                    parts.append(event.content)
    return "".join(parts)


async def many_streams(url: str, count: int, n: int) -> list[str]:
    async with session() as s:
        return list(await asyncio.gather(*(_stream(s, url, n) for _ in range(count))))


async def starts(url: str, total: int, concurrency: int) -> tuple[list[float], list[str]]:
    body = msgspec.json.encode({"inputs": "hello", "stream": False, "model": "m"})
    sem = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(s: aiohttp.ClientSession) -> str:
        async with sem:
            t = time.perf_counter()
            async with s.post(f"{url}/v1/conversations", data=body, headers=HEADERS) as resp:
                result = start_decoder.decode(await resp.read())
            latencies.append(time.perf_counter() - t)
            return str(result.outputs[0].content)

    async with session() as s:
        texts = await asyncio.gather(*(one(s) for _ in range(total)))
    return latencies, list(texts)


async def history(url: str, n: int, repeat: int) -> tuple[list[float], dict[str, int]]:
    times: list[float] = []
    counts: dict[str, int] = {}
    async with session() as s:
        for _ in range(repeat):
            t = time.perf_counter()
            async with s.get(f"{url}/v1/conversations/hist_{n}/history", headers=HEADERS) as resp:
                result = history_decoder.decode(await resp.read())
            times.append(time.perf_counter() - t)
            counts = dict(Counter(str(e.__struct_config__.tag) for e in result.entries))
    return times, counts


def import_and_construct() -> None:
    import aiohttp  # noqa: F401
    import anyio  # noqa: F401
    import msgspec  # noqa: F401
