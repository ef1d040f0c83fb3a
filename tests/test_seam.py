"""The transport seam and the error objects: aiohttp behind one module, programming errors as
themselves, fresh exceptions with their causes, snapshots that nothing changes, final_response's
promises."""

from __future__ import annotations

import ast
import asyncio
import copy
import math
import pickle
import traceback
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

import mistral_conv as mc
from mistral_conv import AsyncConversationsClient, Timeout
from mistral_conv._streaming import TRANSITIONS, StreamStatus
from mistral_conv.models import MessageOutputEntry
from mistral_conv.transport import HTTPRequest, HTTPResponse, ReadError, Transport

from .conftest import API_KEY, FAST_BACKOFF, RAW
from .loopback import Json, Loopback, Sse, sse_body

PACKAGE = Path(mc.__file__).parent
PATH = "/v1/conversations"
START = {"type": "conversation.response.started", "conversation_id": "conv_x"}
DONE = {"type": "conversation.response.done", "usage": {"total_tokens": 3}}
OK = {"conversation_id": "conv_x", "outputs": [], "usage": {}}


def test_aiohttp_is_imported_only_by_the_transport_the_web_relay_and_the_testing_package() -> None:
    importers = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            if any(n == "aiohttp" or n.startswith("aiohttp.") for n in names):
                importers.add(path.relative_to(PACKAGE).as_posix())
    # web.py is the aiohttp.web relay helper: it imports aiohttp.web when called, never the client side
    assert {p for p in importers if not p.startswith("testing/")} == {"_aiohttp.py", "web.py"}


def test_the_suite_sends_through_the_transport_it_was_asked_for() -> None:
    name = type(AsyncConversationsClient("k").transport).__name__
    assert name == ("RawTransport" if RAW else "AiohttpTransport")


class Canned(HTTPResponse):
    """A response from memory, delivered in the chunks given."""

    def __init__(self, status: int, headers: dict[str, str], chunks: list[bytes]) -> None:
        super().__init__(status, headers)
        self._chunks = chunks
        self.closed = False

    async def _iterate(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            await asyncio.sleep(0)
            if isinstance(chunk, Exception):
                raise chunk
            yield chunk

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def aclose(self) -> None:
        self.closed = True


class InMemory:
    """A transport of the caller's own: answers from a list, records what it was sent."""

    def __init__(self, *responses: Canned) -> None:
        self.responses = list(responses)
        self.requests: list[HTTPRequest] = []

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        self.requests.append(request)
        return self.responses.pop(0)

    async def aclose(self) -> None:
        pass


def sse(*events: dict[str, object]) -> Canned:
    return Canned(200, {"content-type": "text/event-stream"}, [sse_body(*events)])


async def test_a_transport_of_the_callers_own_carries_plain_calls_and_streams() -> None:
    transport = InMemory(
        Canned(503, {"retry-after-ms": "1"}, [b"{}"]),
        Canned(
            200,
            {"content-type": "application/json", "x-request-id": "r1"},
            [b'{"conversation_id":', b'"c","outputs":[],"usage":{}}'],
        ),
        sse(START, {"type": "message.output.delta", "id": "m", "content": "hi"}, DONE),
    )
    async with AsyncConversationsClient(API_KEY, transport=transport, backoff=FAST_BACKOFF) as client:
        assert (await client.start(inputs="x", model="m")).conversation_id == "c"
        final = await client.start_stream(inputs="x", model="m").final_response()
    assert final.output_text == "hi" and final.usage.total_tokens == 3
    first = transport.requests[0]
    assert first.method == "POST" and first.url == "https://api.mistral.ai/v1/conversations"
    assert first.headers["Authorization"] == f"Bearer {API_KEY}" and API_KEY not in repr(first)
    assert isinstance(transport, Transport)


async def test_a_read_error_mid_stream_from_any_transport_is_an_unknown_outcome() -> None:
    broken = Canned(200, {"content-type": "text/event-stream"}, [sse_body(START), ReadError("gone")])  # type: ignore[list-item]
    async with AsyncConversationsClient(API_KEY, transport=InMemory(broken)) as client:
        with pytest.raises(mc.RequestOutcomeUnknownError) as info:
            await client.start_stream(inputs="x", model="m").final_response()
    assert info.value.conversation_id == "conv_x" and broken.closed
    assert isinstance(info.value.reason.__cause__, ReadError)


async def test_programming_errors_propagate_as_themselves_unretried() -> None:
    class Exploding(InMemory):
        async def send(self, request: HTTPRequest) -> HTTPResponse:
            self.requests.append(request)
            raise TypeError("a bug in the transport")

    transport = Exploding()
    async with AsyncConversationsClient(API_KEY, transport=transport, backoff=FAST_BACKOFF) as client:
        with pytest.raises(TypeError, match="a bug in the transport"):
            await client.get("c1")
        stream = client.start_stream(inputs="x", model="m")
        with pytest.raises(TypeError, match="a bug in the transport"):
            await stream.final_response()
        assert stream.status is mc.StreamStatus.CLOSED
        assert client._rt.inflight == set()
        with pytest.raises(mc.StreamClosedError):
            await stream.final_response()
    assert len(transport.requests) == 2  # once each: not retried


async def test_an_unencodable_query_value_is_refused_before_sending(loopback: Loopback) -> None:
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url, backoff=FAST_BACKOFF) as client:
        with pytest.raises(mc.InvalidRequestError, match=r"extra_query\['x'\]"):
            await client.get("c1", extra_query={"x": object()})  # type: ignore[dict-item]
    assert loopback.requests == []


