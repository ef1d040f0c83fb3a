"""``python -m benchmarks.runs``: tool runs via mistral_conv, the official SDK's ``run_async``, and by hand.

A run starts a conversation with one local tool (a trivial sync ``add``); the scripted
local server answers its first TURNS-1 turns with one function call each and the last
with a text made of the tool's results, so a run is TURNS rounds (1 start, TURNS-1
appends). RUNS runs go sequentially, then CONCURRENCY at a time, through:

* ``mistral_conv``: ``client.conversation(model=..., tools=[add]).send(...)``;
* ``mistralai``: the official SDK's ``client.beta.conversations.run_async`` with a
  ``RunContext(model=...)`` and ``register_func(add)`` (model mode; needs the SDK's
  ``agents`` extra, which brings ``mcp``);
* ``raw``: the floor, the same start/append/append requests with aiohttp + msgspec, no SDK.

The server (``LocalConversationsServer``) runs in a process of its own; each
measurement is a fresh process that runs the RUNS runs ``--repeat`` times (its
median counts); implementations alternate within each of ``--rounds`` rounds and the
median of the rounds is reported. Every run's final text is checked, and the server's
request count per route must be the same for every implementation. The figure is wall
time per round (total / (RUNS x TURNS)); an SDK's overhead per round is its figure less
the floor's. Prints a Markdown table (``--json`` for one JSON object).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import msgspec

from .procs import start_listening

HERE = Path(__file__).resolve().parent
KEY = "bench-key"
IMPLS = ("mistral_conv", "mistralai", "raw")
LABELS = {"mistral_conv": "mistral_conv", "mistralai": "mistralai `run_async`", "raw": "raw floor"}


def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first one.
        b: The second one.
    """
    return a + b


def expected_text(n: int, turns: int) -> str:
    return f"run {n}: " + ",".join(str(add(n, k)) for k in range(turns - 1))


# -- the server's side ---------------------------------------------------------------


class ToolRunResponder:
    """Turn k of a run (k = function results so far): a call of ``add(n, k)``; the last turn: text.

    ``n`` comes from the run's first message (``"run N"``), so each run's answer is its own.
    """

    def __init__(self, turns: int) -> None:
        self.turns = turns

    def __call__(self, context: Any) -> Any:
        from mistral_conv.models import FunctionResultEntry, MessageInputEntry, content_text
        from mistral_conv.testing import Turn, call_function, reply_text

        entries = [*context.history, *context.inputs]
        first = entries[0]
        assert isinstance(first, MessageInputEntry)
        n = int(content_text(first.content).split()[1])
        results = [e.result for e in entries if isinstance(e, FunctionResultEntry)]
        if len(results) < self.turns - 1:
            return Turn([call_function("add", {"a": n, "b": len(results)})])
        return Turn([reply_text(f"run {n}: " + ",".join(results))])


def serve(turns: int) -> int:
    """Serve until stdin closes; each ``counts`` line answers the requests per route since the last one."""
    from mistral_conv.testing import LocalConversationsServer

    with LocalConversationsServer(api_key=KEY, responder=ToolRunResponder(turns)) as server:
        print(f"URL {server.url}", flush=True)
        for line in sys.stdin:
            if line.strip() == "counts":  # asked between measurements, while nothing is in flight
                counts = dict(server.requests_per_route)
                server.requests_per_route.clear()
                server.requests.clear()
                print(json.dumps(counts), flush=True)
    return 0


# -- the three clients ---------------------------------------------------------------


async def bounded(runs: int, concurrency: int, one: Callable[[int], Awaitable[str]]) -> list[str]:
    sem = asyncio.Semaphore(concurrency)

    async def run(n: int) -> str:
        async with sem:
            return await one(n)

    return list(await asyncio.gather(*(run(n) for n in range(runs))))


async def batch_mistral_conv(url: str, runs: int, turns: int, concurrency: int) -> list[str]:
    from mistral_conv import AsyncConversationsClient

    async with AsyncConversationsClient(KEY, base_url=url) as client:

        async def one(n: int) -> str:
            result = await client.conversation(model="m", tools=[add]).send(f"run {n}")
            if result.rounds != turns:
                raise SystemExit(f"mistral_conv: {result.rounds} rounds, not {turns}")
            return result.output_text

        return await bounded(runs, concurrency, one)


