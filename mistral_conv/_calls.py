"""One call's life above the transport seam: its attempts, its limits, and how a close ends it.

`Runtime` is what a client owns: the transport, the retry policy, and the set of
calls and streams in flight, which `aclose()` ends with `ClientClosedError`.
A call or stream waiting on I/O is woken by cancelling the task that waits (the
only way that reaches any transport's pending read); `Guard` keeps that
cancellation apart from the caller's own, so neither is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ._errors import (
    APIConnectionError,
    APITimeoutError,
    ClientClosedError,
    MistralError,
    ResponseTooLargeError,
    retry_after,
    status_error,
)
from ._options import Timeout
from ._retry import CallInfo, Failure, Outcome, RetryPolicy, log_attempt, status_outcome
from ._transport import (
    ConnectTimeout,
    HTTPRequest,
    HTTPResponse,
    ReadTimeout,
    Transport,
    TransportError,
)

if TYPE_CHECKING:
    from ._telemetry import Observer

__all__ = [
    "Call",
    "Guard",
    "RawResponse",
    "Runtime",
    "os_failure",
    "send_attempt",
    "transport_failure",
    "wait_briefly",
    "within",
]

T = TypeVar("T")

# A phase limit given to the transport for its connect and pool waits is this much shorter
# than the phase itself, so a wait that runs out is reported by the transport as "not sent"
# before the phase's own timer fires (which could not tell).
_MARGIN = 0.005
_ERROR_BODY_LIMIT = 1024 * 1024
_NEVER = float("inf")


class Call(CallInfo):
    """One API call, ready to send as many attempts as the policy allows."""

    __slots__ = ("body", "headers", "stream", "timeout", "url")

    def __init__(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        max_retries: int,
        retry_unknown: bool,
        conversation_id: str | None,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        timeout: Timeout,
        stream: bool,
    ) -> None:
        super().__init__(method, path, operation, max_retries, retry_unknown, conversation_id)
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.stream = stream

    def http_request(self, budget: float | None) -> HTTPRequest:
        """The request of one attempt whose phase may last `budget` seconds."""
        t = self.timeout
        connect, pool, read = t.connect, None, t.read
        if budget is not None:
            pool = max(budget - _MARGIN, _MARGIN)
            if connect is None or connect > pool:
                connect = pool
        if not self.stream and read is not None and t.total is not None and read >= t.total:
            # A wait between reads can never outlast the whole call: leave the per-read
            # timer (armed and cancelled on every socket read) off the plain path.
            read = None
        return HTTPRequest(
            self.method,
            self.url,
            self.headers,
            self.body,
            connect_timeout=connect,
            pool_timeout=pool,
            read_timeout=read,
        )


class Guard:
    """Wakes the task waiting on a call's I/O when the call must end (close, abort).

    `enter()` names the waiting task and notes how many cancellations it already had
    (a call made while the task is itself being cancelled); `leave()` forgets it.
    """

    __slots__ = ("base", "left", "requested", "task")

    def __init__(self) -> None:
        self.task: asyncio.Task[object] | None = None
        self.requested = False
        self.base = 0
        self.left: asyncio.Event | None = None  # set once an interrupted task has left

    def enter(self) -> None:
        task = asyncio.current_task()
        self.task = task
        self.base = task.cancelling() if task is not None else 0

    def leave(self) -> None:
        self.task = None
        if self.left is not None:
            self.left.set()
            self.left = None

    def interrupt(self) -> asyncio.Event | None:
        """Cancel the waiting task, if one waits (and is not the current one).

        Returns an event set once that task has left the guarded region (its connection is
        then released), for the closer to wait on.
        """
        task = self.task
        if task is None or task is asyncio.current_task():
            return None
        if not self.requested:
            self.requested = True
            self.left = asyncio.Event()
            task.cancel()
        return self.left

    def caught(self) -> bool:
        """In `except CancelledError`: whether it was only this guard's cancellation (then consumed)."""
        if not self.requested or self.task is None:
            return False
        self.requested = False
        return self.task.uncancel() <= self.base


