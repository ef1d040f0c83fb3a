"""Hostile input, bounded memory and secrets to the last byte: one test (or more) per attack."""

from __future__ import annotations

import gzip
import math
import pickle
import subprocess
import sys
import textwrap
import traceback
import tracemalloc
import zlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import mistral_conv as mc
import mistral_conv._aiohttp
from mistral_conv import AsyncConversationsClient, Timeout
from mistral_conv._errors import status_error
from mistral_conv.models import FunctionCallEntry, ToolExecutionEntry
from mistral_conv.testing import Fault, LocalConversationsServer

from .conftest import API_KEY, FAST_BACKOFF
from .loopback import Json, Loopback, Sse, sse_body
from .test_cli import command

PATH = "/v1/conversations"
HISTORY = "/v1/conversations/c1/history"
START = {"type": "conversation.response.started", "conversation_id": "conv_h"}
DONE = {"type": "conversation.response.done", "usage": {}}
MiB = 1024 * 1024


def delta(text: str) -> dict[str, object]:
    return {"type": "message.output.delta", "id": "m", "content": text}


def gzip_bomb(size: int) -> bytes:
    """``size`` bytes of zeros, gzip-compressed (about 1,000 to 1)."""
    z = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = bytes(MiB)
    return b"".join(z.compress(block) for _ in range(size // MiB)) + z.flush()


def compressed(
    body: bytes, status: int = 200, encoding: str = "gzip", content_type: str = "application/json"
):  # type: ignore[no-untyped-def]
    async def reply(request: web.Request) -> web.StreamResponse:
        resp = web.Response(body=body, status=status, content_type=content_type)
        resp.headers["Content-Encoding"] = encoding
        return resp

    return reply


# -- compression bombs and decoded limits ---------------------------------------------------


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzip_bomb(64 * MiB)


@pytest.mark.aiohttp_only
@pytest.mark.parametrize("status", [200, 500])
async def test_a_compression_bomb_costs_at_most_about_the_limit(
    status: int, bomb: bytes, loopback: Loopback
) -> None:
    loopback.reply("GET", HISTORY, compressed(bomb, status))
    async with AsyncConversationsClient(
        API_KEY, base_url=loopback.url, max_response_size=MiB, backoff=FAST_BACKOFF
    ) as client:
        tracemalloc.start()
        try:
            with pytest.raises(mc.APIError) as info:
                await client.history("c1")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    if status == 200:
        assert isinstance(info.value, mc.ResponseTooLargeError) and info.value.attempts == 1
        assert loopback.count("GET", HISTORY) == 1  # never retried into memory again
    else:  # an error answer: its body is read within 1 MiB, on each of the retries
        assert isinstance(info.value, mc.InternalServerError) and info.value.attempts == 3
    assert peak < 2 * MiB, f"peak traced memory {peak / MiB:.1f} MiB"


@pytest.mark.aiohttp_only
@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw deflate", "two gzip members"])
async def test_compressed_answers_are_read(encoding: str, loopback: Loopback) -> None:
    body = b'{"conversation_id":"c1","entries":[]}'
    if encoding == "gzip":
        data, header = gzip.compress(body), "gzip"
    elif encoding == "deflate":
        data, header = zlib.compress(body), "deflate"
    elif encoding == "raw deflate":
        z = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        data, header = z.compress(body) + z.flush(), "deflate"
    else:
        data, header = gzip.compress(body[:10]) + gzip.compress(body[10:]), "gzip"
    loopback.reply("GET", HISTORY, compressed(data, encoding=header))
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url) as client:
        assert (await client.history("c1")).conversation_id == "c1"
    assert loopback.requests[0].headers["Accept-Encoding"] == "gzip, deflate"


@pytest.mark.aiohttp_only
async def test_a_compressed_event_stream_is_read_and_a_corrupt_one_is_typed(loopback: Loopback) -> None:
    body = sse_body(START, delta("zipped"), DONE)
    loopback.reply(
        "POST",
        PATH,
        compressed(gzip.compress(body), content_type="text/event-stream"),
        compressed(gzip.compress(body)[:-20] + b"\xff" * 20, content_type="text/event-stream"),
    )
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url) as client:
        assert (await client.start_stream(inputs="x", model="m").final_response()).output_text == "zipped"
        with pytest.raises(mc.RequestOutcomeUnknownError, match="corrupt"):
            await client.start_stream(inputs="x", model="m").final_response()
        assert client.transport.connections_in_use == 0  # type: ignore[attr-defined]


