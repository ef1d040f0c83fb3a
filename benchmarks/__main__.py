"""``python -m benchmarks``: every scenario, every implementation, alternating, in fresh processes.

Writes the medians, the ratios against the raw floor and the official SDK, and
the machine to ``benchmarks/RESULTS.md``. ``--smoke`` runs tiny sizes once and
only checks correctness (used by the test suite).
"""

from __future__ import annotations

import argparse
import compileall
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from .procs import start_listening

HERE = Path(__file__).resolve().parent
IMPLS = ("mistral_conv", "raw", "mistralai")
FULL = {
    "stream_deltas": 20_000,
    "stream_repeat": 5,
    "streams": 200,
    "streams_repeat": 3,
    "stream_len": 200,
    "starts": 500,
    "starts_repeat": 5,
    "concurrency": 100,
    "history": 5_000,
    "history_repeat": 5,
}
SMOKE = {
    "stream_deltas": 50,
    "stream_repeat": 1,
    "streams": 4,
    "streams_repeat": 1,
    "stream_len": 10,
    "starts": 10,
    "starts_repeat": 1,
    "concurrency": 4,
    "history": 25,
    "history_repeat": 1,
}

# Scenarios measured under uvloop too, and by whom: the official SDK runs on asyncio only (its
# one-stream run alone takes a minute a round).
UVLOOP_SCENARIOS = ("stream", "many_streams", "starts", "history")
UVLOOP_IMPLS = ("mistral_conv", "raw")
IMPORT_PROCESSES = 5  # fresh processes per implementation in each round of the import scenario

# scenario -> (metric, better, target ratio against raw, what the target says)
SCENARIOS: dict[str, list[tuple[str, str, float | None, str]]] = {
    "stream": [("events_per_s", "higher", 0.9, ">= 0.9 x raw")],
    "many_streams": [
        ("events_per_s", "higher", 0.95, ">= 0.95 x raw"),
        ("peak_rss_mb", "lower", 1.5, "<= 1.5 x raw"),
    ],
    "starts": [
        ("requests_per_s", "higher", 0.95, ">= 0.95 x raw"),
        ("p50_ms", "lower", 1.2, "<= 1.2 x raw"),
        ("p99_ms", "lower", 1.2, "<= 1.2 x raw"),
    ],
    "history": [("ms", "lower", 1.0, "<= 1.0 x raw")],
    "import": [("ms", "lower", 1.05, "<= 1.05 x raw (importing aiohttp, msgspec, anyio)")],
}


NOTES = """## What keeps mistral_conv near the floor

* Streams: `SSEDecoder.feed_data` takes the data of a chunk in Mistral's canonical framing (one
  `event:` and one `data:` line per block) with one split at each `LF data: ` and a reverse partition
  of each piece, then checks that no piece holds another line end (which the general parser would read
  differently); any other chunk goes through the general WHATWG parser, and a property test holds the
  two to the same data. Events of a chunk decode in one `map` over one prebuilt msgspec decoder;
  accumulation extends the current text run in one tight loop (`accumulate_batch`, equal to folding
  `accumulate`); `text_stream()` is an async generator over each batch's texts (a step costs half a
  coroutine call); the blocking client reads a batch at a time. What remains above raw is the
  `async for` step per token and the richer typed events (every field decoded, against two in the
  raw loop). `python -m benchmarks.floor` breaks the time down. Counted by callgrind on the
  one-stream workload over loopback (`valgrind --tool=callgrind python -m benchmarks.run ...`, one
  stream against three, the difference over 40,004 events): 12,700 instructions per event against
  the floor's 9,600, of which the full typed decode is about 1,200 more than the floor's two-field
  struct, the async step per token about 1,000 and the accumulation about 1,000.
* Plain calls: proxy variables are read once per session instead of aiohttp's `trust_env`, which looks
  them and `~/.netrc` up in a worker thread on every request (this alone took starts from 0.26 x raw
  to 0.85 x); a call is one object with its attempt, its limits and its place in the client's
  in-flight set (what `aclose()` ends), and the transport keeps parsed URLs and aiohttp timeouts in
  small bounded caches. The attempts' total limits share one timer per client, armed again only for
  an earlier deadline (an `asyncio.timeout` per call cost about 36,000 instructions, 5% of a call).
* Idle streams: a streamed body's read limit is one timer per response, armed again only when it
  fires early, instead of aiohttp's `sock_read` timer armed and cancelled at every packet, whose
  cancelled handles filled the loop's heap and fed the GC: with 10,000 open streams the p99 latency
  went from 3.1 s to the table's below, and the GC from 497 ms a second to 20.
* Import: `import mistral_conv` and making an `AsyncConversationsClient` load 11 of the package's
  modules: the models, the streams, the decoders, telemetry, the blocking client (`_sync_api`) and
  the blocking portal (`anyio.from_thread`) load with the first call that needs them (a module
  `__getattr__` keeps every public name importable), so the import costs little more than its three
  dependencies. `python -X importtime -c "import mistral_conv; mistral_conv.AsyncConversationsClient('k')"`
  shows the package's own modules at about 5 ms of self time.
"""


