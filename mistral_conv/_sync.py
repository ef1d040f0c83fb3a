"""run_sync and the blocking ConversationsClient, over one long-lived event loop thread.

Every blocking call runs on the same background loop (anyio's blocking portal), so
an aiohttp session keeps a single loop for its whole life: a client can be used
from many `asyncio.run()` calls, many threads, and from code that is itself
inside a running loop (a notebook cell, an async handler calling sync code),
where the call blocks that loop until it returns. At interpreter exit, open
blocking clients are closed and the loop is stopped before threads are joined.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import os
import threading
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, suppress
from typing import TYPE_CHECKING, Generic, Literal, ParamSpec, Self, TypeVar

from ._closing import Closing
from ._errors import ClientClosedError

if TYPE_CHECKING:  # annotations only: making a client loads no model, stream or event class
    from anyio.from_thread import BlockingPortal

    from ._api import AsyncConversationsClient
    from ._client import AsyncClientCore
    from ._events import PoolStats
    from ._info import ResponseInfo
    from ._runs import ConversationHandle, RunEvent, RunResult, RunState, RunStream
    from ._streaming import ConversationStream
    from .models import Conversation, ConversationEvent, ConversationHistory, ConversationResponse, Entry
    from .types import Inputs

__all__ = ["SyncClientCore", "SyncConversationHandle", "SyncConversationStream", "SyncRunStream", "run_sync"]

P = ParamSpec("P")
T = TypeVar("T")

_lock = threading.Lock()
_portal: BlockingPortal | None = None
_portal_cm: AbstractContextManager[BlockingPortal] | None = None
_clients: weakref.WeakSet[SyncClientCore] = weakref.WeakSet()
_stopped = False  # set at interpreter exit, once the loop thread has been stopped
_inherited: list[object] = []  # a forked child's copies of the parent's portal, never touched
_closing: set[asyncio.Task[None]] = set()  # closes of dropped clients run on the loop thread
_CLEANUP_WAIT = 5.0
_LOOP_THREAD = "mistral-conv-loop"  # the name of the SDK's loop thread


def _get_portal() -> BlockingPortal:
    global _portal, _portal_cm
    with _lock:
        if _portal is None:
            if _stopped:
                raise ClientClosedError("the SDK's loop thread has stopped: the interpreter is exiting")
            from anyio.from_thread import start_blocking_portal  # first blocking call only

            cm = start_blocking_portal(name=_LOOP_THREAD)
            _portal = cm.__enter__()
            _portal_cm = cm
            # Runs before the interpreter joins threads, unlike atexit.
            threading._register_atexit(_shutdown)  # type: ignore[attr-defined]
        return _portal


def _after_fork() -> None:
    """In a forked child: the parent's loop thread does not exist here. Start afresh on demand."""
    global _lock, _portal, _portal_cm, _stopped
    _lock = threading.Lock()  # another thread of the parent may have held it
    # The parent's portal stays referenced: collecting its context manager here would try to
    # stop a loop thread that does not exist in this process, and wait for it forever.
    _inherited.append((_portal, _portal_cm))
    _portal = _portal_cm = None
    _stopped = False
    for client in list(_clients):
        client._async._rt.after_fork()


os.register_at_fork(after_in_child=_after_fork)


def _close_dropped(client: AsyncClientCore) -> None:
    """A `ConversationsClient` was garbage-collected unclosed: close its client on its own loop."""
    portal = _portal
    if portal is None or _stopped:
        return
    with suppress(Exception):
        try:
            portal.start_task_soon(client.aclose)
        except RuntimeError:  # collected on the loop thread itself: the loop is running here
            task = asyncio.get_running_loop().create_task(client.aclose())
            _closing.add(task)
            task.add_done_callback(_closing.discard)


def _shutdown() -> None:
    """At exit: close every open blocking client, then stop the loop thread.

    It runs before the interpreter joins its threads, so that a daemon thread blocked in a
    call is released. While a non-daemon thread still runs, the closing waits for plain
    `atexit` (after those threads are joined), so their calls go on working.
    """
    main = threading.main_thread()
    if any(t.is_alive() and not t.daemon and t is not main for t in threading.enumerate()):
        atexit.register(_shutdown_now)
        return
    _shutdown_now()


