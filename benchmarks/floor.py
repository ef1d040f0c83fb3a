"""``python -m benchmarks.floor``: the decode floor, and where the stream path's time goes per event.

The bytes are those of the one-stream workload (``benchmarks.payloads.stream_body``:
``conversation.response.started``, ``--deltas`` message deltas, ``conversation.response.done``).

* **decode floor**: the events' data payloads, already split out of the body, decoded from
  memory by a ``msgspec.json.Decoder`` of the SDK's event union
  ``mistral_conv.models.KnownEvent``, each event dropped once decoded: no I/O, no SSE, no
  accumulation; the limit of the SDK's own stack (msgspec) on these bytes. Beside it, the
  same with every event kept in one ``list(map(decoder.decode, datas))`` (the cyclic GC then
  has a growing heap to walk).
* **stages**, from memory, on the body cut in 64 KiB chunks and, apart, in one event per
  chunk (a slow stream's reads), run in the stream path's order with each stage's calls timed
  apart: ``SSEDecoder.feed_data`` on each chunk; ``decode_events`` on each chunk's data;
  ``accumulate_batch`` of each chunk's events into one ``StreamState`` (with the text list
  ``text_stream()`` reads).
* **stream from memory**: the stream workload's mistral_conv code
  (``benchmarks.impl_mistral_conv``: ``start_stream`` + ``text_stream()``) through a transport
  that hands the same chunks from memory: the SDK's whole stream path without sockets.
* **stream over loopback**: the stream workload itself, ``python -m benchmarks.run
  mistral_conv stream`` (and ``raw``, the aiohttp + msgspec floor), against the benchmark
  server in a process of its own, exactly as ``python -m benchmarks`` runs it: the headline
  ratio to the decode floor.

Every figure comes from the same run: each round runs the memory process and the two
``benchmarks.run`` streams, fresh processes in rotating order; medians of the rounds. The
memory process also runs the stream workload's code over loopback with its CPU time
(``time.process_time()``), interleaved pass by pass with the memory measurements, so that
the breakdown's rows share the machine's drift. Events/s counts the stream's deltas over the
time to handle all of its events, as the stream workload does; µs per event divides by
every event (deltas + 2). Dispatch is the stream path's time per event less the three
stages: from memory, the SDK's own iteration (``async for`` steps, ``_fill``, the state
machine); over loopback it adds the client's I/O (aiohttp, the socket, the loop, the
connection) and the time the client waits.

``--profile`` runs the loopback stream once under cProfile in this process and prints the
functions by own time. ``--json`` prints one JSON object instead of the Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHUNK = 64 * 1024
KINDS = ("memory", "mistral_conv", "raw")


def data_payloads(body: bytes) -> list[bytes]:
    """The ``data`` of every event of a canonical body (one ``event:`` and one ``data:`` line each)."""
    blocks = body.split(b"\n\n")
    assert blocks[-1] == b""
    datas = [block[block.index(b"\ndata: ") + 7 :] for block in blocks[:-1]]
    return datas


def chunks_of(body: bytes, size: int = CHUNK) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


# -- the memory measurements, in a fresh process -------------------------------------


def measure_memory(n: int, repeat: int, url: str) -> dict[str, float]:
    """Every memory figure and the loopback stream's time and CPU, ``repeat`` times over, the
    measurements interleaved (medians), so that the machine's drift touches them all alike."""
    import importlib

    import msgspec

    from mistral_conv._accumulate import StreamState, accumulate_batch
    from mistral_conv._sse import SSEDecoder
    from mistral_conv._streaming import decode_events
    from mistral_conv.models import KnownEvent, MessageOutputDeltaEvent, ResponseDoneEvent

    from . import payloads

    body = payloads.stream_body(n)
    events = n + 2
    expected = payloads.stream_text(n)
    datas = data_payloads(body)
    chunks = chunks_of(body)
    assert len(datas) == events
    decoder: msgspec.json.Decoder[KnownEvent] = msgspec.json.Decoder(KnownEvent)
    decode = decoder.decode

    def decode_floor() -> dict[str, float]:
        # msgspec alone on the data payloads, each event dropped once decoded (a stream holds
        # no more than one chunk's events at a time).
        t = time.perf_counter()
        last = None
        for data in datas:
            last = decode(data)
        elapsed = time.perf_counter() - t
        assert isinstance(last, ResponseDoneEvent)
        return {"decode_floor": elapsed}

    def decode_kept() -> dict[str, float]:
        # The same, every event kept in one list.
        t = time.perf_counter()
        decoded = list(map(decode, datas))
        elapsed = time.perf_counter() - t
        text = "".join(
            e.content
            for e in decoded
            if isinstance(e, MessageOutputDeltaEvent) and isinstance(e.content, str)
        )
        if len(decoded) != events or text != expected:
            raise SystemExit("decode floor: wrong events")
        return {"decode_kept": elapsed}

    def stages(chunks: list[bytes], suffix: str) -> dict[str, float]:
        # The SDK's stages on the body's chunks, in the stream path's order (each chunk's events
        # live until the next chunk's replace them), each stage's calls timed apart.
        sse = SSEDecoder()
        state = StreamState()
        feed_s = decode_s = acc_s = 0.0
        count = 0
        for chunk in [*chunks, b""]:
            t0 = time.perf_counter()
            batch = sse.feed_data(chunk) if chunk else [f.data for f in sse.close()]
            t1 = time.perf_counter()
            evs = decode_events(batch)
            t2 = time.perf_counter()
            texts: list[str] = []
            accumulate_batch(state, evs, texts)
            t3 = time.perf_counter()
            feed_s += t1 - t0
            decode_s += t2 - t1
            acc_s += t3 - t2
            count += len(evs)
        if count != events or state.response().output_text != expected or not state.done:
            raise SystemExit("stages: wrong events or text")
        return {
            f"feed_data{suffix}": feed_s,
            f"decode_events{suffix}": decode_s,
            f"accumulate_batch{suffix}": acc_s,
        }

    def memory_stream(chunks: list[bytes], suffix: str) -> dict[str, float]:
        # The SDK's whole stream path from memory: the stream workload's code over a memory transport.
        t = time.perf_counter()
        got = asyncio.run(_memory_stream(chunks, n))
        elapsed = time.perf_counter() - t
        if got != expected:
            raise SystemExit("stream from memory: wrong text")
        return {f"memory_stream{suffix}": elapsed}

    # One event per chunk: the pattern of a slow stream (each read brings one event).
    singles = [block + b"\n\n" for block in body.split(b"\n\n")[:-1]]

    def loopback(name: str) -> dict[str, float]:
        # The stream workload's code, as ``benchmarks.run`` runs it, with this process's CPU time.
        impl = importlib.import_module(f"benchmarks.impl_{name}")
        t, c = time.perf_counter(), time.process_time()
        got = asyncio.run(impl.stream(url, n))
        elapsed, cpu = time.perf_counter() - t, time.process_time() - c
        if got != expected:
            raise SystemExit(f"{name} over loopback: wrong text")
        return {f"loopback_{name}": elapsed, f"loopback_{name}_cpu": cpu}

    steps: list[Callable[[], dict[str, float]]] = [
        lambda: loopback("mistral_conv"),
        lambda: loopback("raw"),
        decode_floor,
        decode_kept,
        lambda: stages(chunks, ""),
        lambda: memory_stream(chunks, ""),
        lambda: stages(singles, "_single"),
        lambda: memory_stream(singles, "_single"),
    ]
    for step in steps:  # warm up: decoders, imports, the allocator's pools
        step()
    times: dict[str, list[float]] = {}
    for i in range(repeat):
        for step in steps[i % len(steps) :] + steps[: i % len(steps)]:
            for key, value in step().items():
                times.setdefault(key, []).append(value)
    med = {key: statistics.median(values) for key, values in times.items()}
    out: dict[str, float] = {"chunks": len(chunks)}
    for key, seconds in med.items():
        if not key.endswith("_cpu"):
            out[f"{key}_events_per_s"] = n / seconds
        out[f"{key}_us"] = seconds / events * 1e6
    return out


