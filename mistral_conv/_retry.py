"""The one retry policy, used by plain calls and streams alike.

Every failed attempt is classified by what the server may have done with it:

=================  ===============================================  ====================================
class              failures                                         retried for
=================  ===============================================  ====================================
not sent           no connection: DNS, refused, TLS, connect        every method
                   limit, the wait for a pooled connection
refused            the answer says it was not processed: 408,       every method, after `Retry-After`
                   409, 429, 503                                    when the server sent one
outcome unknown    the request went out, then the connection        GET and DELETE; `start`, `append`
                   broke, a time limit passed, or the answer        and `restart` only with
                   was another 5xx (500, 502, 504, …)                `retry_unknown_outcome=True`
final              every other status, a body too large or          never
                   unreadable, an error event in a stream
=================  ===============================================  ====================================

`start`, `append` and `restart` store and bill a turn, and the API has no
idempotency key: an unknown outcome there raises `RequestOutcomeUnknownError`
instead of sending the turn again. Only `Failure` is caught here; the attempt
functions turn transport, OS and timeout errors into it, and let anything else (a bug,
a bad argument) propagate as itself.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from ._errors import APIError, MistralError, RequestOutcomeUnknownError
from ._options import Backoff

if TYPE_CHECKING:
    from ._telemetry import CallTrace
    from ._transport import HTTPResponse

__all__ = ["Failure", "Outcome", "RetryPolicy", "outcome_unknown", "status_outcome"]

log = logging.getLogger("mistral_conv")
T = TypeVar("T")

REFUSED_STATUSES = frozenset({408, 409, 429, 503})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})


class Outcome(enum.Enum):
    """What the server may have done with a failed attempt."""

    NOT_SENT = "not sent"
    REFUSED = "refused by the server"
    UNKNOWN = "outcome unknown"
    FINAL = "final"


def status_outcome(status: int) -> Outcome:
    """The class of an error status."""
    if status in REFUSED_STATUSES:
        return Outcome.REFUSED
    if status >= 500:
        return Outcome.UNKNOWN
    return Outcome.FINAL


class Failure(Exception):
    """One failed attempt: the error to raise if it is not retried, its class, the server's wait."""

    def __init__(self, error: MistralError, outcome: Outcome, retry_after: float | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.outcome = outcome
        self.retry_after = retry_after


class CallInfo:
    """What the policy needs to know about one call."""

    __slots__ = ("conversation_id", "max_retries", "method", "operation", "path", "retry_unknown", "trace")

    def __init__(
        self,
        method: str,
        path: str,
        operation: str,
        max_retries: int,
        retry_unknown: bool,
        conversation_id: str | None,
    ) -> None:
        self.method = method
        self.path = path
        self.operation = operation
        self.max_retries = max_retries
        self.retry_unknown = retry_unknown
        self.conversation_id = conversation_id
        self.trace: CallTrace | None = None  # its span and hooks, when the client reports anywhere

    @property
    def stores_a_turn(self) -> bool:
        """Whether the call runs and stores a turn (start, append, restart)."""
        return self.method not in IDEMPOTENT_METHODS


def outcome_unknown(
    call: CallInfo,
    reason: APIError,
    attempts: int,
    *,
    partial: object = None,
    conversation_id: str | None = None,
) -> RequestOutcomeUnknownError:
    """The error for a turn that was sent and may have been stored; `reason` becomes its cause."""
    cid = conversation_id or call.conversation_id
    where = f" in conversation {cid}" if cid else ""
    error = RequestOutcomeUnknownError(
        f"{call.operation}: the request was sent, then the attempt failed "
        f"({reason.message.rstrip('.')}). The turn may have run and been stored{where}, "
        "so it was not sent again; "
        "look at the conversation's history (or pass retry_unknown_outcome=True to resend).",
        operation=call.operation,
        reason=reason,
        request_id=reason.request_id,
        partial=partial,  # type: ignore[arg-type]
        conversation_id=cid,
        attempts=attempts,
    )
    error.__cause__ = reason
    return error


class RetryPolicy:
    """Runs attempts of a call until one succeeds or a failure may not be retried.

    `sleep` is how it waits between attempts (replaceable in tests); `random`
    draws the jitter.
    """

    __slots__ = ("backoff", "random", "sleep")

    def __init__(
        self,
        backoff: Backoff,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        random: Callable[[], float] = random.random,
    ) -> None:
        self.backoff = backoff
        self.sleep = sleep
        self.random = random

    async def run(self, call: CallInfo, attempt: Callable[[int], Awaitable[T]]) -> T:
        """`await attempt(n)` for n = 1, 2, … until it returns; raise the final error otherwise."""
        n = 0
        while True:
            n += 1
            try:
                return await attempt(n)
            except Failure as failure:
                caught = failure
            error = self.decide(call, caught, n)
            if error is not None:
                raise error  # outside the except block: the Failure wrapper is not chained
            delay = self._delay(call, caught, n)
            if call.trace is not None:
                call.trace.retrying(n, caught, delay)
            await self.sleep(delay)

    def decide(self, call: CallInfo, failure: Failure, attempts: int) -> MistralError | None:
        """`None` to retry `failure`, else the error to raise (with `attempts` set)."""
        error = failure.error
        if isinstance(error, APIError):
            error.attempts = attempts
        outcome = failure.outcome
        if outcome is Outcome.FINAL or not isinstance(error, APIError):
            return error
        unknown = outcome is Outcome.UNKNOWN and call.stores_a_turn
        if unknown and not call.retry_unknown:
            return outcome_unknown(call, error, attempts)
        if attempts > call.max_retries:
            return outcome_unknown(call, error, attempts) if unknown else error
        return None

    def _delay(self, call: CallInfo, failure: Failure, attempts: int) -> float:
        delay = self.backoff.delay(attempts - 1, failure.retry_after, self.random())
        log.info(
            "retrying %s %s in %.3f s (attempt %d failed: %s, %s)",
            call.method,
            call.path,
            delay,
            attempts,
            type(failure.error).__name__,
            failure.outcome.value,
        )
        return delay


def log_attempt(
    method: str, path: str, status: int | str, started: float, response: HTTPResponse | None, attempt: int
) -> None:
    """One INFO line per attempt on the `mistral_conv` logger."""
    if log.isEnabledFor(logging.INFO):
        log.info(
            "%s %s -> %s in %.1f ms (request id %s, attempt %d)",
            method,
            path,
            status,
            (time.monotonic() - started) * 1000,
            (response.request_id if response is not None else None) or "-",
            attempt,
        )
