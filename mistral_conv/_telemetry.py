"""OpenTelemetry spans and request hooks: everything a client reports, kept off the paths it does not use.

A client has an `Observer` only when it was given a hook or a tracer provider, or
when `opentelemetry.trace` was imported before the client was made (then the global
tracer provider is used once one is set). Without one, `Runtime.obs` is `None` and
each call pays one attribute check where it starts, per attempt and where it ends; a
stream's per-event path pays nothing. `opentelemetry` is never imported here unless a
caller imported it (or passed a provider).

Spans follow the OpenTelemetry GenAI semantic conventions: `{operation} {model}` CLIENT
spans for turns (`chat`, or `invoke_agent` with an agent id), and `{method} {route}`
CLIENT spans for the other calls (a run's spans are in `_run_spans.py`).
Prompts, outputs, tool arguments and results are recorded only with `trace_content=True`;
an error's message never is (it may quote the request); headers, and so the key, never are.
"""

from __future__ import annotations

import inspect
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import msgspec

from ._content import input_messages, output_messages, response_attributes
from ._errors import InvalidRequestError
from ._events import OnRequest, OnResponse, OnRetry, RequestEvent, ResponseEvent, RetryEvent
from ._transport import HTTPRequest, HTTPResponse, Transport
from ._version import __version__

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from ._calls import Call
    from ._retry import Failure
    from ._streaming import ConversationStream, StreamStatus

__all__ = ["PROVIDER", "CallTrace", "Observer", "json_text"]

log = logging.getLogger("mistral_conv")
T = TypeVar("T")
PROVIDER = "mistral_ai"
_TURNS = frozenset({"start", "append", "restart"})


def _hook(hook: Callable[[T], object], event: T) -> None:
    """Run a hook; what it raises is logged and dropped (a hook never fails a call).

    A hook that returns an awaitable (an object with an async `__call__`, a lambda around
    `queue.put`) is not awaited: the awaitable is closed and a warning says so, instead of
    a "never awaited" warning at some later garbage collection and an event silently lost.
    """
    try:
        result: object = hook(event)
    except Exception:
        log.warning("a %s hook raised; the call goes on", type(event).__name__, exc_info=True)
        return
    if inspect.isawaitable(result):
        close = getattr(result, "close", None)
        if callable(close):
            close()
        log.warning(
            "a %s hook returned an awaitable, which is not awaited: hooks must be plain functions",
            type(event).__name__,
        )


def _is_async(hook: object) -> bool:
    """An async function, or an object whose `__call__` is one (neither would be awaited)."""
    call = None if inspect.isroutine(hook) else inspect.getattr_static(type(hook), "__call__", None)
    return inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(call)


def _telemetry_failed(what: str) -> None:
    """Log a failure of the SDK's own span code: it is reported, never raised into the call."""
    log.warning("recording %s failed; the call goes on", what, exc_info=True)