# -- deep and broken JSON ---------------------------------------------------------------------

DEEP = b"[" * 100_000 + b"]" * 100_000  # deeper than any decoder goes, on every Python


async def test_deep_json_in_a_body_is_a_decode_error(loopback: Loopback) -> None:
    loopback.reply("GET", HISTORY, Json(b'{"conversation_id":"c1","entries":' + DEEP + b"}"))
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url) as client:
        with pytest.raises(mc.ResponseDecodeError):
            await client.history("c1")


def test_deep_json_in_an_error_body_still_gives_the_status_error() -> None:
    err = status_error(503, b'{"message":' + DEEP + b"}")
    assert isinstance(err, mc.InternalServerError) and err.parsed is None


async def test_deep_json_in_the_first_event_is_typed_and_releases_the_connection(loopback: Loopback) -> None:
    deep_event = b"event: message.output.delta\ndata: " + b'{"type":"x","a":' + DEEP + b"}\n\n"
    loopback.reply("POST", PATH, Sse([deep_event, sse_body(DONE)]))
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url) as client:
        with pytest.raises(mc.ResponseDecodeError, match="not JSON"):
            async with client.start_stream(inputs="x", model="m") as stream:
                async for _ in stream:
                    pass
        assert client.transport.connections_in_use == 0  # type: ignore[attr-defined]


async def test_event_data_that_is_not_json_breaks_the_stream_keeping_what_arrived(loopback: Loopback) -> None:
    broken = b'event: message.output.delta\ndata: {"type": "message.output.delta", "id": \n\n'
    loopback.reply(
        "POST", PATH, Sse([sse_body(START, delta("before")), broken, sse_body(delta("after"), DONE)])
    )
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url) as client:
        stream = client.start_stream(inputs="x", model="m")
        texts: list[str] = []
        with pytest.raises(mc.ResponseDecodeError) as info:
            async for text in stream.text_stream():
                texts.append(text)
    assert texts == ["before"]
    assert info.value.partial is not None and info.value.partial.output_text == "before"
    assert info.value.conversation_id == "conv_h" and b'"id": ' in info.value.body


# -- the key, unreachable from every exception ----------------------------------------------


def everything_reachable(error: BaseException) -> Iterator[str]:
    """Every text an error reporter could show: the formatted traceback with the locals of every
    frame, and for each exception of the chain its repr, str, attributes and pickle."""
    yield "".join(traceback.TracebackException.from_exception(error, capture_locals=True).format())
    seen: set[int] = set()
    stack: list[BaseException] = [error]
    while stack:
        exc = stack.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        yield repr(exc)
        yield str(exc)
        yield repr(vars(exc)) if hasattr(exc, "__dict__") else ""
        yield repr(exc.args)
        try:
            yield repr(pickle.dumps(exc))
        except Exception as p:
            yield repr(p)
        tb = exc.__traceback__
        while tb is not None:
            yield repr(tb.tb_frame.f_locals)
            tb = tb.tb_next
        stack += [e for e in (exc.__cause__, exc.__context__) if e is not None]
        stack += (
            [v for v in vars(exc).values() if isinstance(v, BaseException)]
            if hasattr(exc, "__dict__")
            else []
        )


async def caught(make: Any) -> BaseException:
    try:
        await make()
    except mc.MistralError as exc:
        return exc
    raise AssertionError("no error")


