"""LocalConversationsServer: the 11 operations of the Conversations API, in memory, over real HTTP."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import msgspec
from aiohttp import web

from ..models import (
    AgentConversation,
    CompletionArgs,
    ConversationHistory,
    ConversationMessages,
    ConversationResponse,
    ConversationUsage,
    MessageEntry,
    MessageInputEntry,
    MessageOutputEntry,
    ModelConversation,
    Tool,
    ToolCallConfirmation,
)
from ..models.requests import AppendRequest, RestartRequest, StartRequest
from ._delivery import early_fault, write_faulty_body, write_stream
from ._faults import FAULT_HEADER, Fault
from ._http import api_error, decode_request, validation_error
from ._ratelimit import RateLimit, RateLimiter
from ._render import events_for, frame
from ._responders import DefaultResponder, Responder, Turn, TurnContext
from ._state import (
    Store,
    StoredConversation,
    apply_confirmations,
    check_confirmations,
    check_results,
    echo_args,
    input_entries,
    new_id,
    now,
    stamp_output,
    value,
)
from ._thread import LoopThread

__all__ = ["LocalConversationsServer"]

_encoder = msgspec.json.Encoder()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class _Injected:
    fault: Fault
    times: int
    method: str | None
    path: str | None


class LocalConversationsServer:
    """A stateful, in-memory Conversations API on 127.0.0.1, for tests and offline use.

    Run it inside your event loop (`async with LocalConversationsServer() as server`)
    or on a thread of its own (`with LocalConversationsServer() as server`); then point a
    client at `server.url`. `api_key`: when set, other keys get 401. `responder`:
    what runs answer (default: `DefaultResponder`). `delta_chars`: characters
    per streamed text delta. Faults: `inject`, or the `X-Local-Fault` header.

    Client-side tool runs are checked as the API checks them: a `function.result` must
    answer a `function.call` of the conversation, and `tool_confirmations` must name
    pending calls (else 422, and nothing is stored). Counters for tests:
    `requests_per_route`, `turns_stored` and `open_connections`.

    Rate-limit mode: `rate_limit` (a `RateLimit`, also settable while the server
    runs; `None` turns it off) answers 429 with `Retry-After` once a request-per-second
    or tokens-per-minute budget is spent, before the request is looked at (after the
    API-key check), so a refused start stores nothing. `clock`: the monotonic clock the
    buckets refill from (inject a fake one to test without sleeping). 429s sent are
    counted in `rejected` and `rejected_per_route`; `requests_per_route`
    counts every request, refused or not.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        responder: Responder | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        delta_chars: int = 4,
        rate_limit: RateLimit | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_key = api_key
        self.responder: Responder = responder or DefaultResponder()
        self.host, self.port = host, port
        self.delta_chars = delta_chars
        self.store = Store()
        self.requests: list[tuple[str, str]] = []
        self.requests_per_route: Counter[str] = Counter()
        """Requests by `"METHOD /route/{pattern}"`, e.g. `"POST /v1/conversations/{id}"`."""
        self.turns_stored = 0
        """Runs (start, append, restart) that stored entries."""
        self.clock = clock
        self.rejected = 0
        """429s sent by the rate-limit mode (not those of injected faults)."""
        self.rejected_per_route: Counter[str] = Counter()
        """The rate-limit mode's 429s by route, keyed as `requests_per_route`."""
        self._limiter: RateLimiter | None = None
        self.rate_limit = rate_limit
        self._faults: list[_Injected] = []
        self._runner: web.AppRunner | None = None
        self._thread = LoopThread("mistral-conv-local-server")
        self.url = ""

    # -- running -------------------------------------------------------------

    def app(self) -> web.Application:
        """The aiohttp application (to mount it elsewhere)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        r = app.router
        r.add_post("/v1/conversations", self._wrap(self._start))
        r.add_get("/v1/conversations", self._wrap(self._list))
        r.add_post("/v1/conversations/{id}", self._wrap(self._append))
        r.add_get("/v1/conversations/{id}", self._wrap(self._get))
        r.add_delete("/v1/conversations/{id}", self._wrap(self._delete))
        r.add_post("/v1/conversations/{id}/restart", self._wrap(self._restart))
        r.add_get("/v1/conversations/{id}/history", self._wrap(self._history))
        r.add_get("/v1/conversations/{id}/messages", self._wrap(self._messages))
        app.on_response_prepare.append(_tag_request_id)
        return app

    async def start(self) -> None:
        """Start serving in the running event loop; `url` is set once it listens."""
        self._runner = web.AppRunner(self.app(), handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.port = port
        self.url = f"http://{host}:{port}"

    async def close(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def open_connections(self) -> int:
        """HTTP connections currently open to the server (0 when it is not serving)."""
        server = self._runner.server if self._runner is not None else None
        return len(server.connections) if server is not None else 0

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start_in_thread(self) -> None:
        """Serve from a background thread with its own event loop (for sync code and other loops)."""
        self._thread.start(self.start, self.close)

    def stop_thread(self) -> None:
        """Stop a server started with `start_in_thread`."""
        self._thread.stop()

    def __enter__(self) -> Self:
        self.start_in_thread()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_thread()

    # -- rate limit ----------------------------------------------------------

    @property
    def rate_limit(self) -> RateLimit | None:
        """The budget enforced (`None`: no limit); setting it starts with full buckets."""
        return self._limiter.limit if self._limiter is not None else None

    @rate_limit.setter
    def rate_limit(self, limit: RateLimit | None) -> None:
        self._limiter = RateLimiter(limit, self.clock) if limit is not None else None

    # -- faults --------------------------------------------------------------

    def inject(
        self, fault: Fault, *, times: int = 1, method: str | None = None, path: str | None = None
    ) -> None:
        """Apply `fault` to the next `times` requests (optionally only those matching method/path)."""
        self._faults.append(_Injected(fault, times, method, path))

    def _take_fault(self, request: web.Request) -> Fault | None:
        header = request.headers.get(FAULT_HEADER)
        if header:
            return Fault.parse(header)
        for item in self._faults:
            if (item.method in (None, request.method)) and (item.path in (None, request.path)):
                item.times -= 1
                if item.times <= 0:
                    self._faults.remove(item)
                return item.fault
        return None

    def _wrap(self, handler: Callable[[web.Request, Fault | None], Awaitable[web.StreamResponse]]) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            self.requests.append((request.method, request.path))
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else request.path
            key = f"{request.method} {route}"
            self.requests_per_route[key] += 1
            if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
                return web.json_response({"detail": "Unauthorized"}, status=401)
            limiter = self._limiter
            if limiter is not None:
                wait = limiter.admit(run=request.method == "POST")
                if wait is not None:
                    self.rejected += 1
                    self.rejected_per_route[key] += 1
                    return limiter.refusal(wait)
            try:
                fault = self._take_fault(request)
            except ValueError as exc:
                return api_error(400, f"bad {FAULT_HEADER} header: {exc}")
            if fault is not None:
                early = await early_fault(request, fault)
                if early is not None:
                    return early
            return await handler(request, fault)

        return handle

    # -- the operations --------------------------------------------------------

    async def _start(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        body = decode_request(await request.read(), StartRequest)
        if isinstance(body, web.Response):
            return body
        assert isinstance(body, StartRequest)
        if (body.model in (None, msgspec.UNSET)) == (body.agent_id in (None, msgspec.UNSET)):
            return validation_error(
                [{"loc": ["body"], "msg": "Give exactly one of model and agent_id", "type": "value_error"}]
            )
        stamp = now()
        common: dict[str, Any] = {
            "id": new_id("conv"),
            "created_at": stamp,
            "updated_at": stamp,
            "name": value(body.name),
            "description": value(body.description),
            "metadata": value(body.metadata),
        }
        record: ModelConversation | AgentConversation
        if isinstance(body.agent_id, str):
            record = AgentConversation(
                agent_id=body.agent_id, agent_version=value(body.agent_version), **common
            )
        else:
            assert isinstance(body.model, str)
            args = body.completion_args if isinstance(body.completion_args, CompletionArgs) else None
            record = ModelConversation(
                model=body.model,
                instructions=value(body.instructions),
                tools=body.tools if isinstance(body.tools, list) else [],
                completion_args=echo_args(args),
                guardrails=value(body.guardrails),
                **common,
            )
        return await self._turn(
            request,
            fault,
            StoredConversation(record),
            body.inputs,
            body.store is not False,
            body.stream,
            new=True,
            completion_args=_args(body.completion_args),
            tools=body.tools if isinstance(body.tools, list) else [],
        )

    async def _append(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        conversation = self._find(request)
        if isinstance(conversation, web.Response):
            return conversation
        body = decode_request(await request.read(), AppendRequest)
        if isinstance(body, web.Response):
            return body
        assert isinstance(body, AppendRequest)
        return await self._turn(
            request,
            fault,
            conversation,
            body.inputs,
            body.store,
            body.stream,
            confirmations=body.tool_confirmations if isinstance(body.tool_confirmations, list) else [],
            completion_args=_args(body.completion_args),
            tools=_tools(conversation),
        )

    async def _restart(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        original = self._find(request)
        if isinstance(original, web.Response):
            return original
        body = decode_request(await request.read(), RestartRequest)
        if isinstance(body, web.Response):
            return body
        assert isinstance(body, RestartRequest)
        ids = [getattr(e, "id", None) for e in original.entries]
        if body.from_entry_id not in ids:
            return api_error(
                404, f"Entry {body.from_entry_id} not found in conversation {original.record.id}"
            )
        cut = ids.index(body.from_entry_id) + 1
        stamp = now()
        changes: dict[str, Any] = {"id": new_id("conv"), "created_at": stamp, "updated_at": stamp}
        if body.metadata is not msgspec.UNSET:
            changes["metadata"] = body.metadata
        if isinstance(original.record, AgentConversation) and body.agent_version is not msgspec.UNSET:
            changes["agent_version"] = body.agent_version
        branch = StoredConversation(
            msgspec.structs.replace(original.record, **changes), list(original.entries[:cut])
        )
        return await self._turn(
            request,
            fault,
            branch,
            body.inputs,
            body.store,
            body.stream,
            new=True,
            completion_args=_args(body.completion_args),
            tools=_tools(branch),
        )

    async def _get(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        conversation = self._find(request)
        if isinstance(conversation, web.Response):
            return conversation
        return await self._json(request, fault, conversation.record)

    async def _list(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        try:
            page = int(request.query.get("page", "0"))
            size = int(request.query.get("page_size", "100"))
        except ValueError:
            return validation_error(
                [{"loc": ["query", "page"], "msg": "Input should be a valid integer", "type": "int_parsing"}]
            )
        if page < 0 or size < 0:
            return validation_error(
                [{"loc": ["query", "page"], "msg": "Input should be >= 0", "type": "greater_than_equal"}]
            )
        metadata: Any = None
        if "metadata" in request.query:
            try:
                metadata = msgspec.json.decode(request.query["metadata"])
            except msgspec.DecodeError:
                return validation_error(
                    [{"loc": ["query", "metadata"], "msg": "Invalid JSON", "type": "json_invalid"}]
                )
        return await self._json(request, fault, self.store.page(page, size, metadata))

    async def _history(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        conversation = self._find(request)
        if isinstance(conversation, web.Response):
            return conversation
        return await self._json(
            request,
            fault,
            ConversationHistory(conversation_id=conversation.record.id, entries=conversation.entries),
        )

    async def _messages(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        conversation = self._find(request)
        if isinstance(conversation, web.Response):
            return conversation
        messages: list[MessageEntry] = [
            e for e in conversation.entries if isinstance(e, MessageInputEntry | MessageOutputEntry)
        ]
        return await self._json(
            request, fault, ConversationMessages(conversation_id=conversation.record.id, messages=messages)
        )

    async def _delete(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        if not self.store.delete(request.match_info["id"]):
            return api_error(404, f"Conversation {request.match_info['id']} not found")
        return web.Response(status=204)

    # -- running a turn ----------------------------------------------------------

    def _find(self, request: web.Request) -> StoredConversation | web.Response:
        conversation = self.store.get(request.match_info["id"])
        if conversation is None:
            return api_error(404, f"Conversation {request.match_info['id']} not found")
        return conversation

    async def _turn(
        self,
        request: web.Request,
        fault: Fault | None,
        conversation: StoredConversation,
        inputs: Any,
        store: bool | None | Any,
        stream: bool,
        *,
        new: bool = False,
        confirmations: list[ToolCallConfirmation] | None = None,
        completion_args: CompletionArgs | None = None,
        tools: list[Tool] | None = None,
    ) -> web.StreamResponse:
        """Validate, run the responder, store (unless `store` is false) and answer.

        `new`: the conversation is not in the store yet (start, restart); it is added
        once the request is valid.
        """
        new_inputs = input_entries(inputs)
        confirmed = list(confirmations or [])
        problems = check_results(conversation.entries, new_inputs) + check_confirmations(
            conversation.entries, confirmed
        )
        if problems:
            return validation_error(problems)
        history = apply_confirmations(conversation.entries, confirmed)
        if store is not False:
            conversation.entries[:] = history
            if new:
                self.store.add(conversation)
        context = TurnContext(
            conversation.record.id,
            conversation.model,
            conversation.agent_id,
            list(history),
            new_inputs,
            confirmations=confirmed,
            completion_args=completion_args,
            tools=list(tools or []),
        )
        result = self.responder(context)
        turn: Turn = await result if asyncio.iscoroutine(result) else result
        outputs = [stamp_output(e, conversation) for e in turn.outputs]
        usage = turn.usage or ConversationUsage()
        if self._limiter is not None:
            self._limiter.charge(usage.total_tokens)
        if store is not False:
            conversation.entries.extend(new_inputs)
            conversation.entries.extend(outputs)
            conversation.touch()
            if new_inputs or outputs:
                self.turns_stored += 1
        if stream:
            events = list(events_for(conversation.record.id, outputs, usage, turn.failure, self.delta_chars))
            return await write_stream(request, [frame(e) for e in events], fault)
        if turn.failure is not None:
            return api_error(500, turn.failure.message, code=turn.failure.code, capital=True)
        return await self._json(
            request,
            fault,
            ConversationResponse(conversation_id=conversation.record.id, outputs=outputs, usage=usage),
        )

    async def _json(self, request: web.Request, fault: Fault | None, value: Any) -> web.StreamResponse:
        body = _encoder.encode(value)
        if fault is None:
            return web.Response(body=body, content_type="application/json")
        return await write_faulty_body(request, body, fault)


def _args(args: CompletionArgs | None | Any) -> CompletionArgs | None:
    """The request's completion args, `None` when it sent none."""
    return args if isinstance(args, CompletionArgs) else None


def _tools(conversation: StoredConversation) -> list[Tool]:
    """A conversation's stored tools (none for an agent conversation)."""
    record = conversation.record
    if isinstance(record, ModelConversation) and isinstance(record.tools, list):
        return list(record.tools)
    return []


async def _tag_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer carries a request id, as the real API's do."""
    response.headers.setdefault("x-request-id", f"req_{uuid.uuid4().hex}")
