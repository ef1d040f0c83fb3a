"""Relay a conversation's stream to a browser from an aiohttp.web handler.:

    async def chat(request: web.Request) -> web.StreamResponse:
        stream = client.start_stream(model="mistral-medium-latest", inputs=request.query["q"])
        return await relay(request, stream)

The request is sent first; an upstream failure before any event becomes the relay's
own JSON answer (404 stays 404, a rate limit 429, the rest 502 or 504). Then every
event goes out as server-sent events, with keep-alive comments while the upstream is
silent, and a final `done` (or `error`) event. When the browser leaves, whether
tokens are flowing or the upstream is stalled, the upstream stream is closed within
100 ms.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import anyio

from ._relay import (
    Mode,
    RelaySource,
    close_shielded,
    error_body,
    error_status,
    open_upstream,
    pump,
    relay_headers,
    safe_error,
)

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["Mode", "relay", "safe_error"]

_POLL = 0.025  # how often the connection is checked while nothing is written (well under 100 ms)


async def relay(
    request: web.Request,
    stream: RelaySource,
    *,
    mode: Mode = "events",
    keepalive: float | None = 15.0,
    headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    """Relay `stream` (a `ConversationStream` or a run's `RunStream`) as the answer to `request`.

    Args:
        request: The browser's request.
        stream: The stream to relay, not yet opened: it is opened here.
        mode: `"events"` relays every event under its type's name; `"text"` only the text
            fragments, as plain `message` events.
        keepalive: Seconds of upstream silence before a keep-alive comment (`None`: never).
        headers: More headers for the answer.

    Returns:
        The answer, complete: the stream ended, failed or the browser left. An upstream failure
        is never raised: before the first event it becomes a JSON answer, after it an `error`
        event.
    """
    from aiohttp import web

    failed = await open_upstream(stream)
    if failed is not None:
        body, status = error_body(failed), error_status(failed)
        return web.Response(body=body, status=status, content_type="application/json")
    response = web.StreamResponse(headers=relay_headers(headers))
    try:
        await response.prepare(request)
    except BaseException:
        await close_shielded(stream)
        raise

    async def gone() -> None:
        # aiohttp tells a handler of a lost connection only through the transport: poll it.
        while request.transport is not None and not request.transport.is_closing():  # noqa: ASYNC110
            await anyio.sleep(_POLL)

    if await pump(stream, response.write, gone, mode=mode, keepalive=keepalive):
        with contextlib.suppress(ConnectionError, OSError):
            await response.write_eof()
    return response
