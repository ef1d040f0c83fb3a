"""The async client's core: request building, sending and decoding behind the generated methods.

The public methods themselves, with their explicit signatures, are generated into
`_api.py` from `_spec.py`; each hands its arguments to a method here.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar
from urllib.parse import urlencode, urlsplit

import msgspec
from msgspec import UNSET

from . import _aiohttp
from ._calls import Call, PlainCall, RawResponse, Runtime
from ._closing import AsyncClosing
from ._errors import InvalidRequestError, RequestOutcomeUnknownError
from ._options import Backoff, Timeout, require_non_negative
from ._retry import RetryPolicy
from ._transport import Transport, is_loopback, pool_stats
from ._version import __version__

# Making a client loads only what it needs: the models (`_wire`, `_build`), streams and
# telemetry load with the first call that uses them.
if TYPE_CHECKING:
    from ._events import PoolStats
    from ._info import ConversationPage, ResponseInfo
    from ._runs import ConversationHandle
    from ._streaming import ConversationStream
    from .models import Conversation, ConversationHistory, ConversationMessages, ConversationResponse

__all__ = ["AsyncClientCore", "suggest", "suggest_async"]

log = logging.getLogger("mistral_conv")

DEFAULT_BASE_URL = "https://api.mistral.ai"
DEFAULT_MAX_BODY = 64 * 1024 * 1024
DEFAULT_MAX_STREAM_SIZE = 256 * 1024 * 1024
USER_AGENT = f"mistral_conv/{__version__}"
T = TypeVar("T")

_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# Headers that frame the message or route it: the transport sets them, a caller must not.
_FRAMING = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer"}
)


def check_header_value(name: str, value: object) -> None:
    """Refuse a header value that is not a string, or holds CR, LF or NUL (header injection)."""
    if not isinstance(value, str):
        raise InvalidRequestError(name, f"must be a string, got {type(value).__name__}")
    if any(c in value for c in "\r\n\0"):
        raise InvalidRequestError(name, "must not contain CR, LF or NUL characters")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidRequestError(name, "must hold Latin-1 characters only (HTTP header text)") from None


def check_header(field: str, name: object, value: object) -> None:
    """Refuse a header whose name is not an HTTP token or is a framing header, or whose value is bad."""
    if not isinstance(name, str) or not name or not set(name) <= _TOKEN:
        raise InvalidRequestError(field, f"{name!r} is not a valid header name")
    if name.lower() in _FRAMING:
        raise InvalidRequestError(field, f"{name} is set by the transport and cannot be given")
    check_header_value(field, value)


class Headers(dict[str, str]):
    """Request headers whose `repr` hides the credentials (they hold the API key)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr({k: ("<redacted>" if k.lower() in _SECRET else v) for k, v in self.items()})


_SECRET = frozenset({"authorization", "proxy-authorization", "cookie"})


def _base_url(base_url: str, has_key: bool, allow_insecure_http: bool) -> str:
    """`base_url` checked: an http(s) URL, and no key in plain text to a non-loopback host."""
    if not isinstance(base_url, str):
        raise InvalidRequestError("base_url", f"must be a string, got {type(base_url).__name__}")
    url = base_url.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequestError("base_url", f"must be an http(s) URL, got {base_url!r}")
    if parts.scheme == "http" and has_key and not allow_insecure_http and not is_loopback(parts.hostname):
        raise InvalidRequestError(
            "base_url",
            "refusing to send the API key over plain http to a non-loopback host; "
            "use https, or pass allow_insecure_http=True",
        )
    return url


_COMPLETION_ARGS = frozenset(
    {
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "temperature",
        "top_p",
        "max_tokens",
        "random_seed",
        "prediction",
        "response_format",
        "tool_choice",
        "reasoning_effort",
    }
)


def _unknown_argument(key: str, operation: str, known: frozenset[str]) -> str:
    """Why `key` is refused, with the argument that was probably meant."""
    problem = f"is not an argument of {operation}()"
    if key in _COMPLETION_ARGS and "completion_args" in known:
        return f"{problem}; it is a field of completion_args: completion_args={{{key!r}: ...}}"
    import difflib  # only a misspelt argument needs it

    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return f"{problem}; did you mean {close[0]!r}?" if close else problem


P = ParamSpec("P")
R = TypeVar("R")


def suggest(method: Callable[P, R]) -> Callable[P, R]:
    """Wrap a public method so that an unknown keyword raises `InvalidRequestError` with the
    argument that was probably meant ("did you mean", or a pointer into `completion_args`), and a
    missing one names itself. See `suggest_async` for coroutine functions."""

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except TypeError as exc:
            if _raised_inside(exc):
                raise
            raise _misuse(method, args, kwargs) or exc from None

    return call


