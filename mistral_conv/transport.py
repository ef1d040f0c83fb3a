"""The transport seam, for callers who send through something other than the default.

A transport sends one `HTTPRequest` and returns an `HTTPResponse`; the
client does everything else (retries, status errors, limits, JSON, event streams).
Pass one with `AsyncConversationsClient(transport=...)`. A transport raises
`ConnectError` or `ConnectTimeout` when nothing was sent, and
`ReadError` or `ReadTimeout` when the request went out and the
connection then failed: the retry policy depends on that difference. A transport
with a connection pool may also offer `pool_stats() -> PoolStats`, which
`client.pool_stats()` returns.
"""

from ._aiohttp import AiohttpTransport
from ._events import PoolStats
from ._transport import (
    ConnectError,
    ConnectTimeout,
    HTTPRequest,
    HTTPResponse,
    ReadError,
    ReadTimeout,
    Transport,
    TransportError,
)

__all__ = [
    "AiohttpTransport",
    "ConnectError",
    "ConnectTimeout",
    "HTTPRequest",
    "HTTPResponse",
    "PoolStats",
    "ReadError",
    "ReadTimeout",
    "Transport",
    "TransportError",
]