def _shutdown_now() -> None:
    global _portal, _portal_cm, _stopped
    with _lock:
        portal, cm = _portal, _portal_cm
        _portal = _portal_cm = None
        _stopped = True
    if portal is None or cm is None:
        return
    for client in list(_clients):
        with suppress(Exception):
            portal.call(client._async.aclose)
    # Whatever still runs on the loop (a run_sync call of the caller's own) is cancelled
    # rather than waited for: a daemon thread blocked on it must not hold the exit.
    with suppress(Exception):
        portal.call(portal.stop, True)
    with suppress(Exception):
        cm.__exit__(None, None, None)


async def _guarded(
    done: threading.Event, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
) -> T:
    try:
        return await fn(*args, **kwargs)
    finally:
        done.set()


def run_sync(fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run the async callable `fn(*args, **kwargs)` to completion and return its result.

    It runs on the SDK's one long-lived loop thread, from any thread, including
    one that is running an event loop (that loop is blocked until the call
    returns). A `KeyboardInterrupt` (or any exception raised in the waiting
    thread) cancels the call and waits briefly for its cleanup before propagating.

    Args:
        fn: The coroutine function to run.
        *args: Its positional arguments.
        **kwargs: Its keyword arguments.

    Returns:
        What `fn` returned.

    Raises:
        RuntimeError: called from the SDK's own loop thread.
        ClientClosedError: the SDK's loop thread has stopped (the interpreter is exiting).
    """
    portal = _get_portal()
    done = threading.Event()
    future = portal.start_task_soon(functools.partial(_guarded, done, fn, *args, **kwargs))
    try:
        return future.result()
    except BaseException:
        if future.cancel():
            done.wait(_CLEANUP_WAIT)
        raise


class SyncConversationStream(Closing):
    """The blocking twin of `ConversationStream`: an iterator and a context manager."""

    def __init__(self, stream: ConversationStream) -> None:
        self._stream = stream
        self._buffer: deque[ConversationEvent] = deque()
        self._done = False

    @property
    def conversation_id(self) -> str | None:
        """The conversation id, once the started event arrived."""
        return self._stream.conversation_id

    @property
    def request_id(self) -> str | None:
        """The server's request id, once the answer started."""
        return self._stream.request_id

    @property
    def raw_response(self) -> ResponseInfo | None:
        """Status, headers and request id of the answer, once it arrived."""
        return self._stream.raw_response

    def current_response(self) -> ConversationResponse:
        """The response rebuilt from the events received so far."""
        return self._stream.current_response()

    def open(self) -> Self:
        """Send the request and wait for the answer's first event (idempotent); see
        `ConversationStream.open`."""
        run_sync(self._stream.open)
        return self

    def __enter__(self) -> Self:
        return self.open()

    def close(self) -> None:
        """Stop reading and release the connection."""
        self._done = True
        run_sync(self._stream.aclose)

    def __iter__(self) -> Iterator[ConversationEvent]:
        return self

    def __next__(self) -> ConversationEvent:
        if not self._buffer:
            if self._done:
                raise StopIteration
            try:
                batch = run_sync(self._stream.next_batch)
            except BaseException:
                self._done = True
                with suppress(ClientClosedError):  # at interpreter exit the loop is already gone
                    run_sync(self._stream.aclose)
                raise
            if not batch:
                self._done = True
                raise StopIteration
            self._buffer.extend(batch)
        return self._buffer.popleft()

    def text_stream(self) -> Iterator[str]:
        """The text fragments of the assistant's messages, as they arrive."""
        for event in self:
            if event.type == "message.output.delta" and isinstance(event.content, str):
                yield event.content

    def final_response(self) -> ConversationResponse:
        """The whole response (reads the rest of the stream first); raises as the async form does."""
        self._buffer.clear()
        return run_sync(self._stream.final_response)


class SyncClientCore(Closing):
    """The work behind `ConversationsClient`'s generated methods (see `_sync_api.py`): it owns
    an async client and runs its methods on the SDK's loop thread (see `run_sync`)."""

    _async: AsyncConversationsClient

    def _setup(self, client: AsyncConversationsClient) -> None:
        self._async = client
        _clients.add(self)
        self._finalizer = weakref.finalize(self, _close_dropped, client)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._async.base_url!r})"

    @property
    def async_client(self) -> AsyncConversationsClient:
        """The async client doing the work (bound to the SDK's loop thread)."""
        return self._async

    @property
    def base_url(self) -> str:
        """The API's address."""
        return self._async.base_url

    def pool_stats(self) -> PoolStats | None:
        """The connection pool now: connections open, in use, and requests waiting for one.

        `None` when the transport keeps no pool it can report. Counted on the loop thread
        (also when called there, from a hook).
        """
        if _portal is None or threading.current_thread().name == _LOOP_THREAD:
            return self._async.pool_stats()  # no loop thread yet, or already on it

        async def count() -> PoolStats | None:
            return self._async.pool_stats()

        return run_sync(count)

    def close(self) -> None:
        """Close the connections. Later calls raise `ClientClosedError`. Idempotent; safe from
        `atexit` (open clients are closed at interpreter exit anyway)."""
        self._finalizer.detach()
        _clients.discard(self)
        if not _stopped:
            run_sync(self._async.aclose)

    def _iterate(self, pages: AsyncIterator[Conversation]) -> Iterator[Conversation]:
        try:
            while True:
                try:
                    yield run_sync(pages.__anext__)
                except StopAsyncIteration:
                    return
        finally:
            run_sync(pages.aclose)  # type: ignore[attr-defined]


