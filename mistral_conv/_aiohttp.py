"""The default transport, over aiohttp: the only module of the package that imports it.

It turns aiohttp's exceptions into the seam's `TransportError` classes, raised
outside aiohttp's own exception context, so no aiohttp object (some hold the request's
headers, and so the API key) is reachable from what the client raises.
"""

from __future__ import annotations

import asyncio
import io
import urllib.request
import zlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Self

import aiohttp
import yarl

from ._errors import ClientClosedError, EventLoopError, InvalidRequestError, ResponseTooLargeError
from ._transport import (
    ConnectError,
    ConnectTimeout,
    HTTPRequest,
    HTTPResponse,
    ReadError,
    ReadTimeout,
    TransportError,
    is_loopback,
)

if TYPE_CHECKING:
    from ._events import PoolStats

__all__ = ["AiohttpTransport", "env_proxy"]

# Sessions inherited from a parent process: kept referenced, never closed or collected in the
# child, whose closing would touch sockets that belong to the parent.
_ABANDONED: list[aiohttp.ClientSession] = []
_STEP = 64 * 1024  # the most one inflating step produces
_LARGE_BODY = 1024 * 1024
ACCEPT_ENCODING = "gzip, deflate"  # what _Inflating reads; aiohttp's own inflating is off

# aiohttp rounds limits of this many seconds or more up to a whole second; the client's
# phase limits are exact, so the rounding is switched off.
_NO_CEIL = 1e12


def env_proxy(url: yarl.URL) -> str | None:
    """The proxy the environment sets for `url` (`*_PROXY` variables, minus `NO_PROXY`)."""
    proxy = urllib.request.getproxies().get(url.scheme)
    if not proxy or (url.host and urllib.request.proxy_bypass(url.host)):
        return None
    return proxy


def _send_error(exc: BaseException) -> TransportError:
    """The seam's error for an aiohttp failure while sending and waiting for the headers."""
    name = type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ConnectTimeout(f"timed out opening a connection ({name})")
    if isinstance(exc, aiohttp.ClientConnectorError):
        try:
            detail = str(exc)
        except Exception:  # some aiohttp releases fail to render a few of these errors
            detail = ""
        return ConnectError(f"could not connect: {name}: {detail}")
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return ReadTimeout(f"the server went silent ({name})")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return ReadError("the server closed the connection before answering")
    if isinstance(exc, aiohttp.InvalidURL):
        return ConnectError(f"invalid URL: {exc}")
    return ReadError(f"the connection failed: {name}")


def _read_error(exc: BaseException) -> TransportError:
    """The seam's error for an aiohttp failure while reading a body."""
    name = type(exc).__name__
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return ReadTimeout(f"the server went silent ({name})")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return ReadError("the response body was cut short")
    return ReadError(f"the connection broke: {name}")


class _Chunks:
    """The body's chunks, with read failures mapped to the seam's errors and the read limit kept.

    aiohttp's own limit between reads (`sock_read`) arms a timer at every packet and cancels
    the one before: with thousands of streams open, a heap of cancelled timers the loop sifts
    through and the GC walks. Here a body has one timer, armed when a read starts to wait and
    none is armed; when it fires, a read that waits less than `limit` so far has it armed again
    for the rest, one that waited `limit` fails with aiohttp's own timeout error, and no read
    waiting leaves it unarmed until the next. `stop()` cancels it; every way a body's reading
    ends calls it (its end, a read error, a cancelled read, the response's `aclose()`).
    """

    __slots__ = ("_content", "_limit", "_loop", "_mark", "_since", "_timer", "_waiting")

    def __init__(self, content: aiohttp.StreamReader, limit: float | None) -> None:
        self._content = content
        self._limit = limit
        self._loop = asyncio.get_running_loop()
        self._since = 0.0  # when the waiting read started
        self._mark = 0  # the bytes received by then
        self._timer: asyncio.TimerHandle | None = None
        self._waiting = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        content = self._content
        limit = self._limit
        if limit is not None and not content.is_eof():
            self._since = since = self._loop.time()
            self._mark = content.total_bytes
            self._waiting = True
            if self._timer is None:
                self._timer = self._loop.call_at(since + limit, self._expire)
        try:
            chunk = await content.readany()
        except (aiohttp.ClientError, OSError) as exc:
            self.stop()
            error = _read_error(exc)
        except BaseException:
            self.stop()
            raise
        else:
            self._waiting = False
            if chunk:
                return chunk
            self.stop()
            raise StopAsyncIteration
        raise error  # outside the except block: aiohttp's exception is not chained

    def _expire(self) -> None:
        self._timer = None
        content = self._content
        if not self._waiting or content.total_bytes != self._mark or content.is_eof():
            return  # no read waits, or bytes came and the waiting read is about to return
        assert self._limit is not None
        deadline = self._since + self._limit
        if self._loop.time() < deadline:
            self._timer = self._loop.call_at(deadline, self._expire)
            return
        self._waiting = False
        content.set_exception(aiohttp.SocketTimeoutError("Timeout on reading data from socket"))

    def stop(self) -> None:
        """Cancel the timer: no read will wait any more (a later one would arm it again)."""
        self._waiting = False
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()


