"""Relay a conversation's stream to a browser from an ASGI app (Starlette, FastAPI).

Needs the `asgi` extra (`pip install "mistral-conv[asgi]"`, which brings Starlette):

    @app.get("/chat")
    async def chat(q: str) -> EventStreamResponse:
        return EventStreamResponse(client.start_stream(model="mistral-medium-latest", inputs=q))

The request is sent when the response starts, before any header: an upstream failure
before any event becomes the relay's own JSON answer (404 stays 404, a rate limit 429,
the rest 502 or 504). Then every event goes out as server-sent events, with keep-alive
comments, and a final `done` (or `error`) event. When the browser leaves (the
server reports `http.disconnect`), the upstream stream is closed at once, whether
tokens are flowing or the upstream is stalled.
"""

from __future__ import annotations

import contextlib
from collections.abc import MutableMapping
from typing import Any

try:
    from starlette.responses import Response
except ImportError as exc:  # pragma: no cover - depends on the extra
    raise ImportError('mistral_conv.asgi needs Starlette: pip install "mistral-conv[asgi]"') from exc

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

__all__ = ["EventStreamResponse", "Mode", "safe_error"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


class EventStreamResponse(Response):
    """An ASGI response that relays `stream` (a `ConversationStream` or a run's `RunStream`).

    Args:
        stream: The stream to relay, not yet opened: it is opened when the response starts.
        mode: `"events"` relays every event under its type's name; `"text"` only the text
            fragments, as plain `message` events.
        keepalive: Seconds of upstream silence before a keep-alive comment (`None`: never).
        headers: More headers for the answer.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        stream: RelaySource,
        *,
        mode: Mode = "events",
        keepalive: float | None = 15.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.stream = stream
        self.mode: Mode = mode
        self.keepalive = keepalive
        self.status_code = 200
        self.background = None
        self.body = b""
        self.raw_headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in relay_headers(headers).items()
        ]

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        stream = self.stream
        failed = await open_upstream(stream)
        if failed is not None:
            body = error_body(failed)
            length = str(len(body)).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", length)]
            await send({"type": "http.response.start", "status": error_status(failed), "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        except BaseException:
            await close_shielded(stream)
            raise

        async def write(frame: bytes) -> None:
            await send({"type": "http.response.body", "body": frame, "more_body": True})

        async def gone() -> None:
            while True:
                message: Message = await receive()
                if message["type"] == "http.disconnect":
                    return

        if await pump(stream, write, gone, mode=self.mode, keepalive=self.keepalive):
            with contextlib.suppress(ConnectionError, OSError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
