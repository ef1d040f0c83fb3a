"""Batch runs: many conversations at the rate limit, in order, resumable without duplicates.

`run_batch` starts one conversation per item (then its follow-up appends) with at
most `concurrency` in flight. Every request of the batch passes one `RateGate`:

* a 429 (or a 503 with `Retry-After`) pauses **every** new send of the batch for the
  server's wait plus jitter, instead of each worker backing off alone and all retrying
  in step;
* concurrency adapts: halved on a 429, raised by one after a run of clean answers,
  between `min_concurrency` and `concurrency`;
* optional client-side budgets of requests per second and tokens per minute.

Each start carries the item's id in its conversation `metadata` (`mistral_conv_batch`
and `mistral_conv_item`), so a resumed batch first collects the conversations that an
interrupted run had already created instead of starting them again; a start whose
outcome is unknown is settled the same way. Finished items go to a JSONL checkpoint.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import msgspec

from ._errors import (
    APIConnectionError,
    APIStatusError,
    InvalidRequestError,
    MistralError,
    RateLimitError,
    RequestOutcomeUnknownError,
)
from .models import (
    ConversationHistory,
    ConversationResponse,
    ConversationUsage,
    MessageOutputEntry,
    content_text,
)
from .models._base import Model

if TYPE_CHECKING:
    from ._api import AsyncConversationsClient

__all__ = ["BatchError", "BatchItem", "BatchProgress", "BatchResult", "RateGate", "run_batch"]

BATCH_KEY = "mistral_conv_batch"
ITEM_KEY = "mistral_conv_item"


class BatchItem(Model, kw_only=True):
    """One conversation of a batch: `inputs` for its start, then `appends` in order.

    `start` holds more start fields for this item (`model`, `instructions`,
    `completion_args`, …) over the batch's defaults.
    """

    id: str
    inputs: str | list[Any]
    appends: list[str] = msgspec.field(default_factory=list)
    start: dict[str, Any] = msgspec.field(default_factory=dict)


class BatchError(Model, kw_only=True):
    """Why an item failed: the error's type and message, and the request id."""

    type: str
    message: str
    request_id: str | None = None


class BatchResult(Model, kw_only=True):
    """The outcome of one item (a line of the checkpoint and of the CLI's output)."""

    id: str
    index: int
    conversation_id: str | None = None
    output_text: str = ""
    usage: ConversationUsage | None = None
    error: BatchError | None = None
    attempts: int = 0
    resumed: bool = False
    """The conversation was found stored by an earlier, interrupted run (or by settling)."""

    @property
    def ok(self) -> bool:
        """Whether the item succeeded."""
        return self.error is None


class BatchProgress(Model, kw_only=True):
    """Counts for a progress display, given to `on_progress` after every change."""

    total: int
    done: int = 0
    failed: int = 0
    in_flight: int = 0
    retried: int = 0
    rate_limited: int = 0
    waiting: bool = False
    """New sends are paused for the server's `Retry-After`."""
    concurrency: int = 0


