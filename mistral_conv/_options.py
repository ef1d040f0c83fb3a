"""Client options: time limits and retry backoff."""

from __future__ import annotations

import msgspec

from ._errors import InvalidRequestError

__all__ = ["Backoff", "Timeout"]


class Timeout(msgspec.Struct, frozen=True, kw_only=True):
    """Time limits in seconds; ``None`` means no limit.

    * ``connect``: opening the TCP (and TLS) connection.
    * ``read``: the longest wait for the next bytes from the server. For a
      plain call that includes the whole run before the answer starts; for a
      stream it is the idle limit between chunks.
    * ``total``: a whole plain call attempt (not streams); 300 s by default, the
      official SDK's per-operation limit.
    * ``first_event``: a stream, from sending until its first event.
    * ``stream_total``: a whole stream. Off by default, so that no default
      cuts a long healthy stream.

    A plain number ``t`` given where a ``Timeout`` is expected sets
    ``connect``, ``read``, ``total`` and ``first_event`` to ``t``.
    """

    connect: float | None = 10.0
    read: float | None = 300.0
    total: float | None = 300.0
    first_event: float | None = 300.0
    stream_total: float | None = None

    @classmethod
    def of(cls, value: float | Timeout | None, default: Timeout | None = None) -> Timeout:
        """``value`` as a ``Timeout``: itself, a uniform limit, or ``default`` when ``None``."""
        if isinstance(value, Timeout):
            return value
        if value is None:
            return default if default is not None else cls()
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise InvalidRequestError("timeout", f"must be a positive number or a Timeout, got {value!r}")
        t = float(value)
        return cls(connect=t, read=t, total=t, first_event=t, stream_total=None)

    def replace(self, **changes: float | None) -> Timeout:
        """A copy with some limits changed."""
        return msgspec.structs.replace(self, **changes)


class Backoff(msgspec.Struct, frozen=True):
    """Delays between retries: ``initial * 2**n`` capped at ``maximum``, less up to 25 % jitter.

    A server's ``Retry-After`` (or ``retry-after-ms``) replaces the computed
    delay, capped at ``retry_after_cap``.
    """

    initial: float = 0.5
    maximum: float = 8.0
    retry_after_cap: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, jitter: float) -> float:
        """The delay before retry number ``attempt`` (0-based); ``jitter`` is in [0, 1)."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.retry_after_cap)
        return float(min(self.initial * 2.0**attempt, self.maximum) * (1 - 0.25 * jitter))
