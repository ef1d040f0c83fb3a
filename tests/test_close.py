"""Close means close: ``stream.aclose()`` and ``client.aclose()`` end a call at every phase of its life,
send nothing more, and release the connection; time limits cover their whole phase.

Each phase is reached for real and signalled by the code that reaches it (a transport that
says when it is sending, a back-off that says when it waits, a server that says when it has
answered), never by a timer. ``asyncio.wait_for(…, HANG)`` is only a guard against a hang:
the close itself takes milliseconds (``python -m benchmarks.close`` measures it).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

import mistral_conv as mc
import mistral_conv._aiohttp
from mistral_conv import AsyncConversationsClient, StreamStatus, Timeout
from mistral_conv.transport import HTTPRequest, HTTPResponse

from .conftest import API_KEY, FAST_BACKOFF
from .loopback import Json, Loopback, Sse, Stall, sse_body

PATH = "/v1/conversations"
HANG = 10.0
START = {"type": "conversation.response.started", "conversation_id": "conv_c"}
DONE = {"type": "conversation.response.done", "usage": {}}
OK = {"conversation_id": "conv_c", "outputs": [], "usage": {}}


def delta(text: str) -> dict[str, object]:
    return {"type": "message.output.delta", "id": "m", "content": text}


class Signalling:
    """The default transport, saying when a request enters ``send``."""

    def __init__(self) -> None:
        self.inner = mistral_conv._aiohttp.AiohttpTransport()
        self.sending = asyncio.Event()
        self.sent = 0

    @property
    def connections_in_use(self) -> int:
        return self.inner.connections_in_use  # type: ignore[no-any-return]

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        self.sent += 1
        self.sending.set()
        return await self.inner.send(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Scenario:
    """A client and a way to bring a call to one phase of its life."""

    def __init__(
        self, client: AsyncConversationsClient, transport: Signalling, reached: asyncio.Event
    ) -> None:
        self.client = client
        self.transport = transport
        self.reached = reached


@pytest.fixture
async def trickling_server() -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A server that sends its status line, then one header line every 50 ms, never finishing."""
    answered = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
            await writer.drain()
            answered.set()
            for i in range(2000):  # bounded: 100 s at most
                writer.write(f"X-Pad-{i}: a\r\n".encode())
                await writer.drain()
                await asyncio.sleep(0.05)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", answered
    server.close()
    # Handlers still writing end when their connection is closed by the client.


PHASES = ("while connecting", "during a back-off", "while headers arrive", "mid-body")


@pytest.fixture
async def scenario(
    request: pytest.FixtureRequest,
    loopback: Loopback,
    unaccepting_port: int,
    trickling_server: tuple[str, asyncio.Event],
) -> AsyncIterator[Scenario]:
    phase: str = request.param
    transport = Signalling()
    reached = asyncio.Event()
    url = loopback.url
    if phase == "while connecting":
        url = f"http://127.0.0.1:{unaccepting_port}"
        reached = transport.sending
    elif phase == "while headers arrive":
        url, reached = trickling_server
    elif phase == "mid-body":
        gate = asyncio.Event()
        body = [sse_body(START, delta("first")), sse_body(delta("second"), DONE)]
        loopback.reply("POST", PATH, Sse(body, pause_after=1, gate=gate))
    else:
        loopback.reply("POST", PATH, Json({"message": "busy"}, status=503), Json(OK))
    client = AsyncConversationsClient(API_KEY, base_url=url, transport=transport, timeout=Timeout(connect=60))
    if phase == "during a back-off":

        async def announce_then_wait(delay: float) -> None:
            reached.set()
            await asyncio.sleep(60)

        client._rt.retry.sleep = announce_then_wait
    async with client:
        yield Scenario(client, transport, reached)
    if phase == "mid-body":
        loopback.open_gate(gate)


def streamed(scenario: Scenario) -> tuple[mc.ConversationStream, Callable[[], Awaitable[list[Any]]]]:
    stream = scenario.client.start_stream(inputs="x", model="m")
    seen: list[Any] = []

    async def consume() -> list[Any]:
        async for event in stream:
            seen.append(event)
            if event.type == "message.output.delta":
                scenario.reached.set()
        return seen

    return stream, consume


@pytest.mark.parametrize("scenario", PHASES, indirect=True)
async def test_stream_aclose_at_each_phase(scenario: Scenario) -> None:
    stream, consume = streamed(scenario)
    task = asyncio.create_task(consume())
    await scenario.reached.wait()
    sent = scenario.transport.sent
    await stream.aclose()
    assert scenario.transport.connections_in_use == 0  # released by the time aclose() returns
    await asyncio.wait_for(task, HANG)  # iteration ends quietly
    assert stream.status is StreamStatus.CLOSED
    assert scenario.transport.sent == sent  # nothing sent after the close
    assert scenario.transport.connections_in_use == 0
    with pytest.raises(mc.StreamClosedError, match="closed before it completed") as info:
        await stream.final_response()
    assert info.value.partial is not None


