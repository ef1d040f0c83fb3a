"""Streams over real loopback HTTP: transcripts, rebuilt responses, retries, time limits, failures."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web

import mistral_conv as mc
from mistral_conv import AsyncConversationsClient, Timeout
from mistral_conv.models import (
    ConversationResponse,
    MessageOutputDeltaEvent,
    ResponseDoneEvent,
    ResponseStartedEvent,
    UnknownEvent,
)
from mistral_conv.models._decoders import ModelDecoder
from mistral_conv.transport import ReadTimeout

from .conftest import API_KEY, EXAMPLES, FAST_BACKOFF, REAL, TimersAhead, spec_files
from .loopback import Drop, Json, Loopback, Sse, sse_body

PATH = "/v1/conversations"
TRANSCRIPTS = spec_files(EXAMPLES, "stream.*.sse") + spec_files(REAL, "*.sse")


def text_events(*parts: str, conversation_id: str = "conv_s") -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [
        {"type": "conversation.response.started", "conversation_id": conversation_id}
    ]
    for p in parts:
        events.append(
            {
                "type": "message.output.delta",
                "id": "msg_1",
                "output_index": 0,
                "content_index": 0,
                "content": p,
            }
        )
    return events


DONE = {
    "type": "conversation.response.done",
    "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
}


def frames_of(body: bytes) -> list[dict[str, Any]]:
    """The data objects of a transcript, by a plain reading of its data lines."""
    out = []
    for line in body.decode().splitlines():
        if line.startswith("data: "):
            out.append(json.loads(line[6:]))
    return out


@pytest.mark.skipif(not TRANSCRIPTS, reason="../shared/spec is absent")
@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.name)
async def test_transcript_decodes_over_http(
    path: Path, client: AsyncConversationsClient, loopback: Loopback
) -> None:
    body = path.read_bytes()  # noqa: ASYNC240 (a small local file)
    loopback.reply("POST", PATH, Sse([body[i : i + 97] for i in range(0, len(body), 97)]))
    expected = frames_of(body)
    events = []
    stream = client.start_stream(inputs="hi", model="m")
    try:
        async with stream:
            async for event in stream:
                events.append(event)
        error = None
    except mc.StreamError as exc:
        error = exc
    types = [e["type"] for e in expected]
    if types[-1] == "conversation.response.error":
        assert error is not None and error.code == expected[-1]["code"]
        types = types[:-1]
    assert [e.type for e in events] == types
    assert not [e for e in events if isinstance(e, UnknownEvent)]
    assert stream.conversation_id == expected[0]["conversation_id"]


def twins() -> list[tuple[Path, Path]]:
    pairs = []
    for sse in spec_files(EXAMPLES, "stream.*.sse"):
        twin = EXAMPLES / sse.name.replace("stream.", "conversation_response.").replace(".sse", ".json")
        if (
            twin.exists()
            and json.loads(twin.read_bytes())["conversation_id"]
            == frames_of(sse.read_bytes())[0]["conversation_id"]
        ):
            pairs.append((sse, twin))
    return pairs


def comparable(response: ConversationResponse) -> Any:
    """A response without what a stream does not carry: timestamps, ``object`` and null values."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: clean(v)
                for k, v in value.items()
                if v is not None and k not in ("created_at", "completed_at", "object")
            }
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return clean(msgspec.to_builtins(response))


@pytest.mark.skipif(len(twins()) < 4, reason="../shared/spec is absent")
@pytest.mark.parametrize(("sse", "twin"), twins(), ids=lambda p: p.name)
async def test_final_response_equals_non_stream_twin(
    sse: Path, twin: Path, client: AsyncConversationsClient, loopback: Loopback
) -> None:
    loopback.reply("POST", PATH, Sse([sse.read_bytes()]))  # noqa: ASYNC240
    final = await client.start_stream(inputs="hi", model="m").final_response()
    expected = ModelDecoder(ConversationResponse).decode(twin.read_bytes())  # noqa: ASYNC240
    assert comparable(final) == comparable(expected)


async def test_text_stream_and_helpers(client: AsyncConversationsClient, loopback: Loopback) -> None:
    loopback.reply(
        "POST",
        PATH,
        Sse([sse_body(*text_events("Hel", "lo", " wor", "ld"), DONE)], headers={"x-request-id": "rq-1"}),
    )
    async with client.start_stream(inputs="hi", model="m") as stream:
        assert stream.request_id == "rq-1"
        parts = [t async for t in stream.text_stream()]
    assert parts == ["Hel", "lo", " wor", "ld"]
    final = await stream.final_response()
    assert final.output_text == "Hello world" and final.usage.total_tokens == 3
    assert stream.conversation_id == "conv_s"
    sent = loopback.requests[0]
    assert sent.json()["stream"] is True and sent.headers["Accept"] == "text/event-stream"


async def test_bare_async_for_works(client: AsyncConversationsClient, loopback: Loopback) -> None:
    loopback.reply("POST", PATH + "/conv_1", Sse([sse_body(*text_events("a", "b"), DONE)]))
    events = [e async for e in client.append_stream("conv_1", inputs="x")]
    assert [type(e) for e in events] == [
        ResponseStartedEvent,
        MessageOutputDeltaEvent,
        MessageOutputDeltaEvent,
        ResponseDoneEvent,
    ]


