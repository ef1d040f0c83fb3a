"""The HTTP transport: owns the aiohttp session; sends, retries, maps errors.

``Transport`` is the one seam between the client and the network: a test or
a user may pass their own (a subclass, or any object with the same methods).
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import logging
import random
import time
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import aiohttp
import msgspec
import yarl

from ._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ClientClosedError,
    InvalidRequestError,
    ResponseTooLargeError,
    status_error,
)
from ._options import Backoff, Timeout
from ._version import __version__

__all__ = ["Request", "Response", "Transport"]

log = logging.getLogger("mistral_conv")

T = TypeVar("T")

USER_AGENT = f"mistral_conv/{__version__}"
REQUEST_ID_HEADERS = ("x-request-id", "mistral-correlation-id", "request-id")
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
DEFAULT_MAX_BODY = 64 * 1024 * 1024


class Request(msgspec.Struct):
    """One API call, ready to send: method, encoded path, query, JSON body and options."""

    method: str
    path: str
    timeout: Timeout
    max_retries: int
    params: Mapping[str, str] | None = None
    body: bytes | None = None
    headers: Mapping[str, str] | None = None
    stream: bool = False


class Response(msgspec.Struct):
    """A complete answer: status, headers and body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    request_id: str | None = None


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """The server's request id header, if any."""
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``Retry-After`` as seconds or an HTTP date."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def check_header_value(name: str, value: str) -> None:
    """Refuse CR, LF and NUL in a header value (header injection)."""
    if any(c in value for c in "\r\n\0"):
        raise InvalidRequestError(name, "must not contain CR, LF or NUL characters")