async def test_the_key_is_unreachable_from_every_error(unaccepting_port: int) -> None:
    errors: list[BaseException] = []
    async with (
        LocalConversationsServer(api_key="other-key") as server,
        AsyncConversationsClient(API_KEY, base_url=server.url, backoff=FAST_BACKOFF) as client,
    ):
        errors.append(await caught(lambda: client.start(inputs="x", model="m")))  # 401
    async with (
        LocalConversationsServer() as server,
        AsyncConversationsClient(
            API_KEY, base_url=server.url, backoff=FAST_BACKOFF, timeout=Timeout(read=0.2)
        ) as client,
    ):
        for fault in (Fault.disconnect(), Fault.drop(), Fault.stall(1), Fault.error_status(500)):
            server.inject(fault, times=1)
            errors.append(await caught(lambda: client.start(inputs="x", model="m")))
            server.inject(fault, times=1)
            errors.append(await caught(lambda: client.start_stream(inputs="x", model="m").final_response()))
        server.inject(Fault.disconnect(after_events=2), times=1)
        errors.append(await caught(lambda: client.start_stream(inputs="x", model="m").final_response()))
    async with AsyncConversationsClient(
        API_KEY, base_url=f"http://127.0.0.1:{unaccepting_port}", timeout=Timeout(connect=0.2), max_retries=0
    ) as client:
        errors.append(await caught(lambda: client.get("c1")))
    assert len(errors) == 11
    for error in errors:
        for text in everything_reachable(error):
            assert API_KEY not in text, f"{type(error).__name__}: {text[:200]}"


@pytest.mark.aiohttp_only
async def test_no_key_in_plain_text_through_a_proxy_on_another_host(
    monkeypatch: pytest.MonkeyPatch, loopback: Loopback
) -> None:
    monkeypatch.setattr(mistral_conv._aiohttp, "env_proxy", lambda url: "http://proxy.invalid:3128")

    async def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the request would have been sent")

    monkeypatch.setattr(aiohttp.ClientSession, "request", never)
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url) as client:
        with pytest.raises(mc.InvalidRequestError, match="plain text through a proxy") as info:
            await client.get("c1")
    assert info.value.field == "HTTP_PROXY"


# -- pickling, processes, fork, garbage collection ---------------------------------------------


def raise_not_found() -> None:
    raise status_error(404, b'{"message":"Conversation conv_x not found"}', request_id="r-404")


def test_an_error_raised_in_a_worker_process_reaches_the_parent() -> None:
    with (
        ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool,
        pytest.raises(mc.NotFoundError) as info,
    ):
        pool.submit(raise_not_found).result(timeout=60)
    assert info.value.status == 404 and info.value.request_id == "r-404"
    assert "conv_x not found" in str(info.value)


def run_script(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-X", "dev", "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=60,
    )


FORK = """
import os, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: what gunicorn --preload does
from mistral_conv import ConversationsClient
from mistral_conv.testing import LocalConversationsServer

server = LocalConversationsServer()
server.start_in_thread()
client = ConversationsClient("k", base_url=server.url)
first = client.start(inputs="in the parent", model="m")
pid = os.fork()
if pid == 0:
    try:
        reply = client.append(first.conversation_id, inputs="in the child")
        print("child ok" if "in the child" in reply.output_text else "child wrong", flush=True)
        client.close()
    finally:
        os._exit(0)
os.waitpid(pid, 0)
print("parent", client.append(first.conversation_id, inputs="after").conversation_id == first.conversation_id)
"""


def test_the_blocking_client_works_in_a_forked_child() -> None:
    done = run_script(FORK)
    assert done.returncode == 0, done.stderr
    assert "child ok" in done.stdout and "parent True" in done.stdout, done.stdout + done.stderr


DROPPED = """
import atexit, gc
from mistral_conv import ConversationsClient
from mistral_conv.testing import LocalConversationsServer

server = LocalConversationsServer()
server.start_in_thread()
client = ConversationsClient("k", base_url=server.url)
client.start(inputs="hello", model="m")
del client
gc.collect()
other = ConversationsClient("k", base_url=server.url)
other.start(inputs="hello", model="m")
atexit.register(other.close)
print("done", flush=True)
"""


