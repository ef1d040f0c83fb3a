"""AsyncConversationsClient: one short method per endpoint of the Conversations API."""

from __future__ import annotations

import difflib
import functools
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar, Unpack
from urllib.parse import urlencode, urlsplit

import msgspec
from msgspec import UNSET

from . import _aiohttp
from ._build import conversation_path, encode_body, inputs_value, require_non_negative
from ._calls import Call, PlainCall, RawResponse, Runtime
from ._closing import AsyncClosing
from ._errors import InvalidRequestError, ResponseDecodeError
from ._options import Backoff, Timeout
from ._params import (
    OPTION_KEYS,
    AppendParams,
    ClientOptions,
    ListParams,
    RequestOptions,
    RestartParams,
    StartParams,
)
from ._retry import RetryPolicy
from ._sse import DEFAULT_MAX_EVENT_SIZE
from ._streaming import ConversationStream
from ._transport import Transport, is_loopback
from ._version import __version__
from .models import (
    AppendRequest,
    Conversation,
    ConversationDecoder,
    ConversationHistory,
    ConversationMessages,
    ConversationResponse,
    ModelDecoder,
    RestartRequest,
    StartRequest,
)

__all__ = ["AsyncConversationsClient"]

log = logging.getLogger("mistral_conv")

DEFAULT_BASE_URL = "https://api.mistral.ai"
DEFAULT_MAX_BODY = 64 * 1024 * 1024
DEFAULT_MAX_STREAM_SIZE = 256 * 1024 * 1024
USER_AGENT = f"mistral_conv/{__version__}"
T = TypeVar("T")

_response: ModelDecoder[ConversationResponse] = ModelDecoder(ConversationResponse)
_history: ModelDecoder[ConversationHistory] = ModelDecoder(ConversationHistory)
_messages: ModelDecoder[ConversationMessages] = ModelDecoder(ConversationMessages)


def _decode(resp: RawResponse, decode: Callable[[bytes], T]) -> T:
    try:
        return decode(resp.body)
    except msgspec.DecodeError as exc:
        raise ResponseDecodeError(
            f"unexpected response body: {exc}",
            body=resp.body,
            status=resp.status,
            request_id=resp.request_id,
        ) from None


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
    """Request headers whose ``repr`` hides the credentials (they hold the API key)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr({k: ("<redacted>" if k.lower() in _SECRET else v) for k, v in self.items()})


_SECRET = frozenset({"authorization", "proxy-authorization", "cookie"})


def _base_url(base_url: str, has_key: bool, allow_insecure_http: bool) -> str:
    """``base_url`` checked: an http(s) URL, and no key in plain text to a non-loopback host."""
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


@functools.cache
def _known(allowed: Any) -> frozenset[str]:
    return frozenset(allowed.__required_keys__ | allowed.__optional_keys__)


def _split(operation: str, params: Mapping[str, Any], allowed: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split keyword arguments into body fields and per-call options, refusing unknown names."""
    known = _known(allowed)
    fields: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for key, value in params.items():
        if key not in known:
            raise InvalidRequestError(key, _unknown_argument(key, operation, known))
        (options if key in OPTION_KEYS else fields)[key] = value
    return fields, options


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
    """Why ``key`` is refused, with the argument that was probably meant."""
    problem = f"is not an argument of {operation}()"
    if key in _COMPLETION_ARGS and "completion_args" in known:
        return f"{problem}; it is a field of completion_args: completion_args={{{key!r}: ...}}"
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return f"{problem}; did you mean {close[0]!r}?" if close else problem