class RateGate:
    """What every request of a batch passes: a shared pause after 429s, an adaptive concurrency
    limit, and optional requests-per-second and tokens-per-minute budgets."""

    def __init__(
        self,
        concurrency: int,
        *,
        min_concurrency: int = 1,
        requests_per_second: float | None = None,
        tokens_per_minute: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ceiling = concurrency
        self.floor = max(1, min(min_concurrency, concurrency))
        self.limit = concurrency
        self.in_flight = 0
        self.paused_until = 0.0
        self._clean = 0
        self._changed = anyio.Event()
        self._rps = requests_per_second
        self._tpm = tokens_per_minute
        self._clock = clock
        self._next_send = 0.0
        self._tokens = float(tokens_per_minute or 0)
        self._tokens_at = clock()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def acquire(self, tokens: float = 0.0) -> None:
        """Wait for a slot, for the end of a pause and for the budgets; then hold a slot."""
        while True:
            now = self._clock()
            if now < self.paused_until:
                with anyio.move_on_after(self.paused_until - now):
                    await self._changed.wait()
                continue
            if self.in_flight >= self.limit:
                await self._changed.wait()
                continue
            wait = self._budget_wait(now, tokens)
            if wait > 0:
                await anyio.sleep(wait)
                continue
            self.in_flight += 1
            if self._rps:
                self._next_send = max(self._next_send, now) + 1.0 / self._rps
            if self._tpm:
                self._tokens -= tokens
            return

    def _budget_wait(self, now: float, tokens: float) -> float:
        wait = 0.0
        if self._rps:
            wait = max(wait, self._next_send - now)
        if self._tpm:
            rate = self._tpm / 60.0
            self._tokens = min(self._tpm, self._tokens + (now - self._tokens_at) * rate)
            self._tokens_at = now
            if self._tokens < min(tokens, self._tpm):
                wait = max(wait, (min(tokens, self._tpm) - self._tokens) / rate)
        return wait

    def charge(self, tokens: float) -> None:
        """Correct the tokens-per-minute budget by `tokens` (an answer's usage less its estimate)."""
        if self._tpm:
            self._tokens -= tokens

    def release(self, *, clean: bool) -> None:
        """Give the slot back; `clean` answers slowly raise the concurrency limit again."""
        self.in_flight -= 1
        if clean:
            self._clean += 1
            if self._clean >= self.limit and self.limit < self.ceiling:
                self.limit += 1
                self._clean = 0
        self._notify()

    def throttled(self, retry_after: float | None) -> None:
        """A 429: pause every new send for the server's wait (with jitter above it) and halve the limit."""
        wait = retry_after if retry_after is not None else 1.0
        now = self._clock()
        if now >= self.paused_until:  # the first 429 of a burst: the others answer the same excess
            self.limit = max(self.floor, self.limit // 2)
        until = now + wait + random.uniform(0.0, max(0.05, wait * 0.2))
        self.paused_until = max(self.paused_until, until)
        self._clean = 0
        self._notify()

    @property
    def waiting(self) -> bool:
        return self._clock() < self.paused_until


def shard_of(item_id: str, shards: int) -> int:
    """The shard an item belongs to: stable across processes, machines and Python versions."""
    digest = hashlib.sha256(item_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards


def as_items(items: Iterable[BatchItem | str | Mapping[str, Any]]) -> list[BatchItem]:
    """Items from prompts, start bodies (dicts with `inputs` and maybe `id`) or `BatchItem` values."""
    out: list[BatchItem] = []
    for i, item in enumerate(items):
        if isinstance(item, BatchItem):
            out.append(item)
        elif isinstance(item, str):
            out.append(BatchItem(id=str(i), inputs=item))
        elif isinstance(item, Mapping):
            body = dict(item)
            item_id = str(body.pop("id", i))
            if "inputs" not in body:
                raise InvalidRequestError(f"items[{i}]", "a dict item needs inputs")
            inputs = body.pop("inputs")
            appends = list(body.pop("appends", []))
            out.append(BatchItem(id=item_id, inputs=inputs, appends=appends, start=body))
        else:
            raise InvalidRequestError(
                f"items[{i}]", f"must be a prompt, a dict or a BatchItem, not {type(item).__name__}"
            )
    ids = [item.id for item in out]
    if len(set(ids)) != len(ids):
        raise InvalidRequestError("items", "item ids must be unique")
    return out


def _estimate(item: BatchItem) -> float:
    """A start's tokens before its answer: its inputs' JSON at 4 bytes a token, plus an answer's worth."""
    return len(msgspec.json.encode(item.inputs)) / 4 + 256


def _input_messages(item: BatchItem) -> int:
    """How many `message.input` entries the item's start stores (its appends come after them)."""
    if isinstance(item.inputs, str):
        return 1
    count = 0
    for entry in item.inputs:
        kind = (
            entry.get("type", "message.input" if "role" in entry else None)
            if isinstance(entry, Mapping)
            else getattr(entry, "type", None)
        )
        count += kind == "message.input"
    return count


def _error(exc: BaseException) -> BatchError:
    return BatchError(type=type(exc).__name__, message=str(exc), request_id=getattr(exc, "request_id", None))


def _text(history: ConversationHistory) -> str:
    """The text of the conversation's last assistant message."""
    last = [e for e in history.entries if isinstance(e, MessageOutputEntry)]
    return content_text(last[-1].content) if last else ""


class _Batch:
    def __init__(
        self,
        client: AsyncConversationsClient,
        items: list[BatchItem],
        gate: RateGate,
        defaults: dict[str, Any],
        *,
        batch_id: str,
        tag: bool,
        on_progress: Callable[[BatchProgress], object] | None,
        max_attempts: int,
    ) -> None:
        self.client = client
        self.items = items
        self.gate = gate
        self.defaults = defaults
        self.batch_id = batch_id
        self.tag = tag
        self.on_progress = on_progress
        self.max_attempts = max_attempts
        self.progress = BatchProgress(total=len(items), concurrency=gate.limit)
        self.stored: dict[str, str] = {}  # item id -> conversation id, found on the server

    def report(self) -> None:
        if self.on_progress is not None:
            self.progress.in_flight = self.gate.in_flight
            self.progress.waiting = self.gate.waiting
            self.progress.concurrency = self.gate.limit
            self.on_progress(self.progress)

    async def find_stored(self) -> None:
        """The conversations this batch created before (an interrupted run), by their metadata tag."""
        page = 0
        while True:
            items = await self.request(
                functools.partial(
                    self.client.list, page=page, page_size=100, metadata={BATCH_KEY: self.batch_id}
                )
            )
            for conversation in items:
                metadata = conversation.metadata if isinstance(conversation.metadata, dict) else {}
                item_id = metadata.get(ITEM_KEY)
                if isinstance(item_id, str):
                    self.stored.setdefault(item_id, conversation.id)
            if len(items) < 100:
                return
            page += 1

    async def collect(self, index: int, item: BatchItem, conversation_id: str, attempts: int) -> BatchResult:
        """An item whose conversation is already stored: finish what is missing, then its result."""
        history = await self.request(lambda: self.client.history(conversation_id))
        stored = sum(1 for e in history.entries if e.type == "message.input")
        appended = max(0, stored - _input_messages(item))
        return await self.finish(
            index, item, conversation_id, appended, attempts, resumed=True, history=history
        )

    async def finish(
        self,
        index: int,
        item: BatchItem,
        conversation_id: str,
        appended: int,
        attempts: int,
        *,
        resumed: bool,
        history: ConversationHistory | None = None,
    ) -> BatchResult:
        """Send the appends not stored yet (`appended` are; one stored without output counts)."""
        response: ConversationResponse | None = None
        for text in item.appends[appended:]:
            response = await self.request(
                functools.partial(self.client.append, conversation_id, inputs=text, max_retries=0)
            )
            attempts += 1
        if response is None:
            if history is None:
                history = await self.request(lambda: self.client.history(conversation_id))
            return BatchResult(
                id=item.id,
                index=index,
                conversation_id=conversation_id,
                output_text=_text(history),
                attempts=attempts,
                resumed=resumed,
            )
        return BatchResult(
            id=item.id,
            index=index,
            conversation_id=conversation_id,
            output_text=response.output_text,
            usage=response.usage,
            attempts=attempts,
            resumed=resumed,
        )

    async def request(self, send: Callable[[], Any], tokens: float = 0.0) -> Any:
        """One request through the gate, again after a 429 or a connection failure before sending.

        `tokens` is the estimate charged to the tokens-per-minute budget before sending; the
        answer's usage corrects it.
        """
        attempts = 0
        while True:
            attempts += 1
            await self.gate.acquire(tokens)
            clean = False
            try:
                result = await send()
                clean = True
                usage = getattr(result, "usage", None)
                if isinstance(usage, ConversationUsage):
                    self.gate.charge(usage.total_tokens - tokens)
                return result
            except RateLimitError as exc:
                if attempts >= self.max_attempts * 4:  # a quota that does not come back
                    raise
                self.gate.throttled(exc.retry_after)
                self.progress.rate_limited += 1
                self.progress.retried += 1
            except APIStatusError as exc:
                if exc.status != 503 or attempts >= self.max_attempts:
                    raise
                self.gate.throttled(exc.retry_after if hasattr(exc, "retry_after") else None)
                self.progress.retried += 1
            except APIConnectionError as exc:
                if isinstance(exc, RequestOutcomeUnknownError) or attempts >= self.max_attempts:
                    raise
                self.progress.retried += 1
                await anyio.sleep(min(8.0, 0.25 * 2**attempts) * random.random())
            finally:
                self.gate.release(clean=clean)
                self.report()

    async def run_item(self, index: int, item: BatchItem) -> BatchResult:
        try:
            if item.id in self.stored:
                return await self.collect(index, item, self.stored[item.id], 0)
            body = {**self.defaults, **item.start}
            if self.tag:
                metadata = dict(body.get("metadata") or {})
                metadata.update({BATCH_KEY: self.batch_id, ITEM_KEY: item.id})
                body["metadata"] = metadata
            try:
                first = await self.request(
                    lambda: self.client.start(inputs=item.inputs, max_retries=0, **body), _estimate(item)
                )
            except RequestOutcomeUnknownError as exc:
                conversation_id = exc.conversation_id or (await self.lookup(item.id))
                if conversation_id is None:
                    if not self.tag:
                        raise
                    first = await self.request(
                        lambda: self.client.start(inputs=item.inputs, max_retries=0, **body)
                    )
                else:
                    return await self.collect(index, item, conversation_id, 1)
            return (
                await self.finish(index, item, first.conversation_id, 0, 1, resumed=False)
                if item.appends
                else BatchResult(
                    id=item.id,
                    index=index,
                    conversation_id=first.conversation_id,
                    output_text=first.output_text,
                    usage=first.usage,
                    attempts=1,
                )
            )
        except MistralError as exc:
            return BatchResult(
                id=item.id,
                index=index,
                error=_error(exc),
                conversation_id=getattr(exc, "conversation_id", None),
            )

    async def lookup(self, item_id: str) -> str | None:
        if not self.tag:
            return None
        page = await self.request(
            lambda: self.client.list(metadata={BATCH_KEY: self.batch_id, ITEM_KEY: item_id})
        )
        return page[0].id if page else None


def _batch_id(checkpoint: str | os.PathLike[str] | None, resume: bool) -> str:
    """The tag of a batch's conversations: from its checkpoint's real path, else a new one."""
    if checkpoint is None:
        if resume:
            raise InvalidRequestError("batch_id", "is needed to resume without a checkpoint")
        return uuid.uuid4().hex
    resolved = os.path.realpath(checkpoint)  # one tag however the path is spelt
    return hashlib.sha256(resolved.encode()).hexdigest()[:16]


def _read_checkpoint(path: Path) -> dict[str, BatchResult]:
    done: dict[str, BatchResult] = {}
    if not path.exists():
        return done
    decoder = msgspec.json.Decoder(BatchResult)
    with path.open("rb") as f:
        for line in f:
            with contextlib.suppress(msgspec.DecodeError):  # a line cut short by a crash
                result = decoder.decode(line)
                if result.ok:
                    done[result.id] = result
    return done


async def run_batch(
    client: AsyncConversationsClient,
    items: Iterable[BatchItem | str | Mapping[str, Any]],
    *,
    model: str | None = None,
    agent_id: str | None = None,
    start: Mapping[str, Any] | None = None,
    concurrency: int = 32,
    min_concurrency: int = 1,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = False,
    batch_id: str | None = None,
    tag: bool = True,
    shard: tuple[int, int] | None = None,
    requests_per_second: float | None = None,
    tokens_per_minute: float | None = None,
    on_progress: Callable[[BatchProgress], object] | None = None,
    on_result: Callable[[BatchResult], object] | None = None,
    max_attempts: int = 8,
) -> list[BatchResult]:
    """Run one conversation per item at the rate limit; the results in input order.

    Args:
        client: The client to send through (its `max_connections` should be at least
            `concurrency`: a smaller pool caps it).
        items: Prompts, dicts (`{"id", "inputs", "appends", ...start fields}`) or `BatchItem` values.
        model: The model of every item (unless the item names its own).
        agent_id: The agent of every item, instead of a model.
        start: More start fields for every item (`instructions`, `completion_args`, ...).
        concurrency: The most conversations in flight (the ceiling of the adaptive limit).
        min_concurrency: The floor the limit never goes under after 429s.
        checkpoint: A JSONL file that gets one line per finished item.
        resume: Skip the items the checkpoint holds, and collect the conversations an
            interrupted run had created (found by their metadata tag) instead of starting them.
        batch_id: The tag shared by the batch's conversations (default: from the checkpoint's path).
        tag: Put `mistral_conv_batch` and `mistral_conv_item` in each start's metadata.
        shard: `(k, n)`: run only the items of shard k of n (by a stable hash of their ids).
        requests_per_second: A client-side budget of requests per second.
        tokens_per_minute: A client-side budget of tokens per minute.
        on_progress: Called with a `BatchProgress` after every change.
        on_result: Called with each result as it completes (in completion order).
        max_attempts: Tries of one request after failures that are safe to repeat.

    Returns:
        One result per item (of the shard), in input order; per-item failures are in the
        results (`error`), never raised.

    Raises:
        InvalidRequestError: bad arguments, before anything is sent: `concurrency` under 1 or
            over the client's pool, a `shard` that is not `(k, n)` with `0 <= k < n`, an item
            without `inputs`, ids that repeat, `resume` without a checkpoint or `batch_id`.
    """
    if concurrency < 1:
        raise InvalidRequestError("concurrency", "must be at least 1")
    pool = getattr(client.transport, "max_connections", None)
    if isinstance(pool, int) and pool < concurrency:
        raise InvalidRequestError(
            "concurrency",
            f"is {concurrency}, but the client's pool holds {pool} connections, which would cap it: "
            f"create the client with max_connections={concurrency} (or more), or lower concurrency",
        )
    chosen = as_items(items)
    if shard is not None:
        k, n = shard
        if not (isinstance(n, int) and n >= 1 and isinstance(k, int) and 0 <= k < n):
            raise InvalidRequestError("shard", f"must be (k, n) with 0 <= k < n, got {shard!r}")
        chosen = [item for item in chosen if shard_of(item.id, n) == k]
    batch_id = batch_id or _batch_id(checkpoint, resume)
    path = Path(checkpoint) if checkpoint is not None else None
    done = _read_checkpoint(path) if (path is not None and resume) else {}
    gate = RateGate(
        concurrency,
        min_concurrency=min_concurrency,
        requests_per_second=requests_per_second,
        tokens_per_minute=tokens_per_minute,
    )
    defaults = {
        k: v for k, v in {"model": model, "agent_id": agent_id, **(start or {})}.items() if v is not None
    }
    batch = _Batch(
        client,
        chosen,
        gate,
        defaults,
        batch_id=batch_id,
        tag=tag,
        on_progress=on_progress,
        max_attempts=max_attempts,
    )
    results: list[BatchResult | None] = [None] * len(chosen)
    for index, item in enumerate(chosen):
        if item.id in done:
            results[index] = msgspec.structs.replace(done[item.id], index=index)
            batch.progress.done += 1
    if resume and tag:
        await batch.find_stored()
    out = path.open("ab" if resume else "wb") if path is not None else None  # a new run starts afresh
    try:
        workers = anyio.Semaphore(concurrency)

        async def one(index: int, item: BatchItem) -> None:
            async with workers:
                result = await batch.run_item(index, item)
            results[index] = result
            batch.progress.done += 1
            batch.progress.failed += 0 if result.ok else 1
            if out is not None and result.ok:
                out.write(msgspec.json.encode(result) + b"\n")
                out.flush()
            batch.report()
            if on_result is not None:
                on_result(result)

        async with anyio.create_task_group() as tg:
            for index, item in enumerate(chosen):
                if results[index] is None:
                    tg.start_soon(one, index, item)
    finally:
        if out is not None:
            out.close()
    return [r for r in results if r is not None]