@pytest.mark.parametrize("scenario", PHASES, indirect=True)
async def test_client_aclose_ends_a_stream_at_each_phase(scenario: Scenario) -> None:
    stream, consume = streamed(scenario)
    task = asyncio.create_task(consume())
    await scenario.reached.wait()
    sent = scenario.transport.sent
    await scenario.client.aclose()
    assert scenario.transport.connections_in_use == 0
    with pytest.raises(mc.ClientClosedError) as info:
        await asyncio.wait_for(task, HANG)
    assert not isinstance(info.value, mc.StreamClosedError)
    assert stream.status is StreamStatus.FAILED
    assert scenario.transport.sent == sent
    with pytest.raises(mc.ClientClosedError):  # the same error again, a fresh instance
        await stream.final_response()


@pytest.mark.parametrize("scenario", PHASES[:3], indirect=True)
async def test_client_aclose_ends_a_plain_call_at_each_phase(scenario: Scenario) -> None:
    task = asyncio.create_task(scenario.client.start(inputs="x", model="m"))
    await scenario.reached.wait()
    sent = scenario.transport.sent
    await scenario.client.aclose()
    with pytest.raises(mc.ClientClosedError):
        await asyncio.wait_for(task, HANG)
    assert scenario.transport.sent == sent
    with pytest.raises(mc.ClientClosedError):
        await scenario.client.start(inputs="x", model="m")


async def test_closing_a_stream_that_was_never_opened_sends_nothing(loopback: Loopback) -> None:
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url) as client:
        stream = client.start_stream(inputs="x", model="m")
        await stream.aclose()
        assert [e async for e in stream] == []
        with pytest.raises(mc.StreamClosedError):
            await stream.final_response()
    assert loopback.requests == []


async def test_client_aclose_ends_an_idle_open_stream(loopback: Loopback) -> None:
    """A stream opened but not being read when the client closes: its next read raises."""
    gate = asyncio.Event()
    loopback.reply("POST", PATH, Sse([sse_body(START, delta("a")), sse_body(DONE)], pause_after=1, gate=gate))
    client = AsyncConversationsClient(API_KEY, base_url=loopback.url)
    async with client.start_stream(inputs="x", model="m") as stream:
        first = await stream.next_batch()
        assert [e.type for e in first] == ["conversation.response.started", "message.output.delta"]
        await client.aclose()
        with pytest.raises(mc.ClientClosedError) as info:
            await stream.next_batch()
        assert info.value.partial is not None and info.value.partial.output_text == "a"
    assert client.transport.connections_in_use == 0  # type: ignore[attr-defined]
    loopback.open_gate(gate)


async def test_first_event_limit_covers_a_trickled_header_section(
    trickling_server: tuple[str, asyncio.Event],
) -> None:
    url, _ = trickling_server
    timeout = Timeout(connect=5, read=10, first_event=0.3)
    async with AsyncConversationsClient(
        API_KEY, base_url=url, timeout=timeout, backoff=FAST_BACKOFF
    ) as client:
        with pytest.raises(mc.RequestOutcomeUnknownError) as info:
            await asyncio.wait_for(client.start_stream(inputs="x", model="m").final_response(), HANG)
    reason = info.value.reason
    assert isinstance(reason, mc.APITimeoutError) and reason.limit == "first_event"


async def test_total_limit_covers_a_trickled_header_section(
    trickling_server: tuple[str, asyncio.Event],
) -> None:
    url, _ = trickling_server
    timeout = Timeout(connect=5, read=10, total=0.3)
    async with AsyncConversationsClient(
        API_KEY, base_url=url, timeout=timeout, backoff=FAST_BACKOFF
    ) as client:
        with pytest.raises(mc.APITimeoutError) as info:
            await asyncio.wait_for(client.get("c1", max_retries=0), HANG)
    assert info.value.limit == "total"


async def test_a_cancelled_caller_still_sees_its_cancellation_when_the_client_closes(
    loopback: Loopback,
) -> None:
    """Both a cancel of the caller's own and the client's close reach the call: neither is lost."""
    loopback.reply("POST", PATH, Stall())
    transport = Signalling()
    client = AsyncConversationsClient(API_KEY, base_url=loopback.url, transport=transport)
    task = asyncio.create_task(client.start(inputs="x", model="m"))
    await transport.sending.wait()
    task.cancel()
    await client.aclose()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, HANG)