@pytest.mark.parametrize("value", [math.inf, math.nan, -1, 0, True, "5"])
def test_time_limits_must_be_positive_and_finite(value: object) -> None:
    with pytest.raises(mc.InvalidRequestError, match="timeout"):
        Timeout.of(value)  # type: ignore[arg-type]
    with pytest.raises(mc.InvalidRequestError, match=r"timeout\.read"):
        Timeout(read=value)  # type: ignore[arg-type]


async def test_an_infinite_timeout_is_refused_before_sending(loopback: Loopback) -> None:
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url) as client:
        with pytest.raises(mc.InvalidRequestError, match="timeout"):
            await client.start(inputs="x", model="m", timeout=math.inf)
    assert loopback.requests == []


async def test_too_large_is_not_its_own_cause(loopback: Loopback) -> None:
    loopback.reply("GET", "/v1/conversations/c1", Json({"pad": "x" * 5000}))
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url, max_response_size=100) as client:
        with pytest.raises(mc.ResponseTooLargeError) as info:
            await client.get("c1")
    assert info.value.__cause__ is not info.value and info.value.attempts == 1


def cut_after_so(loopback: Loopback) -> None:
    """A stream that delivers "so", then loses its connection."""
    loopback.reply(
        "POST",
        PATH,
        Sse([sse_body(START, {"type": "message.output.delta", "id": "m", "content": "so"})], drop_after=1),
    )


async def test_stored_failures_are_raised_fresh_with_their_cause(loopback: Loopback) -> None:
    cut_after_so(loopback)
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url) as client:
        stream = client.start_stream(inputs="x", model="m")
        raised = []
        for _ in range(3):
            with pytest.raises(mc.RequestOutcomeUnknownError) as info:
                await stream.final_response()
            raised.append(info.value)
    assert len({id(e) for e in raised}) == 3
    assert len({str(e) for e in raised}) == 1
    depths = [len(traceback.extract_tb(e.__traceback__)) for e in raised]
    assert depths[0] == depths[1] == depths[2]  # the traceback does not grow with each raise
    for error in raised:
        assert isinstance(error.__cause__, mc.APIConnectionError)
        assert isinstance(error.__cause__.__cause__, mc.transport.TransportError)
        assert error.partial is not None and error.partial.output_text == "so"


async def test_final_response_after_a_failed_open_raises_the_same_error_again(loopback: Loopback) -> None:
    loopback.reply("POST", PATH, Json({"detail": "Unauthorized"}, status=401))
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url) as client:
        stream = client.start_stream(inputs="x", model="m")
        errors = []
        for _ in range(2):
            with pytest.raises(mc.AuthenticationError) as info:
                await stream.final_response()
            errors.append(info.value)
    assert errors[0] is not errors[1] and str(errors[0]) == str(errors[1])
    assert loopback.count("POST", PATH) == 1


async def test_final_response_after_break_raises_with_what_arrived(loopback: Loopback) -> None:
    gate = asyncio.Event()
    body = [sse_body(START, {"type": "message.output.delta", "id": "m", "content": "half"}), sse_body(DONE)]
    loopback.reply("POST", PATH, Sse(body, pause_after=1, gate=gate))
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url) as client:
        async with client.start_stream(inputs="x", model="m") as stream:
            async for event in stream:
                if event.type == "message.output.delta":
                    break
        with pytest.raises(mc.StreamClosedError) as info:
            await stream.final_response()
    assert info.value.partial is not None and info.value.partial.output_text == "half"
    loopback.open_gate(gate)


THINKING = [
    START,
    {
        "type": "message.output.delta",
        "id": "m",
        "content_index": 0,
        "content": {"type": "thinking", "thinking": [{"type": "text", "text": "Let me "}]},
    },
    {
        "type": "message.output.delta",
        "id": "m",
        "content_index": 0,
        "content": {"type": "thinking", "thinking": [{"type": "text", "text": "think."}]},
    },
    {"type": "message.output.delta", "id": "m", "content_index": 1, "content": "The answer"},
    {"type": "message.output.delta", "id": "m", "content_index": 1, "content": " is 42."},
]