class Abortable(Protocol):
    """A call or stream in flight, which the client's close must end."""

    async def _abort(self, error: ClientClosedError) -> asyncio.Event | None:
        """End it with `error`; returns an event to wait on while its task unwinds, if one must."""
        ...


class Runtime:
    """What a client owns: its transport, its retry policy, and what is in flight."""

    __slots__ = (
        "closed",
        "deadlines",
        "inflight",
        "max_body_size",
        "max_event_size",
        "max_stream_size",
        "obs",
        "retry",
        "transport",
    )

    def __init__(
        self,
        transport: Transport,
        retry: RetryPolicy,
        *,
        max_body_size: int,
        max_event_size: int,
        max_stream_size: int,
    ) -> None:
        self.transport = transport
        self.retry = retry
        self.max_body_size = max_body_size
        self.max_event_size = max_event_size
        self.max_stream_size = max_stream_size
        self.inflight: set[Abortable] = set()
        self.deadlines = Deadlines()
        self.closed = False
        self.obs: Observer | None = None  # spans and hooks; None: nothing to report to

    def check_open(self) -> None:
        """Raise `ClientClosedError` once the client was closed."""
        if self.closed:
            raise ClientClosedError("the client is closed; create a new one")

    def after_fork(self) -> None:
        """In a child process: what was in flight belongs to the parent; the transport starts anew."""
        self.inflight.clear()
        self.deadlines.after_fork()
        after_fork = getattr(self.transport, "after_fork", None)
        if after_fork is not None:
            after_fork()

    async def aclose(self) -> None:
        """End everything in flight with `ClientClosedError`, then close the transport."""
        self.closed = True
        waits: list[Coroutine[Any, Any, object]] = []
        for item in list(self.inflight):
            left = await item._abort(ClientClosedError("the client was closed while this call was in flight"))
            if left is not None:
                waits.append(left.wait())
        await wait_briefly(waits)
        self.deadlines.close()
        await self.transport.aclose()


async def wait_briefly(waits: Sequence[Coroutine[Any, Any, object]]) -> None:
    """Wait for interrupted tasks to unwind (one turn of the loop each, normally); at most a second."""
    if waits:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await asyncio.gather(*waits)


class RawResponse:
    """A whole plain answer: status, headers, body and the request id."""

    __slots__ = ("body", "headers", "request_id", "status")

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes, request_id: str | None) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.request_id = request_id


class PlainCall:
    """A plain (non-stream) call in flight: attempts under the retry policy, ended by close."""

    __slots__ = ("_call", "_guard", "_reason", "_rt")

    def __init__(self, rt: Runtime, call: Call) -> None:
        self._rt = rt
        self._call = call
        self._guard = Guard()
        self._reason: ClientClosedError | None = None

    async def _abort(self, error: ClientClosedError) -> asyncio.Event | None:
        self._reason = error
        return self._guard.interrupt()

    async def run(self) -> RawResponse:
        """Run the call to its answer; raise its final error, or `ClientClosedError` on close."""
        rt = self._rt
        rt.check_open()
        guard = self._guard
        guard.enter()
        rt.inflight.add(self)
        try:
            return await rt.retry.run(self._call, self._attempt)
        except asyncio.CancelledError:
            if not guard.caught() or self._reason is None:
                raise
            reason = self._reason
        finally:
            rt.inflight.discard(self)
            guard.leave()
        raise ClientClosedError(str(reason))

    def _attempt(self, number: int) -> Awaitable[RawResponse]:
        total = self._call.timeout.total
        return within(
            self._rt.deadlines,
            self._guard.task,
            total,
            "total",
            lambda: f"The call took longer than its total limit of {total:g} s.",
            self._once,
            number,
        )

    async def _once(self, number: int, budget: float | None) -> RawResponse:
        rt = self._rt
        resp = await send_attempt(rt.transport, self._call, number, budget)
        failure: Failure
        try:
            body = await resp.read(rt.max_body_size)
        except TransportError as exc:
            failure = transport_failure(exc, resp.request_id)
        except OSError as exc:  # a transport that lets OS errors through
            failure = transport_failure(os_failure(exc), resp.request_id)
        except ResponseTooLargeError as exc:
            exc.request_id = resp.request_id
            failure = Failure(exc, Outcome.FINAL)
        else:
            return RawResponse(resp.status, resp.headers, body, resp.request_id)
        finally:
            await resp.aclose()
        raise failure