async def test_unknown_event_type_is_kept(client: AsyncConversationsClient, loopback: Loopback) -> None:
    future = {"type": "message.output.sparkle", "id": "x", "glow": 3}
    loopback.reply("POST", PATH, Sse([sse_body(*text_events("a"), future, DONE)]))
    events = [e async for e in client.start_stream(inputs="x", model="m")]
    unknown = [e for e in events if isinstance(e, UnknownEvent)]
    assert len(unknown) == 1 and unknown[0].type_name == "message.output.sparkle"
    assert json.loads(unknown[0].data) == future


async def test_error_event_raises_with_partial_text(
    client: AsyncConversationsClient, loopback: Loopback
) -> None:
    error = {
        "type": "conversation.response.error",
        "message": "Response failed during handoff orchestration",
        "code": 3000,
    }
    loopback.reply("POST", PATH, Sse([sse_body(*text_events("Let", " me")), sse_body(error)]))
    seen = []
    with pytest.raises(mc.StreamError) as info:
        async with client.start_stream(inputs="x", model="m") as stream:
            async for t in stream.text_stream():
                seen.append(t)
    err = info.value
    assert err.code == 3000 and "handoff orchestration" in str(err)
    assert seen == ["Let", " me"]
    assert err.partial is not None and err.partial.output_text == "Let me"
    assert err.conversation_id == "conv_s"


async def test_disconnect_mid_stream_keeps_partial_and_is_not_retried(
    client: AsyncConversationsClient, loopback: Loopback
) -> None:
    loopback.reply(
        "POST",
        PATH,
        Sse([sse_body(*text_events("one", " two")), sse_body(*text_events(" three"))], drop_after=1),
    )
    with pytest.raises(mc.RequestOutcomeUnknownError) as info:
        await client.start_stream(inputs="x", model="m").final_response()
    assert isinstance(info.value, mc.APIConnectionError)
    assert type(info.value.reason) is mc.APIConnectionError  # the body was cut short
    assert info.value.partial is not None and info.value.partial.output_text == "one two"
    assert info.value.conversation_id == "conv_s" and info.value.operation == "start"
    assert loopback.count("POST", PATH) == 1


async def test_body_ending_without_done_is_an_interruption(
    client: AsyncConversationsClient, loopback: Loopback
) -> None:
    loopback.reply("POST", PATH, Sse([sse_body(*text_events("half"))]))
    with pytest.raises(mc.RequestOutcomeUnknownError, match=r"before conversation\.response\.done") as info:
        await client.start_stream(inputs="x", model="m").final_response()
    assert isinstance(info.value.reason, mc.StreamInterruptedError)
    assert info.value.partial is not None and info.value.partial.output_text == "half"


async def test_retry_before_first_event(client: AsyncConversationsClient, loopback: Loopback) -> None:
    good = Sse([sse_body(*text_events("ok"), DONE)])
    loopback.reply(
        "POST", PATH, Json({"message": "busy"}, status=503), Json({"message": "slow"}, status=429), good
    )
    final = await client.start_stream(inputs="x", model="m", max_retries=3).final_response()
    assert final.output_text == "ok"
    assert loopback.count("POST", PATH) == 3


async def test_unknown_outcome_before_first_event_is_not_resent_unless_asked(
    client: AsyncConversationsClient, loopback: Loopback
) -> None:
    good = Sse([sse_body(*text_events("ok"), DONE)])
    loopback.reply("POST", PATH, Drop(), Sse([b""], drop_after=0), good)
    with pytest.raises(mc.RequestOutcomeUnknownError):
        await client.start_stream(inputs="x", model="m", max_retries=3).final_response()
    assert loopback.count("POST", PATH) == 1
    stream = client.start_stream(inputs="x", model="m", max_retries=3, retry_unknown_outcome=True)
    assert (await stream.final_response()).output_text == "ok"
    assert loopback.count("POST", PATH) == 3  # one for the first call, two (one resent) for the second


async def test_stream_status_error_is_typed(client: AsyncConversationsClient, loopback: Loopback) -> None:
    loopback.reply("POST", PATH, Json({"detail": "Unauthorized"}, status=401))
    with pytest.raises(mc.AuthenticationError):
        async with client.start_stream(inputs="x", model="m"):
            pass


async def test_first_event_timeout(client: AsyncConversationsClient, loopback: Loopback) -> None:
    loopback.reply("POST", PATH, Sse([], stall_after=0))
    with pytest.raises(mc.RequestOutcomeUnknownError) as info:
        await client.start_stream(
            inputs="x", model="m", timeout=Timeout(first_event=0.2), max_retries=0
        ).final_response()
    assert isinstance(info.value.reason, mc.APITimeoutError) and info.value.reason.limit == "first_event"


