"""AsyncConversationsClient: one short method per endpoint of the Conversations API."""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar, Unpack

import msgspec
from msgspec import UNSET

from ._build import conversation_path, encode_body, inputs_value, require_non_negative
from ._closing import AsyncClosing
from ._errors import InvalidRequestError, ResponseDecodeError
from ._options import Timeout
from ._params import (
    OPTION_KEYS,
    AppendParams,
    ClientOptions,
    ListParams,
    RequestOptions,
    RestartParams,
    StartParams,
)
from ._sse import DEFAULT_MAX_EVENT_SIZE
from ._streaming import ConversationStream
from ._transport import DEFAULT_MAX_BODY, Request, Response, Transport, check_header_value
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

DEFAULT_BASE_URL = "https://api.mistral.ai"
T = TypeVar("T")

_response: ModelDecoder[ConversationResponse] = ModelDecoder(ConversationResponse)
_history: ModelDecoder[ConversationHistory] = ModelDecoder(ConversationHistory)
_messages: ModelDecoder[ConversationMessages] = ModelDecoder(ConversationMessages)


def _decode(resp: Response, decode: Callable[[bytes], T]) -> T:
    try:
        return decode(resp.body)
    except msgspec.DecodeError as exc:
        raise ResponseDecodeError(
            f"unexpected response body: {exc}",
            body=resp.body,
            status=resp.status,
            request_id=resp.request_id,
        ) from None


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
            raise InvalidRequestError(key, f"is not an argument of {operation}()")
        (options if key in OPTION_KEYS else fields)[key] = value
    return fields, options


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
    (``base_url``, ``timeout``, ``max_retries``, ``backoff``, ``max_connections``,
    ``default_headers``, ``verify_ssl``, ``allow_insecure_http``,
    ``max_event_size``, ``max_response_size``, ``log_bodies``, ``transport``)
    are described in :class:`ClientOptions`.
    """

    def __init__(self, api_key: str | None = None, **options: Unpack[ClientOptions]) -> None:
        _split("AsyncConversationsClient", options, ClientOptions)
        max_retries = options.get("max_retries", 2)
        require_non_negative("max_retries", max_retries)
        self.timeout = Timeout.of(options.get("timeout"))
        self.max_retries = max_retries
        self.max_event_size = options.get("max_event_size", DEFAULT_MAX_EVENT_SIZE)
        transport = options.get("transport")
        if transport is None:
            key = api_key if api_key is not None else os.environ.get("MISTRAL_API_KEY")
            url = options.get("base_url") or os.environ.get("MISTRAL_BASE_URL") or DEFAULT_BASE_URL
            transport = Transport(
                base_url=url,
                api_key=key,
                max_connections=options.get("max_connections", 100),
                verify_ssl=options.get("verify_ssl", True),
                allow_insecure_http=options.get("allow_insecure_http", False),
                backoff=options.get("backoff"),
                default_headers=options.get("default_headers"),
                max_body_size=options.get("max_response_size", DEFAULT_MAX_BODY),
                log_bodies=options.get("log_bodies", False),
            )
        self._transport = transport

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._transport.base_url!r})"

    @property
    def transport(self) -> Transport:
        """The transport this client sends through."""
        return self._transport

    async def aclose(self) -> None:
        """Close the HTTP session and its connections. Later calls raise ``ClientClosedError``."""
        await self._transport.aclose()

    # -- request plumbing ------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        options: Mapping[str, Any],
        *,
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> Request:
        max_retries = options.get("max_retries")
        require_non_negative("max_retries", max_retries)
        headers = {"Accept": "text/event-stream" if stream else "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        extra_headers = options.get("extra_headers")
        if extra_headers:
            for name, value in extra_headers.items():
                check_header_value(f"extra_headers[{name!r}]", name)
                check_header_value(f"extra_headers[{name!r}]", value)
            headers.update(extra_headers)
        extra_query = options.get("extra_query")
        if extra_query:
            params = {**(params or {}), **extra_query}
        return Request(
            method,
            path,
            Timeout.of(options.get("timeout"), self.timeout),
            self.max_retries if max_retries is None else max_retries,
            params=params,
            body=body,
            headers=headers,
            stream=stream,
        )

    def _body_request(self, operation: str, path: str, params: Mapping[str, Any], stream: bool) -> Request:
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
        return self._request("POST", path, options, body=body, stream=stream)

    async def _get(self, path: str, options: Mapping[str, Any], decode: Callable[[bytes], T]) -> T:
        _split("this method", options, RequestOptions)
        return _decode(await self._transport.send(self._request("GET", path, options)), decode)

    def _stream(self, request: Request) -> ConversationStream:
        return ConversationStream(self._transport, request, max_event_size=self.max_event_size)

    # -- the operations --------------------------------------------------

    async def start(self, **params: Unpack[StartParams]) -> ConversationResponse:
        """Start a conversation with a ``model`` or an ``agent_id`` and run it on ``inputs``.

        ``inputs`` is a string (one user message) or a list of entries, as
        structs or dicts. Returns the new entries and the usage.
        """
        request = self._body_request("start", "/v1/conversations", params, False)
        return _decode(await self._transport.send(request), _response.decode)

    def start_stream(self, **params: Unpack[StartParams]) -> ConversationStream:
        """Like :meth:`start`, streamed. Arguments are checked now; the request
        is sent when iteration starts."""
        return self._stream(self._body_request("start", "/v1/conversations", params, True))

    async def append(self, conversation_id: str, **params: Unpack[AppendParams]) -> ConversationResponse:
        """Append ``inputs`` (and/or ``tool_confirmations``) to a conversation and run it."""
        path = conversation_path(conversation_id)
        request = self._body_request("append", path, params, False)
        return _decode(await self._transport.send(request), _response.decode)

    def append_stream(self, conversation_id: str, **params: Unpack[AppendParams]) -> ConversationStream:
        """Like :meth:`append`, streamed."""
        return self._stream(self._body_request("append", conversation_path(conversation_id), params, True))

    async def restart(self, conversation_id: str, **params: Unpack[RestartParams]) -> ConversationResponse:
        """Branch a new conversation from entry ``from_entry_id`` of ``conversation_id`` and run it."""
        path = conversation_path(conversation_id, "/restart")
        request = self._body_request("restart", path, params, False)
        return _decode(await self._transport.send(request), _response.decode)

    def restart_stream(self, conversation_id: str, **params: Unpack[RestartParams]) -> ConversationStream:
        """Like :meth:`restart`, streamed."""
        path = conversation_path(conversation_id, "/restart")
        return self._stream(self._body_request("restart", path, params, True))

    async def get(self, conversation_id: str, **options: Unpack[RequestOptions]) -> Conversation:
        """Fetch one conversation: a ``ModelConversation`` or an ``AgentConversation``."""
        return await self._get(conversation_path(conversation_id), options, ConversationDecoder.one)

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
        request = self._request("GET", "/v1/conversations", options, params=query)
        return _decode(await self._transport.send(request), ConversationDecoder.many)

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
        return await self._get(conversation_path(conversation_id, "/history"), options, _history.decode)

    async def messages(self, conversation_id: str, **options: Unpack[RequestOptions]) -> ConversationMessages:
        """The input and output messages of a conversation."""
        return await self._get(conversation_path(conversation_id, "/messages"), options, _messages.decode)

    async def delete(self, conversation_id: str, **options: Unpack[RequestOptions]) -> None:
        """Delete a conversation (the API answers 204)."""
        _split("delete", options, RequestOptions)
        await self._transport.send(self._request("DELETE", conversation_path(conversation_id), options))


_OPERATIONS: dict[str, tuple[Any, type[msgspec.Struct], bool]] = {
    "start": (StartParams, StartRequest, True),
    "append": (AppendParams, AppendRequest, False),
    "restart": (RestartParams, RestartRequest, False),
}