async def batch_mistralai(url: str, runs: int, turns: int, concurrency: int) -> list[str]:
    from mistralai.client import Mistral
    from mistralai.extra.run.context import RunContext

    async with Mistral(api_key=KEY, server_url=url) as client:

        async def one(n: int) -> str:
            ctx = RunContext(model="m")
            ctx.register_func(add)
            result = await client.beta.conversations.run_async(run_ctx=ctx, inputs=f"run {n}")
            calls = sum(e.type == "function.call" for e in result.output_entries)
            if calls + 1 != turns:
                raise SystemExit(f"mistralai: {calls + 1} rounds, not {turns}")
            return str(result.output_as_text)

        return await bounded(runs, concurrency, one)


class RawOutput(msgspec.Struct):
    type: str
    tool_call_id: str = ""
    name: str = ""
    arguments: str | dict[str, Any] = ""
    content: Any = None


class RawResponse(msgspec.Struct):
    conversation_id: str
    outputs: list[RawOutput]


async def batch_raw(url: str, runs: int, turns: int, concurrency: int) -> list[str]:
    import aiohttp

    decoder = msgspec.json.Decoder(RawResponse)
    encoder = msgspec.json.Encoder()
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    integer = {"type": "integer"}
    definition = {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add two integers.",
            "parameters": {
                "type": "object",
                "properties": {"a": integer, "b": integer},
                "required": ["a", "b"],
                "additionalProperties": False,
            },
            "strict": True,
        },
    }
    local = {"add": add}

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as s:

        async def one(n: int) -> str:
            path = f"{url}/v1/conversations"
            body = encoder.encode(
                {"inputs": f"run {n}", "model": "m", "tools": [definition], "stream": False}
            )
            rounds = 0
            while True:
                async with s.post(path, data=body, headers=headers) as resp:
                    if resp.status != 200:
                        raise SystemExit(f"raw: HTTP {resp.status}: {await resp.text()}")
                    response = decoder.decode(await resp.read())
                rounds += 1
                calls = [o for o in response.outputs if o.type == "function.call"]
                if not calls:
                    break
                results = []
                for c in calls:
                    args = msgspec.json.decode(c.arguments) if isinstance(c.arguments, str) else c.arguments
                    value = local[c.name](**args)
                    text = value if isinstance(value, str) else encoder.encode(value).decode()
                    results.append(
                        {"type": "function.result", "tool_call_id": c.tool_call_id, "result": text}
                    )
                path = f"{url}/v1/conversations/{response.conversation_id}"
                body = encoder.encode({"inputs": results, "stream": False})
            if rounds != turns:
                raise SystemExit(f"raw: {rounds} rounds, not {turns}")
            return "".join(
                o.content
                for o in response.outputs
                if o.type == "message.output" and isinstance(o.content, str)
            )

        return await bounded(runs, concurrency, one)


BATCHES: dict[str, Callable[[str, int, int, int], Coroutine[Any, Any, list[str]]]] = {
    "mistral_conv": batch_mistral_conv,
    "mistralai": batch_mistralai,
    "raw": batch_raw,
}


def measure(impl: str, url: str, runs: int, turns: int, concurrency: int, repeat: int) -> dict[str, float]:
    """In a fresh process: the RUNS runs ``repeat`` times; the median batch, per round."""
    walls: list[float] = []
    cpus: list[float] = []
    expected = [expected_text(n, turns) for n in range(runs)]
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        texts = asyncio.run(BATCHES[impl](url, runs, turns, concurrency))
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
        if texts != expected:
            wrong = next(i for i, (x, y) in enumerate(zip(texts, expected, strict=True)) if x != y)
            raise SystemExit(f"{impl}: run {wrong} answered {texts[wrong]!r}, not {expected[wrong]!r}")
    per = 1000 / (runs * turns)
    return {"ms_per_round": statistics.median(walls) * per, "cpu_ms_per_round": statistics.median(cpus) * per}


# -- the driver ----------------------------------------------------------------------


def available() -> tuple[list[str], str]:
    """The implementations that can run here, and why the official SDK's cannot (or "")."""
    if importlib.util.find_spec("mistralai") is None:
        why = "the official SDK is not installed (`pip install -e '.[bench]'`)"
    elif importlib.util.find_spec("mcp") is None:
        why = "the official SDK's `run_async` needs its `agents` extra (`mcp`), which is not installed"
    else:
        return list(IMPLS), ""
    return [i for i in IMPLS if i != "mistralai"], why


