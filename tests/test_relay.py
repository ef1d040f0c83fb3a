"""Relaying streams to browsers, with aiohttp.web and with an ASGI app (FastAPI on uvicorn), over
loopback: error mapping before the stream, events and text, keep-alives, the error event, and a
browser that leaves while tokens flow or while the upstream is stalled."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import anyio
import msgspec
import pytest
from aiohttp import web
from fastapi import FastAPI, Request

from mistral_conv import AsyncConversationsClient, ConversationStream
from mistral_conv.asgi import EventStreamResponse
from mistral_conv.sse import SSEDecoder
from mistral_conv.testing import Fault, LocalConversationsServer
from mistral_conv.web import relay

from .servers import serve_aiohttp, serve_asgi

KEY = "local-key"


class Watched:
    """A stream whose close is timed, so a test can tell when the relay let go of the upstream."""

    def __init__(self, stream: ConversationStream) -> None:
        self.stream = stream
        self.closed = anyio.Event()
        self.closed_at = 0.0

    @property
    def conversation_id(self) -> str | None:
        return self.stream.conversation_id

    async def open(self) -> None:
        await self.stream.open()

    def __aiter__(self) -> ConversationStream:
        return self.stream

    async def aclose(self) -> None:
        await self.stream.aclose()
        if not self.closed.is_set():
            self.closed_at = time.monotonic()
            self.closed.set()


class Relays:
    """What a relay app made: the upstream client and every watched stream."""

    def __init__(self, upstream: AsyncConversationsClient) -> None:
        self.upstream = upstream
        self.streams: list[Watched] = []

    def stream(self, query: Any) -> Watched:
        if "conversation" in query:
            made = self.upstream.append_stream(query["conversation"], inputs=query.get("q", "hi"))
        else:
            made = self.upstream.start_stream(model="m", inputs=query.get("q", "hi"))
        watched = Watched(made)
        self.streams.append(watched)
        return watched


def _options(query: Any) -> dict[str, Any]:
    keepalive = float(query["keepalive"]) if "keepalive" in query else 15.0
    return {"mode": query.get("mode", "events"), "keepalive": keepalive}


@pytest.fixture
async def upstream() -> AsyncIterator[LocalConversationsServer]:
    async with LocalConversationsServer(api_key=KEY, delta_chars=2) as s:
        yield s


async def _aiohttp_app(relays: Relays) -> AsyncIterator[str]:
    async def chat(request: web.Request) -> web.StreamResponse:
        return await relay(request, relays.stream(request.query), **_options(request.query))

    app = web.Application()
    app.router.add_get("/chat", chat)
    async with serve_aiohttp(app) as url:
        yield url


async def _asgi_app(relays: Relays) -> AsyncIterator[str]:
    api = FastAPI()

    @api.get("/chat")
    async def chat(request: Request) -> EventStreamResponse:
        return EventStreamResponse(relays.stream(request.query_params), **_options(request.query_params))

    async with serve_asgi(api) as url:
        yield url


APPS: dict[str, Callable[[Relays], AsyncIterator[str]]] = {"aiohttp": _aiohttp_app, "asgi": _asgi_app}


@pytest.fixture(params=sorted(APPS))
async def app(
    request: pytest.FixtureRequest, upstream: LocalConversationsServer
) -> AsyncIterator[tuple[str, Relays]]:
    async with AsyncConversationsClient(KEY, base_url=upstream.url, max_retries=0) as client:
        relays = Relays(client)
        async for url in APPS[request.param](relays):
            yield url, relays


async def read_events(response: aiohttp.ClientResponse, *, stop: int | None = None) -> list[tuple[str, str]]:
    """``(event, data)`` pairs as a browser's EventSource sees them; comments as ``(":", "")``."""
    decoder = SSEDecoder()
    out: list[tuple[str, str]] = []
    async for chunk in response.content.iter_any():
        if chunk.startswith(b":") or b"\n:" in chunk:
            out.append((":", ""))
        out += [(f.event, f.data.decode()) for f in decoder.feed(chunk)]
        if stop is not None and len([e for e in out if e[0] != ":"]) >= stop:
            break
    return out


async def test_events_are_relayed_and_end_with_done(app: tuple[str, Relays]) -> None:
    url, relays = app
    async with aiohttp.ClientSession() as browser, browser.get(f"{url}/chat?q=hello+there") as response:
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Cache-Control"] == "no-cache"
        events = await read_events(response)
    names = [e for e, _ in events]
    assert names[0] == "conversation.response.started" and names[-2:] == [
        "conversation.response.done",
        "done",
    ]
    text = "".join(msgspec.json.decode(d)["content"] for e, d in events if e == "message.output.delta")
    assert "hello there" in text
    assert msgspec.json.decode(events[-1][1]) == {"conversation_id": relays.streams[0].conversation_id}
    assert relays.upstream.transport.connections_in_use == 0  # type: ignore[attr-defined]


