"""The relay core shared by the aiohttp.web and ASGI helpers: a stream's events to SSE bytes.

`pump` writes a stream (a `ConversationStream` or a run's `RunStream`) as
event-stream frames through a `write` callable, with keep-alive comments while the
upstream is silent, and ends with an `event: done` frame, or an `event: error`
frame whose data is `safe_error`. A `watch` coroutine returns when the browser
has gone: the upstream stream is then closed at once, whatever it was doing.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol, TypeAlias

import anyio
import msgspec

from ._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    MistralError,
    RateLimitError,
    RunError,
    StreamError,
)
from .sse import comment, encode, encode_event, encode_json

__all__ = ["Mode", "RelaySource", "close_shielded", "error_status", "open_upstream", "pump", "safe_error"]

Mode: TypeAlias = Literal["events", "text"]
"""`"events"`: every event, typed, under its own name; `"text"`: only the text, as plain messages."""


class RelaySource(Protocol):
    """What a relay reads: `ConversationStream`, `RunStream` (and their subclasses)."""

    def __aiter__(self) -> Any: ...

    async def aclose(self) -> None: ...


def safe_error(exc: BaseException) -> dict[str, Any]:
    """What a browser may see of a failure: its type, a message without internals, the request id."""
    request_id = getattr(exc, "request_id", None)
    if isinstance(exc, APIStatusError | StreamError):
        message = exc.message
    elif isinstance(exc, APITimeoutError):
        message = "The model did not answer in time."
    elif isinstance(exc, APIConnectionError):
        message = "The connection to the model was lost."
    elif isinstance(exc, RunError):
        message = exc.message
    elif isinstance(exc, MistralError):
        message = "The model's answer could not be relayed."
    else:
        return {"type": "InternalError", "message": "The relay failed.", "request_id": None}
    return {"type": type(exc).__name__, "message": message, "request_id": request_id}


def error_status(exc: BaseException) -> int:
    """The relay's own HTTP status for an upstream failure before the stream started.

    A client error of the request (400, 404, 409, 422) and a rate limit keep their status;
    the relay's own credentials (401, 403) and server errors are a bad gateway (502); a
    time limit is a gateway time-out (504).
    """
    if isinstance(exc, RateLimitError):
        return 429
    if isinstance(exc, APIStatusError) and exc.status in (400, 404, 409, 422):
        return exc.status
    if isinstance(exc, APITimeoutError):
        return 504
    return 502


def _done_data(source: RelaySource) -> bytes:
    conversation_id = getattr(source, "conversation_id", None)
    return encode_json({"conversation_id": conversation_id}, event="done")


async def pump(
    source: RelaySource,
    write: Callable[[bytes], Awaitable[object]],
    watch: Callable[[], Awaitable[object]],
    *,
    mode: Mode = "events",
    keepalive: float | None = 15.0,
) -> bool:
    """Write `source` as SSE through `write` until it ends or `watch()` returns.

    Returns `True` when the source ended (with `done` or `error`), `False` when the
    browser left first; either way the source is closed when this returns. A failure of
    `write` (the browser left mid-write) counts as leaving.
    """
    last = time.monotonic()
    finished = False

    async def send(frame: bytes) -> None:
        # One write per call: frames never interleave, so the keep-alive needs no lock.
        nonlocal last
        await write(frame)
        last = time.monotonic()

    def frame_of(event: Any) -> bytes:
        if mode == "events":
            return encode_event(event)
        if event.type == "message.output.delta" and isinstance(event.content, str):
            return encode(event.content)
        return b""

    async def relay_all(scope: anyio.CancelScope) -> None:
        nonlocal finished
        batches = getattr(source, "next_batch", None)
        try:
            if batches is not None:  # every event that arrived, in one write
                while batch := await batches():
                    chunk = b"".join(map(frame_of, batch))
                    if chunk:
                        await send(chunk)
            else:
                async for event in source:
                    chunk = frame_of(event)
                    if chunk:
                        await send(chunk)
            frame = _done_data(source)
        except MistralError as exc:
            frame = encode_json(safe_error(exc), event="error")
        except (ConnectionError, OSError):
            scope.cancel()  # the browser is gone: a write failed
            return
        try:
            await send(frame)
        except (ConnectionError, OSError):
            scope.cancel()
            return
        finished = True
        scope.cancel()

    async def keep_alive(interval: float) -> None:
        while True:
            await anyio.sleep(max(0.0, last + interval - time.monotonic()))
            if time.monotonic() - last >= interval:
                try:
                    await send(comment())
                except (ConnectionError, OSError):
                    return

    async def gone(scope: anyio.CancelScope) -> None:
        await watch()
        scope.cancel()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(relay_all, tg.cancel_scope)
            tg.start_soon(gone, tg.cancel_scope)
            if keepalive:
                tg.start_soon(keep_alive, keepalive)
    finally:
        await close_shielded(source)
    return finished


def relay_headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The headers of an event-stream answer that proxies pass through unbuffered."""
    return {
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
        **(extra or {}),
    }


def error_body(exc: BaseException) -> bytes:
    """The JSON body of an answer for a failure before the stream started."""
    return msgspec.json.encode({"error": safe_error(exc)})


async def open_upstream(source: RelaySource) -> MistralError | None:
    """Open `source` (send its request) before the relay answers anything.

    Returns the failure that the relay should turn into its own answer (the source is
    then closed), or `None` when events can flow.
    """
    opener = getattr(source, "open", None)
    if opener is None:
        return None
    try:
        await opener()
    except MistralError as exc:
        await source.aclose()
        return exc
    except BaseException:
        await close_shielded(source)
        raise
    return None


async def close_shielded(source: RelaySource) -> None:
    """Close `source` even while the caller is being cancelled."""
    with anyio.CancelScope(shield=True):
        await source.aclose()