def start_server(turns: int) -> tuple[subprocess.Popen[str], str]:
    return start_listening(
        ["benchmarks.runs", "serve", str(turns)], "the runs benchmark's server", stdin=True
    )


def server_counts(server: subprocess.Popen[str]) -> dict[str, int]:
    assert server.stdin is not None and server.stdout is not None
    server.stdin.write("counts\n")
    server.stdin.flush()
    counts: dict[str, int] = json.loads(server.stdout.readline())
    return counts


def run_one(impl: str, url: str, runs: int, turns: int, concurrency: int, repeat: int) -> dict[str, float]:
    args = [impl, url, str(runs), str(turns), str(concurrency), str(repeat)]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.runs", "measure", *args],
        capture_output=True,
        text=True,
        cwd=HERE.parent,
        timeout=600,
    )
    if done.returncode != 0:
        raise SystemExit(f"runs / {impl} / concurrency {concurrency} failed:\n{done.stderr}{done.stdout}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def drive(
    runs: int, turns: int, concurrencies: list[int], repeat: int, rounds: int
) -> tuple[dict[int, dict[str, list[dict[str, float]]]], list[str], str]:
    impls, why = available()
    if why:
        print(f"runs benchmark: {why}: its column is skipped", file=sys.stderr)
    expected = {
        "POST /v1/conversations": repeat * runs,
        "POST /v1/conversations/{id}": repeat * runs * (turns - 1),
    }
    results: dict[int, dict[str, list[dict[str, float]]]] = {c: {i: [] for i in impls} for c in concurrencies}
    server, url = start_server(turns)
    try:
        for r in range(rounds):
            for concurrency in concurrencies:
                for impl in impls[r % len(impls) :] + impls[: r % len(impls)]:
                    result = run_one(impl, url, runs, turns, concurrency, repeat)
                    counts = server_counts(server)
                    if counts != expected:
                        raise SystemExit(f"runs / {impl}: the server saw {counts}, not {expected}")
                    results[concurrency][impl].append(result)
                    print(
                        f"round {r + 1} runs c={concurrency:<3} {impl:13} {json.dumps(result)}",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)
        if server.stdout is not None:
            server.stdout.close()
    return results, impls, why


def table(
    results: dict[int, dict[str, list[dict[str, float]]]], impls: list[str], runs: int, turns: int, why: str
) -> str:
    sdks = [i for i in impls if i != "raw"]
    lines = [
        "| workload | metric | "
        + " | ".join(LABELS[i] for i in impls)
        + " | "
        + " | ".join(f"{LABELS[i]} overhead" for i in sdks)
        + " |",
        "|---|---|" + "---|" * (len(impls) + len(sdks)),
    ]
    for concurrency, by_impl in results.items():
        how = "sequential" if concurrency == 1 else f"{concurrency} at a time"
        for metric, label in (
            ("ms_per_round", "wall ms / round"),
            ("cpu_ms_per_round", "client CPU ms / round"),
        ):
            med = {i: statistics.median(r[metric] for r in by_impl[i]) for i in impls}
            lines.append(
                f"| {runs} runs x {turns} rounds, {how} | {label} | "
                + " | ".join(f"{med[i]:.3f}" for i in impls)
                + " | "
                + " | ".join(f"{med[i] - med['raw']:+.3f}" for i in sdks)
                + " |"
            )
    if why:
        lines += ["", f"The official SDK's column is missing: {why}."]
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        return serve(int(sys.argv[2]))
    if len(sys.argv) > 1 and sys.argv[1] == "measure":
        impl, url, runs, turns, concurrency, repeat = sys.argv[2:8]
        print(json.dumps(measure(impl, url, int(runs), int(turns), int(concurrency), int(repeat))))
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.runs", description=__doc__)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--turns", type=int, default=3, help="rounds per run (the last one answers text)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--repeat", type=int, default=3, help="batches of RUNS runs in each process")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per implementation")
    parser.add_argument("--smoke", action="store_true", help="4 runs, once: correctness only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.turns < 1:
        parser.error("--turns must be at least 1")
    if args.smoke:
        args.runs, args.concurrency, args.repeat, args.rounds = 4, [1, 2], 1, 1
    results, impls, why = drive(args.runs, args.turns, args.concurrency, args.repeat, args.rounds)
    if args.json:
        print(json.dumps({str(c): r for c, r in results.items()}))
    else:
        print(table(results, impls, args.runs, args.turns, why))
    return 0


if __name__ == "__main__":
    sys.exit(main())