CLOSE_NOTES = """
## How fast a close ends a call

`python -m benchmarks.close`: a reader is brought to each phase of a stream's life against a
loopback server, then `stream.aclose()` or `client.aclose()` is called from another task; the
time until the reader's task has finished, over 10 runs (target: 100 ms).

"""


RUNS_NOTES = """
## Tool runs against the official SDK's `run_async`

`python -m benchmarks.runs --rounds {rounds}`: 100 runs, each of 3 rounds (two turns that call a trivial
sync tool once, then a text answer) from the same scripted `LocalConversationsServer` in a process of its
own, sequentially and 10 at a time, through `conversation(..., tools=[add]).send()`, the official SDK's
`beta.conversations.run_async` (model mode, `RunContext.register_func`) and a raw aiohttp + msgspec
loop (the floor). Each run's answer is checked and every implementation makes the same requests (100
starts and 200 appends a batch). Per round: the median wall time (total / 300) and the client process's
CPU time; overhead = SDK - floor. mistral_conv runs sync tools in worker threads (never on the loop);
the SDK and the floor call them on the loop. The official SDK's time goes mostly to building pydantic
models on every request (its serializers call `create_model` per marshal and unmarshal) and to
`register_func`, which builds the tool's schema for each run's `RunContext`; mistral_conv's goes to the
worker-thread hop and to the tool's schema, built for each `conversation(tools=[fn])`.

"""


RELAY_NOTES = """
## Relaying a stream to a browser through `mistral_conv.web.relay`

`python -m benchmarks.relay --rounds {rounds}`: the one-stream workload above (20,000 deltas from the same
benchmark server, in a process of its own) read two ways on the same run. Direct: `start_stream` iterated
event by event to the end, in a client process. Relayed: through an aiohttp.web app in a process of its own
whose handler is `return await relay(request, client.start_stream(...), mode="events")`, to an aiohttp
client in a third process that reads the body and decodes its frames with `mistral_conv.sse.SSEDecoder`.
Nothing is pinned: on the 2 cores run the upstream server (it writes one pre-rendered body: well under a
microsecond of CPU per event), the relay app, the reading client and the idle driver, so the busy processes
(the direct client; the relay app and its reader) each have a core. Events/s counts the upstream's events
(deltas + 2) from the request to the last frame; each measuring process reads a warm-up stream and then 3
streams (their median); the paths alternate within each round; medians of the rounds. Every stream is checked
after its clock stops: every event, in order, with the text; for the relayed one also the relay's final
`done` frame with the conversation id. CPU per event: the reading process's own, the relay app's (read
before and after each stream) and the server's (`/proc`, 10 ms ticks).

"""