def _without_userinfo(url: str) -> str:
    """`url` without a `user:password@` part (credentials never go into a hook event)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


class _Body(msgspec.Struct):
    model: str | None = None
    agent_id: str | None = None
    instructions: str | None = None
    inputs: msgspec.Raw = msgspec.Raw()
    completion_args: dict[str, Any] | None = None


_body = msgspec.json.Decoder(_Body)
_REQUEST_ARGS = {
    "temperature": "gen_ai.request.temperature",
    "max_tokens": "gen_ai.request.max_tokens",
    "top_p": "gen_ai.request.top_p",
    "random_seed": "gen_ai.request.seed",
}


class Observer:
    """What one client reports: its hooks, and its tracer (`None`: no spans)."""

    __slots__ = (
        "_pending",
        "_tracer",
        "base_url",
        "content",
        "on_request",
        "on_response",
        "on_retry",
        "safe_base_url",
        "server",
    )

    def __init__(
        self,
        tracer: Tracer | None,
        pending: Any,
        content: bool,
        on_request: OnRequest | None,
        on_response: OnResponse | None,
        on_retry: OnRetry | None,
        base_url: str,
    ) -> None:
        self._tracer = tracer
        self._pending = pending  # opentelemetry.trace, while its global provider is not set yet
        self.content = content
        self.on_request = on_request
        self.on_response = on_response
        self.on_retry = on_retry
        parts = urlsplit(base_url)
        self.server = (parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        self.base_url = base_url
        self.safe_base_url = _without_userinfo(base_url)  # what hook events show of it

    @classmethod
    def create(
        cls,
        tracer_provider: TracerProvider | None,
        trace_content: bool,
        on_request: OnRequest | None,
        on_response: OnResponse | None,
        on_retry: OnRetry | None,
        base_url: str,
    ) -> Observer | None:
        """The client's observer, or `None` when there is nothing to report to."""
        hooks = {"on_request": on_request, "on_response": on_response, "on_retry": on_retry}
        for name, hook in hooks.items():
            if hook is not None and (not callable(hook) or _is_async(hook)):
                raise InvalidRequestError(
                    name, "must be a plain function of one event (hooks are not awaited)"
                )
        tracer, pending = None, None
        otel = sys.modules.get("opentelemetry.trace")  # imported by the caller, or not at all
        if tracer_provider is not None:
            from opentelemetry import trace as otel

            tracer = _tracer_of(otel, tracer_provider)
        elif otel is not None:
            provider = otel.get_tracer_provider()
            if isinstance(provider, otel.ProxyTracerProvider):
                pending = otel  # set later, maybe: looked up at each call until it is
            else:
                tracer = _tracer_of(otel, provider)
        if tracer is None and pending is None and not (on_request or on_response or on_retry):
            return None
        return cls(tracer, pending, trace_content, on_request, on_response, on_retry, base_url)

    @property
    def tracer(self) -> Tracer | None:
        """The tracer, once a provider is known."""
        pending = self._pending
        # opentelemetry's own global (None until a provider is set) spares the public lookup, which
        # reads the environment, on every call; without that global, the public lookup it is.
        if pending is not None and getattr(pending, "_TRACER_PROVIDER", True) is not None:
            provider = pending.get_tracer_provider()
            if not isinstance(provider, pending.ProxyTracerProvider):
                self._tracer, self._pending = _tracer_of(pending, provider), None
        return self._tracer

    def trace(self, call: Call) -> CallTrace | None:
        """The trace of a call about to be made (`None` when neither spans nor hooks are wanted)."""
        tracer = self.tracer
        if tracer is None and not (self.on_request or self.on_response or self.on_retry):
            return None
        return CallTrace(self, call, tracer)


def _tracer_of(otel: Any, provider: Any) -> Tracer | None:
    if isinstance(provider, otel.NoOpTracerProvider):
        return None
    tracer: Tracer = provider.get_tracer("mistral_conv", __version__)
    return tracer


