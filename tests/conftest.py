"""Shared fixtures: a loopback server, a client bound to it, and the aioresponses compatibility fixture."""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

import aiohttp
import pytest
from aioresponses import aioresponses
from hypothesis import HealthCheck, settings

from mistral_conv import AsyncConversationsClient, Backoff
from mistral_conv.testing import LocalConversationsServer, hanging_port

from .loopback import Loopback

# Fuzz tests take their budget from a profile: small in the suite, large on demand
# (HYPOTHESIS_PROFILE=long python -m pytest tests/test_fuzz.py).
settings.register_profile(
    "suite", max_examples=60, deadline=5000, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=5000, deadline=5000, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec"
EXAMPLES = SPEC / "examples"
REAL = SPEC / "real"
API_KEY = "sk-test-0123456789abcdef"
FAST_BACKOFF = Backoff(initial=0.001, maximum=0.002)


_Cut = TypeVar("_Cut", bytes, list[bytes])


def chunked(data: _Cut, cuts: list[int]) -> list[_Cut]:
    """``data`` (bytes, or a list of them) cut at the given offsets (clamped, deduplicated, in order)."""
    points = sorted({min(c, len(data)) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    return [*out, data[last:]]


def spec_files(folder: Path, pattern: str) -> list[Path]:
    """The spec files matching ``pattern``, or an empty list when ../shared/spec is absent."""
    return sorted(folder.glob(pattern)) if folder.is_dir() else []


@pytest.fixture
def unaccepting_port() -> Iterator[int]:
    """A listening socket whose backlog is full, so that a new connection attempt hangs."""
    with hanging_port() as port:
        yield port


@pytest.fixture
def loopback() -> Iterator[Loopback]:
    server = Loopback()
    server.start_in_thread()
    yield server
    server.stop_thread()


@pytest.fixture
async def client(loopback: Loopback) -> AsyncIterator[AsyncConversationsClient]:
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url, backoff=FAST_BACKOFF) as c:
        yield c


# -- aioresponses on aiohttp 3.14 -------------------------------------------------------
#
# aioresponses 0.7.9 predates aiohttp 3.14: it builds ``ClientResponse`` without the new
# keyword-only ``stream_writer`` (pnuckowski/aioresponses#289), and its mock protocol has
# no parser, so a body above the 64 KiB reader limit trips an assertion in 3.14's flow
# control (#292). This fixture is the project's one way to use aioresponses: it supplies
# a ``stream_writer`` when the running aiohttp wants one, and refuses bodies above
# 64 KiB with a message pointing to the loopback server, which every large-body test uses.

_NEEDS_STREAM_WRITER = "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters
MOCK_BODY_LIMIT = 64 * 1024


class _CompatResponse(aiohttp.ClientResponse):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if _NEEDS_STREAM_WRITER and "stream_writer" not in kwargs:
            kwargs["stream_writer"] = mock.Mock(output_size=0)
        super().__init__(*args, **kwargs)


class CompatAioresponses(aioresponses):  # type: ignore[misc]
    def add(self, url: Any, method: str = "GET", *args: Any, **kwargs: Any) -> None:
        body = kwargs.get("body") or b""
        if len(body) > MOCK_BODY_LIMIT:
            raise ValueError(
                "aioresponses bodies above 64 KiB break on aiohttp 3.14: use the loopback server"
            )
        kwargs.setdefault("response_class", _CompatResponse)
        super().add(url, method, *args, **kwargs)


@pytest.fixture
def mock_api() -> Iterator[CompatAioresponses]:
    """aioresponses, made to work on every supported aiohttp; for small request-shape tests."""
    if RAW:
        pytest.skip("aioresponses mocks the aiohttp transport")
    with CompatAioresponses() as m:
        yield m


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Live tests run only when asked for (``-m live``) and given a key; never by default."""
    wanted = "live" in (config.getoption("markexpr") or "")
    has_key = bool(os.environ.get("MISTRAL_API_KEY"))
    for item in items:
        if "live" in item.keywords and not (wanted and has_key):
            reason = "live tests run only with -m live" if not wanted else "MISTRAL_API_KEY is not set"
            item.add_marker(pytest.mark.skip(reason=reason))


# -- the suite through another transport ------------------------------------------------
#
# MISTRAL_CONV_TEST_TRANSPORT=raw swaps the default transport for tests/rawhttp.py, which
# does not use aiohttp, so the whole suite proves the seam; tests of what only the aiohttp
# transport does (its pool internals, compression, proxies) are marked ``aiohttp_only``.

RAW = os.environ.get("MISTRAL_CONV_TEST_TRANSPORT") == "raw"


@pytest.fixture(autouse=True)
def _default_transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if not RAW:
        return
    if request.node.get_closest_marker("aiohttp_only"):
        pytest.skip("about the aiohttp transport itself")
    import mistral_conv._aiohttp

    from .rawhttp import RawTransport

    monkeypatch.setattr(mistral_conv._aiohttp, "AiohttpTransport", RawTransport)


LOCAL_KEY = "local-key"


@pytest.fixture
async def server() -> AsyncIterator[LocalConversationsServer]:
    """A local Conversations server in this test's event loop, closed after the test."""
    async with LocalConversationsServer(api_key=LOCAL_KEY) as s:
        yield s


@pytest.fixture
async def api(server: LocalConversationsServer) -> AsyncIterator[AsyncConversationsClient]:
    """A client of ``server`` with fast back-off."""
    async with AsyncConversationsClient(LOCAL_KEY, base_url=server.url, backoff=FAST_BACKOFF) as c:
        yield c


if os.environ.get("MISTRAL_CONV_TEST_LOOP") == "uvloop":  # CI runs the stream tests on uvloop too

    def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
        import uvloop

        return {"uvloop": uvloop.new_event_loop}


class TimersAhead:
    """Wraps the loop's `call_at` to keep the timers armed `limit` seconds ahead (a time limit's)."""

    def __init__(self, limit: float, tolerance: float = 0.1) -> None:
        self.limit = limit
        self.tolerance = tolerance
        self.armed: list[asyncio.TimerHandle] = []
        self.loop = asyncio.get_running_loop()
        self._call_at = self.loop.call_at

    def _counting(self, when: float, callback: Any, *args: Any, context: Any = None) -> asyncio.TimerHandle:
        handle = self._call_at(when, callback, *args, context=context)
        if abs(when - self.loop.time() - self.limit) < self.tolerance:
            self.armed.append(handle)
        return handle

    def __enter__(self) -> TimersAhead:
        try:
            self.loop.call_at = self._counting  # type: ignore[method-assign]
        except AttributeError:
            pytest.skip("this event loop's timers cannot be wrapped")
        return self

    def __exit__(self, *exc: object) -> None:
        del self.loop.call_at

    def pending(self) -> list[asyncio.TimerHandle]:
        return [h for h in self.armed if not h.cancelled() and h.when() > self.loop.time()]