FLOOR_NOTES = """
## The decode floor, and where a stream event's time goes

`python -m benchmarks.floor --rounds {rounds}`: the one-stream workload's bytes (20,000 deltas) decoded by
msgspec alone from memory (the data payloads already split out, a `msgspec.json.Decoder(KnownEvent)`, no
I/O, no SSE), beside the stream workload itself (`benchmarks.run mistral_conv stream` and `raw stream`,
the same server) in the same run; the SDK's stages timed from memory on the body in 64 KiB chunks
(`SSEDecoder.feed_data`, `decode_events`, `accumulate_batch`) and its whole stream path from memory (a
transport that hands those chunks over), also with one event per chunk (a slow stream's reads); dispatch
is the rest. `--profile 30` prints a cProfile of one loopback stream.

"""


IDLE_NOTES = """
## 10,000 concurrent open streams, idle between events

`python -m benchmarks.idle`: a server in a process of its own holds 10,000 event streams open and sends each
one small delta a second (in 50 waves a second), its `time.time()` in the content; one client process opens
them all (`client.start_stream(...)`, `max_connections=10100`; the floor: aiohttp + msgspec) and reads them
concurrently, under asyncio's loop and under uvloop's. Bounded to two minutes.

"""


def start_server(sizes: dict[str, int]) -> tuple[subprocess.Popen[str], str]:
    return start_listening(["benchmarks.server", "0", json.dumps(sizes)], "the benchmark server")


def run_one(
    impl: str, scenario: str, url: str, sizes: dict[str, int], loop: str = "asyncio"
) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", impl, scenario, url, json.dumps(sizes), loop],
        capture_output=True,
        text=True,
        cwd=HERE.parent,
        timeout=900,
    )
    if done.returncode != 0:
        raise SystemExit(f"{impl} / {scenario} failed:\n{done.stderr}{done.stdout}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for pkg in ("aiohttp", "msgspec", "anyio", "mistralai"):
        try:
            versions.append(f"{pkg} {importlib.metadata.version(pkg)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{pkg} absent")
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; " + ", ".join(versions)
    )


def fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


