"""One measurement in a fresh process: ``python -m benchmarks.run IMPL SCENARIO URL SIZES_JSON [LOOP]``.

``LOOP`` is ``asyncio`` (the default) or ``uvloop``: the event loop every ``run`` of the scenario uses.

Prints one JSON object. Every scenario checks what was decoded (exact text, entry
counts) and exits non-zero on a mismatch, so no implementation can win by
skipping work. Nothing heavy is imported before the import scenario's clock starts.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> dict[str, float]:
    impl_name, scenario, url, sizes_json = sys.argv[1:5]
    loop = sys.argv[5] if len(sys.argv) > 5 else "asyncio"
    sizes = json.loads(sizes_json)
    if scenario == "import":
        t = time.perf_counter()
        importlib.import_module(f"benchmarks.impl_{impl_name}").import_and_construct()
        return {"ms": (time.perf_counter() - t) * 1000}

    import asyncio

    from . import payloads

    impl = importlib.import_module(f"benchmarks.impl_{impl_name}")
    if loop == "uvloop":
        import uvloop

        def run(coro: Coroutine[Any, Any, T]) -> T:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(coro)
    else:
        run = asyncio.run
    if scenario == "stream":
        # Several streams in the process, the median counts: one-time costs (decoders built on
        # first use, the first connection) are paid once per process, not once per stream.
        n = sizes["stream_deltas"]
        rates: list[float] = []
        for _ in range(sizes["stream_repeat"]):
            t = time.perf_counter()
            text = run(impl.stream(url, n))
            rates.append(n / (time.perf_counter() - t))
            if text != payloads.stream_text(n):
                raise SystemExit(f"{impl_name}: wrong stream text")
        return {"events_per_s": percentile(rates, 0.5)}
    if scenario == "many_streams":
        # As the stream scenario: the batch runs several times in the process and the median
        # counts, so that what is built on first use is paid once per process, not once per batch.
        count, n = sizes["streams"], sizes["stream_len"]
        expected = payloads.stream_text(n)
        base = rss_bytes()
        rates: list[float] = []
        for _ in range(sizes.get("streams_repeat", 1)):
            t = time.perf_counter()
            texts = run(impl.many_streams(url, count, n))
            rates.append(count * n / (time.perf_counter() - t))
            if len(texts) != count or any(x != expected for x in texts):
                raise SystemExit(f"{impl_name}: wrong texts in many streams")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return {"events_per_s": percentile(rates, 0.5), "peak_rss_mb": max(0, peak - base) / 2**20}
    if scenario == "starts":
        # The batch is short, so it runs several times in the process; the median batch counts.
        total, concurrency = sizes["starts"], sizes["concurrency"]
        rates: list[float] = []
        all_latencies: list[float] = []
        for _ in range(sizes["starts_repeat"]):
            t = time.perf_counter()
            latencies, texts = run(impl.starts(url, total, concurrency))
            rates.append(total / (time.perf_counter() - t))
            all_latencies += latencies
            if len(texts) != total or any(x != payloads.START_TEXT for x in texts):
                raise SystemExit(f"{impl_name}: wrong start results")
        return {
            "requests_per_s": percentile(rates, 0.5),
            "p50_ms": percentile(all_latencies, 0.5) * 1000,
            "p99_ms": percentile(all_latencies, 0.99) * 1000,
        }
    if scenario == "history":
        n = sizes["history"]
        times, counts = run(impl.history(url, n, sizes["history_repeat"]))
        if counts != payloads.history_counts(n):
            raise SystemExit(f"{impl_name}: wrong history counts {counts}")
        return {"ms": percentile(times, 0.5) * 1000}
    raise SystemExit(f"unknown scenario {scenario}")


if __name__ == "__main__":
    print(json.dumps(main()))
