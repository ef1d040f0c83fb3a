"""The transport seam: send one HTTP request, get one response back.

The client builds an `HTTPRequest` (full URL, every header, the body and the
limits of this attempt), hands it to a `Transport`, and reads the
`HTTPResponse` that comes back. A transport does I/O and nothing else: no
retries, no status handling, no JSON, no event streams. Those live above the seam,
in one place, whatever transport is used.

A transport says how a failure happened by the exception it raises, because the
retry policy needs to know whether the server may have received the request:

* `ConnectError` / `ConnectTimeout`: no connection was made, so nothing
  was sent (DNS, refused, TLS, the connect limit, the wait for a pooled connection);
* `ReadError` / `ReadTimeout`: the request was (or may have been)
  written, then the connection broke or went silent.

`aiohttp` is used only by `mistral_conv._aiohttp`, the default transport.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ._errors import ResponseTooLargeError

if TYPE_CHECKING:
    from ._events import PoolStats

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "HTTPRequest",
    "HTTPResponse",
    "ReadError",
    "ReadTimeout",
    "Transport",
    "TransportError",
    "is_loopback",
    "media_type",
    "pool_stats",
    "request_id_of",
]

REQUEST_ID_HEADERS = ("x-request-id", "mistral-correlation-id", "request-id")
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


class HTTPRequest:
    """One attempt of one API call, ready to send.

    `url` is complete (query included, already percent-encoded); `headers`
    hold every header to send, authorization included. Limits, in seconds
    (`None`: none): `connect_timeout` bounds opening a connection (TCP and
    TLS); `pool_timeout` bounds waiting for a free connection of the pool plus
    opening it; `read_timeout` bounds each wait for bytes from the server (the
    answer's headers, then each chunk of its body).
    """

    __slots__ = ("body", "connect_timeout", "headers", "method", "pool_timeout", "read_timeout", "url")

    def __init__(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
        *,
        connect_timeout: float | None = None,
        pool_timeout: float | None = None,
        read_timeout: float | None = None,
    ) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.connect_timeout = connect_timeout
        self.pool_timeout = pool_timeout
        self.read_timeout = read_timeout

    def __repr__(self) -> str:
        shown = {k: ("<redacted>" if k.lower() in _SECRET_HEADERS else v) for k, v in self.headers.items()}
        size = "no body" if self.body is None else f"{len(self.body)} bytes"
        return f"HTTPRequest({self.method} {self.url}, headers={shown}, {size})"


class HTTPResponse:
    """The answer to one `HTTPRequest`, once its status line and headers are in.

    A transport subclasses it and implements `aiter_bytes` and `aclose`
    (and may override `read` with a faster path). `headers` must look names
    up case-insensitively.
    """

    __slots__ = ("headers", "status")

    def __init__(self, status: int, headers: Mapping[str, str]) -> None:
        self.status = status
        self.headers = headers

    @property
    def request_id(self) -> str | None:
        """The server's id for this request, from the first request-id header it sent."""
        return request_id_of(self.headers)

    @property
    def media_type(self) -> str:
        """The `Content-Type` without parameters, in lower case (empty when absent)."""
        return media_type(self.headers)

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk, as it arrives (decompressed). Raises ReadError / ReadTimeout."""
        raise NotImplementedError

    async def read(self, limit: int) -> bytes:
        """The whole body, at most `limit` bytes (else `ResponseTooLargeError`).

        It does not release the connection: call `aclose` after it, whatever happened.
        """
        parts: list[bytes] = []
        size = 0
        async for chunk in self.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise ResponseTooLargeError(f"response body exceeds the limit of {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    async def aclose(self) -> None:
        """Release the connection: back to the pool when the body was read to its end, else closed.

        Idempotent; must not block (it is called from cancellation and close paths).
        """
        raise NotImplementedError


@runtime_checkable
class Transport(Protocol):
    """What the client sends through: `send` one request, `aclose` when the client closes.

    `send` returns once the answer's status line and headers have arrived, whatever
    the status. It raises a `TransportError` subclass for network failures and
    lets anything else (a bug, a bad argument) propagate as itself. Cancelling `send`
    or a read must close the connection it was using.

    A transport with a pool may also have `pool_stats() -> PoolStats` (optional, not part
    of the protocol): `client.pool_stats()` returns what it says, and `None` without it.
    """

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        """Send `request` and return its response (headers read, body not yet)."""
        ...

    async def aclose(self) -> None:
        """Close every connection. Idempotent."""
        ...


def pool_stats(transport: object) -> PoolStats | None:
    """`transport.pool_stats()`, for a transport that has one (it is optional), else `None`."""
    from ._events import PoolStats  # loaded when first asked for, not with the client

    stats = getattr(transport, "pool_stats", None)
    result = stats() if stats is not None else None
    return result if isinstance(result, PoolStats) else None


class TransportError(Exception):
    """A network failure below HTTP. `sent` says whether the server may have received the request."""

    sent: bool = True


class ConnectError(TransportError):
    """No connection could be made (DNS, refused, TLS, proxy): nothing was sent."""

    sent = False


class ConnectTimeout(ConnectError):
    """Opening a connection, or waiting for a pooled one, took longer than allowed: nothing was sent."""


class ReadError(TransportError):
    """The connection broke, or the server sent something that is not HTTP, after the request went out."""


class ReadTimeout(ReadError):
    """The server went silent for longer than `read_timeout` after the request went out."""


def is_loopback(host: str | None) -> bool:
    """Whether `host` names this machine (`localhost`, 127.0.0.0/8, `::1`)."""
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """The server's request id header, if any."""
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None


def media_type(headers: Mapping[str, str]) -> str:
    """The media type of `Content-Type` (parameters dropped, lower case), or `""`."""
    value = headers.get("content-type") or ""
    return value.split(";", 1)[0].strip().lower()