class SyncRunStream(Closing, Generic[T]):
    """The blocking twin of `RunStream`: an iterator of run events and a context manager."""

    def __init__(self, stream: RunStream[T]) -> None:
        self._stream = stream

    def __enter__(self) -> Self:
        return self

    def close(self) -> None:
        """Stop the run: its open stream closes and its running tools are cancelled."""
        run_sync(self._stream.aclose)

    def __iter__(self) -> Iterator[RunEvent]:
        return self

    def __next__(self) -> RunEvent:
        try:
            return run_sync(self._stream.__anext__)
        except StopAsyncIteration:
            raise StopIteration from None

    def text_stream(self) -> Iterator[str]:
        """The text fragments of the assistant's messages, across every turn of the run."""
        for event in self:
            if event.type == "message.output.delta" and isinstance(event.content, str):
                yield event.content

    def final_result(self) -> RunResult[T]:
        """The run's result (reads the rest of the run first)."""
        return run_sync(self._stream.final_result)


class SyncConversationHandle(Generic[T]):
    """The blocking twin of `ConversationHandle`: the same methods, run on the SDK's loop thread.

    Sync tools run in worker threads of that loop; async tools on it.
    """

    def __init__(self, handle: ConversationHandle[T]) -> None:
        self.handle = handle

    def __repr__(self) -> str:
        return f"Sync{self.handle!r}"

    @property
    def id(self) -> str | None:
        """The conversation's id, once it has started."""
        return self.handle.id

    @property
    def entries(self) -> list[Entry]:
        """Every entry this handle has sent or received, in order."""
        return self.handle.entries

    def send(self, inputs: Inputs) -> RunResult[T]:
        """Run the conversation on `inputs` (see `ConversationHandle.send`)."""
        return run_sync(self.handle.send, inputs)

    def stream(self, inputs: Inputs) -> SyncRunStream[T]:
        """`send`, streamed."""
        return SyncRunStream(self.handle.stream(inputs))

    def resume(self, state: RunState, decisions: Mapping[str, Literal["allow", "deny"]]) -> RunResult[T]:
        """Resume a paused run (see `ConversationHandle.resume`)."""
        return run_sync(self.handle.resume, state, decisions)

    def history(self) -> ConversationHistory:
        """Every stored entry of the conversation."""
        return run_sync(self.handle.history)

    def restart(self, from_entry_id: str, inputs: Inputs) -> tuple[SyncConversationHandle[T], RunResult[T]]:
        """Branch a new conversation from `from_entry_id` and run it."""
        branch, result = run_sync(self.handle.restart, from_entry_id, inputs)
        return SyncConversationHandle(branch), result