EXIT_SCRIPT = """
import threading
from mistral_conv import ClientClosedError, ConversationsClient
from mistral_conv.testing import Fault, LocalConversationsServer

server = LocalConversationsServer()
server.start_in_thread()
server.inject(Fault.stall(3600, after_events=2))
client = ConversationsClient("k", base_url=server.url)
reading = threading.Event()

def read_forever():
    try:
        with client.start_stream(inputs="hello", model="m") as stream:
            for _ in stream:
                reading.set()
    except ClientClosedError:
        print("stream ended by the close at exit", flush=True)

threading.Thread(target=read_forever, daemon=True).start()
assert reading.wait(30)
print("main thread done", flush=True)
"""


def test_a_process_whose_daemon_thread_is_inside_a_blocking_stream_exits() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", textwrap.dedent(EXIT_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "main thread done" in done.stdout
    assert "Traceback" not in done.stderr


NON_DAEMON_SCRIPT = """
import threading, time
from mistral_conv import ConversationsClient
from mistral_conv.testing import LocalConversationsServer

server = LocalConversationsServer()
server.start_in_thread()
client = ConversationsClient("k", base_url=server.url)
client.start(inputs="before", model="m")

def worker():
    while threading.main_thread().is_alive():  # wait until the main thread has returned
        time.sleep(0.01)
    print(client.start(inputs="late", model="m").output_text, flush=True)
    other = ConversationsClient("k", base_url=server.url)
    print(other.start(inputs="later", model="m").output_text, flush=True)

threading.Thread(target=worker).start()
"""


def test_a_non_daemon_thread_keeps_working_after_the_main_thread_returns() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", textwrap.dedent(NON_DAEMON_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert '"late"' in done.stdout and '"later"' in done.stdout, done.stdout + done.stderr
    assert done.stderr == ""


async def test_a_first_event_timeout_after_the_headers_is_the_same_error_every_time(
    loopback: Loopback,
) -> None:
    good = Sse([sse_body(START, delta("ok"), DONE)])
    loopback.reply("POST", PATH, Sse([], stall_after=0), Sse([], stall_after=0), good)
    timeout = Timeout(first_event=0.2)
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url, backoff=FAST_BACKOFF) as client:
        stream = client.start_stream(inputs="x", model="m", timeout=timeout)
        errors = []
        for _ in range(2):
            with pytest.raises(mc.RequestOutcomeUnknownError) as info:
                await stream.final_response()
            errors.append(info.value)
        assert stream.status is StreamStatus.FAILED and str(errors[0]) == str(errors[1])
        retried = client.start_stream(inputs="x", model="m", timeout=timeout, retry_unknown_outcome=True)
        assert (await asyncio.wait_for(retried.final_response(), HANG)).output_text == "ok"
        assert client._rt.inflight == set()


async def test_stream_total_covers_the_wait_for_headers(loopback: Loopback) -> None:
    loopback.reply("POST", PATH, Stall())
    timeout = Timeout(first_event=None, read=None, stream_total=0.3)
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url, timeout=timeout) as client:
        with pytest.raises(mc.RequestOutcomeUnknownError) as info:
            await asyncio.wait_for(client.start_stream(inputs="x", model="m").final_response(), HANG)
    reason = info.value.reason
    assert isinstance(reason, mc.APITimeoutError) and reason.limit == "stream_total"


async def test_a_second_reader_is_refused_and_the_first_goes_on(loopback: Loopback) -> None:
    gate = asyncio.Event()
    loopback.reply("POST", PATH, Sse([sse_body(START, delta("a")), sse_body(DONE)], pause_after=0, gate=gate))
    transport = Signalling()
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url, transport=transport) as client:
        stream = client.start_stream(inputs="x", model="m")
        first = asyncio.create_task(stream.final_response())
        await transport.sending.wait()
        with pytest.raises(RuntimeError, match="one task at a time"):
            await stream.final_response()
        loopback.open_gate(gate)
        assert (await asyncio.wait_for(first, HANG)).output_text == "a"


async def test_a_call_made_while_its_task_is_being_cancelled_still_ends_on_close(loopback: Loopback) -> None:
    loopback.reply("POST", PATH, Stall())
    transport = Signalling()
    client = AsyncConversationsClient(API_KEY, base_url=loopback.url, transport=transport)
    started, seen = asyncio.Event(), []

    async def work() -> None:
        try:
            started.set()
            await asyncio.sleep(HANG)
        except asyncio.CancelledError:
            try:
                await client.start(inputs="cleanup", model="m")
            except mc.ClientClosedError as exc:
                seen.append(exc)
            raise

    task = asyncio.create_task(work())
    await started.wait()
    task.cancel()
    await transport.sending.wait()
    await client.aclose()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, HANG)
    assert len(seen) == 1