async def _memory_stream(chunks: list[bytes], n: int) -> str:
    from multidict import CIMultiDict

    from mistral_conv import AsyncConversationsClient
    from mistral_conv.transport import HTTPRequest, HTTPResponse

    from . import impl_mistral_conv

    class Chunks:
        __slots__ = ("_it",)

        def __init__(self) -> None:
            self._it = iter(chunks)

        def __aiter__(self) -> Chunks:
            return self

        async def __anext__(self) -> bytes:
            for chunk in self._it:
                return chunk
            raise StopAsyncIteration

    class MemoryResponse(HTTPResponse):
        __slots__ = ()

        def aiter_bytes(self) -> AsyncIterator[bytes]:
            return Chunks()

        async def aclose(self) -> None:
            pass

    class MemoryTransport:
        async def send(self, request: HTTPRequest) -> HTTPResponse:
            return MemoryResponse(200, CIMultiDict({"Content-Type": "text/event-stream"}))

        async def aclose(self) -> None:
            pass

    async with AsyncConversationsClient(
        "k", base_url="http://127.0.0.1:1", max_retries=0, transport=MemoryTransport()
    ) as c:
        return await impl_mistral_conv._stream(c, n)


# -- the driver ----------------------------------------------------------------------


def run_json(args: list[str], what: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, cwd=HERE.parent, timeout=600
    )
    if done.returncode != 0:
        raise SystemExit(f"{what} failed:\n{done.stderr}{done.stdout}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def drive(n: int, repeat: int, passes: int, rounds: int) -> dict[str, list[dict[str, float]]]:
    from .__main__ import start_server

    sizes = {"stream_deltas": n, "stream_repeat": repeat}
    results: dict[str, list[dict[str, float]]] = {k: [] for k in KINDS}
    server, url = start_server(sizes)
    try:
        for r in range(rounds):
            for kind in KINDS[r % len(KINDS) :] + KINDS[: r % len(KINDS)]:
                if kind == "memory":
                    args = ["benchmarks.floor", "measure", str(n), str(passes), url]
                    result = run_json(args, "floor / memory")
                else:
                    args = ["benchmarks.run", kind, "stream", url, json.dumps(sizes)]
                    result = run_json(args, f"floor / {kind} stream")
                results[kind].append(result)
                print(f"round {r + 1} floor {kind:13} {json.dumps(result)}", file=sys.stderr, flush=True)
    finally:
        server.terminate()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()
    return results


def summarize(results: dict[str, list[dict[str, float]]], n: int) -> dict[str, float]:
    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in results[kind])

    events = n + 2
    out = {k: med("memory", k) for k in results["memory"][0]}
    out["stream_events_per_s"] = med("mistral_conv", "events_per_s")
    out["raw_events_per_s"] = med("raw", "events_per_s")
    # per event: the time for the whole stream (n / events_per_s) over all of its events
    out["stream_us"] = n / out["stream_events_per_s"] / events * 1e6
    out["raw_us"] = n / out["raw_events_per_s"] / events * 1e6
    out["memory_stream_us"] = n / out["memory_stream_events_per_s"] / events * 1e6
    out["memory_stream_single_us"] = n / out["memory_stream_single_events_per_s"] / events * 1e6
    ratios = [
        stream["events_per_s"] / memory["decode_floor_events_per_s"]
        for stream, memory in zip(results["mistral_conv"], results["memory"], strict=True)
    ]
    out["rounds_ratio_min"], out["rounds_ratio_max"] = min(ratios), max(ratios)
    return out


