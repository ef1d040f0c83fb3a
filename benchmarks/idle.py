"""``python -m benchmarks.idle``: 10,000 concurrent open streams, idle between events.

A server (``benchmarks.idle serve``: aiohttp.web, a process of its own, loopback, asyncio's
loop) holds every stream open: it answers each ``POST /v1/conversations`` with
``conversation.response.started`` and, once told to (``POST /go``), sends each open stream one
small ``message.output.delta`` every ``--period`` seconds whose content is the server's
``time.time()`` when it writes it. The streams are spread over ``--waves`` waves per period (one
wave every period / waves), so the server writes steadily, not 10,000 events at once.
``POST /stop?group=G`` ends every stream of a group with ``conversation.response.done`` and
says how many deltas it sent them.

One client process (``benchmarks.idle client``) opens ``--streams`` streams (at most ``OPENING``
opening at a time), reads them all concurrently, and measures:

* memory per open stream: the resident set (``/proc/self/statm``) with all but the last
  ``--sample`` streams open (before any delta), less the resident set before the first was
  opened (after a warm-up of a few streams and ``gc.collect()``), over the streams open; and
  the bytes ``tracemalloc`` traces while the last ``--sample`` streams open (all the others
  open), over ``--sample`` (tracing slows opening down, so only the last ones are traced; the
  resident set is read before tracing starts);
* event latency while all are open: after ``POST /go`` and ``--settle`` seconds, over a
  ``--window`` of seconds, ``time.time()`` when the reader has the event less the server's stamp
  in it (50th and 99th percentiles, maximum), with the client's CPU time per event and as a
  share of a core (near 1.00: saturated, the events queue) and the cyclic GC's pauses
  (``gc.callbacks``) over the same window.

After the window every stream is ended and checked: each reader ends with
``conversation.response.done`` (for the SDK, the stream's status ``DONE``) and the deltas read
equal the deltas the server sent. Two implementations: ``mistral_conv``
(``client.start_stream(...)``, ``max_connections`` = streams + 100, read with ``async for``)
and ``raw`` (the floor: aiohttp + msgspec, the SSE split by hand, as ``benchmarks.impl_raw``
reads a stream), each under asyncio's loop and under uvloop's
(``asyncio.Runner(loop_factory=uvloop.new_event_loop)``). Every measurement is a fresh client
process against a fresh server process; the whole run stops at ``--budget`` seconds (what
did not run by then is left out, and said so).

The client and the server each raise their open-file limit to the hard limit; when that
cannot hold every stream's socket, fewer streams are opened and the table says so.
Prints a Markdown table (``--json`` for one JSON object).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.util
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from .procs import start_listening
from .run import percentile, rss_bytes

HERE = Path(__file__).resolve().parent
IMPLS = ("mistral_conv", "raw")
LOOPS = ("asyncio", "uvloop")
OPENING = 256  # streams opening at a time (the rest wait for a slot, not for the listen backlog)
WARM = 8  # streams a client opens and ends before its baseline
FDS_SPARE = 200  # file descriptors beside the streams' sockets
MESSAGE_ID = "msg_0195b0c3d4e5f6a7b8c9d0e1f2a3b4c6"


def raise_fd_limit() -> tuple[int, int]:
    """Raise the soft open-file limit to the hard one; return (soft before, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return soft, hard


def _frame(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


# -- the server ----------------------------------------------------------------------

STARTED = _frame({"type": "conversation.response.started", "conversation_id": "conv_idle"})
DONE = _frame(
    {
        "type": "conversation.response.done",
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
)
_delta = _frame(
    {
        "type": "message.output.delta",
        "output_index": 0,
        "id": MESSAGE_ID,
        "content_index": 0,
        "model": "m",
        "agent_id": None,
        "role": "assistant",
        "content": "STAMP",
    }
)
DELTA_HEAD, DELTA_TAIL = _delta.split(b"STAMP")


class _Open:
    """One open stream on the server."""

    __slots__ = ("done", "group", "resp", "sent", "slot")

    def __init__(self, resp: Any, group: str, slot: int, done: asyncio.Future[bool]) -> None:
        self.resp = resp
        self.group = group
        self.slot = slot
        self.done = done  # True: the client left; False: end the stream with done
        self.sent = 0


async def serve(period: float, waves: int) -> None:
    from aiohttp import web

    slots: list[dict[int, _Open]] = [{} for _ in range(waves)]
    groups: dict[str, dict[int, _Open]] = {}
    counter = 0
    sending = asyncio.Event()  # set by POST /go: until then the streams stay silent after `started`

    def forget(entry: _Open) -> None:
        slots[entry.slot].pop(id(entry), None)
        groups.get(entry.group, {}).pop(id(entry), None)

    async def conversations(request: web.Request) -> web.StreamResponse:
        nonlocal counter
        inputs = json.loads(await request.read())["inputs"]
        group = inputs.split(":", 1)[1]
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        await resp.write(STARTED)
        entry = _Open(resp, group, counter % waves, asyncio.get_running_loop().create_future())
        counter += 1
        slots[entry.slot][id(entry)] = entry
        groups.setdefault(group, {})[id(entry)] = entry
        try:
            gone = await entry.done
        finally:
            forget(entry)
        if not gone:
            await resp.write(DONE)
            await resp.write_eof()
        return resp

    async def stop(request: web.Request) -> web.Response:
        entries = list(groups.pop(request.query["group"], {}).values())
        for entry in entries:
            forget(entry)
            if not entry.done.done():
                entry.done.set_result(False)
        return web.json_response({"streams": len(entries), "deltas": sum(e.sent for e in entries)})

    async def go(request: web.Request) -> web.Response:
        sending.set()
        return web.json_response({"streams": sum(map(len, slots))})

    async def broadcast() -> None:
        await sending.wait()
        loop = asyncio.get_running_loop()
        step = period / waves
        at = loop.time()
        k = 0
        while True:
            at += step
            await asyncio.sleep(max(0.0, at - loop.time()))
            for entry in list(slots[k % waves].values()):
                if entry.done.done():
                    continue
                entry.sent += 1
                try:
                    await entry.resp.write(DELTA_HEAD + b"%.6f" % time.time() + DELTA_TAIL)
                except (ConnectionError, RuntimeError):
                    entry.sent -= 1
                    forget(entry)
                    if not entry.done.done():
                        entry.done.set_result(True)
            k += 1

    raise_fd_limit()
    app = web.Application()
    app.router.add_post("/v1/conversations", conversations)
    app.router.add_post("/stop", stop)
    app.router.add_post("/go", go)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    task = asyncio.create_task(broadcast())
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        task.cancel()
        await runner.cleanup()


# -- the client ----------------------------------------------------------------------


class Probe:
    """What the readers report: streams open, and each delta's latency while measuring."""

    def __init__(self) -> None:
        self.opened = 0
        self.step = asyncio.Event()  # set when a stream opens
        self.measuring = False
        self.latencies: list[float] = []

    @property
    def n(self) -> int:
        return self.opened

    def open(self) -> None:
        self.opened += 1
        self.step.set()

    def delta(self, content: object) -> None:
        now = time.time()
        if self.measuring:
            assert isinstance(content, str)
            self.latencies.append(now - float(content))


class GCPauses:
    """A ``gc.callbacks`` entry: how many collections ran, how long in all, the longest."""

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.longest = 0.0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
            return
        pause = time.perf_counter() - self._start
        self.count += 1
        self.total += pause
        self.longest = max(self.longest, pause)


Reader = Callable[[str, asyncio.Semaphore, Probe], Coroutine[Any, Any, int]]


async def _sdk(url: str, n: int) -> tuple[Reader, Callable[[], Awaitable[None]]]:
    from mistral_conv import AsyncConversationsClient, StreamStatus
    from mistral_conv.models import MessageOutputDeltaEvent

    client = AsyncConversationsClient("k", base_url=url, max_retries=0, max_connections=n + 100)

    async def read(group: str, opening: asyncio.Semaphore, probe: Probe) -> int:
        stream = client.start_stream(model="m", inputs=f"idle:{group}")
        async with opening:
            await stream.open()
        probe.open()
        deltas = 0
        async with stream:
            async for event in stream:
                if event.__class__ is MessageOutputDeltaEvent:
                    probe.delta(event.content)
                    deltas += 1
        if stream.status is not StreamStatus.DONE:
            raise SystemExit(f"mistral_conv: a stream ended {stream.status.value}")
        return deltas

    return read, client.aclose


async def _raw(url: str, n: int) -> tuple[Reader, Callable[[], Awaitable[None]]]:
    import aiohttp
    import msgspec

    from .impl_raw import HEADERS, delta_decoder

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=n + 100))
    headers = {**HEADERS, "Accept": "text/event-stream"}

    async def read(group: str, opening: asyncio.Semaphore, probe: Probe) -> int:
        body = msgspec.json.encode({"inputs": f"idle:{group}", "stream": True, "model": "m"})
        deltas = 0
        done = False
        await opening.acquire()
        holding = True
        try:
            async with session.post(f"{url}/v1/conversations", data=body, headers=headers) as resp:
                rest = b""
                async for chunk in resp.content.iter_any():
                    blocks = (rest + chunk).split(b"\n\n")
                    rest = blocks.pop()
                    for block in blocks:
                        event = delta_decoder.decode(block[block.find(b"data: ") + 6 :])
                        if event.type == "message.output.delta":
                            probe.delta(event.content)
                            deltas += 1
                        elif event.type == "conversation.response.started":
                            opening.release()
                            holding = False
                            probe.open()
                        elif event.type == "conversation.response.done":
                            done = True
        finally:
            if holding:
                opening.release()
        if not done:
            raise SystemExit("raw: a stream ended without conversation.response.done")
        return deltas

    return read, session.close


async def measure(impl: str, url: str, n: int, sample: int, settle: float, window: float) -> dict[str, float]:
    import tracemalloc

    import aiohttp

    make = _sdk if impl == "mistral_conv" else _raw
    read, close = await make(url, n)
    opening = asyncio.Semaphore(OPENING)
    async with aiohttp.ClientSession() as control:

        async def post(path: str, **params: str) -> dict[str, int]:
            async with control.post(f"{url}{path}", params=params) as response:
                result: dict[str, int] = await response.json()
                return result

        async def end(group: str, tasks: list[asyncio.Task[int]], probe: Probe) -> int:
            sent = await post("/stop", group=group)
            counts = await asyncio.gather(*tasks)
            if sent["streams"] != probe.n or sum(counts) != sent["deltas"]:
                raise SystemExit(
                    f"{impl}: {sent['streams']} streams sent {sent['deltas']} deltas, "
                    f"{len(counts)} read {sum(counts)}"
                )
            return sent["deltas"]

        async def open_streams(group: str, count: int, probe: Probe, tasks: list[asyncio.Task[int]]) -> None:
            target = probe.opened + count
            tasks += [asyncio.create_task(read(group, opening, probe)) for _ in range(count)]
            while probe.opened < target:
                await asyncio.wait_for(probe.step.wait(), 60)
                probe.step.clear()

        try:
            warm = Probe()
            warm_tasks: list[asyncio.Task[int]] = []
            await open_streams("warm", WARM, warm, warm_tasks)
            await end("warm", warm_tasks, warm)

            gc.collect()
            base = rss_bytes()
            probe = Probe()
            tasks: list[asyncio.Task[int]] = []
            t = time.perf_counter()
            await open_streams("main", n - sample, probe, tasks)
            untraced_s = time.perf_counter() - t
            gc.collect()
            rss = rss_bytes()
            tracemalloc.start()
            traced_base = tracemalloc.get_traced_memory()[0]
            t = time.perf_counter()
            await open_streams("main", sample, probe, tasks)
            traced_s = time.perf_counter() - t
            gc.collect()
            traced = tracemalloc.get_traced_memory()[0] - traced_base
            tracing = tracemalloc.get_tracemalloc_memory()
            tracemalloc.stop()
            rss_all = rss_bytes()
            out: dict[str, float] = {
                "streams": n,
                "sample": sample,
                "open_s": untraced_s + traced_s,
                "open_per_s": (n - sample) / untraced_s,
                "rss_kib_per_stream": (rss - base) / (n - sample) / 1024,
                "rss_all_less_tracing_kib_per_stream": (rss_all - tracing - base) / n / 1024,
                "traced_kib_per_stream": traced / sample / 1024,
            }
            await post("/go")
            await asyncio.sleep(settle)
            pauses = GCPauses()
            gc.callbacks.append(pauses)
            cpu, t = time.process_time(), time.perf_counter()
            probe.measuring = True
            await asyncio.sleep(window)  # may end late when the loop is behind: the clock says how late
            probe.measuring = False
            cpu, elapsed = time.process_time() - cpu, time.perf_counter() - t
            gc.callbacks.remove(pauses)
            lat = probe.latencies
            if not lat:
                raise SystemExit(f"{impl}: no event arrived in the window")
            out |= {
                "window_s": elapsed,
                "events": len(lat),
                "events_per_s": len(lat) / elapsed,
                "p50_ms": percentile(lat, 0.5) * 1000,
                "p99_ms": percentile(lat, 0.99) * 1000,
                "max_ms": max(lat) * 1000,
                "cpu_us_per_event": cpu / len(lat) * 1e6,
                "cpu_share": cpu / elapsed,
                "gc_collections": pauses.count,
                "gc_ms_per_s": pauses.total / elapsed * 1000,
                "gc_max_ms": pauses.longest * 1000,
            }
            out["deltas"] = await end("main", tasks, probe)
            return out
        finally:
            await close()


def client_main(impl: str, loop: str, url: str, n: int, sample: int, settle: float, window: float) -> None:
    soft, hard = raise_fd_limit()
    if loop == "uvloop":
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    else:
        runner = asyncio.Runner()
    with runner:
        result = runner.run(measure(impl, url, n, sample, settle, window))
    print(json.dumps(result | {"fd_soft": soft, "fd_hard": hard}))


# -- the driver ----------------------------------------------------------------------


def start_server(period: float, waves: int) -> tuple[subprocess.Popen[str], str]:
    return start_listening(["benchmarks.idle", "serve", str(period), str(waves)], "the idle-stream server")


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def run_client(
    impl: str, loop: str, n: int, args: argparse.Namespace, timeout: float
) -> dict[str, float] | None:
    """One measurement: a fresh server, a fresh client; ``None`` when it did not finish in ``timeout``."""
    server, url = start_server(args.period, args.waves)
    try:
        cmd = [sys.executable, "-m", "benchmarks.idle", "client", impl, loop, url]
        cmd += [str(n), str(args.sample), str(args.settle), str(args.window)]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None  # subprocess.run has killed the client
    finally:
        stop_server(server)
    if done.returncode != 0:
        raise SystemExit(f"idle / {impl} / {loop} failed:\n{done.stderr}{done.stdout}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def drive(
    args: argparse.Namespace, n: int, loops: list[str]
) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Every implementation under every loop, the loops alternating; what ran past the budget is left out."""
    results: dict[str, dict[str, float]] = {}
    missed: list[str] = []
    deadline = time.monotonic() + args.budget
    order = [(impl, loop) for i, impl in enumerate(IMPLS) for loop in (loops if i % 2 == 0 else loops[::-1])]
    for impl, loop in order:
        left = deadline - time.monotonic()
        result = run_client(impl, loop, n, args, left) if left > 5 else None
        if result is None:
            missed.append(f"{impl} {loop}")
            print(f"idle {impl:13} {loop:8} left out: past the budget", file=sys.stderr, flush=True)
            continue
        results[f"{impl} {loop}"] = result
        print(f"idle {impl:13} {loop:8} {json.dumps(result)}", file=sys.stderr, flush=True)
    return results, missed


def table(results: dict[str, dict[str, float]], n: int, args: argparse.Namespace, note: str) -> str:
    cols = [
        ("RSS KiB / stream", "rss_kib_per_stream", "{:.1f}"),
        ("traced KiB / stream", "traced_kib_per_stream", "{:.1f}"),
        ("p50 ms", "p50_ms", "{:.2f}"),
        ("p99 ms", "p99_ms", "{:.2f}"),
        ("max ms", "max_ms", "{:.1f}"),
        ("events / s", "events_per_s", "{:,.0f}"),
        ("client CPU µs / event", "cpu_us_per_event", "{:.1f}"),
        ("client CPU, share of a core", "cpu_share", "{:.2f}"),
        ("GC ms / s", "gc_ms_per_s", "{:.1f}"),
        ("longest GC pause ms", "gc_max_ms", "{:.1f}"),
        ("opened / s", "open_per_s", "{:,.0f}"),
    ]
    lines = [
        f"| {n:,} open streams | loop | " + " | ".join(c[0] for c in cols) + " |",
        "|---|---|" + "---|" * len(cols),
    ]
    keys = sorted(results, key=lambda k: (IMPLS.index(k.split()[0]), LOOPS.index(k.split()[1])))
    for key in keys:
        impl, loop = key.split()
        label = "mistral_conv" if impl == "mistral_conv" else "raw aiohttp + msgspec (floor)"
        r = results[key]
        cells = [fmt.format(r[k]) if k in r else "-" for _, k, fmt in cols]
        lines.append(f"| {label} | {loop} | " + " | ".join(cells) + " |")
    for loop in LOOPS:
        sdk, raw = results.get(f"mistral_conv {loop}"), results.get(f"raw {loop}")
        if sdk and raw:
            ratios = " | ".join(
                f"{sdk[k] / raw[k]:.2f}" if k in sdk and k in raw and raw[k] else "-" for _, k, _ in cols
            )
            lines.append(f"| mistral_conv / raw | {loop} | {ratios} |")
    first = results[keys[0]] if keys else {"fd_soft": 0, "fd_hard": 0, "sample": args.sample}
    sample = int(first["sample"])
    lines += [
        "",
        f"Every stream open at once, then one event per stream every {args.period:g} s in "
        f"{args.waves} waves per period; latency from the server's `time.time()` in the event to the "
        f"reader's, over {args.window:g} s after {args.settle:g} s of events, with the client's CPU "
        "time (a share near 1.00: the client is saturated, events queue and the latency is the "
        "queue's) and the cyclic GC's pauses over the same window. RSS: the resident set with the "
        f"first {n - sample:,} streams open (no event yet) less before the first, over {n - sample:,}; "
        f"traced: the bytes `tracemalloc` traced while the last {sample:,} opened (the others open), "
        f"over {sample:,}. Open-file limit {first['fd_soft']:.0f} soft, {first['fd_hard']:.0f} hard "
        f"(raised to hard in the client and the server); at most {OPENING} streams opening at a time; "
        "each implementation and loop in a fresh client process against a fresh server process "
        f"(asyncio's loop); {os.cpu_count()} cores.{note}",
    ]
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(float(sys.argv[2]), int(sys.argv[3])))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        impl, loop, url, streams, sample, settle, window = sys.argv[2:9]
        client_main(impl, loop, url, int(streams), int(sample), float(settle), float(window))
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.idle", description=__doc__)
    parser.add_argument("--streams", type=int, default=10_000, help="concurrent open streams")
    parser.add_argument("--period", type=float, default=1.0, help="seconds between two events of a stream")
    parser.add_argument("--waves", type=int, default=50, help="waves the server sends each period in")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds of events before the window")
    parser.add_argument("--window", type=float, default=4.0, help="seconds over which latency is measured")
    parser.add_argument("--sample", type=int, default=1_000, help="the last streams opened, traced")
    parser.add_argument("--budget", type=float, default=110.0, help="seconds the whole run may take")
    parser.add_argument("--loops", nargs="*", choices=LOOPS, default=list(LOOPS))
    parser.add_argument("--smoke", action="store_true", help="20 streams, short waits: correctness only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.streams, args.sample, args.period, args.waves, args.settle, args.window = 20, 5, 0.2, 4, 0.2, 0.4
    loops = [loop for loop in args.loops if loop != "uvloop" or importlib.util.find_spec("uvloop")]
    note = "" if "uvloop" in loops or "uvloop" not in args.loops else " uvloop is not installed: skipped."
    _, hard = raise_fd_limit()
    n = args.streams
    if hard != resource.RLIM_INFINITY and hard < n + FDS_SPARE:
        n = max(1, hard - FDS_SPARE)
        note += f" **The open-file hard limit ({hard}) holds only {n:,} streams: measured with {n:,}.**"
        print(f"idle: the open-file hard limit {hard} is too low for {args.streams} streams", file=sys.stderr)
    args.sample = max(1, min(args.sample, n - 1))
    results, missed = drive(args, n, loops)
    if missed:
        note += f" Left out, past the budget of {args.budget:g} s: {', '.join(missed)}."
    print(json.dumps(results) if args.json else table(results, n, args, note))
    return 0


if __name__ == "__main__":
    sys.exit(main())
