"""Soak: many concurrent streams against the local server, a random share cancelled mid-stream.

``python -m benchmarks.soak`` holds 1,000 streams at once (``--streams``), cancels a random
third of them after their first text delta, lets the rest finish, and prints what is left
afterwards: acquired connections, open file descriptors against the starting count, and
pending tasks. The server runs in a process of its own, so every descriptor counted is the
client's. Exits non-zero if anything leaked or a finished stream lost a token.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

ANSWER = "".join(f"token{i} " for i in range(60))


@dataclass
class Figures:
    streams: int
    open_at_once: int
    completed: int
    cancelled: int
    failed: int
    lost_tokens: int
    acquired_connections_after: int
    fds_before: int
    fds_after: int
    pending_tasks_after: int
    seconds: float

    @property
    def clean(self) -> bool:
        return (
            self.open_at_once == self.streams
            and self.completed + self.cancelled == self.streams
            and self.failed == 0
            and self.lost_tokens == 0
            and self.acquired_connections_after == 0
            and self.fds_after == self.fds_before
            and self.pending_tasks_after == 0
        )


def open_fds() -> int:
    """Open descriptors, once objects already unreachable (from earlier work in the process) are
    collected: their descriptors closing mid-run must not count."""
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def serve() -> None:
    """The server process: a long answer streamed one character per event."""
    from mistral_conv.testing import LocalConversationsServer, Turn, TurnContext, reply_text

    def respond(context: TurnContext) -> Turn:
        return Turn([reply_text(ANSWER)])

    async def main() -> None:
        server = LocalConversationsServer(responder=respond, delta_chars=1)
        await server.start()
        print(f"URL {server.url}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


async def soak(url: str, streams: int, cancel_fraction: float, seed: int) -> Figures:
    from mistral_conv import AsyncConversationsClient

    rng = random.Random(seed)
    victims = set(rng.sample(range(streams), round(streams * cancel_fraction)))
    fds_before = open_fds()
    started = time.monotonic()
    client = AsyncConversationsClient("soak", base_url=url, max_connections=streams, max_retries=0)
    holding = 0
    all_open = asyncio.Event()  # every stream has received its first delta: all are open at once
    peak_open = 0

    async def one(i: int) -> str:
        nonlocal holding, peak_open
        parts = []
        async with client.start_stream(inputs=f"stream {i}", model="m") as stream:
            async for text in stream.text_stream():
                parts.append(text)
                if len(parts) == 1:
                    holding += 1
                    peak_open = max(peak_open, holding)
                    if holding == streams:
                        all_open.set()
                    await all_open.wait()
                    if i in victims:
                        await asyncio.Event().wait()  # stalled mid-stream until cancelled
        return "".join(parts)

    tasks = [asyncio.create_task(one(i)) for i in range(streams)]
    await all_open.wait()
    for i in victims:
        tasks[i].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    completed = sum(1 for r in results if isinstance(r, str))
    cancelled = sum(1 for r in results if isinstance(r, asyncio.CancelledError))
    failed = sum(
        1 for r in results if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)
    )
    lost = sum(1 for r in results if isinstance(r, str) and r != ANSWER)
    acquired = getattr(client.transport, "connections_in_use", 0)
    await client.aclose()
    await asyncio.sleep(0)  # let the transports finish closing
    pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    return Figures(
        streams=streams,
        open_at_once=peak_open,
        completed=completed,
        cancelled=cancelled,
        failed=failed,
        lost_tokens=lost,
        acquired_connections_after=acquired,
        fds_before=fds_before,
        fds_after=open_fds(),
        pending_tasks_after=len(pending),
        seconds=round(time.monotonic() - started, 2),
    )


def run(streams: int = 1000, cancel_fraction: float = 1 / 3, seed: int = 7) -> Figures:
    """Start the server process, soak it, stop it, return the figures."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.soak", "--serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line.startswith("URL "):
            raise SystemExit("the soak server did not start")
        return asyncio.run(soak(line.split()[1], streams, cancel_fraction, seed))
    finally:
        server.terminate()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--cancel-fraction", type=float, default=1 / 3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return 0
    figures = run(args.streams, args.cancel_fraction, args.seed)
    print(json.dumps(asdict(figures), indent=2))
    print(
        "clean: no leaked connection, descriptor or task; no lost token" if figures.clean else "LEAK OR LOSS"
    )
    return 0 if figures.clean else 1


if __name__ == "__main__":
    sys.exit(main())
