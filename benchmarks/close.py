"""``python -m benchmarks.close``: how long a close takes to end a stream or a call, at each phase.

For every phase of a call's life (before sending, while connecting, during a back-off, while
the answer's headers are awaited, mid-body), a reader task is brought to that phase against a
loopback server, then ``stream.aclose()`` or ``client.aclose()`` is called from another task;
the time from that call until the reader's task has finished is measured. The target is 100 ms.
Prints a Markdown table (``--json`` for one JSON object).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

from mistral_conv import AsyncConversationsClient, Backoff, ConversationStream, MistralError, Timeout
from mistral_conv.testing import Fault, LocalConversationsServer, hanging_port

PHASES = ("before sending", "while connecting", "during a back-off", "while headers arrive", "mid-body")
CLOSERS = ("stream.aclose()", "client.aclose()")
SETTLE = 0.05  # time given to the reader to reach its phase (a benchmark may wait; tests may not)


@asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """Accepts and reads requests, never answers."""
    forever = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(ConnectionError):
            await reader.read(65536)
            await forever.wait()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        forever.set()
        server.close()


async def one(phase: str, closer: str, local: LocalConversationsServer, silent: str, blocked: str) -> float:
    url = {"while connecting": blocked, "while headers arrive": silent}.get(phase, local.url)
    if phase == "during a back-off":
        local.inject(Fault.error_status(503), times=1)
    elif phase == "mid-body":
        local.inject(Fault.stall(60, after_events=2), times=1)
    client = AsyncConversationsClient(
        "k", base_url=url, backoff=Backoff(30, 30, 60), timeout=Timeout(connect=60), max_retries=5
    )
    stream: ConversationStream = client.start_stream(inputs="hello there", model="m")

    async def read() -> None:
        with suppress(MistralError):
            async for _ in stream:
                pass

    task = None if phase == "before sending" else asyncio.create_task(read())
    await asyncio.sleep(SETTLE)
    close: Callable[[], Awaitable[None]] = stream.aclose if closer == CLOSERS[0] else client.aclose
    t = time.perf_counter()
    await close()
    if task is not None:
        await task
    elapsed = time.perf_counter() - t
    await client.aclose()
    return elapsed * 1000


async def measure(repeat: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    with hanging_port() as port:
        blocked = f"http://127.0.0.1:{port}"
        async with LocalConversationsServer(delta_chars=2) as local, silent_server() as silent:
            for phase in PHASES:
                for closer in CLOSERS:
                    times = [await one(phase, closer, local, silent, blocked) for _ in range(repeat)]
                    results[f"{phase} | {closer}"] = {
                        "median_ms": statistics.median(times),
                        "max_ms": max(times),
                    }
    return results


def table(results: dict[str, dict[str, float]]) -> str:
    lines = ["| phase | close | median ms | max ms |", "|---|---|---|---|"]
    for key, r in results.items():
        phase, closer = key.split(" | ")
        lines.append(f"| {phase} | `{closer}` | {r['median_ms']:.2f} | {r['max_ms']:.2f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.close", description=__doc__)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--check", action="store_true", help="exit 1 when a close took over 100 ms")
    args = parser.parse_args()
    results = asyncio.run(measure(args.repeat))
    print(json.dumps(results) if args.json else table(results))
    worst = max(r["max_ms"] for r in results.values())
    print(f"slowest close: {worst:.2f} ms (target 100 ms)", file=sys.stderr)
    return 1 if args.check and worst > 100 else 0


if __name__ == "__main__":
    sys.exit(main())
