"""`mistral-conv batch`: JSONL in, JSONL out, a progress bar, and a resumable checkpoint."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import msgspec

from ._batch import BatchProgress, BatchResult, run_batch
from ._errors import InvalidRequestError

if TYPE_CHECKING:
    from ._api import AsyncConversationsClient

__all__ = ["run_batch_command"]

_LINE_EVERY = 2.0  # seconds between plain progress lines


def _items(path: str) -> list[Any]:
    source = sys.stdin.buffer if path == "-" else Path(path).open("rb")  # noqa: SIM115
    items: list[Any] = []
    with source:
        for number, line in enumerate(source, 1):
            if not line.strip():
                continue
            try:
                items.append(msgspec.json.decode(line))
            except msgspec.DecodeError as exc:
                raise InvalidRequestError(f"{path}:{number}", f"is not JSON: {exc}") from None
    return items


def _shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    k, sep, n = text.partition("/")
    if not sep or not k.isdigit() or not n.isdigit() or not int(k) < int(n):
        raise InvalidRequestError("--shard", f"must be k/n with 0 <= k < n, got {text!r}")
    return int(k), int(n)


class _Progress:
    """A tqdm bar on a terminal (when the cli extra is installed), else a plain line every few seconds."""

    def __init__(self, total: int, mode: str) -> None:
        self.bar: Any = None
        self.mode = mode
        self.last = 0.0
        self.shown = 0
        if mode in ("auto", "bar") and (sys.stderr.isatty() or mode == "bar"):
            try:
                from tqdm import tqdm
            except ImportError:
                if mode == "bar":
                    print('the progress bar needs tqdm: pip install "mistral-conv[cli]"', file=sys.stderr)
            else:
                self.bar = tqdm(total=total, unit="item", file=sys.stderr)
                self.mode = "bar"
        if self.bar is None and mode != "none":
            self.mode = "lines"

    def __call__(self, p: BatchProgress) -> None:
        if self.mode == "bar":
            self.bar.update(p.done - self.shown)
            self.shown = p.done
            self.bar.set_postfix(
                failed=p.failed,
                in_flight=p.in_flight,
                retried=p.retried,
                limited=p.rate_limited,
                refresh=False,
            )
        elif self.mode == "lines" and (time.monotonic() - self.last >= _LINE_EVERY or p.done == p.total):
            self.last = time.monotonic()
            print(_line(p), file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _line(p: BatchProgress) -> str:
    waiting = ", waiting on the rate limit" if p.waiting else ""
    return (
        f"batch: {p.done}/{p.total} done, {p.failed} failed, {p.in_flight} in flight, "
        f"{p.retried} retried, {p.rate_limited} rate-limited{waiting}"
    )


async def run_batch_command(args: argparse.Namespace, client: AsyncConversationsClient) -> None:
    """Run the batch; write the results in input order; on Ctrl+C say how to resume."""
    items = _items(args.input)
    shard = _shard(args.shard)
    output = Path(args.output)
    suffix = f".{shard[0]}-of-{shard[1]}" if shard else ""
    checkpoint = (
        Path(args.checkpoint) if args.checkpoint else output.with_name(f"{output.name}{suffix}.checkpoint")
    )
    progress = _Progress(len(items), args.progress)
    results: list[BatchResult] = []
    try:
        results = await run_batch(
            client,
            items,
            model=args.model,
            concurrency=args.concurrency,
            checkpoint=checkpoint,
            resume=args.resume,
            batch_id=str(checkpoint.resolve()),
            shard=shard,
            requests_per_second=args.requests_per_second,
            on_progress=progress,
        )
    except BaseException:
        progress.close()
        again = " ".join(a if " " not in a else repr(a) for a in sys.argv[1:] if a != "--resume")
        print(
            f"\nstopped; finished items are kept in {checkpoint}. Resume with:\n"
            f"  mistral-conv {again} --resume",
            file=sys.stderr,
        )
        raise
    progress.close()
    await anyio.Path(output).write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in results))
    failed = sum(1 for r in results if not r.ok)
    print(f"{len(results)} items, {failed} failed: {output}", file=sys.stderr)
    if failed:
        raise SystemExit(1)  # the output holds every item; the exit code says not all succeeded
