"""The blocking client and run_sync: repeated, threaded, inside a loop, interrupted, and at exit."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import mistral_conv as mc
from mistral_conv import ConversationsClient, run_sync
from mistral_conv.testing import LocalConversationsServer

from .conftest import FAST_BACKOFF
from .loopback import Loopback, Sse, sse_body

KEY = "local-test-key"
START = {"type": "conversation.response.started", "conversation_id": "conv_s"}


def acquired(client: ConversationsClient) -> int:
    return client.async_client.transport.connections_in_use  # type: ignore[attr-defined, no-any-return]


def test_every_method_and_repeated_calls(mistral_server: LocalConversationsServer) -> None:
    with ConversationsClient(KEY, base_url=mistral_server.url) as client:
        first = client.start(inputs="one", model="m")
        for i in range(20):
            client.append(first.conversation_id, inputs=f"turn {i}")
        history = client.history(first.conversation_id)
        assert len(history.entries) == 42
        assert len(client.messages(first.conversation_id).messages) == 42
        assert client.get(first.conversation_id).id == first.conversation_id
        branch = client.restart(first.conversation_id, from_entry_id=history.entries[1].id, inputs="b")
        assert [c.id for c in client.iter_conversations(page_size=1)] == [c.id for c in client.list()]
        client.delete(branch.conversation_id)
        with pytest.raises(mc.NotFoundError):
            client.get(branch.conversation_id)
    assert client.start.__doc__ == client.async_client.start.__doc__


def test_one_client_across_asyncio_runs(mistral_server: LocalConversationsServer) -> None:
    client = ConversationsClient(KEY, base_url=mistral_server.url)

    async def use() -> str:
        return client.start(inputs="again", model="m").conversation_id

    ids = {asyncio.run(use()) for _ in range(3)}
    assert len(ids) == 3
    client.close()


def test_eight_threads_at_once(mistral_server: LocalConversationsServer) -> None:
    barrier = threading.Barrier(8)
    with ConversationsClient(KEY, base_url=mistral_server.url) as client:

        def work(i: int) -> str:
            barrier.wait()
            return client.start(inputs=f"thread {i}", model="m").output_text

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(work, range(8)))
        assert all(f"thread {i}" in a for i, a in enumerate(answers))
        assert acquired(client) == 0


async def test_call_from_inside_a_running_loop(mistral_server: LocalConversationsServer) -> None:
    with ConversationsClient(KEY, base_url=mistral_server.url) as client:  # blocks this loop while it runs
        assert "inside" in client.start(inputs="inside a loop", model="m").output_text
        with client.start_stream(inputs="stream inside", model="m") as stream:
            text = "".join(stream.text_stream())
        assert "stream inside" in text


def test_sync_stream_to_the_end_and_broken_out_of(mistral_server: LocalConversationsServer) -> None:
    with ConversationsClient(KEY, base_url=mistral_server.url) as client:
        stream = client.start_stream(inputs="read me", model="m")
        final = stream.final_response()
        assert "read me" in final.output_text and stream.conversation_id == final.conversation_id
        assert acquired(client) == 0
        with client.append_stream(final.conversation_id, inputs="break me") as s:
            for event in s:
                if event.type == "message.output.delta":
                    break
        assert acquired(client) == 0


def test_keyboard_interrupt_while_reading_releases_the_connection(loopback: Loopback) -> None:
    gate = asyncio.Event()
    body = [sse_body(START, {"type": "message.output.delta", "id": "m", "content": "x"}), b""]
    loopback.reply("POST", "/v1/conversations", Sse(body, pause_after=1, gate=gate))
    main = threading.get_ident()
    with ConversationsClient("k", base_url=loopback.url, backoff=FAST_BACKOFF) as client:
        stream = client.start_stream(inputs="x", model="m")
        events = iter(stream)
        assert next(events).type == "conversation.response.started"
        assert next(events).type == "message.output.delta"
        timer = threading.Timer(0.3, signal.pthread_kill, (main, signal.SIGINT))
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            next(events)  # blocked waiting for the paused server
        timer.join()
        assert acquired(client) == 0
        with pytest.raises(StopIteration):
            next(events)
    loopback.open_gate(gate)


def test_close_and_reuse_errors(mistral_server: LocalConversationsServer) -> None:
    client = ConversationsClient(KEY, base_url=mistral_server.url)
    client.start(inputs="x", model="m")
    client.close()
    client.close()  # idempotent
    with pytest.raises(mc.ClientClosedError, match="closed"):
        client.start(inputs="x", model="m")


def test_run_sync_runs_any_coroutine_function() -> None:
    async def add(a: int, b: int = 0) -> int:
        await asyncio.sleep(0)
        return a + b

    assert run_sync(add, 2, b=3) == 5
    with pytest.raises(ZeroDivisionError):
        run_sync(asyncio.to_thread, lambda: 1 / 0)


def test_script_exits_cleanly_without_close(mistral_server: LocalConversationsServer) -> None:
    script = textwrap.dedent(
        f"""
        from mistral_conv import ConversationsClient
        client = ConversationsClient({KEY!r}, base_url={mistral_server.url!r})
        stream = client.start_stream(inputs="bye", model="m")
        for text in stream.text_stream():
            print(text, end="")
        half = client.start_stream(inputs="left open", model="m")
        next(iter(half))
        """
    )
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "default", "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
    )
    elapsed = time.monotonic() - began
    assert done.returncode == 0
    assert "bye" in done.stdout
    assert done.stderr == ""
    assert elapsed < 2.0