class _Scope:
    """One attempt's time limit in a `Deadlines`: its deadline, its task, whether it ran out."""

    __slots__ = ("base", "expired", "task", "when")

    def __init__(self, task: asyncio.Task[Any], when: float) -> None:
        self.task = task
        self.base = task.cancelling()
        self.when = when
        self.expired = False


class Deadlines:
    """The attempts' time limits of one client, on one timer of the loop, armed lazily.

    `asyncio.timeout` arms a timer for every attempt and cancels it when the attempt ends
    (within milliseconds, for a limit of minutes): a heap push and a cancelled handle left in
    the loop's heap, every call. Here an attempt's limit is an entry in a set; the one timer is
    armed again only for a deadline earlier than the one it waits for, and when it fires it
    ends the attempts that ran out (cancelling their tasks, as `asyncio.timeout` does) and
    waits for the earliest deadline left.
    """

    __slots__ = ("_handle", "_loop", "_scopes", "_when")

    def __init__(self) -> None:
        self._scopes: set[_Scope] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._when = _NEVER

    def enter(self, limit: float, task: asyncio.Task[Any] | None) -> _Scope | None:
        """Start an attempt's limit of `limit` seconds; `None` when this loop must use its own timer."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if self._scopes:  # in use on another loop (a client shared across loops)
                return None
            self._reset()
            self._loop = loop
        if task is None:
            task = asyncio.current_task()
            if task is None:
                raise RuntimeError("a time limit needs a task")
        scope = _Scope(task, loop.time() + limit)
        self._scopes.add(scope)
        if scope.when < self._when:
            if self._handle is not None:
                self._handle.cancel()
            self._when = scope.when
            self._handle = loop.call_at(scope.when, self._fire)
        return scope

    def leave(self, scope: _Scope) -> bool:
        """End an attempt's limit; whether a cancellation the task got was only this limit's."""
        self._scopes.discard(scope)
        return scope.expired and scope.task.uncancel() <= scope.base

    def _fire(self) -> None:
        assert self._loop is not None
        self._handle = None
        self._when = _NEVER
        now = self._loop.time()
        due = [scope for scope in self._scopes if scope.when <= now]
        for scope in due:
            self._scopes.discard(scope)
            scope.expired = True
            scope.task.cancel()
        if self._scopes:
            self._when = min(scope.when for scope in self._scopes)
            self._handle = self._loop.call_at(self._when, self._fire)

    def _reset(self) -> None:
        self.close()
        self._scopes.clear()
        self._loop = None

    def close(self) -> None:
        """Cancel the timer (the client is closed: nothing it started is left to time)."""
        handle, self._handle = self._handle, None
        self._when = _NEVER
        if handle is not None and self._loop is not None and not self._loop.is_closed():
            handle.cancel()

    def after_fork(self) -> None:
        """In a child process: the parent's attempts and loop are not this process's."""
        self._handle = None
        self._reset()


async def within(
    deadlines: Deadlines,
    task: asyncio.Task[Any] | None,
    limit: float | None,
    name: str,
    message: Callable[[], str],
    run: Callable[[int, float | None], Awaitable[T]],
    number: int,
) -> T:
    """`await run(number, limit)` within `limit` seconds; past it, an outcome-unknown timeout.

    `task` is the task that awaits (`None`: the current one).
    """
    if limit is None:
        return await run(number, None)
    scope = deadlines.enter(limit, task)
    if scope is None:
        return await _within_own_timer(limit, name, message, run, number)
    try:
        result = await run(number, limit)
    except asyncio.CancelledError:
        if not deadlines.leave(scope):  # the caller's own cancellation, or a close's
            raise
    except BaseException:
        deadlines.leave(scope)
        raise
    else:
        deadlines.leave(scope)
        return result
    raise Failure(APITimeoutError(message(), limit=name), Outcome.UNKNOWN)


async def _within_own_timer(
    limit: float,
    name: str,
    message: Callable[[], str],
    run: Callable[[int, float | None], Awaitable[T]],
    number: int,
) -> T:
    try:
        async with asyncio.timeout(limit) as scope:
            return await run(number, limit)
    except TimeoutError:
        if not scope.expired():
            raise
    raise Failure(APITimeoutError(message(), limit=name), Outcome.UNKNOWN)


async def send_attempt(transport: Transport, call: Call, number: int, budget: float | None) -> HTTPResponse:
    """Send attempt `number`; return a success response (headers in), else raise a `Failure`."""
    started = time.monotonic()
    if call.trace is not None:
        transport = call.trace.transport(transport, number)
    failure: Failure
    try:
        resp = await transport.send(call.http_request(budget))
    except TransportError as exc:
        failure = transport_failure(exc, None)
    except OSError as exc:  # a transport that lets OS errors through: they came after sending
        failure = transport_failure(os_failure(exc), None)
    else:
        if resp.status < 300:
            log_attempt(call.method, call.path, resp.status, started, resp, number)
            return resp
        failure = await status_failure(resp, "Authorization" in call.headers)
        log_attempt(call.method, call.path, resp.status, started, resp, number)
        raise failure
    log_attempt(call.method, call.path, f"failed ({type(failure.error).__name__})", started, None, number)
    raise failure


def os_failure(exc: OSError) -> TransportError:
    """An OS error let through by a transport, as the seam's error (the request may have gone out)."""
    return TransportError(f"{type(exc).__name__}: {exc}")