def env_proxy(url: yarl.URL) -> str | None:
    """The proxy the environment sets for ``url`` (``*_PROXY`` variables, minus ``NO_PROXY``)."""
    proxy = urllib.request.getproxies().get(url.scheme)
    if not proxy or (url.host and urllib.request.proxy_bypass(url.host)):
        return None
    return proxy


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Transport:
    """Sends requests over one lazily created ``aiohttp.ClientSession``.

    The session is created inside the running event loop on first use. Proxy
    variables (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``, …) are read then,
    once, rather than through aiohttp's ``trust_env``, which looks them (and
    ``~/.netrc``) up in a worker thread on every request: two thread hops a
    call, and a ``~/.netrc`` entry for the API host would clash with the
    ``Authorization`` header. Retries use ``backoff``;
    ``sleep`` is how the transport waits between attempts (replaceable in tests).
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        max_connections: int = 100,
        verify_ssl: bool = True,
        allow_insecure_http: bool = False,
        backoff: Backoff | None = None,
        max_body_size: int = DEFAULT_MAX_BODY,
        log_bodies: bool = False,
        default_headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        url = yarl.URL(base_url.rstrip("/"))
        if url.scheme not in ("http", "https") or not url.host:
            raise InvalidRequestError("base_url", f"must be an http(s) URL, got {base_url!r}")
        if url.scheme == "http" and api_key and not allow_insecure_http and not _is_loopback(url.host):
            raise InvalidRequestError(
                "base_url",
                "refusing to send the API key over plain http to a non-loopback host; "
                "use https, or pass allow_insecure_http=True",
            )
        self.base_url = str(url)
        self._base = self.base_url
        headers = {"User-Agent": USER_AGENT, **(default_headers or {})}
        if api_key:
            check_header_value("api_key", api_key)
            headers["Authorization"] = f"Bearer {api_key}"
        for name, value in headers.items():
            check_header_value(name, value)
        self._headers = headers
        self._max_connections = max_connections
        self._verify_ssl = verify_ssl
        self.backoff = backoff or Backoff()
        self.max_body_size = max_body_size
        self.log_bodies = log_bodies
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None
        self._proxy: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._timeouts: dict[tuple[Timeout, bool], aiohttp.ClientTimeout] = {}
        self._urls: dict[str, yarl.URL] = {}

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r})"

    @property
    def closed(self) -> bool:
        """Whether ``aclose()`` was called."""
        return self._closed

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
            raise ClientClosedError(
                "this client is bound to another running event loop; "
                "use one client per event loop (or the blocking ConversationsClient)"
            )
        if session is not None:
            # The loop that owned the old session is gone, and its sockets with it.
            session.detach()
        connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=self._verify_ssl)
        self._session = aiohttp.ClientSession(connector=connector, headers=self._headers)
        self._proxy = env_proxy(yarl.URL(self._base))
        self._loop = loop
        return self._session

    def _url(self, path: str) -> yarl.URL:
        url = self._urls.get(path)
        if url is None:
            url = yarl.URL(self._base + path, encoded=True)
            if len(self._urls) < 1024:  # the fixed routes, and the latest conversations
                self._urls[path] = url
        return url

    def _client_timeout(self, t: Timeout, stream: bool) -> aiohttp.ClientTimeout:
        key = (t, stream)
        ct = self._timeouts.get(key)
        if ct is None:
            total = t.stream_total if stream else t.total
            read = t.read
            if not stream and total is not None and read is not None and read >= total:
                # A wait between reads can never outlast the whole call: leave the per-read timer
                # (one timer armed and cancelled per socket read) off the plain path.
                read = None
            ct = aiohttp.ClientTimeout(total=total, sock_connect=t.connect, sock_read=read)
            self._timeouts[key] = ct
        return ct

    async def open(self, request: Request, attempt: int = 1) -> aiohttp.ClientResponse:
        """One attempt: send ``request`` and return the response once its headers are in.

        An error status is read, closed and raised as an ``APIStatusError``.
        Network failures raise ``APIConnectionError`` / ``APITimeoutError``.
        Every attempt is logged at INFO on the ``mistral_conv`` logger.
        """
        session = self._get_session()
        started = time.monotonic()
        if self.log_bodies and request.body is not None:
            log.debug("%s %s request body: %s", request.method, request.path, _clip(request.body))
        try:
            resp = await session.request(
                request.method,
                self._url(request.path),
                params=request.params,
                data=request.body,
                headers=request.headers,
                timeout=self._client_timeout(request.timeout, request.stream),
                allow_redirects=False,
                proxy=self._proxy,
            )
        except Exception as exc:
            error = connection_error(exc)
            self._log(request, f"failed ({type(exc).__name__})", started, None, attempt)
            raise error from exc
        if resp.status >= 300:
            body = await self.read_body(resp)
            headers = {k.lower(): v for k, v in resp.headers.items()}
            rid = request_id_of(resp.headers)
            self._log(request, resp.status, started, rid, attempt)
            if self.log_bodies:
                log.debug("%s %s response body: %s", request.method, request.path, _clip(body))
            raise status_error(resp.status, body, request_id=rid, headers=headers)
        if log.isEnabledFor(logging.INFO):
            self._log(request, resp.status, started, request_id_of(resp.headers), attempt)
        return resp

    async def send(self, request: Request) -> Response:
        """Send a plain request with retries and return the whole answer."""
        attempt = 0
        while True:
            try:
                resp = await self.open(request, attempt + 1)
                body = await self.read_body(resp)
                if self.log_bodies:
                    log.debug("%s %s response body: %s", request.method, request.path, _clip(body))
                return Response(resp.status, resp.headers, body, request_id_of(resp.headers))
            except (APIStatusError, APIConnectionError) as exc:
                await self._sleep(self._retry_delay(request, exc, attempt))
                attempt += 1

    async def retrying(self, request: Request, attempt: Callable[[int], Awaitable[T]]) -> T:
        """Run ``attempt(number)`` (numbered from 1) until it succeeds, retrying what may be retried."""
        n = 0
        while True:
            try:
                return await attempt(n + 1)
            except (APIStatusError, APIConnectionError) as exc:
                await self._sleep(self._retry_delay(request, exc, n))
                n += 1

    def _retry_delay(self, request: Request, exc: APIStatusError | APIConnectionError, attempt: int) -> float:
        """How long to wait before retrying after ``exc``; re-raises it when it may not be retried."""
        if attempt >= request.max_retries or not is_retryable(exc):
            raise exc
        wait = retry_after(exc.headers) if isinstance(exc, APIStatusError) else None
        delay = self.backoff.delay(attempt, wait, random.random())
        log.info(
            "retrying %s %s in %.3f s (attempt %d failed: %s)",
            request.method,
            request.path,
            delay,
            attempt + 1,
            type(exc).__name__,
        )
        return delay

    async def read_body(self, resp: aiohttp.ClientResponse) -> bytes:
        """Read a whole body within ``max_body_size`` and release the connection; errors are mapped."""
        limit = self.max_body_size
        try:
            length = resp.content_length
            if length is not None:
                if length > limit:
                    raise ResponseTooLargeError(
                        f"response body of {length} bytes exceeds the limit of {limit}"
                    )
                return await resp.read()
            parts: list[bytes] = []
            size = 0
            async for chunk in resp.content.iter_any():
                size += len(chunk)
                if size > limit:
                    raise ResponseTooLargeError(f"response body exceeds the limit of {limit} bytes")
                parts.append(chunk)
            return b"".join(parts)
        except Exception as exc:
            raise connection_error(exc) from exc
        finally:
            resp.release()

    def _log(
        self, request: Request, status: int | str, started: float, rid: str | None, attempt: int
    ) -> None:
        if log.isEnabledFor(logging.INFO):
            log.info(
                "%s %s -> %s in %.1f ms (request id %s, attempt %d)",
                request.method,
                request.path,
                status,
                (time.monotonic() - started) * 1000,
                rid or "-",
                attempt,
            )

    async def aclose(self) -> None:
        """Close the session and its connections. Idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()


def _clip(body: bytes, limit: int = 65536) -> str:
    text = body[:limit].decode("utf-8", "replace")
    return text if len(body) <= limit else f"{text}… ({len(body)} bytes)"


def is_retryable(exc: Exception) -> bool:
    """Whether an error may be retried: connection problems and 408/409/429/5xx."""
    if isinstance(exc, ResponseTooLargeError):
        return False
    if isinstance(exc, APIStatusError):
        return exc.status in RETRY_STATUSES or exc.status >= 500
    return isinstance(exc, APIConnectionError)


def connection_error(exc: BaseException) -> APIConnectionError:
    """Map an aiohttp or OS exception to the SDK's connection errors."""
    if isinstance(exc, APIConnectionError):
        return exc
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return APITimeoutError("Timed out connecting to the server.", limit="connect")
    if isinstance(exc, aiohttp.SocketTimeoutError | aiohttp.ServerTimeoutError):
        return APITimeoutError("Timed out waiting for data from the server.", limit="read")
    if isinstance(exc, TimeoutError):
        return APITimeoutError("The request took longer than its total time limit.", limit="total")
    if isinstance(exc, aiohttp.InvalidURL):
        return APIConnectionError(f"Invalid URL: {exc}")
    return APIConnectionError(f"Connection error: {type(exc).__name__}: {exc}")