class AsyncConversationsClient(AsyncClosing):
    """Async client of Mistral's Beta Conversations API.

    ``api_key`` falls back to ``MISTRAL_API_KEY``; ``base_url`` to
    ``MISTRAL_BASE_URL``, then ``https://api.mistral.ai``. Use it as an async
    context manager, or call :meth:`aclose` when done. The HTTP session is
    created on first use, inside the running event loop.

    Every method takes the body fields as keyword arguments, plus per-call
    ``timeout``, ``max_retries``, ``extra_headers``, ``extra_query`` and
    (with a body) ``extra_body`` for fields this version does not know yet.
    Bad arguments raise :class:`InvalidRequestError` before anything is
    sent; API failures raise :class:`APIError` subclasses. The client options
    (``base_url``, ``timeout``, ``max_retries``, ``retry_unknown_outcome``,
    ``backoff``, ``max_connections``, ``default_headers``, ``verify_ssl``,
    ``allow_insecure_http``, ``max_event_size``, ``max_response_size``,
    ``log_bodies``, ``transport``) are described in :class:`ClientOptions`.

    ``start``, ``append`` and ``restart`` (and their streams) store a turn: a failure
    after such a request went out raises :class:`RequestOutcomeUnknownError` instead
    of sending it again, unless ``retry_unknown_outcome=True``.
    """

    def __init__(self, api_key: str | None = None, **options: Unpack[ClientOptions]) -> None:
        _split("AsyncConversationsClient", options, ClientOptions)
        max_retries = options.get("max_retries", 2)
        require_non_negative("max_retries", max_retries)
        self.timeout = Timeout.of(options.get("timeout"))
        self.max_retries = max_retries
        self.retry_unknown_outcome = bool(options.get("retry_unknown_outcome", False))
        key = api_key if api_key is not None else os.environ.get("MISTRAL_API_KEY")
        if key is not None and not isinstance(key, str):
            raise InvalidRequestError("api_key", f"must be a string, got {type(key).__name__}")
        url = options.get("base_url") or os.environ.get("MISTRAL_BASE_URL") or DEFAULT_BASE_URL
        self.base_url = _base_url(url, bool(key), options.get("allow_insecure_http", False))
        headers = Headers({"User-Agent": USER_AGENT, **(options.get("default_headers") or {})})
        if key:
            check_header_value("api_key", key)
            headers["Authorization"] = f"Bearer {key}"
        for name, value in (options.get("default_headers") or {}).items():
            check_header(f"default_headers[{name!r}]", name, value)
        self._headers = headers
        # The real API refuses every call without a key: say how to give one, before sending.
        self._no_key = not key and (urlsplit(self.base_url).hostname or "").endswith("mistral.ai")
        transport = options.get("transport")
        if transport is None:
            transport = _aiohttp.AiohttpTransport(
                max_connections=options.get("max_connections", 100),
                verify_ssl=options.get("verify_ssl", True),
                allow_insecure_http=options.get("allow_insecure_http", False),
            )
        self._transport: Transport = transport
        self._rt = Runtime(
            transport,
            RetryPolicy(options.get("backoff") or Backoff()),
            max_body_size=options.get("max_response_size", DEFAULT_MAX_BODY),
            max_event_size=options.get("max_event_size", DEFAULT_MAX_EVENT_SIZE),
            max_stream_size=options.get("max_stream_size", DEFAULT_MAX_STREAM_SIZE),
        )
        self.log_bodies = options.get("log_bodies", False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    @property
    def transport(self) -> Transport:
        """The transport this client sends through."""
        return self._transport

    async def aclose(self) -> None:
        """Close the client: every call and stream in flight ends at once with ``ClientClosedError``,
        then the connections close. Later calls raise ``ClientClosedError``. Idempotent."""
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
        require_non_negative("max_retries", max_retries)
        headers = Headers(self._headers)
        headers["Accept"] = "text/event-stream" if stream else "application/json"
        if body is not None:
            headers["Content-Type"] = "application/json"
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
        return Call(
            method,
            path,
            operation,
            max_retries=self.max_retries if max_retries is None else max_retries,
            retry_unknown=self.retry_unknown_outcome if retry_unknown is None else bool(retry_unknown),
            conversation_id=conversation_id,
            url=url,
            headers=headers,
            body=body,
            timeout=Timeout.of(options.get("timeout"), self.timeout),
            stream=stream,
        )

    def _body_call(
        self,
        operation: str,
        path: str,
        params: Mapping[str, Any],
        stream: bool,
        conversation_id: str | None = None,
    ) -> Call:
        spec, model, inputs_required = _OPERATIONS[operation]
        fields, options = _split(operation, params, spec)
        fields["inputs"] = inputs_value(fields.get("inputs", UNSET), required=inputs_required)
        if operation == "start":
            has_model = fields.get("model") is not None
            if has_model == (fields.get("agent_id") is not None):
                raise InvalidRequestError("model/agent_id", "give exactly one of model and agent_id")
        elif operation == "restart":
            entry = fields.get("from_entry_id")
            if not isinstance(entry, str) or not entry:
                raise InvalidRequestError("from_entry_id", "must be a non-empty string")
        body = encode_body(model(stream=stream, **fields), options.get("extra_body"))
        return self._call(
            "POST",
            path,
            options,
            operation=operation,
            body=body,
            stream=stream,
            conversation_id=conversation_id,
        )

    async def _send(self, call: Call) -> RawResponse:
        if self.log_bodies and call.body is not None:
            log.debug("%s %s request body: %s", call.method, call.path, _clip(call.body))
        raw = await PlainCall(self._rt, call).run()
        if self.log_bodies:
            log.debug("%s %s response body: %s", call.method, call.path, _clip(raw.body))
        return raw

    async def _get(self, path: str, options: Mapping[str, Any], decode: Callable[[bytes], T], op: str) -> T:
        _split(op, options, RequestOptions)
        return _decode(await self._send(self._call("GET", path, options, operation=op)), decode)

    def _stream(self, call: Call) -> ConversationStream:
        if self.log_bodies and call.body is not None:
            log.debug("%s %s request body: %s", call.method, call.path, _clip(call.body))
        return ConversationStream(self._rt, call)

    # -- the operations --------------------------------------------------

    async def start(self, **params: Unpack[StartParams]) -> ConversationResponse:
        """Start a conversation with a ``model`` or an ``agent_id`` and run it on ``inputs``.

        ``inputs`` is a string (one user message) or a list of entries, as
        structs or dicts. Returns the new entries and the usage. A failure after
        the request went out raises :class:`RequestOutcomeUnknownError` rather than
        starting a second conversation.
        """
        call = self._body_call("start", "/v1/conversations", params, False)
        return _decode(await self._send(call), _response.decode)

    def start_stream(self, **params: Unpack[StartParams]) -> ConversationStream:
        """Like :meth:`start`, streamed. Arguments are checked now; nothing is sent until
        ``async with`` is entered or the stream is first read."""
        return self._stream(self._body_call("start", "/v1/conversations", params, True))

    async def append(self, conversation_id: str, **params: Unpack[AppendParams]) -> ConversationResponse:
        """Append ``inputs`` (and/or ``tool_confirmations``) to a conversation and run it.

        A failure after the request went out raises :class:`RequestOutcomeUnknownError`
        rather than appending the turn twice.
        """
        path = conversation_path(conversation_id)
        call = self._body_call("append", path, params, False, conversation_id)
        return _decode(await self._send(call), _response.decode)

    def append_stream(self, conversation_id: str, **params: Unpack[AppendParams]) -> ConversationStream:
        """Like :meth:`append`, streamed (sent on ``async with`` or the first read)."""
        path = conversation_path(conversation_id)
        return self._stream(self._body_call("append", path, params, True, conversation_id))

    async def restart(self, conversation_id: str, **params: Unpack[RestartParams]) -> ConversationResponse:
        """Branch a new conversation from entry ``from_entry_id`` of ``conversation_id`` and run it.

        A failure after the request went out raises :class:`RequestOutcomeUnknownError`
        rather than creating a second branch.
        """
        path = conversation_path(conversation_id, "/restart")
        call = self._body_call("restart", path, params, False, conversation_id)
        return _decode(await self._send(call), _response.decode)

    def restart_stream(self, conversation_id: str, **params: Unpack[RestartParams]) -> ConversationStream:
        """Like :meth:`restart`, streamed (sent on ``async with`` or the first read)."""
        path = conversation_path(conversation_id, "/restart")
        return self._stream(self._body_call("restart", path, params, True, conversation_id))

    async def get(self, conversation_id: str, **options: Unpack[RequestOptions]) -> Conversation:
        """Fetch one conversation: a ``ModelConversation`` or an ``AgentConversation``."""
        return await self._get(conversation_path(conversation_id), options, ConversationDecoder.one, "get")

    async def list(self, **params: Unpack[ListParams]) -> list[Conversation]:
        """One page of conversations, newest first (``page`` is 0-based)."""
        fields, options = _split("list", params, ListParams)
        query: dict[str, str] = {}
        for key in ("page", "page_size"):
            if key in fields:
                require_non_negative(key, fields[key])
                query[key] = str(fields[key])
        if fields.get("metadata") is not None:
            query["metadata"] = msgspec.json.encode(fields["metadata"]).decode()
        call = self._call("GET", "/v1/conversations", options, operation="list", params=query)
        return _decode(await self._send(call), ConversationDecoder.many)

    async def iter_conversations(
        self,
        *,
        page_size: int = 100,
        metadata: Mapping[str, Any] | None = None,
        **options: Unpack[RequestOptions],
    ) -> AsyncIterator[Conversation]:
        """Every conversation, page by page, until a page comes back short."""
        require_non_negative("page_size", page_size)
        if page_size == 0:
            raise InvalidRequestError("page_size", "must be at least 1 to iterate")
        page = 0
        while True:
            items = await self.list(page=page, page_size=page_size, metadata=metadata, **options)
            for item in items:
                yield item
            if len(items) < page_size:
                return
            page += 1

    async def history(self, conversation_id: str, **options: Unpack[RequestOptions]) -> ConversationHistory:
        """Every entry of a conversation, in order."""
        path = conversation_path(conversation_id, "/history")
        return await self._get(path, options, _history.decode, "history")

    async def messages(self, conversation_id: str, **options: Unpack[RequestOptions]) -> ConversationMessages:
        """The input and output messages of a conversation."""
        path = conversation_path(conversation_id, "/messages")
        return await self._get(path, options, _messages.decode, "messages")

    async def delete(self, conversation_id: str, **options: Unpack[RequestOptions]) -> None:
        """Delete a conversation (the API answers 204)."""
        _split("delete", options, RequestOptions)
        await self._send(
            self._call("DELETE", conversation_path(conversation_id), options, operation="delete")
        )


_OPERATIONS: dict[str, tuple[Any, type[msgspec.Struct], bool]] = {
    "start": (StartParams, StartRequest, True),
    "append": (AppendParams, AppendRequest, False),
    "restart": (RestartParams, RestartRequest, False),
}


def _clip(body: bytes, limit: int = 65536) -> str:
    text = body[:limit].decode("utf-8", "replace")
    return text if len(body) <= limit else f"{text}… ({len(body)} bytes)"
