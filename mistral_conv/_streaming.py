"""ConversationStream: SSE frames to typed events, with a lifecycle that never leaks a connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Self

import aiohttp
import msgspec

from ._accumulate import StreamState, accumulate_batch
from ._closing import AsyncClosing
from ._errors import (
    APIConnectionError,
    APITimeoutError,
    ResponseDecodeError,
    ResponseTooLargeError,
    StreamError,
    StreamInterruptedError,
)
from ._sse import EventTooLarge, SSEDecoder
from ._transport import Request, Transport, connection_error, request_id_of
from .models import (
    ConversationEvent,
    ConversationResponse,
    MessageOutputDeltaEvent,
    ModelDecoder,
    UnknownEvent,
)
from .models._base import decode_lenient

if TYPE_CHECKING:
    from ._errors import APIError

__all__ = ["ConversationStream", "StreamEvent", "decode_event"]

StreamEvent = ConversationEvent | UnknownEvent
_decoders: list[msgspec.json.Decoder[ConversationEvent]] = []


def _event_decoder() -> msgspec.json.Decoder[ConversationEvent]:
    """The one event decoder, built on first use (keeps it off the import path)."""
    if not _decoders:
        _decoders.append(msgspec.json.Decoder(ConversationEvent))
    return _decoders[0]


class _TypeProbe(msgspec.Struct):
    type: str = ""


_probe: ModelDecoder[_TypeProbe] = ModelDecoder(_TypeProbe)


def decode_event(data: bytes) -> StreamEvent:
    """Decode one event's data; anything undecodable becomes an ``UnknownEvent`` (never an error).

    The ``UnknownEvent``'s type is the data's ``type`` when the JSON is readable, else empty.
    """
    try:
        known: ConversationEvent = _event_decoder().decode(data)
        return known
    except (msgspec.DecodeError, UnicodeDecodeError):
        pass
    try:
        event: ConversationEvent = decode_lenient(data, ConversationEvent)  # type: ignore[arg-type]
        return event
    except msgspec.DecodeError:
        pass
    try:
        name = _probe.decode(data).type
    except msgspec.DecodeError:
        name = ""
    return UnknownEvent(type_name=name, data=data)


def decode_events(datas: list[bytes]) -> list[StreamEvent]:
    """Decode a batch of event data: one C-level pass when all are well formed."""
    try:
        return list(map(_event_decoder().decode, datas))
    except (msgspec.DecodeError, UnicodeDecodeError):
        return [decode_event(d) for d in datas]


class ConversationStream(AsyncClosing):
    """The events of one streamed run, as an async iterator and an async context manager.

    ``async with client.start_stream(...) as stream: async for event in stream``
    releases the connection deterministically when the block exits (also on
    ``break``, an exception or cancellation). A bare ``async for`` releases it
    when the stream ends, fails or is cancelled; after a ``break`` out of a bare
    loop, call :meth:`aclose` (the body is otherwise left unread).

    Failures keep what arrived: ``StreamError`` (the server's
    ``conversation.response.error``) and ``StreamInterruptedError`` /
    ``APITimeoutError`` carry ``partial``, the response rebuilt so far.
    """

    def __init__(self, transport: Transport, request: Request, *, max_event_size: int) -> None:
        self._transport = transport
        self._request = request
        self._sse = SSEDecoder(max_event_size)
        self._resp: aiohttp.ClientResponse | None = None
        self._events: list[StreamEvent] = []
        self._texts: list[str] = []  # the string deltas of _events, in order
        self._i = 0
        self._state = StreamState()
        self._failure: APIError | None = None
        self._terminal = False
        self._eof = False
        self._closed = False
        self._opened = False
        self.request_id: str | None = None

    def __repr__(self) -> str:
        return f"ConversationStream({self._request.method} {self._request.path}, events={self._state.events})"

    # -- public surface ----------------------------------------------------

    @property
    def conversation_id(self) -> str | None:
        """The conversation id from ``conversation.response.started``, once it arrived."""
        return self._state.conversation_id

    @property
    def state(self) -> StreamState:
        """Everything accumulated so far."""
        return self._state

    def current_response(self) -> ConversationResponse:
        """The response rebuilt from the events received so far."""
        return self._state.response()

    async def final_response(self) -> ConversationResponse:
        """Read the rest of the stream and return the whole response rebuilt from its events."""
        while await self.next_batch():
            pass
        return self._state.response()

    def text_stream(self) -> AsyncIterator[str]:
        """The text fragments of the assistant's messages, as they arrive."""
        return _TextStream(self)

    async def next_batch(self) -> list[StreamEvent]:
        """The next events: all that have arrived and were not read yet (at least one).

        Returns an empty list at the end of the stream; raises as iteration does.
        """
        try:
            first = await self.__anext__()
        except StopAsyncIteration:
            return []
        rest = self._events[self._i :]
        self._i = len(self._events)
        return [first, *rest]

    async def __aenter__(self) -> Self:
        await self._open()
        return self

    async def aclose(self) -> None:
        """Stop reading and release the connection. Safe from any task, any number of times."""
        self._closed = True
        self._release()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> StreamEvent:
        i = self._i
        if i < len(self._events):
            self._i = i + 1
            return self._events[i]
        return await self._next_slow()

    # -- internals -------------------------------------------------------------

    async def _next_slow(self) -> StreamEvent:
        if not self._opened:
            await self._open()
        while True:
            if self._i < len(self._events):
                self._i += 1
                return self._events[self._i - 1]
            if self._failure is not None:
                self._release()
                raise self._failure
            if self._eof or self._closed or self._resp is None:
                self._release()
                raise StopAsyncIteration
            await self._fill()

    async def _open(self) -> None:
        if self._opened or self._closed:
            return
        self._opened = True
        await self._transport.retrying(self._request, self._attempt)

    async def _attempt(self, number: int) -> None:
        """Send the request and wait for the first event (the part that may be retried)."""
        self._sse = SSEDecoder(self._sse.max_event_size)
        self._state = StreamState()
        self._events, self._i, self._failure, self._eof, self._terminal = [], 0, None, False, False
        resp = await self._transport.open(self._request, number)
        self._resp = resp
        self.request_id = request_id_of(resp.headers)
        if self._closed:  # aclose() was called from another task while the request was on its way
            self._release()
            return
        if resp.content_type != "text/event-stream":
            body = await self._transport.read_body(resp)
            got = resp.content_type or "no content type"
            raise ResponseDecodeError(
                f"expected an event stream, got {got} (status {resp.status})",
                body=body,
                status=resp.status,
                request_id=self.request_id,
            )
        limit = self._request.timeout.first_event
        try:
            async with asyncio.timeout(limit) as scope:
                while not self._events and self._failure is None and not self._eof:
                    await self._fill()
        except TimeoutError:
            if not scope.expired():
                raise
            self._release()
            raise APITimeoutError(
                f"No event arrived within {limit} s.", limit="first_event", request_id=self.request_id
            ) from None
        if not self._events and isinstance(self._failure, APIConnectionError):
            failure, self._failure = self._failure, None
            self._release()
            self._resp = None
            raise failure

    async def _fill(self) -> None:
        resp = self._resp
        assert resp is not None
        try:
            chunk = await resp.content.readany()
            datas = self._sse.feed_data(chunk) if chunk else [f.data for f in self._sse.close()]
        except asyncio.CancelledError:
            self._release()
            raise
        except EventTooLarge as exc:
            self._fail(self._error(ResponseTooLargeError, str(exc)))
            return
        except Exception as exc:
            if self._closed:
                self._eof = True
                return
            error = connection_error(exc)
            if isinstance(error, APITimeoutError):
                self._fail(self._error(APITimeoutError, f"The stream stalled: {error}", limit=error.limit))
            else:
                self._fail(self._error(StreamInterruptedError, f"The stream broke: {error}"))
            return
        if not chunk:
            self._eof = True
        self._process(datas)
        if self._eof and not self._terminal and self._failure is None:
            self._failure = self._error(
                StreamInterruptedError, "The stream ended before conversation.response.done."
            )

    def _process(self, datas: list[bytes]) -> None:
        events = decode_events(datas) if datas else []
        texts: list[str] = []
        state = accumulate_batch(self._state, events, texts)
        if state.done or state.error is not None:
            self._terminal = True
            error = state.error
            if error is not None:
                events = events[: next(i for i, e in enumerate(events) if e is error)]
                texts = _texts_of(events)
                self._failure = self._error(StreamError, error.message, code=error.code)
        self._events, self._i, self._texts = events, 0, texts

    async def next_text_batch(self) -> list[str] | None:
        """The text deltas of the next events (possibly none); ``None`` at the end of the stream."""
        whole = self._i == 0 and bool(self._events)
        batch = await self.next_batch()
        if not batch:
            return None
        if whole or len(batch) == len(self._events):
            return self._texts
        return _texts_of(batch)

    def _error(self, cls: Callable[..., APIError], message: str, **extra: Any) -> APIError:
        """An error of ``cls`` carrying the request id, the partial response and the conversation id."""
        return cls(
            message,
            request_id=self.request_id,
            partial=self._state.response(),
            conversation_id=self._state.conversation_id,
            **extra,
        )

    def _fail(self, error: APIError) -> None:
        self._failure = error
        self._release()

    def _release(self) -> None:
        resp = self._resp
        if resp is None:
            return
        if self._eof or resp.content.is_eof():
            resp.release()
        else:
            resp.close()


def _texts_of(events: list[StreamEvent]) -> list[str]:
    return [
        e.content for e in events if e.__class__ is MessageOutputDeltaEvent and e.content.__class__ is str
    ]


class _TextStream:
    """Async iterator over the string deltas of a stream, read a batch at a time."""

    __slots__ = ("_i", "_stream", "_texts")

    def __init__(self, stream: ConversationStream) -> None:
        self._stream = stream
        self._texts: list[str] = []
        self._i = 0

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        i = self._i
        if i < len(self._texts):
            self._i = i + 1
            return self._texts[i]
        while True:
            texts = await self._stream.next_text_batch()
            if texts is None:
                raise StopAsyncIteration
            if texts:
                self._texts, self._i = texts, 1
                return texts[0]
