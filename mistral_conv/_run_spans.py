"""A tool run's spans: an INTERNAL `invoke_agent` span, a span per round, a span per tool call.

Each round's span holds the turn's own span (`_telemetry.CallTrace`) and an
`execute_tool {name}` span per tool call; spans a tool starts itself nest under its
`execute_tool` span. The round is made the current span only around awaits that do not
yield to the run's caller (sending a turn, running the tools), and the run's span around
each step of the run (so the run's other reads are in it), so no context is attached
across a `yield` of the run's generator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from ._telemetry import PROVIDER, json_text, log

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

    from .models import FunctionCallEntry

__all__ = ["NO_RUN", "RunTrace", "traced_run"]

T = TypeVar("T")


class RunTrace:
    """A run's span, a span per round, and a span per tool call."""

    __slots__ = ("content", "round", "rounds", "span", "tracer")

    def __init__(self, tracer: Tracer | None, content: bool) -> None:
        self.tracer = tracer
        self.content = content
        self.span: Span | None = None
        self.round: Span | None = None
        self.rounds = 0

    def begin(self, model: str | None) -> None:
        from opentelemetry.trace import SpanKind

        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.provider.name": PROVIDER,
            "gen_ai.system": PROVIDER,
        }
        if model:
            attrs["gen_ai.request.model"] = model
        assert self.tracer is not None
        name = f"invoke_agent {model}" if model else "invoke_agent"
        self.span = self.tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=attrs)

    def next_round(self) -> None:
        """A round begins (and the one before it ends)."""
        if self.span is None or self.tracer is None:
            return
        from opentelemetry.trace import SpanKind, set_span_in_context

        self._end_round()
        self.rounds += 1
        self.round = self.tracer.start_span(
            "mistral_conv.round",
            context=set_span_in_context(self.span),
            kind=SpanKind.INTERNAL,
            attributes={"mistral_conv.round": self.rounds},
        )

    def _end_round(self) -> None:
        span, self.round = self.round, None
        if span is not None:
            span.end()

    @contextmanager
    def active(self) -> Iterator[None]:
        """The current round as the current span, for calls and tools started inside (no yield inside)."""
        span = self.round or self.span
        if span is None:
            yield
            return
        from opentelemetry.trace import use_span

        with use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
            yield

    async def tool(
        self,
        run: Callable[[FunctionCallEntry, dict[str, str]], Awaitable[None]],
        call: FunctionCallEntry,
        results: dict[str, str],
    ) -> None:
        """Run one tool call inside its `execute_tool` span."""
        if self.tracer is None:
            await run(call, results)
            return
        from opentelemetry.trace import SpanKind, StatusCode

        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.provider.name": PROVIDER,
            "gen_ai.tool.name": call.name,
            "gen_ai.tool.call.id": call.tool_call_id,
            "gen_ai.tool.type": "function",
        }
        if self.content:
            arguments = call.arguments
            attrs["gen_ai.tool.call.arguments"] = (
                arguments if isinstance(arguments, str) else json_text(arguments)
            )
        with self.tracer.start_as_current_span(
            f"execute_tool {call.name}",
            kind=SpanKind.INTERNAL,
            attributes=attrs,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                await run(call, results)
            except BaseException as exc:
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(StatusCode.ERROR, type(exc).__name__)
                raise
            if self.content and call.tool_call_id in results:
                span.set_attribute("gen_ai.tool.call.result", results[call.tool_call_id])

    def end(self, error: BaseException | None, conversation_id: str | None) -> None:
        """End the round's span and the run's; never raises (the run's outcome stands)."""
        try:
            self._end_round()
        except Exception:
            log.warning("ending a run's round span failed; the run goes on", exc_info=True)
        span, self.span = self.span, None
        if span is None:
            return
        try:
            span.set_attribute("mistral_conv.rounds", self.rounds)
            if conversation_id:
                span.set_attribute("gen_ai.conversation.id", conversation_id)
            if error is not None and not isinstance(error, GeneratorExit):
                from opentelemetry.trace import StatusCode

                span.set_attribute("error.type", type(error).__name__)
                span.set_status(StatusCode.ERROR, type(error).__name__)
        finally:
            try:
                span.end()
            except Exception:
                log.warning("ending a run's span failed; the run goes on", exc_info=True)


NO_RUN = RunTrace(None, False)
"""The run trace of a client without a tracer: every method does nothing."""


async def traced_run(
    trace: RunTrace, model: str | None, rounds: AsyncIterator[T], cid: Callable[[], str | None]
) -> AsyncIterator[T]:
    """`rounds` inside the run's span (which ends with it, however it ends).

    Each step of `rounds` runs with the run's span as the current span, so that the calls a
    run makes outside a round's own turn (reading the history of a conversation it has not
    seen, settling an outcome-unknown turn) are in the run's trace too. The span is never
    current across this generator's own `yield`; a step costs one context attach and detach.
    """
    from opentelemetry import context as otel_context
    from opentelemetry.trace import set_span_in_context

    trace.begin(model)
    run_context = set_span_in_context(trace.span) if trace.span is not None else None
    error: BaseException | None = None
    try:
        while True:
            token = otel_context.attach(run_context) if run_context is not None else None
            try:
                item = await rounds.__anext__()
            except StopAsyncIteration:
                break
            finally:
                if token is not None:
                    otel_context.detach(token)
            yield item
    except BaseException as exc:
        error = exc
        raise
    finally:
        try:
            await rounds.aclose()  # type: ignore[attr-defined]
        except BaseException as exc:  # the rounds' own clean-up failed or was cancelled
            if error is None or isinstance(error, GeneratorExit):
                error = exc
            raise
        finally:
            trace.end(error, cid())  # the run's span and its round's end, whatever the clean-up did
