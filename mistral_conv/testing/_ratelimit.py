"""The local server's rate-limit mode: token buckets on requests per second and tokens per minute."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from ._http import api_error

__all__ = ["RateLimit", "RateLimiter"]

_EPSILON = 1e-9  # float slack, so a clock advanced by exactly the announced wait finds room


@dataclass(frozen=True, kw_only=True)
class RateLimit:
    """A budget the local server enforces as the API does: over it, 429 with `Retry-After`.

    Two token buckets, refilled continuously from the server's monotonic clock on each
    request (no background task):

    - `requests_per_second`: every request of every route takes one unit; the bucket
      holds `burst` units (default: one second's worth, at least 1) and starts full.
    - `tokens_per_minute`: model tokens. A run (`POST`: start, append, restart) is let in
      while the bucket has room (at least one token); once the responder answered, the
      run's `usage.total_tokens` (exactly what the client sees) is taken from the bucket,
      which may then go below zero: concurrent runs let in together can overshoot the
      budget, and later runs wait until the debt is paid back. Reads and deletes are not
      counted against it. The bucket holds one minute's worth and starts full.

    A 429 consumes no budget. Its `Retry-After` header is the time until both buckets
    have room again, in whole seconds rounded up and at least 1 (as the API sends it),
    or `retry_after` seconds when set. `retry_after_ms`: also send `retry-after-ms`
    with the exact wait in milliseconds (clients that read it, this SDK's among them,
    then wait no longer than needed). The body is the API's rate-limit error:
    `{"object": "error", "message": "Rate limit exceeded", "type": "rate_limited",
    "param": null, "code": "1300"}`.
    """

    requests_per_second: float | None = None
    burst: int | None = None
    tokens_per_minute: int | None = None
    retry_after: float | None = None
    retry_after_ms: bool = False

    def __post_init__(self) -> None:
        if self.requests_per_second is None and self.tokens_per_minute is None:
            raise ValueError("RateLimit needs requests_per_second, tokens_per_minute or both")
        if self.requests_per_second is not None and not self.requests_per_second > 0:
            raise ValueError("requests_per_second must be > 0")
        if self.burst is not None and self.burst < 1:
            raise ValueError("burst must be >= 1")
        if self.tokens_per_minute is not None and self.tokens_per_minute < 1:
            raise ValueError("tokens_per_minute must be >= 1")
        if self.retry_after is not None and not 0 <= self.retry_after < math.inf:
            raise ValueError("retry_after must be a finite number of seconds >= 0")


class _Bucket:
    __slots__ = ("capacity", "level", "rate", "stamp")

    def __init__(self, rate: float, capacity: float, stamp: float) -> None:
        self.rate, self.capacity = rate, capacity
        self.level, self.stamp = capacity, stamp

    def refill(self, at: float) -> None:
        if at > self.stamp:
            self.level = min(self.capacity, self.level + (at - self.stamp) * self.rate)
            self.stamp = at

    def wait(self) -> float:
        """Seconds until one unit is available (0 when it is now)."""
        missing = 1.0 - self.level
        return 0.0 if missing <= _EPSILON else missing / self.rate


class RateLimiter:
    """The buckets of one `RateLimit`, read against `clock` (seconds, monotonic)."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float]) -> None:
        self.limit, self.clock = limit, clock
        at = clock()
        rps = limit.requests_per_second
        burst = limit.burst if limit.burst is not None else max(1, math.ceil(rps or 1))
        self.requests = _Bucket(rps, burst, at) if rps is not None else None
        tpm = limit.tokens_per_minute
        self.tokens = _Bucket(tpm / 60, tpm, at) if tpm is not None else None

    def admit(self, *, run: bool) -> float | None:
        """Take one request from the budget, or return the seconds to wait (taking nothing)."""
        at = self.clock()
        wait = 0.0
        if self.requests is not None:
            self.requests.refill(at)
            wait = self.requests.wait()
        if run and self.tokens is not None:
            self.tokens.refill(at)
            wait = max(wait, self.tokens.wait())
        if wait > 0:
            return wait
        if self.requests is not None:
            self.requests.level -= 1
        return None

    def charge(self, tokens: int) -> None:
        """Take a run's `usage.total_tokens` from the tokens-per-minute bucket."""
        if self.tokens is not None and tokens > 0:
            self.tokens.refill(self.clock())
            self.tokens.level -= tokens

    def refusal(self, wait: float) -> web.Response:
        """The 429 for a request that must wait `wait` seconds."""
        response = api_error(429, "Rate limit exceeded", code="1300", type="rate_limited")
        fixed = self.limit.retry_after
        seconds = fixed if fixed is not None else max(1, math.ceil(wait - _EPSILON))
        response.headers["Retry-After"] = f"{seconds:g}"
        if self.limit.retry_after_ms:
            ms = fixed * 1000 if fixed is not None else wait * 1000
            response.headers["retry-after-ms"] = str(math.ceil(ms - _EPSILON))
        return response
