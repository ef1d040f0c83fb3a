"""A real aiohttp.web server on 127.0.0.1 that plays scripted replies and records every request.

Tests queue replies per route; each request takes the next reply of its
route (the last one repeats). Replies can be JSON, SSE bodies written in
chunks, or faults: a dropped connection, a stall that lasts until the test
ends, a disconnect in the middle of a body. Stalls wait on an event, never
on a timer, so tests stay fast and deterministic.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from mistral_conv.testing._thread import LoopThread


@dataclass
class Recorded:
    method: str
    path: str
    raw_path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Json:
    """A complete response; ``body`` is bytes or an object to JSON-encode."""

    body: Any = b"{}"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class Sse:
    """An event-stream body written chunk by chunk.

    ``stall_after``: after that many chunks, wait until the test ends.
    ``drop_after``: after that many chunks, close the connection mid-body.
    ``pause_after``/``gate``: after that many chunks, wait for ``gate`` to be set.
    """

    chunks: Sequence[bytes]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    stall_after: int | None = None
    drop_after: int | None = None
    pause_after: int | None = None
    gate: asyncio.Event | None = None


@dataclass
class Drop:
    """Close the connection before sending any header."""


@dataclass
class Stall:
    """Never answer (until the test ends)."""


Reply = Json | Sse | Drop | Stall | Callable[[web.Request], Awaitable[web.StreamResponse]]


def sse_body(*events: dict[str, Any]) -> bytes:
    """Events in Mistral's canonical framing: ``event:`` line, ``data:`` line, blank line."""
    out = []
    for e in events:
        data = json.dumps(e, separators=(",", ":"), ensure_ascii=False)
        out.append(f"event: {e['type']}\ndata: {data}\n\n")
    return "".join(out).encode()


class Loopback:
    """The server runs on its own event loop in a thread, so that the test's loop holds only
    the client's tasks (lifecycle tests check that none is left behind)."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._routes: dict[tuple[str, str], list[Reply]] = {}
        self._runner: web.AppRunner | None = None
        self._thread = LoopThread("loopback-server")
        self.url = ""

    def open_gate(self, gate: asyncio.Event) -> None:
        """Set a gate that the server side waits on (it lives in the server's loop)."""
        self._thread.call_soon(gate.set)

    def start_in_thread(self) -> None:
        self._thread.start(self.start, self._cleanup)

    def stop_thread(self) -> None:
        self._thread.stop()

    def reply(self, method: str, path: str, *replies: Reply) -> None:
        self._routes[(method, path)] = list(replies)

    async def start(self) -> None:
        self._forever = asyncio.Event()
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def _cleanup(self) -> None:
        self._forever.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.path == path)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                request.raw_path.split("?")[0],
                dict(request.query),
                dict(request.headers),
                body,
            )
        )
        key = (request.method, request.raw_path.split("?")[0])
        queue = self._routes.get(key)
        if not queue:
            return web.json_response({"detail": f"no reply for {key}"}, status=599)
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(reply, Json):
            data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            return web.Response(
                body=data, status=reply.status, headers=reply.headers, content_type=reply.content_type
            )
        if isinstance(reply, Drop):
            assert request.transport is not None
            request.transport.close()
            await self._forever.wait()
            return web.Response()
        if isinstance(reply, Stall):
            await self._forever.wait()
            return web.Response()
        if isinstance(reply, Sse):
            return await self._sse(request, reply)
        return await reply(request)

    async def _sse(self, request: web.Request, reply: Sse) -> web.StreamResponse:
        resp = web.StreamResponse(status=reply.status, headers=reply.headers)
        resp.content_type = "text/event-stream"
        await resp.prepare(request)
        for i, chunk in enumerate(reply.chunks):
            if i == reply.stall_after:
                await self._forever.wait()
            if i == reply.drop_after:
                assert request.transport is not None
                request.transport.close()
                return resp
            if i == reply.pause_after and reply.gate is not None:
                await reply.gate.wait()
            await resp.write(chunk)
        if reply.stall_after is not None and reply.stall_after >= len(reply.chunks):
            await self._forever.wait()
        if reply.drop_after is not None and reply.drop_after >= len(reply.chunks):
            assert request.transport is not None
            request.transport.close()
            return resp
        await resp.write_eof()
        return resp
