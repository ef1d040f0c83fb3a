"""Every way a stream can end leaves no acquired connection, no pending task and no ResourceWarning."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest
from aiohttp import web

from mistral_conv import (
    APITimeoutError,
    AsyncConversationsClient,
    ConversationStream,
    RequestOutcomeUnknownError,
    StreamError,
    StreamStatus,
    Timeout,
)

from .loopback import Loopback, Sse, sse_body
from .servers import serve_aiohttp

PATH = "/v1/conversations"
START = {"type": "conversation.response.started", "conversation_id": "conv_l"}
DONE = {"type": "conversation.response.done", "usage": {}}


def delta(text: str) -> dict[str, object]:
    return {"type": "message.output.delta", "id": "m", "content": text}


def acquired(client: AsyncConversationsClient) -> int:
    return client.transport.connections_in_use  # type: ignore[attr-defined, no-any-return]


async def assert_clean(client: AsyncConversationsClient) -> None:
    await asyncio.sleep(0)  # let aiohttp run the callbacks of a closed connection
    gc.collect()
    assert acquired(client) == 0
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert others == []


async def assert_client_clean(client: AsyncConversationsClient) -> None:
    """As `assert_clean`, where the server's own tasks run in the same loop."""
    await asyncio.sleep(0)
    gc.collect()
    assert acquired(client) == 0
    tasks = [t for t in asyncio.all_tasks() if not t.done() and t is not asyncio.current_task()]
    assert [t for t in tasks if "mistral_conv" in t.get_coro().cr_code.co_filename] == []  # type: ignore[union-attr]


def paused(loopback: Loopback) -> asyncio.Event:
    """A stream that sends a first event, then waits for the returned gate before the rest."""
    gate = asyncio.Event()
    body = [sse_body(START, delta("first")), sse_body(delta("second"), DONE)]
    loopback.reply("POST", PATH, Sse(body, pause_after=1, gate=gate))
    return gate


async def test_stream_read_to_the_end(client: AsyncConversationsClient, loopback: Loopback) -> None:
    loopback.reply("POST", PATH, Sse([sse_body(START, delta("a"), DONE)]))
    async with client.start_stream(inputs="x", model="m") as stream:
        async for _ in stream:
            pass
    await assert_clean(client)
    events = [e async for e in client.start_stream(inputs="x", model="m")]  # bare form, to the end
    assert len(events) == 3
    await assert_clean(client)


@pytest.mark.aiohttp_only
async def test_connection_is_reused_after_a_complete_stream(
    client: AsyncConversationsClient, loopback: Loopback
) -> None:
    loopback.reply("POST", PATH, Sse([sse_body(START, delta("a"), DONE)]))
    for _ in range(3):
        await client.start_stream(inputs="x", model="m").final_response()
    session = client.transport.session
    assert session is not None and session.connector is not None
    assert acquired(client) == 0
    assert sum(len(v) for v in session.connector._conns.values()) == 1


async def test_break_out_of_async_with(client: AsyncConversationsClient, loopback: Loopback) -> None:
    gate = paused(loopback)
    async with client.start_stream(inputs="x", model="m") as stream:
        async for event in stream:
            if event.type == "message.output.delta":
                break
    await assert_clean(client)
    loopback.open_gate(gate)


async def test_break_out_of_text_stream_in_async_with(
    client: AsyncConversationsClient, loopback: Loopback
) -> None:
    gate = paused(loopback)
    async with client.start_stream(inputs="x", model="m") as stream:
        async for _ in stream.text_stream():
            break
    await assert_clean(client)  # no task left to finalize the loop's iterator either
    loopback.open_gate(gate)


