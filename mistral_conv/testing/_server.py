"""LocalConversationsServer: the 11 operations of the Conversations API, in memory, over real HTTP."""

from __future__ import annotations

import asyncio
import random
import string
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import msgspec
from aiohttp import web

from ..models import (
    AgentConversation,
    AgentHandoffEntry,
    AppendRequest,
    CompletionArgs,
    ConversationHistory,
    ConversationMessages,
    ConversationResponse,
    ConversationUsage,
    Entry,
    FunctionCallEntry,
    FunctionResultEntry,
    MessageEntry,
    MessageInputEntry,
    MessageOutputEntry,
    ModelConversation,
    OutputEntry,
    RestartRequest,
    StartRequest,
    ToolExecutionEntry,
)
from ._faults import FAULT_HEADER, Fault
from ._http import api_error, decode_request, validation_error
from ._render import events_for, frame
from ._responders import DefaultResponder, Responder, Turn, TurnContext
from ._state import Store, StoredConversation, new_id, now
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

    Run it inside your event loop (``async with LocalConversationsServer() as server``)
    or on a thread of its own (``with LocalConversationsServer() as server``); then point a
    client at ``server.url``. ``api_key``: when set, other keys get 401. ``responder``:
    what runs answer (default: :class:`DefaultResponder`). ``delta_chars``: characters
    per streamed text delta. Faults: :meth:`inject`, or the ``X-Local-Fault`` header.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        responder: Responder | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        delta_chars: int = 4,
    ) -> None:
        self.api_key = api_key
        self.responder: Responder = responder or DefaultResponder()
        self.host, self.port = host, port
        self.delta_chars = delta_chars
        self.store = Store()
        self.requests: list[tuple[str, str]] = []
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
        return app

    async def start(self) -> None:
        """Start serving in the running event loop; ``url`` is set once it listens."""
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

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start_in_thread(self) -> None:
        """Serve from a background thread with its own event loop (for sync code and other loops)."""
        self._thread.start(self.start, self.close)

    def stop_thread(self) -> None:
        """Stop a server started with :meth:`start_in_thread`."""
        self._thread.stop()

    def __enter__(self) -> Self:
        self.start_in_thread()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_thread()

    # -- faults --------------------------------------------------------------

    def inject(
        self, fault: Fault, *, times: int = 1, method: str | None = None, path: str | None = None
    ) -> None:
        """Apply ``fault`` to the next ``times`` requests (optionally only those matching method/path)."""
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
            if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
                return web.json_response({"detail": "Unauthorized"}, status=401)
            try:
                fault = self._take_fault(request)
            except ValueError as exc:
                return api_error(400, f"bad {FAULT_HEADER} header: {exc}")
            if fault is not None:
                early = await self._early_fault(request, fault)
                if early is not None:
                    return early
            return await handler(request, fault)

        return handle

    async def _early_fault(self, request: web.Request, fault: Fault) -> web.StreamResponse | None:
        if fault.kind == "status":
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            response = api_error(fault.status, f"Injected error {fault.status}")
            response.headers.update(headers)
            return response
        if fault.kind == "html":
            page = f"<html><body><h1>{fault.status} Bad Gateway</h1></body></html>"
            return web.Response(text=page, status=fault.status, content_type="text/html")
        if fault.kind == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        return None

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
            "name": _value(body.name),
            "description": _value(body.description),
            "metadata": _value(body.metadata),
        }
        record: ModelConversation | AgentConversation
        if isinstance(body.agent_id, str):
            record = AgentConversation(
                agent_id=body.agent_id, agent_version=_value(body.agent_version), **common
            )
        else:
            assert isinstance(body.model, str)
            args = body.completion_args if isinstance(body.completion_args, CompletionArgs) else None
            record = ModelConversation(
                model=body.model,
                instructions=_value(body.instructions),
                tools=body.tools if isinstance(body.tools, list) else [],
                completion_args=_echo_args(args),
                guardrails=_value(body.guardrails),
                **common,
            )
        conversation = StoredConversation(record)
        store = body.store is not False
        if store:
            self.store.add(conversation)
        return await self._turn(request, fault, conversation, body.inputs, store, body.stream)

    async def _append(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        conversation = self._find(request)
        if isinstance(conversation, web.Response):
            return conversation
        body = decode_request(await request.read(), AppendRequest)
        if isinstance(body, web.Response):
            return body
        assert isinstance(body, AppendRequest)
        return await self._turn(request, fault, conversation, body.inputs, body.store, body.stream)

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
        if body.store:
            self.store.add(branch)
        return await self._turn(request, fault, branch, body.inputs, body.store, body.stream)

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
    ) -> web.StreamResponse:
        new_inputs = _input_entries(inputs)
        context = TurnContext(
            conversation.record.id,
            conversation.model,
            conversation.agent_id,
            list(conversation.entries),
            new_inputs,
        )
        result = self.responder(context)
        turn: Turn = await result if asyncio.iscoroutine(result) else result
        outputs = [_stamp_output(e, conversation) for e in turn.outputs]
        usage = turn.usage or ConversationUsage()
        if store is not False:
            conversation.entries.extend(new_inputs)
            conversation.entries.extend(outputs)
            conversation.touch()
        if stream:
            events = list(events_for(conversation.record.id, outputs, usage, turn.failure, self.delta_chars))
            return await _write_stream(request, [frame(e) for e in events], fault)
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
        return await _faulty_body(request, body, fault)