def table(s: dict[str, float], n: int, rounds: int, load: tuple[float, float]) -> str:
    floor = s["decode_floor_events_per_s"]
    stages = s["feed_data_us"] + s["decode_events_us"] + s["accumulate_batch_us"]
    lines = [
        f"| {n:,} deltas | events/s | µs / event | / decode floor (events/s) |",
        "|---|---|---|---|",
        f"| decode floor: msgspec `Decoder(KnownEvent)` on the data payloads, from memory, each dropped | "
        f"{fmt(floor)} | {s['decode_floor_us']:.3f} | 1.00 |",
        f"| the same, all events kept in one list (`list(map(decoder.decode, datas))`) | "
        f"{fmt(s['decode_kept_events_per_s'])} | {s['decode_kept_us']:.3f} | "
        f"{s['decode_kept_events_per_s'] / floor:.2f} |",
        f"| mistral_conv stream path from memory (64 KiB chunks, no sockets) | "
        f"{fmt(s['memory_stream_events_per_s'])} | {s['memory_stream_us']:.3f} | "
        f"{s['memory_stream_events_per_s'] / floor:.2f} |",
        f"| **mistral_conv stream over loopback** (the stream workload) | "
        f"{fmt(s['stream_events_per_s'])} | {s['stream_us']:.3f} | "
        f"**{s['stream_events_per_s'] / floor:.2f}** |",
        f"| raw aiohttp + msgspec over loopback (the stream workload's floor) | "
        f"{fmt(s['raw_events_per_s'])} | {s['raw_us']:.3f} | {s['raw_events_per_s'] / floor:.2f} |",
        "",
        "mistral_conv / raw over loopback in the same run: "
        f"{s['stream_events_per_s'] / s['raw_events_per_s']:.2f}. "
        f"The stream path / the decode floor, round by round: {s['rounds_ratio_min']:.2f} to "
        f"{s['rounds_ratio_max']:.2f}.",
        "",
        "| where a stream event's time goes (mistral_conv over loopback) | µs / event | share |",
        "|---|---|---|",
    ]
    total = s["loopback_mistral_conv_us"]
    rows = [
        ("decoder: `SSEDecoder.feed_data` (64 KiB chunks, from memory)", s["feed_data_us"]),
        ("decoder: `decode_events` (msgspec, `KnownEvent`, from memory)", s["decode_events_us"]),
        (
            "accumulation: `accumulate_batch` (and the `text_stream()` list, from memory)",
            s["accumulate_batch_us"],
        ),
        (
            "dispatch, the SDK's own: `async for` steps, `_fill`, the state machine "
            "(stream from memory - the stages)",
            s["memory_stream_us"] - stages,
        ),
        (
            "dispatch, I/O in the client: aiohttp, the socket, the loop, connecting "
            "(client CPU over loopback - stream from memory)",
            s["loopback_mistral_conv_cpu_us"] - s["memory_stream_us"],
        ),
        (
            "waiting: the client idle, the server and the kernel at work (wall - client CPU)",
            total - s["loopback_mistral_conv_cpu_us"],
        ),
    ]
    for label, us in rows:
        lines.append(f"| {label} | {us:.3f} | {us / total:.0%} |")
    lines.append(
        "| the stream path over loopback (the stream workload's code, in the same processes) | "
        f"{total:.3f} | 100% |"
    )
    lines += [
        "",
        "Every row from the same processes, the measurements interleaved pass by pass: the stream "
        "workload's code (`asyncio.run(impl.stream(url, n))`) over loopback with the process's CPU time "
        "(`time.process_time()`), the stages and the stream path from memory. Raw aiohttp + msgspec there: "
        f"{s['loopback_raw_us']:.3f} µs wall, {s['loopback_raw_cpu_us']:.3f} µs client CPU per event.",
    ]
    lines += [
        "",
        "| the SDK's stream path from memory, per event | 64 KiB chunks | one event per chunk |",
        "|---|---|---|",
    ]
    for label, key in [
        ("`SSEDecoder.feed_data`", "feed_data"),
        ("`decode_events`", "decode_events"),
        ("`accumulate_batch`", "accumulate_batch"),
    ]:
        lines.append(f"| {label} | {s[key + '_us']:.3f} | {s[key + '_single_us']:.3f} |")
    dispatch = {
        suffix: s[f"memory_stream{suffix}_us"]
        - sum(s[f"{k}{suffix}_us"] for k in ("feed_data", "decode_events", "accumulate_batch"))
        for suffix in ("", "_single")
    }
    lines += [
        "| dispatch: `async for`, `_fill`, the state machine | "
        f"{dispatch['']:.3f} | {dispatch['_single']:.3f} |",
        f"| the stream path from memory (`start_stream` + `text_stream()`) | {s['memory_stream_us']:.3f} | "
        f"{s['memory_stream_single_us']:.3f} |",
    ]
    lines += [
        "",
        f"Medians of {rounds} rounds (each a fresh process per measurement, the order rotating); "
        f"{s['chunks']:.0f} chunks of 64 KiB from memory. "
        f"Load average (1 min) {load[0]:.2f} before the run, {load[1]:.2f} after; {os.cpu_count()} cores.",
    ]
    return "\n".join(lines)


def fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


def profile(n: int, top: int) -> None:
    import cProfile
    import pstats

    from . import impl_mistral_conv, payloads
    from .__main__ import start_server

    server, url = start_server({"stream_deltas": n})
    try:
        asyncio.run(impl_mistral_conv.stream(url, n))  # warm: decoders, imports
        prof = cProfile.Profile()
        prof.enable()
        text = asyncio.run(impl_mistral_conv.stream(url, n))
        prof.disable()
    finally:
        server.terminate()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()
    if text != payloads.stream_text(n):
        raise SystemExit("profile: wrong text")
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "measure":
        print(json.dumps(measure_memory(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])))
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor", description=__doc__)
    parser.add_argument("--deltas", type=int, default=20_000, help="message deltas in the stream")
    parser.add_argument("--repeat", type=int, default=3, help="loopback streams per process (median)")
    parser.add_argument("--passes", type=int, default=15, help="passes of each memory measurement (median)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per measurement")
    parser.add_argument("--smoke", action="store_true", help="50 deltas, once: correctness only")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", type=int, metavar="TOP", help="cProfile one loopback stream instead")
    args = parser.parse_args()
    if args.profile:
        profile(args.deltas, args.profile)
        return 0
    if args.smoke:
        args.deltas, args.repeat, args.passes, args.rounds = 50, 1, 1, 1
    before = os.getloadavg()[0]
    summary = summarize(drive(args.deltas, args.repeat, args.passes, args.rounds), args.deltas)
    load = (before, os.getloadavg()[0])
    print(json.dumps(summary) if args.json else table(summary, args.deltas, args.rounds, load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