async def test_idle_timeout_keeps_partial(client: AsyncConversationsClient, loopback: Loopback) -> None:
    loopback.reply("POST", PATH, Sse([sse_body(*text_events("so", " far"))], stall_after=1))
    with pytest.raises(mc.RequestOutcomeUnknownError) as info:
        await client.start_stream(inputs="x", model="m", timeout=Timeout(read=0.2)).final_response()
    assert isinstance(info.value.reason, mc.APITimeoutError) and info.value.reason.limit == "read"
    assert info.value.partial is not None and info.value.partial.output_text == "so far"
    assert loopback.count("POST", PATH) == 1


@pytest.mark.aiohttp_only
async def test_the_read_limit_arms_no_timer_per_chunk(
    client: AsyncConversationsClient, loopback: Loopback
) -> None:
    """One timer keeps a stream's read limit: none is armed (and cancelled) at every packet.

    With 10,000 streams open, a timer a packet was a heap of cancelled handles and a busy GC.
    """
    parts = [chr(c) for c in range(ord("a"), ord("a") + 20)]

    async def reply(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for event in [*text_events(*parts), DONE]:
            await resp.write(sse_body(event))
            await asyncio.sleep(0.005)  # one packet an event
        await resp.write_eof()
        return resp

    loopback.reply("POST", PATH, reply)
    limit = 7.25  # told apart from every other timer by its delay
    with TimersAhead(limit) as timers:
        async with client.start_stream(inputs="x", model="m", timeout=Timeout(read=limit)) as stream:
            text = "".join([t async for t in stream.text_stream()])
    assert text == "".join(parts)
    assert len(timers.armed) <= 4, f"{len(timers.armed)} read timers for {len(parts) + 3} packets"
    assert timers.pending() == []  # the stream's end cancelled its timer


@pytest.mark.aiohttp_only
async def test_closing_an_idle_stream_from_another_task_cancels_its_read_timer(
    client: AsyncConversationsClient, loopback: Loopback
) -> None:
    loopback.reply("POST", PATH, Sse([sse_body(*text_events("a"))], stall_after=1))
    limit = 7.25
    with TimersAhead(limit) as timers:
        stream = client.start_stream(inputs="x", model="m", timeout=Timeout(read=limit))
        first = await stream.__anext__()
        reader = asyncio.create_task(stream.final_response())
        await asyncio.sleep(0.05)  # the reader waits on a silent server
        assert timers.pending()
        await stream.aclose()
        with pytest.raises(mc.MistralError):
            await reader
    assert first.type == "conversation.response.started"
    assert timers.pending() == []


async def test_a_server_silent_mid_body_times_out_after_the_read_limit(
    client: AsyncConversationsClient, loopback: Loopback
) -> None:
    loopback.reply("POST", PATH, Sse([sse_body(*text_events("a"))], stall_after=1))
    limit = 0.3
    stream = client.start_stream(inputs="x", model="m", timeout=Timeout(read=limit), max_retries=0)
    async with stream:
        await stream.__anext__()
        started = asyncio.get_running_loop().time()
        with pytest.raises(mc.RequestOutcomeUnknownError) as info:
            await stream.final_response()
        waited = asyncio.get_running_loop().time() - started
    reason = info.value.reason
    assert isinstance(reason, mc.APITimeoutError) and reason.limit == "read"
    assert isinstance(reason.__cause__, ReadTimeout)  # the transport's own error for a silent server
    assert limit - 0.05 <= waited < limit + 0.5


async def test_stream_total_timeout(client: AsyncConversationsClient, loopback: Loopback) -> None:
    loopback.reply("POST", PATH, Sse([sse_body(*text_events("x"))], stall_after=1))
    with pytest.raises(mc.RequestOutcomeUnknownError) as info:
        await client.start_stream(
            inputs="x", model="m", timeout=Timeout(read=None, stream_total=0.3)
        ).final_response()
    assert isinstance(info.value.reason, mc.APITimeoutError) and info.value.reason.limit == "stream_total"


async def test_connect_timeout(unaccepting_port: int) -> None:
    async with AsyncConversationsClient(
        API_KEY, base_url=f"http://127.0.0.1:{unaccepting_port}", backoff=FAST_BACKOFF
    ) as c:
        with pytest.raises(mc.APITimeoutError) as info:
            await c.start_stream(
                inputs="x", model="m", timeout=Timeout(connect=0.2), max_retries=0
            ).final_response()
    assert info.value.limit == "connect"


async def test_a_success_that_is_not_an_event_stream_is_a_decode_error(
    client: AsyncConversationsClient, loopback: Loopback
) -> None:
    loopback.reply("POST", PATH, Json({"conversation_id": "c", "outputs": [], "usage": {}}))
    with pytest.raises(
        mc.ResponseDecodeError, match="expected an event stream, got application/json"
    ) as info:
        await client.start_stream(inputs="x", model="m").final_response()
    assert b'"conversation_id"' in info.value.body
    assert loopback.count("POST", PATH) == 1


async def test_the_suite_runs_on_the_event_loop_it_was_asked_for() -> None:
    loop = type(asyncio.get_running_loop()).__module__
    wanted = os.environ.get("MISTRAL_CONV_TEST_LOOP", "asyncio")
    assert loop.startswith("uvloop" if wanted == "uvloop" else "asyncio"), loop