def _value(v: Any) -> Any:
    return None if v is msgspec.UNSET else v


def _echo_args(args: CompletionArgs | None) -> CompletionArgs:
    """Completion args as the server echoes them: every key, null when unset, tool_choice "auto"."""
    values: dict[str, Any] = {
        f: _value(getattr(args, f)) if args else None for f in CompletionArgs.__struct_fields__
    }
    values["tool_choice"] = values["tool_choice"] or "auto"
    return CompletionArgs(**values)


def _input_entries(inputs: Any) -> list[Entry]:
    if inputs is msgspec.UNSET or inputs is None:
        return []
    if isinstance(inputs, str):
        inputs = [MessageInputEntry(role="user", content=inputs)]
    stamp = now()
    out: list[Entry] = []
    for e in inputs:
        prefix = "fr" if isinstance(e, FunctionResultEntry) else "msg"
        out.append(msgspec.structs.replace(e, id=new_id(prefix), created_at=stamp, completed_at=None))
    return out


def _stamp_output(entry: OutputEntry, conversation: StoredConversation) -> OutputEntry:
    stamp = now()
    who: dict[str, Any] = {
        "model": conversation.model or "mistral-medium-latest",
        "agent_id": conversation.agent_id,
    }
    if isinstance(entry, MessageOutputEntry):
        return msgspec.structs.replace(entry, id=new_id("msg"), created_at=stamp, completed_at=stamp, **who)
    if isinstance(entry, FunctionCallEntry):
        call_id = entry.tool_call_id or "".join(random.choices(string.ascii_letters + string.digits, k=9))
        return msgspec.structs.replace(
            entry, id=new_id("fc"), created_at=stamp, completed_at=None, tool_call_id=call_id, **who
        )
    if isinstance(entry, ToolExecutionEntry):
        return msgspec.structs.replace(
            entry, id=new_id("tool_exec"), created_at=stamp, completed_at=stamp, **who
        )
    if isinstance(entry, AgentHandoffEntry):
        return msgspec.structs.replace(entry, id=new_id("handoff"), created_at=stamp, completed_at=stamp)
    return entry


async def _write_stream(request: web.Request, frames: list[bytes], fault: Fault | None) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    if fault is None or fault.kind in ("status", "html", "drop"):
        await response.write(b"".join(frames))
        await response.write_eof()
        return response
    for i, data in enumerate(frames):
        if i == fault.after_events:
            if fault.kind == "disconnect":
                assert request.transport is not None
                request.transport.close()
                return response
            if fault.kind == "stall":
                await asyncio.sleep(fault.seconds)
            elif fault.kind == "malformed":
                await response.write(
                    b'event: message.output.delta\ndata: {"type": "message.output.delta", "id": \n\n'
                )
            elif fault.kind == "stream_error":
                error = {"type": "conversation.response.error", "message": fault.message, "code": fault.code}
                await response.write(
                    b"event: conversation.response.error\ndata: " + _encoder.encode(error) + b"\n\n"
                )
                await response.write_eof()
                return response
        if fault.kind == "trickle" and i:
            await asyncio.sleep(fault.seconds)
        await response.write(data)
    await response.write_eof()
    return response


async def _faulty_body(request: web.Request, body: bytes, fault: Fault) -> web.StreamResponse:
    if fault.kind == "stream_error":
        return api_error(500, fault.message, code=fault.code, capital=True)
    if fault.kind == "stall":
        await asyncio.sleep(fault.seconds)
        return web.Response(body=body, content_type="application/json")
    if fault.kind == "malformed":
        return web.Response(body=body[: len(body) // 2], content_type="application/json")
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = len(body)
    await response.prepare(request)
    if fault.kind == "disconnect":
        await response.write(body[: len(body) // 2])
        assert request.transport is not None
        request.transport.close()
        return response
    for i in range(0, len(body), 16):  # trickle
        if i:
            await asyncio.sleep(fault.seconds)
        await response.write(body[i : i + 16])
    await response.write_eof()
    return response