class _Inflating:
    """A compressed body's chunks, inflated at most `_STEP` bytes at a time.

    A small compressed chunk can inflate to gigabytes (a compression bomb): no single step
    produces more than `_STEP` bytes, so what a reader keeps is bounded by its own limit.
    """

    __slots__ = ("_chunks", "_encoding", "_z")

    def __init__(self, chunks: _Chunks, encoding: str) -> None:
        self._chunks = chunks
        self._encoding = encoding
        self._z: zlib._Decompress | None = None

    def __aiter__(self) -> Self:
        return self

    def _start(self, first: bytes) -> zlib._Decompress:
        if self._encoding == "deflate" and not (
            len(first) > 1 and first[0] & 0x0F == 8 and (first[0] * 256 + first[1]) % 31 == 0
        ):
            return zlib.decompressobj(-zlib.MAX_WBITS)  # "deflate" sent raw, without its zlib header
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib, told apart by the header

    async def __anext__(self) -> bytes:
        while True:
            z = self._z
            if z is not None and z.unconsumed_tail:
                data = z.unconsumed_tail  # input left over when the last step hit _STEP
            elif z is not None and z.eof and z.unused_data:
                data = z.unused_data  # the next member of a multi-member gzip body
                z = self._z = self._start(data)
            else:
                try:
                    data = await self._chunks.__anext__()
                except StopAsyncIteration:
                    if z is not None and not z.eof:
                        raise ReadError("the compressed response body was cut short") from None
                    raise
                if z is None or z.eof:
                    z = self._z = self._start(data)
            try:
                out = z.decompress(data, _STEP)
            except zlib.error as exc:
                raise ReadError(f"the compressed response body is corrupt: {exc}") from None
            if out:
                return out


class AiohttpResponse(HTTPResponse):
    """An aiohttp response behind the seam. Bodies are inflated here, within the reader's limits."""

    __slots__ = ("_chunks", "_read_timeout", "_resp")

    def __init__(self, resp: aiohttp.ClientResponse, read_timeout: float | None = None) -> None:
        super().__init__(resp.status, resp.headers)
        self._resp = resp
        self._read_timeout = read_timeout
        self._chunks: _Chunks | None = None

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        resp = self._resp
        limit = self._read_timeout
        if limit is not None:
            # From here the body's reads are timed by _Chunks, not at every packet by aiohttp.
            protocol = resp.connection.protocol if resp.connection is not None else None
            if protocol is not None:
                protocol.read_timeout = None
                protocol.start_timeout()  # with no limit: cancels the timer armed at the last packet
        if self._chunks is not None:
            self._chunks.stop()
        chunks = self._chunks = _Chunks(resp.content, limit)
        encoding = (resp.headers.get("content-encoding") or "").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            return _Inflating(chunks, "deflate" if encoding == "deflate" else "gzip")
        return chunks

    async def read(self, limit: int) -> bytes:
        resp = self._resp
        length = resp.content_length
        if length is not None and length > limit:
            raise ResponseTooLargeError(f"response body of {length} bytes exceeds the limit of {limit}")
        if length is None or "content-encoding" in resp.headers:
            # Unknown or compressed length: count the decoded bytes as they arrive.
            return await super().read(limit)
        try:
            return await resp.read()
        except (aiohttp.ClientError, OSError) as exc:
            error = _read_error(exc)
        raise error

    async def aclose(self) -> None:
        if self._chunks is not None:
            self._chunks.stop()
        resp = self._resp
        if resp.content.is_eof():
            resp.release()
        else:
            resp.close()


