"""Client options: time limits, retry backoff, and the check of counts (retries, pages)."""

from __future__ import annotations

import msgspec

from ._errors import InvalidRequestError

__all__ = ["Backoff", "Timeout", "require_non_negative"]


class Timeout(msgspec.Struct, frozen=True, kw_only=True):
    """Time limits in seconds; `None` means no limit. Each covers one phase of a call, whole:

    - `connect`: opening a connection (TCP, TLS), for a call or a stream.
    - `read`: each wait for bytes: a plain call's headers (the whole run), then each body
      chunk; a stream's headers, then each wait for the next chunk (time the reader spends
      between reads does not count).
    - `total`: one attempt of a plain call, whole: waiting for a pooled connection,
      connecting, the run, the body (streams do not use it).
    - `first_event`: one attempt of a stream, from its start (pool, connect, headers) until
      its first event (plain calls do not use it).
    - `stream_total`: a whole stream, from its first attempt.

    Defaults: `connect` 10 s; `read`, `total` and `first_event` 300 s (the
    official SDK's per-operation limit); `stream_total` off, so that no default cuts
    a long healthy stream. A plain number `t` given where a `Timeout` is expected
    sets `connect`, `read`, `total` and `first_event` to `t`. Every limit is
    a positive finite number or `None` (`InvalidRequestError` otherwise).
    """

    connect: float | None = 10.0
    read: float | None = 300.0
    total: float | None = 300.0
    first_event: float | None = 300.0
    stream_total: float | None = None

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            _check_limit(f"timeout.{name}", getattr(self, name))

    @classmethod
    def of(cls, value: float | Timeout | None, default: Timeout | None = None) -> Timeout:
        """`value` as a `Timeout`: itself, a uniform limit, or `default` when `None`."""
        if isinstance(value, Timeout):
            return value
        if value is None:
            return default if default is not None else cls()
        _check_limit("timeout", value, allow_none=False)
        t = float(value)
        return cls(connect=t, read=t, total=t, first_event=t, stream_total=None)

    def replace(self, **changes: float | None) -> Timeout:
        """A copy with some limits changed."""
        return msgspec.structs.replace(self, **changes)


def require_non_negative(name: str, value: int | None) -> None:
    """Raise unless `value` is `None` or a non-negative integer."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequestError(name, f"must be a non-negative integer, got {value!r}")


def _check_limit(name: str, value: object, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value < float("inf")  # also refuses NaN
    ):
        raise InvalidRequestError(name, f"must be a positive finite number of seconds, got {value!r}")


class Backoff(msgspec.Struct, frozen=True):
    """Delays between retries: exponential with full jitter, and `Retry-After` as a floor.

    Retry `n` (0-based) waits a random time in `[0, min(maximum, initial * 2**n))`
    ("full jitter": clients that failed together do not retry together). When the
    server sent `Retry-After` (or `retry-after-ms`), that wait, capped at
    `retry_after_cap`, is a floor, and the jittered delay is added above it.
    """

    initial: float = 0.5
    maximum: float = 8.0
    retry_after_cap: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, jitter: float) -> float:
        """The delay before retry number `attempt` (0-based); `jitter` is uniform in [0, 1)."""
        span = min(self.maximum, self.initial * 2.0 ** min(max(attempt, 0), 64))
        floor = min(retry_after, self.retry_after_cap) if retry_after is not None and retry_after > 0 else 0.0
        return float(floor + span * jitter)