class CallTrace:
    """One call's span and hooks: begun when it is sent, ended by its answer or its failure."""

    __slots__ = ("attempts", "call", "cid", "name", "obs", "request_id", "span", "status", "tracer")

    def __init__(self, obs: Observer, call: Call, tracer: Tracer | None) -> None:
        self.obs = obs
        self.call = call
        self.tracer = tracer
        self.span: Span | None = None
        self.attempts = 0
        self.status: int | None = None
        self.request_id: str | None = None
        self.cid = call.conversation_id
        if self.cid is None and call.path.startswith("/v1/conversations/"):  # a read names it in its path
            self.cid = unquote(call.path.split("?", 1)[0].split("/")[3])
        self.name = ""  # the span's name, to add the answer's model when the request named none

    # -- the span ----------------------------------------------------------------

    def begin(self) -> None:
        """Start the span (a no-op without a tracer)."""
        if self.tracer is None or self.span is not None:
            return
        from opentelemetry.trace import SpanKind

        call, obs = self.call, self.obs
        attrs: dict[str, Any] = {
            "gen_ai.provider.name": PROVIDER,
            "gen_ai.system": PROVIDER,  # the name of the conventions before 1.37
            "http.request.method": call.method,
            "server.address": obs.server[0],
            "server.port": obs.server[1],
            "mistral_conv.operation": call.operation,
            "mistral_conv.stream": call.stream,
        }
        if self.cid is not None:
            attrs["gen_ai.conversation.id"] = self.cid
        if call.operation in _TURNS:
            try:
                name = self._turn_attributes(attrs)
            except Exception:  # a request the span code did not expect: a plainer span, same call
                _telemetry_failed("a turn's request attributes")
                name = "chat "
        else:
            parts = call.path.split("?", 1)[0].split("/")
            if len(parts) > 3:  # /v1/conversations/{id}...
                parts[3] = "{conversation_id}"
            route = "/".join(parts)
            attrs["url.template"] = route
            name = f"{call.method} {route}"
        self.name = name
        try:
            self.span = self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attrs)
        except Exception:
            _telemetry_failed("a call's span")

    def _turn_attributes(self, attrs: dict[str, Any]) -> str:
        try:
            body = _body.decode(self.call.body or b"{}")
        except msgspec.DecodeError:
            body = _Body()
        operation = "invoke_agent" if body.agent_id else "chat"
        attrs["gen_ai.operation.name"] = operation
        if body.model:
            attrs["gen_ai.request.model"] = body.model
        if body.agent_id:
            attrs["gen_ai.agent.id"] = body.agent_id
        for key, name in _REQUEST_ARGS.items():
            value = (body.completion_args or {}).get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                attrs[name] = value
        if self.obs.content:
            if body.instructions:
                attrs["gen_ai.system_instructions"] = json_text(
                    [{"type": "text", "content": body.instructions}]
                )
            if body.inputs:
                attrs["gen_ai.input.messages"] = json_text(input_messages(msgspec.json.decode(body.inputs)))
        target = body.model or body.agent_id
        return f"{operation} {target}" if target else f"{operation} "

    def _end(self, error: BaseException | None, extra: dict[str, Any] | None = None) -> None:
        """End the span with what the call came to; never raises (the call's outcome stands)."""
        span, self.span = self.span, None
        if span is None:
            return
        try:
            attrs: dict[str, Any] = {"mistral_conv.attempts": self.attempts}
            if self.attempts > 1:
                attrs["http.request.resend_count"] = self.attempts - 1
            if self.status is not None:
                attrs["http.response.status_code"] = self.status
            if self.request_id is not None:
                attrs["mistral_conv.request_id"] = self.request_id
            if extra:
                attrs.update(extra)
            if error is not None:
                reason = getattr(error, "reason", None)  # an outcome-unknown turn: the failure behind it
                attrs["error.type"] = type(error).__name__
                if reason is not None:
                    attrs["mistral_conv.error.reason"] = type(reason).__name__
                from opentelemetry.trace import StatusCode

                # never the message: it may quote the inputs
                span.set_status(StatusCode.ERROR, type(error).__name__)
            span.set_attributes(attrs)
            if self.name.endswith(" "):  # a turn that named no model (append, restart): the answer's
                model = (extra or {}).get("gen_ai.response.model")
                span.update_name(f"{self.name}{model}" if model else self.name.rstrip())
        except Exception:
            _telemetry_failed("a call's span attributes")
        finally:
            try:
                span.end()
            except Exception:
                _telemetry_failed("the end of a call's span")

    async def plain(self, run: Awaitable[T]) -> T:
        """Await a plain call inside its span."""
        self.begin()
        try:
            raw = await run
        except BaseException as exc:
            self._end(exc)
            raise
        if self.span is not None:
            body: bytes = getattr(raw, "body", b"")
            try:
                extra = response_attributes(body, self.call.operation in _TURNS, self.obs.content)
            except Exception:  # an answer the span code did not expect: the caller's decoding judges it
                _telemetry_failed("an answer's attributes")
                extra = {}
            self._end(None, extra)
        return raw

    def moved(self, to: StreamStatus, stream: ConversationStream) -> None:
        """A stream changed state: its span begins when it opens and ends when it ends."""
        name = to.value
        if name == "opening":
            self.begin()
        elif name in ("done", "failed", "closed") and self.span is not None:
            extra: dict[str, Any] = {"mistral_conv.stream.status": name}
            try:
                state = stream.state
                if state.conversation_id is not None:
                    extra["gen_ai.conversation.id"] = state.conversation_id
                if state.usage is not None:
                    extra["gen_ai.usage.input_tokens"] = state.usage.prompt_tokens
                    extra["gen_ai.usage.output_tokens"] = state.usage.completion_tokens
                response = state.response()
                extra.update(response_attributes(None, False, False, response))
                if self.obs.content and name == "done":
                    extra["gen_ai.output.messages"] = json_text(
                        output_messages(msgspec.to_builtins(response.outputs))
                    )
            except Exception:  # the stream goes on: only its span is the poorer
                _telemetry_failed("a stream's attributes")
            failure = stream._failure if name == "failed" else None
            self._end(failure, extra)

    # -- attempts ------------------------------------------------------------------

    def transport(self, transport: Transport, number: int) -> Transport:
        """`transport`, reporting attempt `number` to the hooks."""
        return _Attempt(self, transport, number)

    def _event(self, number: int) -> dict[str, Any]:
        call, obs = self.call, self.obs
        url = call.url
        if obs.safe_base_url is not obs.base_url and url.startswith(obs.base_url):
            url = obs.safe_base_url + url[len(obs.base_url) :]
        return {
            "operation": call.operation,
            "method": call.method,
            "url": url,
            "attempt": number,
            "stream": call.stream,
            "conversation_id": self.cid,
        }

    def sending(self, number: int) -> None:
        self.attempts = number
        hook = self.obs.on_request
        if hook is not None:
            _hook(hook, RequestEvent(**self._event(number)))

    def answered(
        self, number: int, status: int | None, request_id: str | None, started: float, error: str | None
    ) -> None:
        self.status, self.request_id = status, request_id
        hook = self.obs.on_response
        if hook is not None:
            elapsed = time.monotonic() - started
            event = ResponseEvent(
                **self._event(number), status=status, request_id=request_id, elapsed=elapsed, error_type=error
            )
            _hook(hook, event)

    def retrying(self, number: int, failure: Failure, delay: float) -> None:
        """Attempt `number` failed and will be sent again after `delay` seconds."""
        error = failure.error
        status: int | None = getattr(error, "status", None)
        kind = type(error).__name__
        if self.span is not None:
            attrs: dict[str, Any] = {
                "mistral_conv.attempt": number,
                "error.type": kind,
                "mistral_conv.delay": delay,
            }
            if status is not None:
                attrs["http.response.status_code"] = status
            self.span.add_event("mistral_conv.retry", attrs)
        hook = self.obs.on_retry
        if hook is not None:
            event = RetryEvent(
                **self._event(number),
                delay=delay,
                error_type=kind,
                outcome=failure.outcome.value,
                status=status,
                request_id=error.request_id if hasattr(error, "request_id") else None,
            )
            _hook(hook, event)


class _Attempt:
    """A transport that reports one attempt to its call's trace (only when the call has one)."""

    __slots__ = ("number", "trace", "transport")

    def __init__(self, trace: CallTrace, transport: Transport, number: int) -> None:
        self.trace = trace
        self.transport = transport
        self.number = number

    async def send(self, request: HTTPRequest) -> HTTPResponse:
        trace, number = self.trace, self.number
        trace.sending(number)
        started = time.monotonic()
        try:
            resp = await self.transport.send(request)
        except BaseException as exc:  # a time limit or a cancellation too: each attempt gets its answer event
            trace.answered(number, None, None, started, type(exc).__name__)
            raise
        trace.answered(number, resp.status, resp.request_id, started, None)
        return resp

    async def aclose(self) -> None:  # the client closes the real transport
        pass


def json_text(value: object) -> str:
    """`value` as JSON text (an attribute value)."""
    return msgspec.json.encode(value).decode()