@pytest.mark.parametrize("form", ["events", "texts"])
async def test_a_second_loop_goes_on_where_a_break_left(
    form: str, client: AsyncConversationsClient, loopback: Loopback
) -> None:
    loopback.reply("POST", PATH, Sse([sse_body(START, delta("a"), delta("b"), delta("c"), DONE)]))
    async with client.start_stream(inputs="x", model="m") as stream:
        if form == "texts":
            texts = stream.text_stream()
            assert await anext(texts) == "a"
            assert [t async for t in stream.text_stream()] == ["b", "c"]
        else:
            async for event in stream:
                if event.type == "message.output.delta":
                    break
            assert [e.type for e in [e async for e in stream]] == [
                "message.output.delta",
                "message.output.delta",
                "conversation.response.done",
            ]
    await assert_clean(client)


@pytest.mark.parametrize("form", ["events", "texts"])
async def test_a_loop_begun_after_a_close_raises_the_failure_again(
    form: str, client: AsyncConversationsClient, loopback: Loopback
) -> None:
    error = {"type": "conversation.response.error", "message": "boom", "code": 1}
    loopback.reply("POST", PATH, Sse([sse_body(START, delta("a"), error)]))
    async with client.start_stream(inputs="x", model="m") as stream:
        aiter(stream), stream.text_stream()  # made, never stepped: closed by the block's end
        with pytest.raises(StreamError):
            await stream.final_response()
    with pytest.raises(StreamError, match="boom"):
        async for _ in stream.text_stream() if form == "texts" else stream:
            pass


async def test_a_stream_read_to_its_end_after_a_break_is_freed_without_the_gc(
    client: AsyncConversationsClient, loopback: Loopback
) -> None:
    loopback.reply("POST", PATH, Sse([sse_body(START, delta("a"), delta("b"), DONE)]))
    stream = client.start_stream(inputs="x", model="m")
    async for _ in stream:
        break
    await stream.final_response()
    ref = weakref.ref(stream)
    gc.disable()
    try:
        del stream
        assert ref() is None  # no cycle through a suspended loop
    finally:
        gc.enable()
    await assert_clean(client)


async def test_consumer_raises(client: AsyncConversationsClient, loopback: Loopback) -> None:
    gate = paused(loopback)
    with pytest.raises(RuntimeError, match="consumer failed"):
        async with client.start_stream(inputs="x", model="m") as stream:
            async for _ in stream:
                raise RuntimeError("consumer failed")
    await assert_clean(client)
    loopback.open_gate(gate)


@pytest.mark.parametrize("form", ["async with", "bare"])
async def test_task_cancelled_while_waiting(
    form: str, client: AsyncConversationsClient, loopback: Loopback
) -> None:
    gate = paused(loopback)
    got_first = asyncio.Event()

    async def consume() -> None:
        if form == "async with":
            async with client.start_stream(inputs="x", model="m") as stream:
                async for _ in stream:
                    got_first.set()
        else:
            async for _ in client.start_stream(inputs="x", model="m"):
                got_first.set()

    task = asyncio.create_task(consume())
    await got_first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await assert_clean(client)
    loopback.open_gate(gate)


async def test_aclose_from_another_task(client: AsyncConversationsClient, loopback: Loopback) -> None:
    gate = paused(loopback)
    stream = client.start_stream(inputs="x", model="m")
    got_first = asyncio.Event()
    seen: list[str] = []

    async def consume() -> None:
        async for event in stream:
            seen.append(event.type)
            got_first.set()

    task = asyncio.create_task(consume())
    await got_first.wait()
    await asyncio.sleep(0)  # the consumer is now waiting for the next chunk
    await stream.aclose()
    await task  # iteration ends quietly: no "asynchronous generator is already running"
    assert seen[-1] == "message.output.delta"
    await stream.aclose()  # idempotent
    await assert_clean(client)
    loopback.open_gate(gate)


async def test_bare_break_then_aclose(client: AsyncConversationsClient, loopback: Loopback) -> None:
    gate = paused(loopback)
    stream = client.start_stream(inputs="x", model="m")
    async for _ in stream:
        break
    assert acquired(client) == 1  # a bare break leaves the body unread: aclose() or `async with` ends it
    await stream.aclose()
    await assert_clean(client)
    loopback.open_gate(gate)


