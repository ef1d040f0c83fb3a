"""OpenTelemetry spans, read back through the SDK's in-memory exporter, against the local server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider, SpanKind, StatusCode

from mistral_conv import (
    AsyncConversationsClient,
    NotFoundError,
    RequestOutcomeUnknownError,
    StreamError,
    UnprocessableEntityError,
)
from mistral_conv._run_spans import RunTrace, traced_run
from mistral_conv.testing import Fault, LocalConversationsServer, ScriptedResponder, call_function, reply_text
from mistral_conv.transport import HTTPRequest, HTTPResponse

from .conftest import FAST_BACKOFF

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-KEY-never-in-a-span-0123456789"
MODEL = "mistral-small-latest"
PROMPT = "PROMPT-text-kept-private"
INSTRUCTIONS = "INSTRUCTIONS-kept-private"
ANSWER = "ANSWER-text-kept-private"
ARGUMENT = "ARGUMENT-kept-private"
RESULT = "RESULT-kept-private"
PRIVATE = (KEY, PROMPT, INSTRUCTIONS, ANSWER, ARGUMENT, RESULT)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    yield tp
    tp.shutdown()


@pytest.fixture
async def server() -> AsyncIterator[LocalConversationsServer]:
    async with LocalConversationsServer(api_key=KEY) as s:
        yield s


def client_of(
    server: LocalConversationsServer, provider: TracerProvider, **options: Any
) -> AsyncConversationsClient:
    return AsyncConversationsClient(
        KEY, base_url=server.url, backoff=FAST_BACKOFF, tracer_provider=provider, **options
    )


def spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return list(exporter.get_finished_spans())


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def common(span: ReadableSpan, server: LocalConversationsServer) -> None:
    a = attrs(span)
    assert span.kind is SpanKind.CLIENT
    assert a["gen_ai.provider.name"] == "mistral_ai"
    assert a["server.address"] == "127.0.0.1"
    assert a["server.port"] == int(server.url.rsplit(":", 1)[1])


def turn_attributes(span: ReadableSpan, response: Any, request_id: str | None, attempts: int) -> None:
    """The attributes of item 4 of the issue on a turn's span: operation, model, conversation id,
    token usage, request id and attempt count (error types: see the failing and retried calls)."""
    a = attrs(span)
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.response.model"] == MODEL
    assert a["gen_ai.conversation.id"] == response.conversation_id
    assert a["gen_ai.usage.input_tokens"] == response.usage.prompt_tokens > 0
    assert a["gen_ai.usage.output_tokens"] == response.usage.completion_tokens > 0
    assert request_id is not None and a["mistral_conv.request_id"] == request_id
    assert a["mistral_conv.attempts"] == attempts


async def test_a_plain_call(
    server: LocalConversationsServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with client_of(server, provider) as client:
        response = await client.start(model=MODEL, inputs=PROMPT, completion_args={"temperature": 0.2})
    [span] = spans(exporter)
    common(span, server)
    a = attrs(span)
    assert span.name == f"chat {MODEL}"
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == MODEL
    assert a["gen_ai.request.temperature"] == 0.2
    assert a["gen_ai.conversation.id"] == response.conversation_id
    assert a["gen_ai.usage.input_tokens"] == response.usage.prompt_tokens > 0
    assert a["gen_ai.usage.output_tokens"] == response.usage.completion_tokens > 0
    assert a["gen_ai.response.id"] == response.outputs[-1].id
    assert a["gen_ai.response.model"] == MODEL
    assert a["mistral_conv.request_id"] == response.request_id is not None
    assert a["mistral_conv.attempts"] == 1
    assert "http.request.resend_count" not in a
    assert a["http.response.status_code"] == 200
    assert span.status.status_code is StatusCode.UNSET


async def test_an_append_is_named_after_the_answers_model(
    server: LocalConversationsServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with client_of(server, provider) as client:
        first = await client.start(model=MODEL, inputs="hi")
        await client.append(conversation_id=first.conversation_id, inputs="again")
        await client.history(first.conversation_id)
    _, append, history = spans(exporter)
    assert append.name == f"chat {MODEL}"
    assert attrs(append)["gen_ai.conversation.id"] == first.conversation_id
    assert attrs(append)["mistral_conv.operation"] == "append"
    assert history.name == "GET /v1/conversations/{conversation_id}/history"
    assert attrs(history)["gen_ai.conversation.id"] == first.conversation_id
    assert "gen_ai.operation.name" not in attrs(history)


async def test_a_stream(
    server: LocalConversationsServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with client_of(server, provider) as client:
        stream = client.start_stream(model=MODEL, inputs=PROMPT)
        assert spans(exporter) == []  # nothing sent yet
        async with stream:
            async for _ in stream:
                pass
        response = await stream.final_response()
    [span] = spans(exporter)
    common(span, server)
    a = attrs(span)
    assert span.name == f"chat {MODEL}"
    assert a["mistral_conv.stream"] is True
    assert a["mistral_conv.stream.status"] == "done"
    assert a["gen_ai.conversation.id"] == response.conversation_id
    assert a["gen_ai.usage.input_tokens"] == response.usage.prompt_tokens > 0
    assert a["gen_ai.usage.output_tokens"] == response.usage.completion_tokens > 0
    assert a["gen_ai.response.id"] == response.outputs[-1].id
    assert a["mistral_conv.request_id"] == stream.request_id is not None
    assert a["mistral_conv.attempts"] == 1
    assert a["gen_ai.request.model"] == MODEL
    turn_attributes(span, response, stream.request_id, 1)


async def test_a_stream_closed_early_and_one_that_fails(
    server: LocalConversationsServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with client_of(server, provider) as client:
        server.inject(Fault.trickle(0.01))  # one event at a time: the stream is still open after the first
        async with client.start_stream(model=MODEL, inputs="a long answer please") as stream:
            await stream.__anext__()
        server.inject(Fault.stream_error())
        with pytest.raises(StreamError):
            async with client.start_stream(model=MODEL, inputs="x") as failing:
                async for _ in failing:
                    pass
    closed, failed = spans(exporter)
    assert attrs(closed)["mistral_conv.stream.status"] == "closed"
    assert "error.type" not in attrs(closed)
    assert attrs(failed)["mistral_conv.stream.status"] == "failed"
    assert attrs(failed)["error.type"] == "StreamError"
    assert failed.status.status_code is StatusCode.ERROR


async def test_a_retried_call(
    server: LocalConversationsServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    server.inject(Fault.error_status(429, retry_after=0.001))
    async with client_of(server, provider) as client:
        response = await client.start(model=MODEL, inputs="hi")
    [span] = spans(exporter)
    a = attrs(span)
    assert a["mistral_conv.attempts"] == 2
    assert a["http.request.resend_count"] == 1
    assert a["mistral_conv.request_id"] == response.request_id
    [retry] = span.events
    assert retry.name == "mistral_conv.retry"
    assert dict(retry.attributes or {})["mistral_conv.attempt"] == 1
    assert dict(retry.attributes or {})["error.type"] == "RateLimitError"
    assert dict(retry.attributes or {})["http.response.status_code"] == 429
    assert span.status.status_code is StatusCode.UNSET
    assert attrs(span)["gen_ai.request.model"] == MODEL
    turn_attributes(span, response, response.request_id, 2)


async def test_failed_calls_carry_the_error_type(
    server: LocalConversationsServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async with client_of(server, provider) as client:
        with pytest.raises(NotFoundError):
            await client.history("conv_missing")
        server.inject(Fault.error_status(500))
        with pytest.raises(RequestOutcomeUnknownError):
            await client.start(model=MODEL, inputs="hi")
    missing, unknown = spans(exporter)
    assert attrs(missing)["error.type"] == "NotFoundError"
    assert attrs(missing)["http.response.status_code"] == 404
    assert missing.status.status_code is StatusCode.ERROR
    assert attrs(unknown)["error.type"] == "RequestOutcomeUnknownError"
    assert attrs(unknown)["mistral_conv.error.reason"] == "InternalServerError"
    assert unknown.status.description == "RequestOutcomeUnknownError"  # the type, never the message


def add(a: int, b: int, note: str) -> str:
    """Add two numbers."""
    return f"{a + b} {RESULT}"


async def test_a_two_round_tool_run(
    server: LocalConversationsServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    server.responder = ScriptedResponder(
        [[call_function("add", {"a": 1, "b": 2, "note": ARGUMENT})], [reply_text(ANSWER)]]
    )

    def add(a: int, b: int, note: str) -> str:
        """Add two numbers (in a worker thread, starting a span of the app's own)."""
        with provider.get_tracer("the app").start_as_current_span("inside the tool"):
            return f"{a + b}"

    async with client_of(server, provider) as client:
        result = await client.conversation(model=MODEL, tools=[add]).send(PROMPT)
    by_name: dict[str, list[ReadableSpan]] = {}
    for span in spans(exporter):
        by_name.setdefault(span.name, []).append(span)
    [run] = by_name[f"invoke_agent {MODEL}"]
    rounds = sorted(by_name["mistral_conv.round"], key=lambda s: attrs(s)["mistral_conv.round"])
    start, append = sorted(by_name[f"chat {MODEL}"], key=lambda s: s.start_time or 0)
    [tool_span] = by_name["execute_tool add"]
    [inner] = by_name["inside the tool"]
    assert inner.parent is not None and inner.parent.span_id == tool_span.context.span_id  # type: ignore[union-attr]
    assert run.parent is None and run.kind is SpanKind.INTERNAL
    assert attrs(run)["gen_ai.operation.name"] == "invoke_agent"
    assert attrs(run)["mistral_conv.rounds"] == 2
    assert attrs(run)["gen_ai.conversation.id"] == result.conversation_id
    assert [attrs(r)["mistral_conv.round"] for r in rounds] == [1, 2]
    assert all(r.parent is not None and r.parent.span_id == run.context.span_id for r in rounds)  # type: ignore[union-attr]

    def parent(span: ReadableSpan) -> int | None:
        return span.parent.span_id if span.parent is not None else None

    assert parent(start) == rounds[0].context.span_id  # type: ignore[union-attr]
    assert parent(tool_span) == rounds[0].context.span_id  # type: ignore[union-attr]
    assert parent(append) == rounds[1].context.span_id  # type: ignore[union-attr]
    assert attrs(start)["mistral_conv.operation"] == "start"
    assert attrs(append)["mistral_conv.operation"] == "append"
    assert attrs(append)["gen_ai.conversation.id"] == result.conversation_id
    t = attrs(tool_span)
    assert t["gen_ai.operation.name"] == "execute_tool"
    assert t["gen_ai.tool.name"] == "add"
    assert t["gen_ai.tool.call.id"]
    usage = [attrs(s)["gen_ai.usage.output_tokens"] for s in (start, append)]
    assert all(n > 0 for n in usage)
    for turn in (start, append):
        a = attrs(turn)
        assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.response.model"] == MODEL
        assert a["gen_ai.conversation.id"] == result.conversation_id
        assert a["gen_ai.usage.input_tokens"] > 0
        assert a["mistral_conv.request_id"] and a["mistral_conv.attempts"] == 1
    assert attrs(start)["gen_ai.request.model"] == MODEL


async def test_a_streamed_run_has_the_same_shape(
    server: LocalConversationsServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    server.responder = ScriptedResponder(
        [[call_function("add", {"a": 1, "b": 2, "note": "n"})], [reply_text("3")]]
    )
    async with (
        client_of(server, provider) as client,
        client.conversation(model=MODEL, tools=[add]).stream("go") as run,
    ):
        async for _ in run:
            pass
    names = sorted(s.name for s in spans(exporter))
    assert names == sorted(
        [
            f"invoke_agent {MODEL}",
            "mistral_conv.round",
            "mistral_conv.round",
            f"chat {MODEL}",
            f"chat {MODEL}",
            "execute_tool add",
        ]
    )
    stream_spans = [s for s in spans(exporter) if s.name == f"chat {MODEL}"]
    rounds = {s.context.span_id for s in spans(exporter) if s.name == "mistral_conv.round"}  # type: ignore[union-attr]
    assert all(s.parent is not None and s.parent.span_id in rounds for s in stream_spans)


async def run_everything(server: LocalConversationsServer, client: AsyncConversationsClient) -> None:
    """A plain call, a stream, a failing call and a tool run, all carrying the private strings."""
    response = await client.start(model=MODEL, inputs=PROMPT, instructions=INSTRUCTIONS)
    await client.append(
        conversation_id=response.conversation_id, inputs=[{"role": "user", "content": PROMPT}]
    )
    async with client.start_stream(model=MODEL, inputs=PROMPT, instructions=INSTRUCTIONS) as stream:
        async for _ in stream:
            pass
    server.inject(Fault.error_status(422))
    with pytest.raises(UnprocessableEntityError):
        await client.start(model=MODEL, inputs=PROMPT)
    server.responder = ScriptedResponder(
        [[call_function("add", {"a": 1, "b": 2, "note": ARGUMENT})], [reply_text(ANSWER)]]
    )
    await client.conversation(model=MODEL, tools=[add], instructions=INSTRUCTIONS).send(PROMPT)


def everything_recorded(exporter: InMemorySpanExporter) -> str:
    """Every span as the exporter would send it: names, attributes, events, status."""
    return "\n".join(span.to_json() for span in spans(exporter))


async def test_no_prompt_output_or_key_in_any_span_by_default(
    server: LocalConversationsServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    server.responder = ScriptedResponder([[reply_text(ANSWER)], [reply_text(ANSWER)], [reply_text(ANSWER)]])
    events: list[object] = []
    hooks = {"on_request": events.append, "on_response": events.append, "on_retry": events.append}
    async with client_of(server, provider, **hooks) as client:
        await run_everything(server, client)
    text = everything_recorded(exporter)
    assert len(spans(exporter)) >= 8
    for private in PRIVATE:
        assert private not in text, private
        assert private not in repr(events), private  # nor in what the hooks receive
    assert "gen_ai.input.messages" not in text and "gen_ai.output.messages" not in text


async def test_content_is_recorded_when_asked_for(
    server: LocalConversationsServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    server.responder = ScriptedResponder([[reply_text(ANSWER)], [reply_text(ANSWER)], [reply_text(ANSWER)]])
    async with client_of(server, provider, trace_content=True) as client:
        await run_everything(server, client)
    text = everything_recorded(exporter)
    for private in (PROMPT, INSTRUCTIONS, ANSWER, ARGUMENT, RESULT):
        assert private in text, private
    assert KEY not in text
    plain = spans(exporter)[0]
    inputs = json.loads(attrs(plain)["gen_ai.input.messages"])
    assert inputs == [{"role": "user", "parts": [{"type": "text", "content": PROMPT}]}]
    outputs = json.loads(attrs(plain)["gen_ai.output.messages"])
    assert outputs[0]["role"] == "assistant" and outputs[0]["parts"][0]["content"] == ANSWER
    stream = spans(exporter)[2]
    assert json.loads(attrs(stream)["gen_ai.output.messages"])[0]["parts"][0]["content"] == ANSWER


async def test_a_no_op_provider_and_no_hooks_leave_the_client_without_an_observer(
    server: LocalConversationsServer,
) -> None:
    async with AsyncConversationsClient(
        KEY, base_url=server.url, tracer_provider=NoOpTracerProvider()
    ) as client:
        assert client._rt.obs is None
        await client.start(model=MODEL, inputs="hi")


def _python(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_without_opentelemetry_imported_nothing_is_imported_or_observed() -> None:
    out = _python(
        "import sys\n"
        "from mistral_conv import AsyncConversationsClient\n"
        "c = AsyncConversationsClient('k', base_url='http://127.0.0.1:9')\n"
        "print(c._rt.obs is None, any(m.startswith('opentelemetry') for m in sys.modules))\n"
    )
    assert out.split() == ["True", "False"]


def test_the_global_provider_set_after_the_client_was_made_is_used() -> None:
    out = _python(
        "import asyncio\n"
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "from mistral_conv import AsyncConversationsClient\n"
        "from mistral_conv.testing import LocalConversationsServer\n"
        "async def main():\n"
        "    async with LocalConversationsServer() as server:\n"
        "        async with AsyncConversationsClient('k', base_url=server.url) as client:\n"
        "            await client.start(model='m', inputs='before')\n"
        "            exporter = InMemorySpanExporter()\n"
        "            provider = TracerProvider()\n"
        "            provider.add_span_processor(SimpleSpanProcessor(exporter))\n"
        "            trace.set_tracer_provider(provider)\n"
        "            await client.start(model='m', inputs='after')\n"
        "            print([s.name for s in exporter.get_finished_spans()])\n"
        "asyncio.run(main())\n"
    )
    assert out.strip() == "['chat m']"


# -- the span code never breaks a call, and every span it starts ends ------------------------


class _Answer(HTTPResponse):
    """A 200 JSON answer from memory."""

    def __init__(self, body: bytes) -> None:
        super().__init__(200, {"content-type": "application/json", "x-request-id": "req-odd"})
        self._body = body

    async def _chunks(self) -> AsyncIterator[bytes]:
        yield self._body

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def aclose(self) -> None:
        pass


class _Canned:
    """A transport answering every request with the same body."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        return _Answer(self.body)

    async def aclose(self) -> None:
        pass


async def test_an_answer_the_span_code_does_not_expect_fails_as_it_does_untraced(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    # An output whose content is neither a string nor a list of chunks: the SDK's own decoding
    # judges it, as without tracing; the span code neither raises its own TypeError nor leaks a span.
    odd = json.dumps(
        {
            "object": "conversation.response",
            "conversation_id": "conv_odd",
            "outputs": [{"type": "message.output", "id": "out_1", "role": "assistant", "content": 5}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    ).encode()
    raised: list[type[BaseException]] = []
    for options in ({}, {"tracer_provider": provider, "trace_content": True}):
        async with AsyncConversationsClient(
            KEY, base_url="http://127.0.0.1:9", transport=_Canned(odd), **options
        ) as client:
            try:
                await client.start(model=MODEL, inputs=PROMPT)
            except Exception as exc:
                raised.append(type(exc))
            else:
                raised.append(type(None))
    untraced, traced = raised
    assert traced is untraced and traced is not TypeError
    [span] = spans(exporter)
    assert attrs(span)["gen_ai.conversation.id"] == "conv_odd"


async def test_a_run_whose_clean_up_fails_still_ends_its_spans(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async def rounds() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            raise RuntimeError("the round's clean-up failed")  # e.g. a stream that would not close

    trace = RunTrace(provider.get_tracer("test"), False)
    run = traced_run(trace, MODEL, rounds(), lambda: "conv_1")
    assert await run.__anext__() == 1
    trace.next_round()
    with pytest.raises(RuntimeError, match="clean-up failed"):
        await run.aclose()  # type: ignore[attr-defined]
    names = sorted(s.name for s in spans(exporter))
    assert names == [f"invoke_agent {MODEL}", "mistral_conv.round"]
    [run_span] = [s for s in spans(exporter) if s.name.startswith("invoke_agent")]
    assert attrs(run_span)["error.type"] == "RuntimeError"
    assert attrs(run_span)["gen_ai.conversation.id"] == "conv_1"


async def test_the_history_a_run_reads_first_is_in_the_runs_trace(
    server: LocalConversationsServer, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    # A handle on a conversation it has not seen reads its history before the first round.
    async with AsyncConversationsClient(KEY, base_url=server.url) as untraced:
        first = await untraced.start(model=MODEL, inputs="hi")
    async with client_of(server, provider) as client:
        await client.conversation(first.conversation_id, tools=[add]).send("again")
    by_name = {s.name: s for s in spans(exporter)}
    run = by_name["invoke_agent"]  # no model named: a conversation's own
    history = by_name["GET /v1/conversations/{conversation_id}/history"]
    assert history.parent is not None and history.parent.span_id == run.context.span_id  # type: ignore[union-attr]
    assert history.context.trace_id == run.context.trace_id  # type: ignore[union-attr]