class AiohttpTransport:
    """Sends requests over one lazily created `aiohttp.ClientSession`.

    The session is created inside the running event loop on first use. Proxy
    variables (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, …) are read then, once
    per host, rather than through aiohttp's `trust_env`, which looks them (and
    `~/.netrc`) up in a worker thread on every request: two thread hops a call,
    and a `~/.netrc` entry for the API host would clash with the key.
    `max_connections` sizes the pool; `verify_ssl` checks certificates. A request
    with credentials to a plain `http://` URL is refused when it would go through a
    proxy that is not on this machine (the key would cross the network in plain text),
    unless `allow_insecure_http`.
    """

    def __init__(
        self, *, max_connections: int = 100, verify_ssl: bool = True, allow_insecure_http: bool = False
    ) -> None:
        self._max_connections = max_connections
        self._verify_ssl = verify_ssl
        self._allow_insecure_http = allow_insecure_http
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._urls: dict[str, yarl.URL] = {}
        self._proxies: dict[tuple[str, str | None], str | None] = {}
        self._timeouts: dict[tuple[float | None, float | None, float | None], aiohttp.ClientTimeout] = {}

    def __repr__(self) -> str:
        return f"AiohttpTransport(max_connections={self._max_connections})"

    @property
    def max_connections(self) -> int:
        """The size of the connection pool: requests beyond it wait for a free connection."""
        return self._max_connections

    @property
    def connections_in_use(self) -> int:
        """Connections taken from the pool and not yet given back."""
        session = self._session
        if session is None or session.connector is None:
            return 0
        return len(session.connector._acquired)  # aiohttp exposes no public count

    def pool_stats(self) -> PoolStats:
        """Connections open, in use, and requests waiting for one (all zero before the first call)."""
        from ._events import PoolStats  # loaded when first asked for, not with the client

        session = self._session
        connector = session.connector if session is not None else None
        if connector is None or connector.closed:
            return PoolStats(open=0, in_use=0, waiting=0, limit=self._max_connections or None)
        # aiohttp has no public count: these three containers exist, with these meanings,
        # from 3.10 to 3.14 (idle: key -> list or deque; waiters: key -> deque or dict).
        in_use = len(getattr(connector, "_acquired", ()))
        # Snapshots of the values: the loop may change the dicts while another thread counts.
        idle = sum(len(c) for c in tuple(getattr(connector, "_conns", {}).values()))
        waiting = sum(len(w) for w in tuple(getattr(connector, "_waiters", {}).values()))
        return PoolStats(open=in_use + idle, in_use=in_use, waiting=waiting, limit=connector.limit or None)

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The aiohttp session, once created."""
        return self._session

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ClientClosedError("the client is closed; create a new one")
        loop = asyncio.get_running_loop()
        session = self._session
        if session is not None and self._loop is loop:
            return session
        if session is not None and self._loop is not None and not self._loop.is_closed():
            raise EventLoopError(
                "this client is bound to another running event loop; "
                "use one client per event loop (or the blocking ConversationsClient)"
            )
        if session is not None:
            # The loop that owned the old session is gone, and its sockets with it.
            session.detach()
        connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=self._verify_ssl)
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, headers={"Accept-Encoding": ACCEPT_ENCODING}
        )
        self._proxies.clear()
        self._loop = loop
        return self._session

    def _url(self, url: str) -> tuple[yarl.URL, str | None]:
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = yarl.URL(url, encoded=True)
            if len(self._urls) < 1024:  # the fixed routes, and the latest conversations
                self._urls[url] = parsed
        key = (parsed.scheme, parsed.host)
        if key not in self._proxies:
            self._proxies[key] = env_proxy(parsed)
        return parsed, self._proxies[key]

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        """Send `request`; return once the status line and headers are in."""
        session = self._get_session()
        url, proxy = self._url(request.url)
        if proxy is not None and url.scheme == "http" and not self._allow_insecure_http:
            self._check_plain_proxy(proxy, request)
        key = (request.pool_timeout, request.connect_timeout, request.read_timeout)
        timeout = self._timeouts.get(key)
        if timeout is None:
            if len(self._timeouts) >= 64:  # the limits come from a few Timeout settings: keep it bounded
                self._timeouts.clear()
            timeout = self._timeouts[key] = aiohttp.ClientTimeout(
                connect=key[0], sock_connect=key[1], sock_read=key[2], ceil_threshold=_NO_CEIL
            )
        body: bytes | io.BytesIO | None = request.body
        if request.body is not None and len(request.body) > _LARGE_BODY:
            # aiohttp warns (ResourceWarning) about large bytes bodies; a file-like one is written in
            # pieces. A fresh one each attempt: it is consumed by the write.
            body = io.BytesIO(request.body)
        try:
            resp = await session.request(
                request.method,
                url,
                data=body,
                headers=request.headers,
                timeout=timeout,
                allow_redirects=False,
                proxy=proxy,
            )
        except (aiohttp.ClientError, OSError) as exc:
            error = _send_error(exc)
        else:
            return AiohttpResponse(resp, request.read_timeout)
        raise error  # outside the except block: aiohttp's exception is not chained

    @staticmethod
    def _check_plain_proxy(proxy: str, request: HTTPRequest) -> None:
        if any(k.lower() == "authorization" for k in request.headers) and not is_loopback(
            yarl.URL(proxy).host
        ):
            raise InvalidRequestError(
                "HTTP_PROXY",
                "refusing to send the API key in plain text through a proxy on another host; "
                "use https, set NO_PROXY for this host, or pass allow_insecure_http=True",
            )

    def after_fork(self) -> None:
        """In a child process: forget the parent's session (its sockets are the parent's) unclosed."""
        if self._session is not None:
            _ABANDONED.append(self._session)
        self._session = None
        self._loop = None

    async def aclose(self) -> None:
        """Close the session and its connections. Idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()