async def test_stream_never_iterated_sends_nothing(
    client: AsyncConversationsClient, loopback: Loopback
) -> None:
    stream = client.start_stream(inputs="x", model="m")
    assert isinstance(stream, ConversationStream)
    await stream.aclose()
    assert loopback.requests == []


@pytest.mark.parametrize("form", ["events in async with", "texts in async with", "bare events", "bare texts"])
async def test_a_cancel_after_any_number_of_loop_steps_leaves_the_client_clean(form: str) -> None:
    """The reading task is cancelled after 1, 2, 3, ... turns of the loop, so at each point where the
    stream's generators, its open and its reads suspend, until the whole read fits in the steps.

    The server runs in the same loop and lets it turn between its chunks, so that the reader meets
    each chunk apart."""
    body = [sse_body(START), sse_body(delta("a"), delta("b")), sse_body(delta("c")), sse_body(DONE)]

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for chunk in body:
            await resp.write(chunk)
            for _ in range(8):  # turns enough for the client to read the chunk on its own
                await asyncio.sleep(0)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post(PATH, handler)
    streams: list[ConversationStream] = []
    texts = "texts" in form

    async def consume(client: AsyncConversationsClient) -> None:
        stream = client.start_stream(inputs="x", model="m")
        streams.append(stream)
        if "async with" in form:
            async with stream:
                async for _ in stream.text_stream() if texts else stream:
                    pass
        else:
            async for _ in stream.text_stream() if texts else stream:
                pass

    async with serve_aiohttp(app) as url, AsyncConversationsClient("k", base_url=url) as client:
        completed = cancelled = 0
        where: set[str] = set()
        for steps in range(1, 2000):
            task = asyncio.create_task(consume(client))
            for _ in range(steps):
                await asyncio.sleep(0)
            if task.done():
                await task
                completed += 1
                if completed == 3:  # three runs in a row fit in the steps: every point was tried
                    break
                continue
            completed = 0
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, 5)  # the bound only turns a hang into a failure
            cancelled += 1
            stream = streams[-1]
            assert stream.status in (StreamStatus.CLOSED, StreamStatus.DONE), steps
            where.add(f"{stream.status.value} after {stream.state.text!r}")
            await assert_client_clean(client)
        assert completed == 3
        # cancelled while opening and with the stream open (the loop's exact turns vary with the loop)
        assert "closed after ''" in where and len(where) >= 2, where
        text = "".join([t async for t in client.start_stream(inputs="x", model="m").text_stream()])
        assert text == "abc"  # the client still works
        await assert_client_clean(client)


async def test_a_plain_call_cancelled_after_any_number_of_loop_turns_leaves_no_limit_behind() -> None:
    """As the stream sweep, for `start()`: the client's shared timer of time limits keeps no entry
    of a cancelled call, and a later call's limit still fires."""
    answer = {"conversation_id": "conv_l", "outputs": [], "usage": {}}
    slow, release = asyncio.Event(), asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        if slow.is_set():
            await release.wait()  # no answer in time: the total limit must end the call
        for _ in range(4):
            await asyncio.sleep(0)
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post(PATH, handler)
    async with (
        serve_aiohttp(app) as url,
        AsyncConversationsClient("k", base_url=url, max_retries=0) as client,
    ):
        completed = 0
        for steps in range(1, 2000):
            task = asyncio.create_task(client.start(inputs="x", model="m"))
            for _ in range(steps):
                await asyncio.sleep(0)
            if task.done():
                assert (await task).conversation_id == "conv_l"
                completed += 1
                if completed == 3:
                    break
                continue
            completed = 0
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, 5)
            await assert_client_clean(client)
            assert not client._rt.deadlines._scopes, steps  # type: ignore[attr-defined]
        assert completed == 3
        slow.set()
        with pytest.raises(RequestOutcomeUnknownError) as caught:  # sent, then the limit ran out
            await client.start(inputs="x", model="m", timeout=Timeout(total=0.05))
        assert isinstance(caught.value.reason, APITimeoutError)
        release.set()
        assert not client._rt.deadlines._scopes  # type: ignore[attr-defined]
        await assert_client_clean(client)