def report(
    results: dict[tuple[str, str], dict[str, list[dict[str, float]]]],
    impls: list[str],
    rounds: int,
    skipped: str,
) -> tuple[str, bool]:
    lines = [
        "# Benchmark results",
        "",
        f"Run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `python -m benchmarks --rounds {rounds}`.",
        f"Machine: {machine()}.",
        "",
        "Medians of the rounds; each run is a fresh process; implementations alternate within each",
        f"round (the import scenario: {IMPORT_PROCESSES} fresh processes each per round). The server runs",
        "in its own process and sends pre-rendered bytes. Ratios are mistral_conv / other. The targets",
        "are judged on the asyncio rows; the uvloop rows run the same scenarios on uvloop's loop.",
    ]
    if skipped:
        lines.append(skipped)
    lines += [
        "",
        "| scenario | loop | metric | "
        + " | ".join(impls)
        + " | mistral_conv / raw | mistral_conv / mistralai | target | met |",
        "|---|---|---|" + "---|" * len(impls) + "---|---|---|---|",
    ]
    all_met = True
    for (scenario, loop), by_impl in results.items():
        for metric, _better, target, text in SCENARIOS[scenario]:
            med = {i: statistics.median(r[metric] for r in done) for i, done in by_impl.items()}
            vs_raw = med["mistral_conv"] / med["raw"] if med.get("raw") else float("nan")
            vs_sdk = med["mistral_conv"] / med["mistralai"] if med.get("mistralai") else None
            met = ""
            if target is not None:
                ok = vs_raw >= target if _better == "higher" else vs_raw <= target
                met = "yes" if ok else "**no**"
                if loop == "asyncio":
                    all_met &= ok
                else:
                    met = f"({met})"
            lines.append(
                f"| {scenario} | {loop} | {metric} | "
                + " | ".join(fmt(med[i]) if i in med else "" for i in impls)
                + f" | {vs_raw:.2f} | {'' if vs_sdk is None else f'{vs_sdk:.2f}'} | {text} | {met} |"
            )
    lines += ["", NOTES]
    return "\n".join(lines) + "\n", all_met


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one round, correctness only")
    parser.add_argument("--only", nargs="*", choices=list(SCENARIOS), help="run only these scenarios")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    # Every implementation imports compiled bytecode, as after a wheel install (pip compiles it):
    # with PYTHONDONTWRITEBYTECODE set, the SDK's own modules would otherwise be compiled again in
    # every measured process while the dependencies' bytecode was written when they were installed.
    spec = importlib.util.find_spec("mistral_conv")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            compileall.compile_dir(folder, quiet=1)
    sizes = SMOKE if args.smoke else FULL
    rounds = 1 if args.smoke else args.rounds
    impls = [i for i in IMPLS if i != "mistralai" or importlib.util.find_spec("mistralai") is not None]
    skipped = (
        ""
        if "mistralai" in impls
        else "The official SDK is not installed (`pip install -e '.[bench]'`): its column is skipped."
    )
    if skipped:
        print(skipped, file=sys.stderr)
    scenarios = args.only or list(SCENARIOS)
    uvloop = importlib.util.find_spec("uvloop") is not None
    if not uvloop:
        skipped += " uvloop is not installed: its rows are skipped."
    # (scenario, loop): the asyncio rows hold the targets; the uvloop rows run the SDK and the floor again
    plan = [(s, "asyncio") for s in scenarios]
    plan += [(s, "uvloop") for s in scenarios if uvloop and s in UVLOOP_SCENARIOS]
    results: dict[tuple[str, str], dict[str, list[dict[str, float]]]] = {
        key: {i: [] for i in impls if key[1] == "asyncio" or i in UVLOOP_IMPLS} for key in plan
    }
    server, url = start_server(sizes)
    for impl in impls:  # compile and cache every module once, so that no measured import compiles
        run_one(impl, "import", url, sizes)
    try:
        for r in range(rounds):
            for scenario, loop in plan:
                names = list(results[scenario, loop])
                order = names[r % len(names) :] + names[: r % len(names)]
                # A fresh process imports once: the import round is the median of several processes,
                # each implementation's in turn, so that one noisy moment does not decide it.
                for _ in range(1 if scenario != "import" or args.smoke else IMPORT_PROCESSES):
                    for impl in order:
                        result = run_one(impl, scenario, url, sizes, loop)
                        results[scenario, loop][impl].append(result)
                        print(
                            f"round {r + 1} {scenario:13} {loop:8} {impl:13} {json.dumps(result)}",
                            file=sys.stderr,
                            flush=True,
                        )
    finally:
        server.terminate()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()

    def part(module: str, what: str, options: list[str], timeout: float) -> str:
        """Run one benchmark module in a process of its own; return its Markdown (stdout)."""
        done = subprocess.run(
            [sys.executable, "-m", f"benchmarks.{module}", *options],
            capture_output=True,
            text=True,
            cwd=HERE.parent,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise SystemExit(f"the {what} benchmark failed:\n{done.stdout}{done.stderr}")
        print(done.stderr, end="", file=sys.stderr)
        return done.stdout

    per_round = ["--smoke"] if args.smoke else ["--rounds", str(rounds)]
    close = part(
        "close", "close (or it missed its target)", ["--repeat", "1"] if args.smoke else ["--check"], 600
    )
    runs = part("runs", "tool-runs", per_round, 1800)
    relay = part("relay", "relay", per_round, 1800)
    floor = part("floor", "decode-floor", per_round, 1800)
    idle = part("idle", "idle-streams", ["--smoke"] if args.smoke else [], 600)
    if args.smoke:
        print("smoke run: every implementation decoded every scenario correctly")
        return 0
    text, all_met = report(results, impls, rounds, skipped)
    text += CLOSE_NOTES + close + RUNS_NOTES.format(rounds=rounds) + runs
    text += RELAY_NOTES.format(rounds=rounds) + relay
    text += FLOOR_NOTES.format(rounds=rounds) + floor + IDLE_NOTES + idle
    args.out.write_text(text)
    print(text)
    print("every target met" if all_met else "some targets missed: see the table", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
