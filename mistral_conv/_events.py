"""What the request hooks receive, and the pool statistics: small frozen values with no secrets.

A hook gets one of `RequestEvent`, `ResponseEvent` or `RetryEvent`
per attempt of a call or stream (see `docs/observability.md`). None of them holds a
header, a body or the API key: the URL, the operation, the attempt number, and what the
server answered. `PoolStats` is what `client.pool_stats()` returns.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

__all__ = ["OnRequest", "OnResponse", "OnRetry", "PoolStats", "RequestEvent", "ResponseEvent", "RetryEvent"]


class _AttemptEvent(msgspec.Struct, frozen=True, kw_only=True):
    """What every hook event says about the attempt it reports."""

    operation: str
    """The client method: `"start"`, `"append"`, `"history"`, ... (streams: the same names)."""
    method: str
    """The HTTP method."""
    url: str
    """The full URL (query included), without any `user:password@` of the base URL. It never
    holds the key, which travels in a header."""
    attempt: int
    """1 for the first attempt, 2 for the first retry, and so on."""
    stream: bool
    """Whether the answer is an event stream."""
    conversation_id: str | None
    """The conversation addressed, when the URL names one."""


class RequestEvent(_AttemptEvent, frozen=True, kw_only=True):
    """An attempt is about to be sent (`on_request`)."""


class ResponseEvent(_AttemptEvent, frozen=True, kw_only=True):
    """An attempt got its answer's status and headers, or ended without one (`on_response`)."""

    status: int | None
    """The HTTP status; `None` when the attempt failed before an answer (see `error_type`)."""
    request_id: str | None
    """The server's request id, from the answer's headers."""
    elapsed: float
    """Seconds from sending to the headers (or to the failure)."""
    error_type: str | None
    """Without an answer: the transport error's class name (e.g. `"ConnectError"`), or
    `"CancelledError"` when a time limit or a cancellation cut the attempt short."""


class RetryEvent(_AttemptEvent, frozen=True, kw_only=True):
    """Attempt `attempt` failed and will be sent again after `delay` seconds (`on_retry`)."""

    delay: float
    """Seconds of back-off before the next attempt (the server's `Retry-After` when it sent one)."""
    error_type: str
    """The failure's class name, e.g. `"RateLimitError"` or `"APIConnectionError"`."""
    outcome: str
    """Why a retry is safe: `"not sent"`, `"refused by the server"` or `"outcome unknown"`."""
    status: int | None
    """The failed attempt's HTTP status, if it got one."""
    request_id: str | None
    """The failed attempt's request id, if it got an answer."""


class PoolStats(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of a client's connection pool (`client.pool_stats()`)."""

    open: int
    """Connections open: in use plus idle ones kept for reuse."""
    in_use: int
    """Connections taken by a request (or being opened for one) and not yet given back."""
    waiting: int
    """Requests waiting for a connection because the pool is at `limit`."""
    limit: int | None
    """The most connections open at once (`max_connections`); `None`: no limit."""


OnRequest = Callable[[RequestEvent], None]
"""The type of an `on_request` hook."""
OnResponse = Callable[[ResponseEvent], None]
"""The type of an `on_response` hook."""
OnRetry = Callable[[RetryEvent], None]
"""The type of an `on_retry` hook."""