def transport_failure(exc: TransportError, request_id: str | None) -> Failure:
    """A transport error as the SDK's error, classified by whether anything was sent.

    The transport error stays as the cause, without its traceback and context: a transport's
    frames may hold the request's headers, and so the key, in their locals.
    """
    exc.__traceback__ = None
    exc.__context__ = None
    exc.__suppress_context__ = True
    error: APIConnectionError
    if isinstance(exc, ConnectTimeout):
        error = APITimeoutError(f"Timed out connecting to the server ({exc}).", limit="connect")
    elif isinstance(exc, ReadTimeout):
        error = APITimeoutError(f"Timed out waiting for data from the server ({exc}).", limit="read")
    else:
        error = APIConnectionError(f"Connection error: {exc}.")
    error.request_id = request_id
    error.__cause__ = exc
    return Failure(error, Outcome.UNKNOWN if exc.sent else Outcome.NOT_SENT)


async def status_failure(resp: HTTPResponse, key_sent: bool = True) -> Failure:
    """Read an error answer's body (bounded) and classify its status."""
    try:
        body = await resp.read(_ERROR_BODY_LIMIT)
    except (TransportError, ResponseTooLargeError, OSError):
        body = b""
    finally:
        await resp.aclose()
    headers = {k.lower(): v for k, v in resp.headers.items()}
    note = None
    if resp.status == 401:
        note = "an API key was sent and refused" if key_sent else "no API key was sent"
    error: MistralError = status_error(
        resp.status, body, request_id=resp.request_id, headers=headers, note=note
    )
    outcome = status_outcome(resp.status)
    return Failure(error, outcome, retry_after(headers) if outcome is Outcome.REFUSED else None)
