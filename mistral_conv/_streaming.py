"""ConversationStream: SSE frames to typed events, with a lifecycle that never leaks a connection.

A stream is an explicit state machine (`StreamStatus`, `TRANSITIONS`):

    NEW ──> OPENING ──> OPEN ──> DONE
     │         │         │
     └─────────┴─────────┴────> FAILED | CLOSED

`OPENING` covers every attempt until the first event (sending, back-off, headers);
only there is a failure retried. `DONE`, `FAILED` and `CLOSED` are final.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Self

from ._accumulate import StreamState
from ._calls import Call, Guard, Runtime, os_failure, send_attempt, transport_failure, wait_briefly, within
from ._closing import AsyncClosing
from ._errors import (
    APIError,
    APITimeoutError,
    ClientClosedError,
    MistralError,
    ResponseDecodeError,
    ResponseTooLargeError,
    StreamClosedError,
    StreamError,
    StreamInterruptedError,
    fresh,
)
from ._fold import Batch, EventNotJSON, Fold, decode_event, decode_events
from ._info import ResponseInfo
from ._retry import Failure, Outcome, outcome_unknown
from ._sse import EventTooLarge, SSEDecoder
from ._transport import HTTPResponse, TransportError
from .models import ConversationEvent, ConversationResponse, MessageOutputDeltaEvent

__all__ = [
    "TRANSITIONS",
    "ConversationStream",
    "EventNotJSON",
    "StreamStatus",
    "decode_event",
    "decode_events",
]


class StreamStatus(enum.Enum):
    """Where a `ConversationStream` is in its life."""

    NEW = "new"
    """Created; nothing sent yet."""
    OPENING = "opening"
    """Attempts in flight (sending, backing off, waiting for the first event)."""
    OPEN = "open"
    """Events are arriving."""
    DONE = "done"
    """`conversation.response.done` arrived: the response is complete."""
    FAILED = "failed"
    """Ended by an error, which every later read raises again."""
    CLOSED = "closed"
    """Closed by the caller (`aclose()`, leaving `async with`, cancellation) before it completed."""


_S = StreamStatus
TRANSITIONS: dict[StreamStatus, frozenset[StreamStatus]] = {
    _S.NEW: frozenset({_S.OPENING, _S.FAILED, _S.CLOSED}),
    _S.OPENING: frozenset({_S.OPEN, _S.DONE, _S.FAILED, _S.CLOSED}),
    _S.OPEN: frozenset({_S.DONE, _S.FAILED, _S.CLOSED}),
    _S.DONE: frozenset(),
    _S.FAILED: frozenset(),
    _S.CLOSED: frozenset(),
}
"""The moves the code makes; any other raises `RuntimeError` (a bug)."""
_LIVE = frozenset({_S.NEW, _S.OPENING, _S.OPEN})
MAX_STREAM_ENTRIES = 10_000
"""The most output entries one stream may build (every real response has far fewer)."""


class ConversationStream(AsyncClosing):
    """The events of one streamed run, as an async iterator and an async context manager.

    Nothing is sent when the stream is created. The request is sent by the first of:
    entering `async with`, the first `async for` step, `next_batch`,
    `final_response` or `text_stream()`'s first step.

    `async with client.start_stream(...) as stream: async for event in stream`
    releases the connection deterministically when the block exits (also on
    `break`, an exception or cancellation). A bare `async for` releases it
    when the stream ends, fails or is cancelled; after a `break` out of a bare
    loop, call `aclose` (the body is otherwise left unread).

    Failures keep what arrived (`partial`, a snapshot). Past the first event a
    broken or stalled stream raises `RequestOutcomeUnknownError` (the turn
    may have been stored); `StreamError` is the server's own
    `conversation.response.error`.
    """

    def __init__(self, rt: Runtime, call: Call) -> None:
        self._rt = rt
        self._call = call
        self._status = StreamStatus.NEW
        self._sse = SSEDecoder(rt.max_event_size)
        self._resp: HTTPResponse | None = None
        self._chunks: AsyncIterator[bytes] | None = None
        # The batch being read: its events (`None` until built), their count, the next to read,
        # and the string deltas among them, in order.
        self._batch: Batch | None = None
        self._events: list[ConversationEvent] | None = None
        self._n = 0
        self._i = 0
        self._texts: list[str] = []
        self._fold = Fold()
        self._state = self._fold.state
        self._held = b""  # the last chunk read (see _fill)
        self._failure: MistralError | None = None  # what FAILED and CLOSED raise
        self._pending: Failure | None = None  # a read failure, raised once the events before it are read
        self._eof = False
        self._guard = Guard()
        self._deadline: float | None = None
        self._attempts = 0
        self._received = 0  # event-stream bytes read, decompressed: bounded by max_stream_size
        self._reading = False  # a task is inside a read: one reader at a time
        self._event_iter: AsyncGenerator[ConversationEvent, None] | None = None
        self._text_iter: AsyncGenerator[str, None] | None = None
        self.request_id: str | None = None
        self.raw_response: ResponseInfo | None = None
        """Status, headers and request id of the answer, once it arrived."""

    def __repr__(self) -> str:
        return (
            f"ConversationStream({self._call.method} {self._call.path}, {self._status.value}, "
            f"events={self._state.events})"
        )

    # -- public surface ----------------------------------------------------

    @property
    def status(self) -> StreamStatus:
        """Where the stream is in its life."""
        return self._status

    @property
    def conversation_id(self) -> str | None:
        """The conversation id from `conversation.response.started`, once it arrived."""
        return self._state.conversation_id

    @property
    def state(self) -> StreamState:
        """Everything accumulated so far (live: it keeps changing while the stream reads)."""
        return self._state

    def current_response(self) -> ConversationResponse:
        """A snapshot of the response rebuilt from the events received so far."""
        return self._state.response()

    async def final_response(self) -> ConversationResponse:
        """The whole response: reads the rest of the stream first if it is still open.

        Raises the stream's failure, or `StreamClosedError` for a stream closed
        before it completed: the same type and message on every call, with `partial`.
        """
        while await self.next_batch():
            pass
        if self._status is StreamStatus.DONE:
            response = self._state.response()
            response.__dict__["_raw_response"] = self.raw_response  # its request id, as on a plain call
            return response
        assert self._failure is not None
        raise fresh(self._failure)

    def text_stream(self) -> AsyncIterator[str]:
        """The text fragments of the assistant's messages, as they arrive (a loop after a
        `break` picks up where it stopped)."""
        it = self._text_iter
        if it is None:
            it = self._text_iter = self._texts_iterate()
        return it

    async def _texts_iterate(self) -> AsyncGenerator[str, None]:
        # As `_iterate`: an async generator the stream keeps until it ends or is closed.
        try:
            while (texts := await self.next_text_batch()) is not None:
                for text in texts:
                    yield text
        finally:
            self._text_iter = None

    async def next_batch(self) -> list[ConversationEvent]:
        """The next events: all that have arrived and were not read yet (at least one).

        Returns an empty list at the end of the stream; raises as iteration does.
        """
        i = self._i
        if i >= self._n:
            try:
                await self._wait()
            except StopAsyncIteration:
                return []
            i = self._i
        self._i = self._n
        return self._built()[i:]

    async def open(self) -> Self:
        """Send the request and wait for the answer's first event; idempotent.

        A handler can call it before it answers anything itself, to turn an upstream
        error (raised here, like a 404 as `NotFoundError`) into its own answer.
        `async with` and the first read call it too.
        """
        if self._status is StreamStatus.NEW and not self._reading:
            self._reading = True
            try:
                await self._open()
            finally:
                self._reading = False
        return self

    async def __aenter__(self) -> Self:
        return await self.open()

    if not TYPE_CHECKING:  # a type checker reports `await stream` itself: keep it unawaitable there

        def __await__(self):
            raise TypeError(
                "a ConversationStream is not awaited: use `async with client.start_stream(...) as stream:` "
                "and `async for event in stream`, or `await stream.open()`; for the whole response "
                "at once, `await client.start(...)`"
            )

    async def aclose(self) -> None:
        """Stop reading and release the connection; nothing more is sent.

        Safe at any moment (before sending, while connecting, during a back-off,
        mid-body), from any task of the client's loop, any number of times: a task
        waiting on this stream wakes at once and its iteration ends quietly. When
        `aclose()` returns, that task has let go of the connection.
        """
        self._close("the stream was closed before it completed")
        left = await self._release()
        if left is not None:
            await wait_briefly([left.wait()])
        await self._close_iterators()

    async def _close_iterators(self) -> None:
        """Close the loops' generators that are not running (a running one ends by itself).

        Each is dropped first: a later loop gets a fresh one, which raises a failure again.
        """
        for name in ("_event_iter", "_text_iter"):
            it = getattr(self, name)
            if it is not None and not getattr(it, "ag_running", False):
                setattr(self, name, None)
                await it.aclose()

    async def _abort(self, error: ClientClosedError) -> asyncio.Event | None:
        """End the stream because its client is closing (`ClientClosedError`, with `partial`)."""
        if self._status in _LIVE:
            error.partial = self._state.response()
            error.conversation_id = self._state.conversation_id
            self._failure = error
            self._move(StreamStatus.FAILED)
        return await self._release()

    def __aiter__(self) -> AsyncIterator[ConversationEvent]:
        """The events from where the stream is: a loop after a `break` picks up where it stopped."""
        it = self._event_iter
        if it is None:
            it = self._event_iter = self._iterate()
        return it

    async def _iterate(self) -> AsyncGenerator[ConversationEvent, None]:
        # An async generator: a step costs half a coroutine call. The stream keeps it until it
        # ends, and `aclose()` closes it, so one left by `break` never needs the loop's
        # finalizer (a task of its own).
        try:
            while True:
                i = self._i
                if i < self._n:
                    self._i = i + 1
                    events = self._events
                    yield events[i] if events is not None else self._built()[i]
                    continue
                try:
                    await self._wait()
                except StopAsyncIteration:
                    return
        finally:
            self._event_iter = None

    async def __anext__(self) -> ConversationEvent:
        i = self._i
        if i >= self._n:
            await self._wait()
            i = self._i
        self._i = i + 1
        events = self._events
        return events[i] if events is not None else self._built()[i]

    def _built(self) -> list[ConversationEvent]:
        """The current batch's events (a run of text deltas is built only when read as events)."""
        events = self._events
        if events is None:
            assert self._batch is not None
            events = self._events = self._batch.events()
        return events

    # -- internals -------------------------------------------------------------

    def _move(self, to: StreamStatus) -> None:
        if to not in TRANSITIONS[self._status]:
            raise RuntimeError(f"stream cannot move from {self._status.value} to {to.value}")
        self._status = to
        if self._call.trace is not None:  # its span begins at OPENING and ends with the stream
            self._call.trace.moved(to, self)

    async def _wait(self) -> None:
        """Read until a batch has events not read yet; `StopAsyncIteration` at the end."""
        if self._reading:
            raise RuntimeError(
                "another task is reading this stream: read a stream from one task at a time "
                "(aclose() may come from any task)"
            )
        self._reading = True
        try:
            await self._next_batch()
        finally:
            self._reading = False

    async def _next_batch(self) -> None:
        if self._status is StreamStatus.NEW:
            await self._open()
        while True:
            if self._i < self._n:
                return
            status = self._status
            if status is StreamStatus.OPEN:
                if self._pending is not None:
                    self._fail(self._pending)
                else:
                    await self._fill()
                continue
            if status is StreamStatus.DONE and not self._eof and self._resp is not None:
                await self._fill()  # read to the end of the body, so the connection can be reused
                continue
            await self._release()
            if status is StreamStatus.FAILED:
                assert self._failure is not None
                raise fresh(self._failure)
            await self._close_iterators()  # a loop left by `break` could only end now: no cycle stays
            raise StopAsyncIteration

    async def _open(self) -> None:
        """Run attempts until the first event (the part that may be retried)."""
        rt = self._rt
        rt.check_open()
        self._move(StreamStatus.OPENING)
        limit = self._call.timeout.stream_total
        if limit is not None:
            self._deadline = asyncio.get_running_loop().time() + limit
        rt.inflight.add(self)
        guard = self._guard
        guard.enter()
        failure: BaseException
        try:
            if self._deadline is None:
                await rt.retry.run(self._call, self._attempt)
            else:
                await self._open_before_deadline()
        except asyncio.CancelledError as exc:
            if guard.caught():  # aclose() or the client's close: the state says which
                guard.leave()
                return
            self._close("the stream was cancelled before it completed")
            failure = exc
        except MistralError as exc:
            if self._status is StreamStatus.OPENING:
                self._failure = exc
                self._move(StreamStatus.FAILED)
            failure = exc
        except Exception as exc:  # not a failure of the API's: a bug, raised as itself
            self._close("the stream was ended by an unexpected error while opening")
            failure = exc
        else:
            guard.leave()
            if self._status is StreamStatus.OPENING:  # else: closed while the first batch was read
                self._move(StreamStatus.DONE if self._state.done else StreamStatus.OPEN)
            return
        guard.leave()  # before awaiting: a close from now on must not cancel this task
        await self._release()
        raise failure

    async def _open_before_deadline(self) -> None:
        """The attempts, within `stream_total` (which also covers back-offs and waits for headers)."""
        assert self._deadline is not None
        try:
            async with asyncio.timeout_at(self._deadline) as scope:
                await self._rt.retry.run(self._call, self._attempt)
                return
        except TimeoutError:
            if not scope.expired():
                raise
        limit = self._call.timeout.stream_total
        error = APITimeoutError(
            f"The stream took longer than its total limit of {limit:g} s.",
            limit="stream_total",
            request_id=self.request_id,
        )
        error.attempts = self._attempts
        raise outcome_unknown(self._call, error, self._attempts)

    async def _attempt(self, number: int) -> None:
        """One attempt: send, check the answer, read until the first event."""
        self._attempts = number
        await self._release()
        self._sse = SSEDecoder(self._sse.max_event_size)
        self._fold = Fold()
        self._state = self._fold.state
        self._batch, self._events, self._n, self._i, self._texts = None, None, 0, 0, []
        self._pending, self._eof = None, False
        self._received = 0
        limit = self._call.timeout.first_event
        await within(
            self._rt.deadlines,
            self._guard.task,
            limit,
            "first_event",
            lambda: f"No event arrived within {limit:g} s of sending.",
            self._first_event,
            number,
        )

    async def _first_event(self, number: int, budget: float | None) -> None:
        resp = await send_attempt(self._rt.transport, self._call, number, budget)
        self._resp = resp
        self.request_id = resp.request_id
        self.raw_response = ResponseInfo(resp.status, resp.headers, resp.request_id)
        if resp.media_type != "text/event-stream":
            try:
                body = await resp.read(self._rt.max_body_size)
            except (TransportError, ResponseTooLargeError, OSError):
                body = b""
            await self._release()
            got = resp.headers.get("content-type") or "no content type"
            error = ResponseDecodeError(
                f"expected an event stream, got {got} (status {resp.status})",
                body=body,
                status=resp.status,
                request_id=self.request_id,
            )
            raise Failure(error, Outcome.FINAL)
        self._chunks = resp.aiter_bytes()
        while not self._n and self._pending is None and self._status is StreamStatus.OPENING:
            await self._fill()
        pending = self._pending
        if not self._n and pending is not None:
            self._pending = None
            raise pending

    async def _fill(self) -> None:
        """Read one chunk and decode its events. Read failures are kept in `_pending`, not raised."""
        chunks = self._chunks
        assert chunks is not None
        guard = self._guard
        mine = guard.task is None  # else _open() holds the guard, and decides about cancellations
        if mine:
            guard.enter()
        failure: Failure | None = None
        try:
            if self._deadline is None:
                chunk = await chunks.__anext__()
            else:
                chunk = await self._read_before_deadline(chunks)
        except StopAsyncIteration:
            chunk = b""
        except asyncio.CancelledError:
            if mine:
                if guard.caught():
                    guard.leave()
                    return  # aclose() or the client's close: the state says what follows
                self._close("the stream was cancelled before it completed")
                guard.leave()
            await self._release()
            raise
        except _StreamTotal as exc:
            failure = Failure(APITimeoutError(str(exc), limit="stream_total"), Outcome.UNKNOWN)
        except TransportError as exc:
            failure = transport_failure(exc, self.request_id)
        except OSError as exc:
            failure = transport_failure(os_failure(exc), self.request_id)
        except Exception:  # not a failure of the API's: a bug, raised as itself
            if mine:
                guard.leave()
            self._close("the stream was ended by an unexpected error")
            await self._release()
            raise
        finally:
            if mine:
                guard.leave()
        if failure is None:
            self._received += len(chunk)
            # Kept until the next read returns: a large chunk freed before the next is allocated
            # lets the allocator give the top of its heap back to the system and take it again at
            # every read (a page fault per 4 KiB touched).
            self._held = chunk
            over = self._received - self._rt.max_stream_size
            try:
                if over > 0:
                    # The events within the limit still count: they are what arrived.
                    self._process(self._sse.feed_data(chunk[: len(chunk) - over]))
                    raise EventTooLarge(f"the stream delivered more than {self._rt.max_stream_size} bytes")
                datas = self._sse.feed_data(chunk) if chunk else [f.data for f in self._sse.close()]
            except EventTooLarge as exc:
                failure = Failure(ResponseTooLargeError(str(exc), request_id=self.request_id), Outcome.FINAL)
            else:
                if not chunk:
                    self._eof = True
                self._process(datas)
                return
        if self._status is StreamStatus.DONE:
            self._eof = True  # the response is complete; a failure after it only costs the connection
        else:
            self._pending = failure
        await self._release()

    async def _read_before_deadline(self, chunks: AsyncIterator[bytes]) -> bytes:
        deadline = self._deadline
        assert deadline is not None
        try:
            async with asyncio.timeout_at(deadline) as scope:
                return await chunks.__anext__()
        except TimeoutError:
            if not scope.expired():
                raise
        limit = self._call.timeout.stream_total
        raise _StreamTotal(f"The stream took longer than its total limit of {limit:g} s.")

    def _process(self, datas: list[bytes]) -> None:
        batch = self._fold.batch(datas)
        state = self._state
        broken = batch.broken
        texts = batch.texts
        events: list[ConversationEvent] | None = None
        n = batch.n
        error = state.error
        if broken is not None and (error is None or error not in batch.events()):
            self._pending = Failure(
                ResponseDecodeError(
                    f"The stream is broken: {broken}",
                    body=broken.data[:1024],
                    status=200,
                    request_id=self.request_id,
                    partial=state.response(),
                    conversation_id=state.conversation_id,
                ),
                Outcome.FINAL,
            )
            self._eof = True  # nothing after a broken event is read
        elif len(state.builders) > MAX_STREAM_ENTRIES and self._pending is None:
            too_many = ResponseTooLargeError(
                f"the stream delivered more than {MAX_STREAM_ENTRIES} output entries",
                request_id=self.request_id,
            )
            self._pending = Failure(too_many, Outcome.FINAL)
            self._eof = True
        elif error is not None and self._pending is None:
            events = batch.events()
            events = events[: next(i for i, e in enumerate(events) if e is error)]
            n = len(events)
            texts = _texts_of(events)
            stream_error = StreamError(
                error.message,
                code=error.code,
                request_id=self.request_id,
                partial=state.response(),
                conversation_id=state.conversation_id,
            )
            self._pending = Failure(stream_error, Outcome.FINAL)
        elif state.done and self._status is StreamStatus.OPEN:
            self._move(StreamStatus.DONE)
        elif self._eof and not state.done and self._pending is None:
            ended = StreamInterruptedError(
                "The stream ended before conversation.response.done.", request_id=self.request_id
            )
            self._pending = Failure(ended, Outcome.UNKNOWN)
        self._batch, self._events, self._n, self._i, self._texts = batch, events, n, 0, texts

    def _fail(self, failure: Failure) -> None:
        """Turn a read failure into the stream's final error (after the first event)."""
        self._pending = None
        error = failure.error
        if isinstance(error, APIError):
            error.attempts = self._attempts
            if failure.outcome is Outcome.UNKNOWN:
                error = outcome_unknown(
                    self._call,
                    error,
                    self._attempts,
                    partial=self._state.response(),
                    conversation_id=self._state.conversation_id,
                )
            else:
                error.partial = self._state.response()
                error.conversation_id = self._state.conversation_id
        self._failure = error
        self._move(StreamStatus.FAILED)

    def _close(self, message: str) -> None:
        """Move a live stream to CLOSED; what arrived stays in the `StreamClosedError`."""
        if self._status in _LIVE:
            self._failure = StreamClosedError(
                message, partial=self._state.response(), conversation_id=self._state.conversation_id
            )
            self._move(StreamStatus.CLOSED)

    async def _release(self) -> asyncio.Event | None:
        """Give the connection back (or close it), wake a waiting task, leave the client's set.

        Returns the event a woken task sets once it has unwound (`None` when none waits).
        """
        left = None
        if self._status not in _LIVE:
            left = self._guard.interrupt()
            self._rt.inflight.discard(self)
        resp, self._resp = self._resp, None
        self._held = b""
        if resp is not None:
            await resp.aclose()
        return left

    async def next_text_batch(self) -> list[str] | None:
        """The text deltas of the next events (possibly none); `None` at the end of the stream."""
        i = self._i
        if i >= self._n:
            try:
                await self._wait()
            except StopAsyncIteration:
                return None
            i = self._i
        self._i = self._n
        if i == 0:
            return self._texts
        return _texts_of(self._built()[i:])


class _StreamTotal(TransportError):
    """The whole-stream limit passed (raised inside the read, classified like a stall)."""


def _texts_of(events: list[ConversationEvent]) -> list[str]:
    return [
        e.content for e in events if e.__class__ is MessageOutputDeltaEvent and e.content.__class__ is str
    ]