def test_a_dropped_blocking_client_is_closed_quietly_and_atexit_close_is_fine() -> None:
    done = run_script(DROPPED)
    assert done.returncode == 0 and "done" in done.stdout, done.stderr
    assert done.stderr == ""


# -- bounded growth ----------------------------------------------------------------------------


@pytest.mark.aiohttp_only
async def test_the_transport_keeps_a_bounded_number_of_timeouts(loopback: Loopback) -> None:
    loopback.reply(
        "GET",
        "/v1/conversations/c1",
        Json(
            {
                "id": "c1",
                "model": "m",
                "created_at": "2025-01-01T00:00:00Z",
                "updated_at": "2025-01-01T00:00:00Z",
            }
        ),
    )
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url) as client:
        for i in range(300):  # a deadline-derived limit differs on every call
            await client.get("c1", timeout=Timeout(total=30 + i / 1000))
        assert len(client.transport._timeouts) <= 64  # type: ignore[attr-defined]


async def test_a_stream_past_max_stream_size_stops_with_what_arrived(loopback: Loopback) -> None:
    body = sse_body(START, *[delta("x" * 100) for _ in range(2000)], DONE)
    loopback.reply("POST", PATH, Sse([body[i : i + 4096] for i in range(0, len(body), 4096)]))
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url, max_stream_size=64 * 1024) as client:
        with pytest.raises(mc.ResponseTooLargeError, match="more than 65536 bytes") as info:
            await client.start_stream(inputs="x", model="m").final_response()
        assert client.transport.connections_in_use == 0  # type: ignore[attr-defined]
    assert info.value.partial is not None and 0 < len(info.value.partial.output_text) < 200 * 1000


async def test_a_first_read_past_max_stream_size_keeps_the_events_within_the_limit(
    loopback: Loopback,
) -> None:
    # One network read holds more than the limit: the events before the limit still arrive as partial.
    body = sse_body(START, *[delta("y" * 100) for _ in range(2000)], DONE)
    loopback.reply("POST", PATH, Sse([body]))
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url, max_stream_size=64 * 1024) as client:
        with pytest.raises(mc.ResponseTooLargeError) as info:
            await client.start_stream(inputs="x", model="m").final_response()
    partial = info.value.partial
    assert partial is not None and 30 * 1000 < len(partial.output_text) < 64 * 1024


async def test_a_stream_of_endless_tiny_entries_stops_at_the_entry_cap(loopback: Loopback) -> None:
    calls = [
        {
            "type": "function.call.delta",
            "id": f"fc{i}",
            "output_index": i,
            "name": "f",
            "tool_call_id": f"t{i}",
            "arguments": "",
        }
        for i in range(10_050)
    ]
    loopback.reply("POST", PATH, Sse([sse_body(START, *calls, DONE)]))
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url) as client:
        with pytest.raises(mc.ResponseTooLargeError, match="10000 output entries") as info:
            await client.start_stream(inputs="x", model="m").final_response()
    partial = info.value.partial
    assert partial is not None and 0 < len(partial.outputs) <= 10_050
    assert all(isinstance(e, FunctionCallEntry) for e in partial.outputs)


async def test_repeated_tool_execution_started_events_accumulate_in_order(loopback: Loopback) -> None:
    started = [
        {"type": "tool.execution.started", "id": "t", "name": "web_search", "arguments": f"{i},"}
        for i in range(20_000)
    ]
    loopback.reply(
        "POST",
        PATH,
        Sse(
            [
                sse_body(
                    START,
                    *started,
                    {"type": "tool.execution.delta", "id": "t", "name": "web_search", "arguments": "end"},
                    DONE,
                )
            ]
        ),
    )
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url) as client:
        final = await client.start_stream(inputs="x", model="m").final_response()
    (entry,) = final.outputs
    assert isinstance(entry, ToolExecutionEntry)
    assert entry.arguments == "".join(f"{i}," for i in reversed(range(20_000))) + "end"


# -- bad arguments: typed, named, before anything is sent --------------------------------------

