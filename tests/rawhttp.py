"""A transport that is not aiohttp: HTTP/1.1 over ``asyncio`` streams, one connection per request.

It exists to prove the seam: ``MISTRAL_CONV_TEST_TRANSPORT=raw python -m pytest`` runs the
whole suite with every client sending through it (``conftest.py`` swaps it in). It speaks
just enough HTTP for loopback servers: ``Content-Length``, ``chunked`` and read-to-close
bodies, no compression, no TLS, no proxies (tests of those are marked ``aiohttp_only``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from mistral_conv.transport import (
    ConnectError,
    ConnectTimeout,
    HTTPRequest,
    HTTPResponse,
    PoolStats,
    ReadError,
    ReadTimeout,
)

MAX_HEADER_LINE = 64 * 1024
MAX_HEADERS = 200


class Headers(dict[str, str]):
    """Header names in lower case; lookups ignore case."""

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


async def _within(limit: float | None, awaitable: Any) -> Any:
    if limit is None:
        return await awaitable
    try:
        async with asyncio.timeout(limit):
            return await awaitable
    except TimeoutError:
        raise ReadTimeout(f"no data for {limit} s") from None


class RawResponse(HTTPResponse):
    __slots__ = ("_framing", "_owner", "_read_timeout", "_reader", "_remaining", "_writer", "done")

    def __init__(
        self,
        owner: RawTransport,
        status: int,
        headers: Headers,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        read_timeout: float | None,
    ) -> None:
        super().__init__(status, headers)
        self._owner = owner
        self._reader = reader
        self._writer = writer
        self._read_timeout = read_timeout
        length = headers.get("content-length")
        if "chunked" in (headers.get("transfer-encoding") or "").lower():
            self._framing, self._remaining = "chunked", 0
        elif length is not None:
            self._framing, self._remaining = "length", int(length)
        else:
            self._framing, self._remaining = "eof", 0
        self.done = False

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        return self

    def __aiter__(self) -> RawResponse:
        return self

    async def __anext__(self) -> bytes:
        try:
            while not self.done:
                chunk = await self._next()
                if chunk:
                    return chunk
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
            raise ReadError(f"the connection broke: {type(exc).__name__}") from None
        raise StopAsyncIteration

    async def _next(self) -> bytes:
        r, t = self._reader, self._read_timeout
        if self._framing == "length":
            if self._remaining == 0:
                self.done = True
                return b""
            data = await _within(t, r.read(min(self._remaining, 65536)))
            if not data:
                raise ReadError("the response body was cut short")
            self._remaining -= len(data)
            return bytes(data)
        if self._framing == "eof":
            data = await _within(t, r.read(65536))
            self.done = not data
            return bytes(data)
        if self._remaining == 0:
            line = await _within(t, r.readuntil(b"\r\n"))
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                await _within(t, r.readuntil(b"\r\n"))
                self.done = True
                return b""
            self._remaining = size
        data = await _within(t, r.read(self._remaining))
        if not data:
            raise ReadError("the response body was cut short")
        self._remaining -= len(data)
        if self._remaining == 0:
            await _within(t, r.readexactly(2))
        return bytes(data)

    async def aclose(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()
        if self in self._owner.open:
            self._owner.open.discard(self)
            self._owner.release()


class RawTransport:
    """The seam's protocol, without aiohttp: at most ``max_connections`` at once (more wait), no reuse.

    Accepts (and ignores) the default transport's other options.
    """

    def __init__(self, *, max_connections: int = 100, **_options: object) -> None:
        self.open: set[RawResponse] = set()
        self.limit = max_connections
        self.in_use = 0  # slots taken: connecting, or open
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def connections_in_use(self) -> int:
        return len(self.open)

    def pool_stats(self) -> PoolStats:
        waiting = sum(1 for w in self._waiters if not w.done())
        return PoolStats(open=self.in_use, in_use=self.in_use, waiting=waiting, limit=self.limit)

    def release(self) -> None:
        """Give a slot back: to the first request waiting, if any."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to it: in_use stays
                return
        self.in_use -= 1

    async def _acquire(self) -> None:
        if self.in_use < self.limit and not self._waiters:
            self.in_use += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot while being cancelled: pass it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        url = urlsplit(request.url)
        host, port = url.hostname or "127.0.0.1", url.port or 80
        limits = [x for x in (request.connect_timeout, request.pool_timeout) if x is not None]
        try:
            async with asyncio.timeout(min(limits) if limits else None):
                await self._acquire()
        except TimeoutError:
            raise ConnectTimeout("timed out waiting for a connection") from None
        try:
            async with asyncio.timeout(min(limits) if limits else None):
                reader, writer = await asyncio.open_connection(host, port, limit=MAX_HEADER_LINE)
        except TimeoutError:
            self.release()
            raise ConnectTimeout("timed out opening a connection") from None
        except OSError as exc:
            self.release()
            raise ConnectError(f"could not connect: {exc.strerror}") from None
        except BaseException:
            self.release()
            raise
        try:
            return await self._exchange(request, url, reader, writer)
        except BaseException:
            writer.close()
            self.release()
            raise

    async def _exchange(
        self, request: HTTPRequest, url: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> RawResponse:
        target = url.path + (f"?{url.query}" if url.query else "")
        lines = [f"{request.method} {target} HTTP/1.1", f"Host: {url.netloc}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in request.headers.items()]
        body = request.body or b""
        if body or request.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        t = request.read_timeout
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
            await writer.drain()
            status_line = await _within(t, reader.readuntil(b"\r\n"))
            _version, status, *_ = status_line.decode("latin-1").split(" ", 2)
            headers = Headers()
            for _ in range(MAX_HEADERS):
                line = await _within(t, reader.readuntil(b"\r\n"))
                if line == b"\r\n":
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            else:
                raise ReadError("too many headers")
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise ReadError(
                f"the server closed the connection before answering ({type(exc).__name__})"
            ) from None
        response = RawResponse(self, int(status), headers, reader, writer, t)
        self.open.add(response)
        return response

    async def aclose(self) -> None:
        for response in list(self.open):
            await response.aclose()