async def test_current_response_and_partial_are_snapshots(loopback: Loopback) -> None:
    loopback.reply("POST", PATH, Sse([sse_body(e) for e in THINKING], drop_after=len(THINKING)))
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url) as client:
        stream = client.start_stream(inputs="x", model="m")
        snapshots = []
        with pytest.raises(mc.RequestOutcomeUnknownError) as info:
            async for _ in stream:
                snap = stream.current_response()
                snapshots.append((snap, msgspec.json.encode(snap)))
        partial = info.value.partial
        assert partial is not None
        frozen = msgspec.json.encode(partial)
        stream.current_response()  # rebuilding again changes no earlier snapshot
    for snap, encoded in snapshots:
        assert msgspec.json.encode(snap) == encoded
    assert msgspec.json.encode(partial) == frozen
    entry = partial.outputs[0]
    assert isinstance(entry, MessageOutputEntry) and partial.output_text == "The answer is 42."


def test_the_state_machine_allows_only_forward_moves() -> None:
    final = {StreamStatus.DONE, StreamStatus.FAILED, StreamStatus.CLOSED}
    for status in final:
        assert TRANSITIONS[status] == frozenset()
    for status, targets in TRANSITIONS.items():
        assert status not in targets
    assert set(TRANSITIONS) == set(StreamStatus)


def every_error() -> list[mc.MistralError]:
    from mistral_conv._errors import status_error

    reason = mc.APITimeoutError("slow", limit="read", request_id="r")
    return [
        mc.InvalidRequestError("model", "is required"),
        mc.ResponseDecodeError("bad", body=b"x", status=200, request_id="r"),
        mc.ClientClosedError("closed"),
        mc.StreamClosedError("closed"),
        status_error(404, b'{"message":"nope"}', request_id="r", headers={"a": "b"}),
        status_error(429, b"{}", headers={"retry-after": "2"}),
        mc.APIConnectionError("down", request_id="r"),
        reason,
        mc.StreamInterruptedError("cut"),
        mc.ResponseTooLargeError("big"),
        mc.StreamError("failed", code=3000, request_id="r"),
        mc.RequestOutcomeUnknownError(
            "unknown", operation="append", reason=reason, conversation_id="c", attempts=2
        ),
    ]


@pytest.mark.parametrize("error", every_error(), ids=lambda e: type(e).__name__)
def test_errors_pickle_and_copy_with_their_attributes(error: mc.MistralError) -> None:
    for other in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
        assert type(other) is type(error)
        assert str(other) == str(error)
        assert {k: repr(v) for k, v in vars(other).items()} == {k: repr(v) for k, v in vars(error).items()}
    if isinstance(error, mc.RateLimitError):
        assert pickle.loads(pickle.dumps(error)).retry_after == 2.0


async def test_a_stall_past_the_total_limit_of_a_read_is_retried(loopback: Loopback) -> None:
    from .loopback import Stall

    loopback.reply(
        "GET",
        "/v1/conversations/c1",
        Stall(),
        Json(
            {
                "id": "c1",
                "model": "m",
                "created_at": "2025-01-01T00:00:00Z",
                "updated_at": "2025-01-01T00:00:00Z",
            }
        ),
    )
    async with AsyncConversationsClient(
        API_KEY, base_url=loopback.url, backoff=FAST_BACKOFF, timeout=Timeout(total=0.2)
    ) as client:
        assert (await client.get("c1")).id == "c1"
    assert loopback.count("GET", "/v1/conversations/c1") == 2


async def test_an_os_error_from_a_transports_body_is_classified_and_retried() -> None:
    body = b'{"id":"c1","model":"m","created_at":"2025-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00Z"}'
    broken = Canned(200, {"content-type": "application/json"}, [ConnectionResetError("reset")])  # type: ignore[list-item]
    transport = InMemory(broken, Canned(200, {"content-type": "application/json"}, [body]))
    async with AsyncConversationsClient(API_KEY, transport=transport, backoff=FAST_BACKOFF) as client:
        assert (await client.get("c1")).id == "c1"
    assert len(transport.requests) == 2


async def test_each_raise_hands_out_its_own_partial(loopback: Loopback) -> None:
    cut_after_so(loopback)
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url) as client:
        stream = client.start_stream(inputs="x", model="m")
        with pytest.raises(mc.RequestOutcomeUnknownError) as first:
            await stream.final_response()
        assert first.value.partial is not None
        first.value.partial.outputs.clear()
        with pytest.raises(mc.RequestOutcomeUnknownError) as second:
            await stream.final_response()
    assert second.value.partial is not None and second.value.partial.output_text == "so"
