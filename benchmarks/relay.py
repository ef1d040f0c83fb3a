"""``python -m benchmarks.relay``: events/s through the aiohttp.web relay helper, beside the direct stream.

The upstream is the benchmark server (``benchmarks.server``, pre-rendered bytes, a
process of its own), the same one ``python -m benchmarks`` streams from. Two paths
read the same stream of ``--deltas`` message deltas (``started``, the deltas, ``done``):

* ``direct``: ``AsyncConversationsClient.start_stream`` read event by event to the end;
* ``relayed``: a relay app (``benchmarks.relay serve``, an aiohttp.web app in a process
  of its own whose handler is ``return await relay(request, client.start_stream(...),
  mode="events")``) re-encodes every event as SSE to an aiohttp client that reads the
  body and decodes its frames with ``mistral_conv.sse.SSEDecoder``.

Each measurement is a fresh process that reads a small warm-up stream, then
``--repeat`` streams; the clock runs from the request to the last frame, and the
median stream counts. The paths alternate within each of ``--rounds`` rounds and the
median of the rounds is reported. After the clock stops every stream is checked: the
direct one's event count, last event and text; the relayed one's frame count (every
upstream event and the relay's final ``done``), names, text and ``done`` data.
Events/s counts the upstream's events (deltas + 2). CPU time per event is read for the
reading process, the relay app (its ``/cpu`` route) and the upstream server
(``/proc/<pid>/stat``). Prints a Markdown table (``--json`` for one JSON object).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PATHS = ("direct", "relayed")
WARMUP = 10  # deltas of the stream each measuring process reads before its clock starts


# -- the relay app -------------------------------------------------------------------


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def serve(upstream: str) -> None:
    from aiohttp import web

    from mistral_conv import AsyncConversationsClient
    from mistral_conv.web import relay

    async with AsyncConversationsClient("k", base_url=upstream, max_retries=0) as client:

        async def chat(request: web.Request) -> web.StreamResponse:
            stream = client.start_stream(model="m", inputs=f"deltas:{int(request.query['n'])}")
            return await relay(request, stream, mode="events")

        async def cpu(request: web.Request) -> web.Response:
            return web.json_response({"cpu_s": cpu_seconds()})

        app = web.Application()
        app.router.add_get("/chat", chat)
        app.router.add_get("/cpu", cpu)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(f"PORT {runner.addresses[0][1]}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


# -- one measurement, in a fresh process -----------------------------------------------


def _stat_row(rates: list[float], cpus: list[float], events: int) -> dict[str, float]:
    return {
        "events_per_s": statistics.median(rates),
        "client_cpu_us_per_event": statistics.median(cpus) / events * 1e6,
    }


async def measure_direct(url: str, n: int, repeat: int) -> dict[str, float]:
    from mistral_conv import AsyncConversationsClient

    from . import payloads

    events = n + 2
    rates: list[float] = []
    cpus: list[float] = []
    async with AsyncConversationsClient("k", base_url=url, max_retries=0) as client:
        for size in (WARMUP, *(n,) * repeat):
            t, c = time.perf_counter(), time.process_time()
            async with client.start_stream(model="m", inputs=f"deltas:{size}") as stream:
                count = 0
                last = None
                async for event in stream:
                    count += 1
                    last = event
            elapsed, cpu = time.perf_counter() - t, time.process_time() - c
            if (
                count != size + 2
                or last is None
                or last.type != "conversation.response.done"
                or stream.current_response().output_text != payloads.stream_text(size)
            ):
                raise SystemExit(f"direct: {count} events, last {last!r}: not the stream sent")
            if size == n:
                rates.append(events / elapsed)
                cpus.append(cpu)
    return _stat_row(rates, cpus, events)


async def measure_relayed(url: str, n: int, repeat: int) -> dict[str, float]:
    import aiohttp
    import msgspec

    from mistral_conv.sse import SSEDecoder, SSEFrame

    from . import payloads

    events = n + 2
    rates: list[float] = []
    cpus: list[float] = []
    relay_cpus: list[float] = []
    async with aiohttp.ClientSession() as session:

        async def relay_cpu() -> float:
            async with session.get(f"{url}/cpu") as response:
                value: float = (await response.json())["cpu_s"]
                return value

        for size in (WARMUP, *(n,) * repeat):
            before = await relay_cpu()
            t, c = time.perf_counter(), time.process_time()
            async with session.get(f"{url}/chat", params={"n": str(size)}) as response:
                if response.status != 200:
                    raise SystemExit(f"relayed: status {response.status}")
                decoder = SSEDecoder()
                frames: list[SSEFrame] = []
                async for chunk in response.content.iter_any():
                    frames += decoder.feed(chunk)
            elapsed, cpu = time.perf_counter() - t, time.process_time() - c
            relay = await relay_cpu() - before
            names = [f.event for f in frames]
            expected = [
                "conversation.response.started",
                *["message.output.delta"] * size,
                "conversation.response.done",
                "done",
            ]
            if names != expected:
                raise SystemExit(f"relayed: {len(frames)} frames, not {len(expected)}; last {names[-2:]}")
            text = "".join(msgspec.json.decode(f.data)["content"] for f in frames[1:-2])
            done = msgspec.json.decode(frames[-1].data)
            if text != payloads.stream_text(size) or done != {"conversation_id": payloads.CONVERSATION_ID}:
                raise SystemExit(f"relayed: wrong text or done frame {done!r}")
            if size == n:
                rates.append(events / elapsed)
                cpus.append(cpu)
                relay_cpus.append(relay)
    return {
        **_stat_row(rates, cpus, events),
        "relay_cpu_us_per_event": statistics.median(relay_cpus) / events * 1e6,
    }


# -- the driver ----------------------------------------------------------------------


def start(args: list[str], what: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", *args], stdout=subprocess.PIPE, text=True, cwd=HERE.parent)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise SystemExit(f"the {what} did not start")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}"


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(10)
    if proc.stdout is not None:
        proc.stdout.close()


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of another process (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_one(path: str, url: str, n: int, repeat: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.relay", "measure", path, url, str(n), str(repeat)],
        capture_output=True,
        text=True,
        cwd=HERE.parent,
        timeout=600,
    )
    if done.returncode != 0:
        raise SystemExit(f"relay / {path} failed:\n{done.stderr}{done.stdout}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def drive(n: int, repeat: int, rounds: int) -> dict[str, list[dict[str, float]]]:
    results: dict[str, list[dict[str, float]]] = {p: [] for p in PATHS}
    sizes = json.dumps({"stream_deltas": n, "stream_len": WARMUP})
    server, upstream = start(["benchmarks.server", "0", sizes], "benchmark server")
    try:
        app, relay_url = start(["benchmarks.relay", "serve", upstream], "relay app")
        try:
            urls = {"direct": upstream, "relayed": relay_url}
            for r in range(rounds):
                for path in PATHS[r % 2 :] + PATHS[: r % 2]:
                    server_cpu = process_cpu(server.pid)
                    result = run_one(path, urls[path], n, repeat)
                    streamed = repeat * (n + 2) + WARMUP + 2
                    result["server_cpu_us_per_event"] = (
                        (process_cpu(server.pid) - server_cpu) / streamed * 1e6
                    )
                    results[path].append(result)
                    print(f"round {r + 1} relay {path:8} {json.dumps(result)}", file=sys.stderr, flush=True)
        finally:
            stop(app)
    finally:
        stop(server)
    return results


def medians(results: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {p: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for p, rs in results.items()}


def table(results: dict[str, list[dict[str, float]]], n: int, load: tuple[float, float]) -> str:
    med = medians(results)
    d, r = med["direct"], med["relayed"]
    rows = [  # label, key, whether relayed / direct means something (CPU ticks are 10 ms)
        ("events/s", "events_per_s", True),
        ("reading client CPU µs / event", "client_cpu_us_per_event", True),
        ("relay app CPU µs / event", "relay_cpu_us_per_event", False),
        ("upstream server CPU µs / event", "server_cpu_us_per_event", False),
    ]
    lines = ["| stream | metric | direct | relayed | relayed / direct |", "|---|---|---|---|---|"]
    for label, key, ratio in rows:
        cells = [fmt(m[key]) if key in m else "-" for m in (d, r)]
        quotient = f"{r[key] / d[key]:.3f}" if ratio else ""
        lines.append(f"| {n:,} deltas | {label} | {cells[0]} | {cells[1]} | {quotient} |")
    lines += [
        "",
        f"Load average (1 min) {load[0]:.2f} before the run, {load[1]:.2f} after; {os.cpu_count()} cores.",
    ]
    return "\n".join(lines)


def fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(sys.argv[2]))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "measure":
        path, url, n, repeat = sys.argv[2:6]
        how = measure_direct if path == "direct" else measure_relayed
        print(json.dumps(asyncio.run(how(url, int(n), int(repeat)))))
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.relay", description=__doc__)
    parser.add_argument("--deltas", type=int, default=20_000, help="message deltas in the stream")
    parser.add_argument("--repeat", type=int, default=3, help="streams read in each process (median)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per path")
    parser.add_argument("--smoke", action="store_true", help="50 deltas, once: correctness only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.deltas, args.repeat, args.rounds = 50, 1, 1
    before = os.getloadavg()[0]
    results = drive(args.deltas, args.repeat, args.rounds)
    load = (before, os.getloadavg()[0])
    print(json.dumps(medians(results)) if args.json else table(results, args.deltas, load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
