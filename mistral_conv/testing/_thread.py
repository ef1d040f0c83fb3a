"""A private event loop on a background thread, to run a server beside sync code or another loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

__all__ = ["LoopThread"]


class LoopThread:
    """Runs `start()` on a new loop in a thread, serves until `stop`, then runs `stop()`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self, start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]) -> None:
        """Start the thread; returns once `start()` finished, re-raising its error if it failed."""
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self.loop = loop
            try:
                loop.run_until_complete(start())
            except BaseException as exc:  # handed to the starting thread
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(stop())
            loop.close()

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        ready.wait()
        if errors:
            self._thread.join()
            self._thread = None
            raise errors[0]

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Run `callback` on the thread's loop."""
        assert self.loop is not None
        self.loop.call_soon_threadsafe(callback)

    def stop(self) -> None:
        """Stop the loop, run `stop()` and join the thread. Idempotent."""
        if self.loop is not None and self._thread is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
            self._thread = None