BAD_CALLS: dict[str, tuple[str, Any]] = {
    "lone surrogate in an id": ("conversation_id", lambda c: c.get("\ud800")),
    "int header value": ("extra_headers['X-A']", lambda c: c.get("c1", extra_headers={"X-A": 1})),
    "None header value": ("extra_headers['X-A']", lambda c: c.get("c1", extra_headers={"X-A": None})),
    "colon in a header name": ("extra_headers['a:b']", lambda c: c.get("c1", extra_headers={"a:b": "v"})),
    "space in a header name": ("extra_headers['a b']", lambda c: c.get("c1", extra_headers={"a b": "v"})),
    "empty header name": ("extra_headers['']", lambda c: c.get("c1", extra_headers={"": "v"})),
    "Host header": ("extra_headers['Host']", lambda c: c.get("c1", extra_headers={"Host": "evil"})),
    "Content-Length header": (
        "extra_headers['Content-Length']",
        lambda c: c.get("c1", extra_headers={"Content-Length": "0"}),
    ),
    "Transfer-Encoding header": (
        "extra_headers['transfer-encoding']",
        lambda c: c.get("c1", extra_headers={"transfer-encoding": "chunked"}),
    ),
    "object in metadata": ("metadata", lambda c: c.start(inputs="x", model="m", metadata={"a": object()})),
    "NaN timeout": ("timeout", lambda c: c.get("c1", timeout=math.nan)),
}


@pytest.mark.parametrize("case", BAD_CALLS, ids=list(BAD_CALLS))
async def test_bad_arguments_are_named_before_sending(case: str, loopback: Loopback) -> None:
    field, call = BAD_CALLS[case]
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url) as client:
        with pytest.raises(mc.InvalidRequestError) as info:
            await call(client)
    assert info.value.field == field
    assert loopback.requests == []


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("api_key", {"api_key": 123}),
        ("base_url", {"base_url": 123}),
        ("default_headers['X']", {"default_headers": {"X": None}}),
    ],
)
def test_bad_client_options_are_named(field: str, kwargs: dict[str, Any]) -> None:
    kwargs.setdefault("api_key", "k")
    with pytest.raises(mc.InvalidRequestError) as info:
        AsyncConversationsClient(**kwargs)
    assert info.value.field == field


def test_the_cli_turns_bad_input_into_one_error_line() -> None:
    done = subprocess.run(
        command("--base-url", "http://127.0.0.1:9", "list", "--metadata", "{nope"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stderr.startswith("error: --metadata") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


# -- no key ------------------------------------------------------------------------------------


async def test_no_key_for_the_real_api_fails_before_sending(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MISTRAL_API_KEY", raising=False)
    monkeypatch.delenv("MISTRAL_BASE_URL", raising=False)

    async def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the request would have been sent")

    monkeypatch.setattr(aiohttp.ClientSession, "request", never)
    async with AsyncConversationsClient() as client:
        with pytest.raises(mc.InvalidRequestError, match="MISTRAL_API_KEY") as info:
            await client.start(inputs="x", model="m")
    assert info.value.field == "api_key"


@pytest.mark.parametrize("key", [API_KEY, None])
async def test_a_401_says_whether_a_key_was_sent(
    key: str | None, loopback: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MISTRAL_API_KEY", raising=False)
    loopback.reply("GET", "/v1/conversations/c1", Json({"detail": "Unauthorized"}, status=401))
    async with AsyncConversationsClient(key, base_url=loopback.url) as client:
        with pytest.raises(mc.AuthenticationError) as info:
            await client.get("c1")
    expected = "an API key was sent and refused" if key else "no API key was sent"
    assert expected in str(info.value)


async def test_a_large_request_body_is_sent_without_warnings(loopback: Loopback) -> None:
    """aiohttp warns (ResourceWarning, an error in this suite) about bytes bodies over 1 MiB."""
    loopback.reply("POST", PATH, Json({"conversation_id": "c", "outputs": [], "usage": {}}))
    text = "x" * (3 * MiB)
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url) as client:
        await client.start(inputs=text, model="m")
    sent = loopback.requests[0]
    assert sent.json()["inputs"] == text and sent.headers["Content-Type"] == "application/json"