async def test_text_mode_sends_only_the_text(app: tuple[str, Relays]) -> None:
    url, _ = app
    async with aiohttp.ClientSession() as browser, browser.get(f"{url}/chat?q=plain&mode=text") as response:
        events = await read_events(response)
    assert {e for e, _ in events} == {"message", "done"}
    assert "plain" in "".join(d for e, d in events if e == "message")


async def test_an_upstream_404_is_the_relays_404_before_any_stream(app: tuple[str, Relays]) -> None:
    url, relays = app
    async with (
        aiohttp.ClientSession() as browser,
        browser.get(f"{url}/chat?conversation=conv_nope") as response,
    ):
        assert response.status == 404 and response.headers["Content-Type"].startswith("application/json")
        body = msgspec.json.decode(await response.read())
    assert body["error"]["type"] == "NotFoundError" and body["error"]["request_id"]
    assert relays.streams[0].closed.is_set()


async def test_the_error_event_is_safe(app: tuple[str, Relays], upstream: LocalConversationsServer) -> None:
    url, _ = app
    upstream.inject(Fault.parse("stream_error,after_events=2"))
    async with aiohttp.ClientSession() as browser, browser.get(f"{url}/chat?q=x") as response:
        events = await read_events(response)
    name, data = events[-1]
    error = msgspec.json.decode(data)
    assert name == "error" and set(error) == {"type", "message", "request_id"}
    assert error["type"] == "StreamError" and error["request_id"].startswith("req_")
    assert KEY not in data and "Traceback" not in data and "aiohttp" not in data


async def test_a_broken_upstream_says_so_without_internals(
    app: tuple[str, Relays], upstream: LocalConversationsServer
) -> None:
    url, _ = app
    upstream.inject(Fault.disconnect(after_events=3))
    async with aiohttp.ClientSession() as browser, browser.get(f"{url}/chat?q=x") as response:
        events = await read_events(response)
    error = msgspec.json.decode(events[-1][1])
    assert events[-1][0] == "error" and error["type"] == "RequestOutcomeUnknownError"
    assert error["message"] == "The connection to the model was lost."


async def test_keepalives_flow_while_the_upstream_is_silent(
    app: tuple[str, Relays], upstream: LocalConversationsServer
) -> None:
    url, _ = app
    upstream.inject(Fault.stall(seconds=0.3, after_events=2))
    async with aiohttp.ClientSession() as browser, browser.get(f"{url}/chat?q=x&keepalive=0.05") as response:
        events = await read_events(response)
    first_stall = [e for e, _ in events].index("message.output.delta")
    assert (":", "") in events[first_stall:] and events[-1][0] == "done"


@pytest.mark.parametrize("fault", ["trickle,seconds=0.005", "stall,seconds=30,after_events=2"])
async def test_a_browser_that_leaves_releases_the_upstream_within_100_ms(
    app: tuple[str, Relays], upstream: LocalConversationsServer, fault: str
) -> None:
    url, relays = app
    upstream.inject(Fault.parse(fault))
    long_question = "tell me a long story " * 50
    async with aiohttp.ClientSession() as browser:
        response = await browser.get(f"{url}/chat", params={"q": long_question, "keepalive": "60"})
        await read_events(response, stop=2)
        left = time.monotonic()
        response.close()  # the browser's tab closes: the connection goes
    watched = relays.streams[0]
    with anyio.fail_after(5):
        await watched.closed.wait()
    assert watched.closed_at - left < 0.1
    assert relays.upstream.transport.connections_in_use == 0  # type: ignore[attr-defined]


async def test_a_run_is_relayed_with_its_errors_mapped_and_its_conversation_named(
    upstream: LocalConversationsServer,
) -> None:
    async with AsyncConversationsClient(KEY, base_url=upstream.url, max_retries=0) as client:

        async def chat(request: web.Request) -> web.StreamResponse:
            target = request.query.get("conversation")
            handle = client.conversation(target) if target else client.conversation(model="m")
            return await relay(request, handle.stream("hi"))

        app = web.Application()
        app.router.add_get("/chat", chat)
        async with serve_aiohttp(app) as url, aiohttp.ClientSession() as browser:
            async with browser.get(f"{url}/chat?conversation=conv_nope") as response:
                assert response.status == 404  # mapped before any event, as for a plain stream
            async with browser.get(f"{url}/chat") as response:
                events = await read_events(response)
    done = msgspec.json.decode(events[-1][1])
    assert events[-1][0] == "done" and str(done["conversation_id"]).startswith("conv_")