def suggest_async(method: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """`suggest` for a coroutine function; the wrapper is one too (`inspect` and mocks see it)."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            coroutine = method(*args, **kwargs)
        except TypeError as exc:
            raise _misuse(method, args, kwargs) or exc from None
        return await coroutine

    return call


def _raised_inside(exc: BaseException) -> bool:
    """Whether `exc` came from inside the called method, not from binding its arguments."""
    tb = exc.__traceback__
    return tb is None or tb.tb_next is not None


def _misuse(method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Exception | None:
    """The `InvalidRequestError` for a call that did not bind: an unknown or a missing keyword."""
    params = inspect.signature(method).parameters
    positional = [p for p in params.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
    if len(args) > len(positional):  # arguments given by position: Python's own message says it best
        return None
    known = frozenset(params) - {"self"}
    name = method.__name__
    operation = type(args[0]).__name__ if name == "__init__" and args else name
    for key in kwargs:
        if key not in known:
            return InvalidRequestError(key, _unknown_argument(key, operation, known))
    for param in params.values():
        if param.kind is param.KEYWORD_ONLY and param.default is param.empty and param.name not in kwargs:
            return InvalidRequestError(param.name, f"is required: {operation}({param.name}=...)")
    return None


class AsyncClientCore(AsyncClosing):
    """The work behind `AsyncConversationsClient`'s generated methods (see `_api.py`)."""

    def _setup(self, api_key: str | None, options: dict[str, Any]) -> None:
        max_retries: int = options["max_retries"]
        require_non_negative("max_retries", max_retries)
        self.timeout = Timeout.of(options["timeout"])
        self.max_retries = max_retries
        self.retry_unknown_outcome = bool(options["retry_unknown_outcome"])
        key = api_key if api_key is not None else os.environ.get("MISTRAL_API_KEY")
        if key is not None and not isinstance(key, str):
            raise InvalidRequestError("api_key", f"must be a string, got {type(key).__name__}")
        url = options["base_url"] or os.environ.get("MISTRAL_BASE_URL") or DEFAULT_BASE_URL
        self.base_url = _base_url(url, bool(key), options["allow_insecure_http"])
        default_headers = options["default_headers"] or {}
        headers = Headers({"User-Agent": USER_AGENT, **default_headers})
        if key:
            check_header_value("api_key", key)
            headers["Authorization"] = f"Bearer {key}"
        for name, value in default_headers.items():
            check_header(f"default_headers[{name!r}]", name, value)
        self._headers = headers
        # Each call's headers start as a copy of one of these: (stream, with a JSON body) -> headers.
        self._header_sets: dict[tuple[bool, bool], Headers] = {}
        for stream in (False, True):
            for with_body in (False, True):
                base = Headers(headers)
                base["Accept"] = "text/event-stream" if stream else "application/json"
                if with_body:
                    base["Content-Type"] = "application/json"
                self._header_sets[stream, with_body] = base
        # The real API refuses every call without a key: say how to give one, before sending.
        self._no_key = not key and (urlsplit(self.base_url).hostname or "").endswith("mistral.ai")
        transport = options["transport"]
        if transport is None:
            transport = _aiohttp.AiohttpTransport(
                max_connections=options["max_connections"],
                verify_ssl=options["verify_ssl"],
                allow_insecure_http=options["allow_insecure_http"],
            )
        self._transport: Transport = transport
        self._rt = Runtime(
            transport,
            RetryPolicy(options["backoff"] or Backoff()),
            max_body_size=options["max_response_size"],
            max_event_size=options["max_event_size"],
            max_stream_size=options["max_stream_size"],
        )
        self.log_bodies = bool(options["log_bodies"])
        hooks = (options["on_request"], options["on_response"], options["on_retry"])
        provider = options["tracer_provider"]
        # With no provider, hook or opentelemetry, there is nothing to report to: no observer
        # (`Observer.create` would say None), and telemetry is not even imported.
        if provider is not None or any(h is not None for h in hooks) or "opentelemetry.trace" in sys.modules:
            from ._telemetry import Observer

            self._rt.obs = Observer.create(provider, bool(options["trace_content"]), *hooks, self.base_url)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    @property
    def transport(self) -> Transport:
        """The transport this client sends through."""
        return self._transport

    def pool_stats(self) -> PoolStats | None:
        """The connection pool now: connections open, in use, and requests waiting for one.

        `None` when the transport keeps no pool it can report (a transport of your own
        without a `pool_stats()` method). Cheap: it only counts.
        """
        return pool_stats(self._transport)

    async def aclose(self) -> None:
        """Close the client: every call and stream in flight ends at once with `ClientClosedError`,
        then the connections close. Later calls raise `ClientClosedError`. Idempotent."""
        await self._rt.aclose()

    # -- request plumbing ------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        options: Mapping[str, Any],
        *,
        operation: str,
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
        stream: bool = False,
        conversation_id: str | None = None,
    ) -> Call:
        if self._no_key:
            raise InvalidRequestError(
                "api_key", f"no API key for {self.base_url}: pass api_key=... or set MISTRAL_API_KEY"
            )
        max_retries = options.get("max_retries")
        if max_retries is not None:
            require_non_negative("max_retries", max_retries)
        headers = Headers(self._header_sets[stream, body is not None])
        extra_headers = options.get("extra_headers")
        if extra_headers:
            for name, value in extra_headers.items():
                check_header(f"extra_headers[{name!r}]", name, value)
            headers.update(extra_headers)
        extra_query = options.get("extra_query")
        if extra_query:
            for name, value in extra_query.items():
                if not isinstance(name, str) or not isinstance(value, str | int | float):
                    raise InvalidRequestError(
                        f"extra_query[{name!r}]", "must map strings to strings or numbers"
                    )
            params = {**(params or {}), **extra_query}
        url = self.base_url + path
        if params:
            url += "?" + urlencode(params)
        retry_unknown = options.get("retry_unknown_outcome")
        timeout = options.get("timeout")
        call = Call(
            method,
            path,
            operation,
            max_retries=self.max_retries if max_retries is None else max_retries,
            retry_unknown=self.retry_unknown_outcome if retry_unknown is None else bool(retry_unknown),
            conversation_id=conversation_id,
            url=url,
            headers=headers,
            body=body,
            timeout=self.timeout if timeout is None else Timeout.of(timeout),
            stream=stream,
        )
        if self._rt.obs is not None:
            call.trace = self._rt.obs.trace(call)
        return call

    def _body_call(
        self,
        operation: str,
        conversation_id: str | None,
        given: Mapping[str, Any],
        options: Mapping[str, Any],
        stream: bool,
    ) -> Call:
        from ._build import conversation_path, encode_body, inputs_value
        from ._wire import OPERATIONS

        model, inputs_required, suffix = OPERATIONS[operation]
        path = "/v1/conversations" if conversation_id is None else conversation_path(conversation_id, suffix)
        fields = {k: v for k, v in given.items() if v is not None}
        fields["inputs"] = inputs_value(fields.get("inputs", UNSET), required=inputs_required)
        if operation == "start":
            if ("model" in fields) == ("agent_id" in fields):
                raise InvalidRequestError("model/agent_id", "give exactly one of model and agent_id")
        elif operation == "restart":
            entry = fields.get("from_entry_id")
            if not isinstance(entry, str) or not entry:
                raise InvalidRequestError("from_entry_id", "must be a non-empty string")
        body = encode_body(model(stream=stream, **fields), options["extra_body"])
        if self.log_bodies:
            log.debug("POST %s request body: %s", path, _clip(body))
        return self._call(
            "POST",
            path,
            options,
            operation=operation,
            body=body,
            stream=stream,
            conversation_id=conversation_id,
        )

    def _send(self, call: Call) -> Awaitable[RawResponse]:
        """The call's run, to await (no coroutine of its own: one frame fewer on every resumption)."""
        run: Awaitable[RawResponse] = PlainCall(self._rt, call).run()
        if call.trace is not None:
            run = call.trace.plain(run)
        return self._logged(call, run) if self.log_bodies else run

    @staticmethod
    async def _logged(call: Call, run: Awaitable[RawResponse]) -> RawResponse:
        raw = await run
        log.debug("%s %s response body: %s", call.method, call.path, _clip(raw.body))
        return raw

    # -- what the generated methods call ------------------------------------

    async def _turn(
        self,
        operation: str,
        conversation_id: str | None,
        fields: Mapping[str, Any],
        options: Mapping[str, Any],
    ) -> ConversationResponse:
        from ._wire import RESPONSE, decode

        call = self._body_call(operation, conversation_id, fields, options, False)
        return decode(await self._send(call), RESPONSE.decode)

    def _stream(
        self,
        operation: str,
        conversation_id: str | None,
        fields: Mapping[str, Any],
        options: Mapping[str, Any],
    ) -> ConversationStream:
        from ._streaming import ConversationStream

        return ConversationStream(
            self._rt, self._body_call(operation, conversation_id, fields, options, True)
        )

    async def _read(self, operation: str, conversation_id: str, options: Mapping[str, Any]) -> RawResponse:
        from ._build import conversation_path

        path = conversation_path(conversation_id, _READS[operation])
        return await self._send(self._call("GET", path, options, operation=operation))

    async def _read_get(self, conversation_id: str, options: Mapping[str, Any]) -> Conversation:
        from ._wire import decode
        from .models._decoders import ConversationDecoder

        return decode(await self._read("get", conversation_id, options), ConversationDecoder.one)

    async def _read_history(self, conversation_id: str, options: Mapping[str, Any]) -> ConversationHistory:
        from ._wire import HISTORY, decode

        return decode(await self._read("history", conversation_id, options), HISTORY.decode)

    async def _read_messages(self, conversation_id: str, options: Mapping[str, Any]) -> ConversationMessages:
        from ._wire import MESSAGES, decode

        return decode(await self._read("messages", conversation_id, options), MESSAGES.decode)

    async def _list(self, fields: Mapping[str, Any], options: Mapping[str, Any]) -> ConversationPage:
        from ._info import ConversationPage
        from ._wire import decode, info
        from .models._decoders import ConversationDecoder

        query: dict[str, str] = {}
        for key in ("page", "page_size"):
            if fields.get(key) is not None:
                require_non_negative(key, fields[key])
                query[key] = str(fields[key])
        if fields.get("metadata") is not None:
            query["metadata"] = msgspec.json.encode(fields["metadata"]).decode()
        raw = await self._send(
            self._call("GET", "/v1/conversations", options, operation="list", params=query)
        )
        return ConversationPage(decode(raw, ConversationDecoder.many), info(raw))

    async def _iterate(
        self, fields: Mapping[str, Any], options: Mapping[str, Any]
    ) -> AsyncIterator[Conversation]:
        page_size = fields["page_size"]
        require_non_negative("page_size", page_size)
        if page_size == 0:
            raise InvalidRequestError("page_size", "must be at least 1 to iterate")
        page = 0
        while True:
            items = await self._list({**fields, "page": page}, options)
            for item in items:
                yield item
            if len(items) < page_size:
                return
            page += 1

    def _handle(self, conversation_id: str | None, fields: Mapping[str, Any]) -> ConversationHandle[Any]:
        from ._build import conversation_path
        from ._runs import ConversationHandle  # the runs layer sits on top of this module

        given = dict(fields)
        tools = given.pop("tools")
        settings = {k: given.pop(k) for k in ("output_type", "max_rounds", "tool_timeout", "on_tool_error")}
        start = {k: v for k, v in given.items() if v is not None}
        if conversation_id is not None:
            conversation_path(conversation_id)  # checked now, not at the first send
        elif ("model" in start) == ("agent_id" in start):
            raise InvalidRequestError("model/agent_id", "give exactly one of model and agent_id")
        return ConversationHandle(self, conversation_id, start, tools, **settings)  # type: ignore[arg-type]  # self: the generated subclass

    async def _settle(
        self, error: RequestOutcomeUnknownError, fields: Mapping[str, Any], options: Mapping[str, Any]
    ) -> ConversationResponse | None:
        from ._runs import new_conversation_id, settled

        if not isinstance(error, RequestOutcomeUnknownError):
            raise InvalidRequestError(
                "error", f"must be a RequestOutcomeUnknownError, got {type(error).__name__}"
            )
        last = fields["last_entry_id"]
        cid = error.conversation_id if error.operation == "append" else new_conversation_id(error)
        if cid is None:
            raise InvalidRequestError(
                "error", "the new conversation's id never arrived: the turn cannot be looked up"
            )
        if error.operation == "append" and not last:
            raise InvalidRequestError("last_entry_id", "is required to settle an append")
        history = await self._read_history(cid, options)
        return settled(history, last if error.operation == "append" else None)

    async def _delete(self, conversation_id: str, options: Mapping[str, Any]) -> ResponseInfo:
        from ._build import conversation_path
        from ._wire import info

        call = self._call("DELETE", conversation_path(conversation_id), options, operation="delete")
        return info(await self._send(call))


_READS = {"get": "", "history": "/history", "messages": "/messages"}


def _clip(body: bytes, limit: int = 65536) -> str:
    text = body[:limit].decode("utf-8", "replace")
    return text if len(body) <= limit else f"{text}… ({len(body)} bytes)"
