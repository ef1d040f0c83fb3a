"""Conversation handles and runs: local tools, confirmations, structured output, exactly-once turns.

A `ConversationHandle` remembers its conversation's id and the entries it has
seen. `send`/`stream` run a *run*: a turn, and while the model calls local tools,
the tools (concurrently, in an anyio task group) and one more turn with their
results, up to `max_rounds` turns. The plain and the streamed form are one loop
(`ConversationHandle._rounds`): the streamed one yields the model's events and
a local event per tool call started and per result.

A turn whose outcome is unknown (`RequestOutcomeUnknownError`) is settled: the
handle reads the stored history past the last entry it knows. If the turn is there,
its stored outputs are used; if nothing is there, the turn is sent once more.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeAlias, TypeVar

import anyio
import msgspec

from ._errors import (
    InvalidRequestError,
    MaxRoundsError,
    OutputParseError,
    RequestOutcomeUnknownError,
    ToolFailedError,
    TurnIncompleteError,
    UnknownToolError,
)
from ._run_spans import NO_RUN, RunTrace, traced_run
from ._tools import LocalTool, ToolArgumentsError, _schema, as_tool
from .models import (
    AgentHandoffEntry,
    CompletionArgs,
    ConversationEvent,
    ConversationHistory,
    ConversationResponse,
    ConversationUsage,
    Entry,
    FunctionCallEntry,
    FunctionResultEntry,
    JsonSchema,
    MessageInputEntry,
    MessageOutputEntry,
    OutputEntry,
    ResponseFormat,
    Tool,
    ToolCallConfirmation,
    ToolExecutionEntry,
    UnknownEntry,
)
from .models._base import Model

if TYPE_CHECKING:
    from ._api import AsyncConversationsClient
    from .types import CompletionArgsParam, Inputs, ToolParam

__all__ = [
    "ConversationHandle",
    "FunctionResultEvent",
    "PendingCall",
    "RunEvent",
    "RunResult",
    "RunState",
    "RunStream",
    "ToolCallStartedEvent",
]

T = TypeVar("T")
_OUTPUTS = (MessageOutputEntry, FunctionCallEntry, ToolExecutionEntry, AgentHandoffEntry, UnknownEntry)
Decision: TypeAlias = Literal["allow", "deny"]


class ToolCallStartedEvent(Model, kw_only=True):
    """A run started a local tool for one of the model's function calls (not a wire event)."""

    type: ClassVar[Literal["local.tool.started"]] = "local.tool.started"
    tool_call_id: str
    name: str
    arguments: str | dict[str, Any]


class FunctionResultEvent(Model, kw_only=True):
    """A local tool's result, about to be sent back to the model (not a wire event)."""

    type: ClassVar[Literal["local.function.result"]] = "local.function.result"
    entry: FunctionResultEntry


RunEvent: TypeAlias = ConversationEvent | ToolCallStartedEvent | FunctionResultEvent
"""What a streamed run yields: the model's events and the run's own."""


class PendingCall(Model, kw_only=True):
    """A function call waiting for the caller's allow or deny.

    `local` is true for a local tool registered with `requires_confirmation` (run
    here once allowed) and false for a call the server marked `pending` (its answer
    goes back as `tool_confirmations`).
    """

    tool_call_id: str
    name: str
    arguments: str | dict[str, Any]
    local: bool


class RunState(Model, kw_only=True):
    """Where a paused run stands: small, and a msgspec value (store it, resume it later)."""

    conversation_id: str
    pending: list[PendingCall]
    results: list[FunctionResultEntry] = msgspec.field(default_factory=list)
    """Results of the paused round's calls that needed no confirmation (sent on resume)."""
    rounds: int = 1
    last_entry_id: str = ""


class RunResult(Model, Generic[T], kw_only=True):
    """The outcome of a run.

    `status` is `"completed"`, or `"paused"` with `pending` calls and the
    `state` to resume from. `entries` holds every entry the run sent or received,
    in order; `outputs` the last turn's outputs; `usage` is summed over the turns.
    `parsed` is the final answer decoded into the run's `output_type`.
    """

    conversation_id: str
    status: Literal["completed", "paused"]
    entries: list[Entry]
    outputs: list[OutputEntry]
    usage: ConversationUsage
    rounds: int
    pending: list[PendingCall] = msgspec.field(default_factory=list)
    state: RunState | None = None
    parsed: T | None = None

    @property
    def output_text(self) -> str:
        """The text of the last turn's assistant messages."""
        return ConversationResponse(
            conversation_id=self.conversation_id, outputs=self.outputs, usage=self.usage
        ).output_text


class _Progress:
    """What a run has gathered so far."""

    def __init__(self, rounds: int = 0) -> None:
        self.entries: list[Entry] = []
        self.usage = ConversationUsage()
        self.rounds = rounds
        self.last: ConversationResponse | None = None
        self.result: RunResult[Any] | None = None

    def add(self, sent: list[Entry], response: ConversationResponse) -> None:
        self.entries += sent
        self.entries += response.outputs
        u = response.usage
        self.usage = ConversationUsage(
            prompt_tokens=self.usage.prompt_tokens + u.prompt_tokens,
            completion_tokens=self.usage.completion_tokens + u.completion_tokens,
            total_tokens=self.usage.total_tokens + u.total_tokens,
        )
        self.rounds += 1
        self.last = response

    def snapshot(self, cid: str, **extra: Any) -> RunResult[Any]:
        outputs = self.last.outputs if self.last is not None else []
        status = extra.pop("status", "completed")
        return RunResult(
            conversation_id=cid,
            status=status,
            entries=list(self.entries),
            outputs=list(outputs),
            usage=self.usage,
            rounds=self.rounds,
            **extra,
        )


def _as_entries(inputs: Any) -> list[Entry]:
    """The entries `inputs` stands for, as structs (for `RunResult.entries`)."""
    if inputs is None:
        return []
    if isinstance(inputs, str):
        return [MessageInputEntry(role="user", content=inputs)]
    out: list[Entry] = []
    for item in inputs if isinstance(inputs, Sequence) else [inputs]:
        if isinstance(item, Mapping):
            data = dict(item)
            data.setdefault("type", "message.input")
            with contextlib.suppress(msgspec.ValidationError):
                out.append(msgspec.convert(data, Entry))
        else:
            out.append(item)
    return out


class ConversationHandle(Generic[T]):
    """One conversation, as a caller holds it: its id, what it has seen, and its runs.

    Made by `client.conversation(...)`. `send` and `stream` run local tools for
    the model's function calls until it answers (see the module docstring).
    """

    def __init__(
        self,
        client: AsyncConversationsClient,
        conversation_id: str | None,
        start: dict[str, Any],
        tools: Sequence[LocalTool[..., Any] | Callable[..., Any] | Tool | ToolParam] | None,
        *,
        output_type: type[T] | None = None,
        max_rounds: int = 10,
        tool_timeout: float | None = None,
        on_tool_error: Literal["result", "raise"] = "result",
    ) -> None:
        if max_rounds < 1:
            raise InvalidRequestError("max_rounds", "must be at least 1")
        if on_tool_error not in ("result", "raise"):
            raise InvalidRequestError("on_tool_error", "must be 'result' or 'raise'")
        self._client = client
        self.id = conversation_id
        self.entries: list[Entry] = []
        """Every entry this handle has sent or received, in order."""
        self._last_entry_id = ""
        self.local_tools: dict[str, LocalTool[..., Any]] = {}
        definitions: list[Any] = []
        for item in tools or ():
            if isinstance(item, LocalTool):
                local: LocalTool[..., Any] = item
            elif callable(item) and not isinstance(item, msgspec.Struct | Mapping):
                local = as_tool(item)
            else:
                definitions.append(item)
                continue
            if local.name in self.local_tools:
                raise InvalidRequestError("tools", f"two tools are named {local.name!r}")
            self.local_tools[local.name] = local
            definitions.append(local.definition)
        if start.get("agent_id") is not None and self.local_tools:
            raise InvalidRequestError(
                "tools", "local tools need a model conversation (an agent's tools are stored on the agent)"
            )
        self.output_type = output_type
        if output_type is not None:
            start["completion_args"] = _with_format(start.get("completion_args"), output_type)
        self._start = {**start, "tools": definitions or start.get("tools")}
        self.max_rounds = max_rounds
        self.tool_timeout = tool_timeout
        self.on_tool_error = on_tool_error

    def __repr__(self) -> str:
        return f"ConversationHandle(id={self.id!r}, entries={len(self.entries)})"

    # -- public --------------------------------------------------------------

    async def send(self, inputs: Inputs) -> RunResult[T]:
        """Run the conversation on `inputs`: one turn, plus a turn per round of local tool calls.

        Args:
            inputs: A string (one user message) or a list of entries, as models or dicts.

        Returns:
            The run's result: `"completed"`, or `"paused"` on calls that wait for a confirmation.

        Raises:
            UnknownToolError: the model called a function that is not registered (nothing is appended).
            ToolFailedError: a local tool failed and the handle has `on_tool_error="raise"`.
            MaxRoundsError: the run reached the handle's `max_rounds` turns.
            OutputParseError: the final answer does not decode into the handle's `output_type`.
            TurnIncompleteError: a turn's inputs were stored but its run did not finish.
            APIError: a request of the run failed, as the client's methods raise (a turn whose
                outcome is unknown is settled from the history first).
        """
        run = self._rounds(inputs, None, _Progress(), streaming=False)
        async for _ in run:
            pass
        return self._result

    def stream(self, inputs: Inputs) -> RunStream[T]:
        """`send`, streamed: the model's events and the run's own, then `final_result()`.

        Nothing is sent until the stream is opened (`async with`, `open()` or the first read);
        reading it raises what `send` raises.

        Args:
            inputs: A string (one user message) or a list of entries, as models or dicts.
        """
        return RunStream(self, self._rounds(inputs, None, _Progress(), streaming=True))

    async def resume(self, state: RunState, decisions: Mapping[str, Decision]) -> RunResult[T]:
        """Resume a paused run, with `"allow"` or `"deny"` for each pending call's `tool_call_id`.

        Allowed local calls run, denied ones answer "The user denied this call."; server-side
        calls go back as `tool_confirmations`.

        Args:
            state: The paused result's `state` (it may have been stored and decoded since).
            decisions: `"allow"` or `"deny"` for every pending call, by `tool_call_id`.

        Raises:
            InvalidRequestError: a pending call has no decision, or a decision is neither
                `"allow"` nor `"deny"` (nothing is sent).
            UnknownToolError: the model called a function that is not registered (nothing is appended).
            ToolFailedError: a local tool failed and the handle has `on_tool_error="raise"`.
            MaxRoundsError: the run reached the handle's `max_rounds` turns.
            OutputParseError: the final answer does not decode into the handle's `output_type`.
            TurnIncompleteError: a turn's inputs were stored but its run did not finish.
            APIError: a request of the run failed, as the client's methods raise.
        """
        run = self._resumed(state, decisions, streaming=False)
        async for _ in run:
            pass
        return self._result

    def resume_stream(self, state: RunState, decisions: Mapping[str, Decision]) -> RunStream[T]:
        """`resume`, streamed: reading it raises what `resume` raises."""
        return RunStream(self, self._resumed(state, decisions, streaming=True))

    async def history(self) -> ConversationHistory:
        """Every stored entry of the conversation.

        Raises:
            InvalidRequestError: the conversation has not started yet.
            APIError: the request failed, as `client.history` raises.
        """
        if self.id is None:
            raise InvalidRequestError("conversation_id", "the conversation has not started yet")
        return await self._client.history(self.id)

    async def restart(self, from_entry_id: str, inputs: Inputs) -> tuple[ConversationHandle[T], RunResult[T]]:
        """Branch a new conversation from `from_entry_id` and run it: the new handle and its result.

        Args:
            from_entry_id: The id of the entry of this conversation to branch from.
            inputs: A string (one user message) or a list of entries, as models or dicts.

        Raises:
            InvalidRequestError: this conversation has not started yet.
            RunError: the new branch's run could not go on, as `send` raises.
            APIError: a request failed, as the client's methods raise.
        """
        if self.id is None:
            raise InvalidRequestError("conversation_id", "the conversation has not started yet")
        branch: ConversationHandle[T] = ConversationHandle(
            self._client,
            None,
            {},
            list(self.local_tools.values()),
            output_type=self.output_type,
            max_rounds=self.max_rounds,
            tool_timeout=self.tool_timeout,
            on_tool_error=self.on_tool_error,
        )
        branch._start = {}
        branch._restart_from = (self.id, from_entry_id)
        return branch, await branch.send(inputs)

    # -- the loop ------------------------------------------------------------------

    _restart_from: tuple[str, str] | None = None
    _result: RunResult[Any]

    async def _resumed(
        self, state: RunState, decisions: Mapping[str, Decision], *, streaming: bool
    ) -> AsyncIterator[RunEvent]:
        missing = [p.tool_call_id for p in state.pending if p.tool_call_id not in decisions]
        if missing:
            raise InvalidRequestError("decisions", f"no decision for pending call(s) {', '.join(missing)}")
        for key, value in decisions.items():
            if value not in ("allow", "deny"):
                raise InvalidRequestError(f"decisions[{key!r}]", "must be 'allow' or 'deny'")
        self.id = state.conversation_id
        self._last_entry_id = state.last_entry_id or self._last_entry_id
        results = list(state.results)
        allowed = [p for p in state.pending if p.local and decisions[p.tool_call_id] == "allow"]
        for p in state.pending:
            if p.local and decisions[p.tool_call_id] == "deny":
                results.append(
                    FunctionResultEntry(tool_call_id=p.tool_call_id, result="The user denied this call.")
                )
        calls = [
            FunctionCallEntry(tool_call_id=p.tool_call_id, name=p.name, arguments=p.arguments)
            for p in allowed
        ]
        for call in calls:
            if streaming:
                yield ToolCallStartedEvent(
                    tool_call_id=call.tool_call_id, name=call.name, arguments=call.arguments
                )
        ran = await self._execute(calls, _Progress(state.rounds))
        for entry in ran:
            if streaming:
                yield FunctionResultEvent(entry=entry)
        confirmations = [
            ToolCallConfirmation(tool_call_id=p.tool_call_id, confirmation=decisions[p.tool_call_id])
            for p in state.pending
            if not p.local
        ]
        inputs = results + ran
        progress = _Progress(state.rounds)
        async for event in self._rounds(inputs or None, confirmations or None, progress, streaming=streaming):
            yield event

    _run_trace: RunTrace = NO_RUN

    def _rounds(
        self,
        inputs: Any,
        confirmations: list[ToolCallConfirmation] | None,
        progress: _Progress,
        *,
        streaming: bool,
    ) -> AsyncIterator[RunEvent]:
        rounds = self._loop(inputs, confirmations, progress, streaming=streaming)
        obs = self._client._rt.obs
        tracer = obs.tracer if obs is not None else None
        if tracer is None:
            return rounds
        assert obs is not None
        self._run_trace = RunTrace(tracer, obs.content)
        return traced_run(self._run_trace, self._start.get("model"), rounds, lambda: self.id)

    async def _loop(
        self,
        inputs: Any,
        confirmations: list[ToolCallConfirmation] | None,
        progress: _Progress,
        *,
        streaming: bool,
    ) -> AsyncIterator[RunEvent]:
        await self._anchor()
        while True:
            self._run_trace.next_round()
            try:
                if streaming:
                    stream = self._open_stream(inputs, confirmations)
                    with self._run_trace.active():
                        await stream.open()
                    async with stream:
                        async for event in stream:
                            yield event
                    response = await stream.final_response()
                else:
                    with self._run_trace.active():
                        response = await self._turn(inputs, confirmations)
            except RequestOutcomeUnknownError as exc:
                response = await self._settle(exc, inputs, confirmations, progress)
            self._seen(response, inputs, progress)
            cid = response.conversation_id
            calls = [o for o in response.outputs if o.type == "function.call" and o.completed_at is None] or [
                o for o in response.outputs if o.type == "function.call"
            ]
            if not calls:
                self._result = self._complete(progress, cid)
                return
            server_pending = [c for c in calls if c.confirmation_status == "pending"]
            local = [c for c in calls if c not in server_pending]
            for c in local:
                if c.name not in self.local_tools:
                    unknown = UnknownToolError(
                        f"the model called {c.name!r}, which is not a registered tool (conversation {cid})",
                        result=progress.snapshot(cid),
                        conversation_id=cid,
                    )
                    unknown.tool_name = c.name
                    raise unknown
            needs_ok = [c for c in local if self.local_tools[c.name].requires_confirmation]
            if server_pending or needs_ok:
                now = [c for c in local if c not in needs_ok]
                ready = await self._execute(now, progress)
                pending = [
                    PendingCall(
                        tool_call_id=c.tool_call_id, name=c.name, arguments=c.arguments, local=c in needs_ok
                    )
                    for c in calls
                    if c in server_pending or c in needs_ok
                ]
                state = RunState(
                    conversation_id=cid,
                    pending=pending,
                    results=ready,
                    rounds=progress.rounds,
                    last_entry_id=self._last_entry_id,
                )
                self._result = progress.snapshot(cid, status="paused", pending=pending, state=state)
                return
            if progress.rounds >= self.max_rounds:
                raise MaxRoundsError(
                    f"the run reached max_rounds={self.max_rounds} with function calls still to answer",
                    result=progress.snapshot(cid),
                    conversation_id=cid,
                )
            if streaming:
                for c in local:
                    yield ToolCallStartedEvent(
                        tool_call_id=c.tool_call_id, name=c.name, arguments=c.arguments
                    )
            with self._run_trace.active():
                results = await self._execute(local, progress)
            if streaming:
                for entry in results:
                    yield FunctionResultEvent(entry=entry)
            inputs, confirmations = results, None

    async def _anchor(self) -> None:
        """For a conversation this handle has not seen yet: its last entry, to settle turns from."""
        if self.id is not None and not self._last_entry_id and self._restart_from is None:
            history = await self._client.history(self.id)
            self.entries = list(history.entries)
            if history.entries:
                self._last_entry_id = history.entries[-1].id

    def _complete(self, progress: _Progress, cid: str) -> RunResult[Any]:
        result = progress.snapshot(cid)
        if self.output_type is not None:
            text = result.output_text
            try:
                result.parsed = msgspec.json.decode(text, type=self.output_type)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                error = OutputParseError(
                    f"the answer does not decode into {self.output_type.__name__}: {exc}",
                    result=result,
                    conversation_id=cid,
                )
                error.text = text
                raise error from None
        return result

    def _seen(self, response: ConversationResponse, inputs: Any, progress: _Progress) -> None:
        sent = _as_entries(inputs)
        progress.add(sent, response)
        self.entries += sent
        self.entries += response.outputs
        self.id = response.conversation_id
        ids = [e.id for e in response.outputs if e.id]
        if ids:
            self._last_entry_id = ids[-1]

    def _arguments(
        self, inputs: Any, confirmations: list[ToolCallConfirmation] | None
    ) -> tuple[str, dict[str, Any]]:
        if self._restart_from is not None:
            cid, entry = self._restart_from
            self._restart_from = None
            return "restart", {"conversation_id": cid, "from_entry_id": entry, "inputs": inputs}
        if self.id is None:
            return "start", {**self._start, "inputs": inputs}
        return "append", {"conversation_id": self.id, "inputs": inputs, "tool_confirmations": confirmations}

    async def _turn(
        self, inputs: Any, confirmations: list[ToolCallConfirmation] | None
    ) -> ConversationResponse:
        operation, args = self._arguments(inputs, confirmations)
        method = getattr(self._client, operation)
        response: ConversationResponse = await method(**args)
        return response

    def _open_stream(self, inputs: Any, confirmations: list[ToolCallConfirmation] | None) -> Any:
        operation, args = self._arguments(inputs, confirmations)
        return getattr(self._client, f"{operation}_stream")(**args)

    async def _settle(
        self,
        error: RequestOutcomeUnknownError,
        inputs: Any,
        confirmations: list[ToolCallConfirmation] | None,
        progress: _Progress,
    ) -> ConversationResponse:
        """The turn whose outcome is unknown, from the stored history; sent once more if absent."""
        appending = error.operation == "append"
        cid = self.id if appending else new_conversation_id(error)
        if cid is None or (appending and not self._last_entry_id):
            raise error  # a new conversation whose id never arrived, or no entry to count from
        try:
            response = settled(await self._client.history(cid), self._last_entry_id if appending else None)
        except TurnIncompleteError as incomplete:
            incomplete.result = progress.snapshot(cid)
            raise incomplete from error
        if response is None:  # the turn was not stored: send it again, once
            if not appending:
                raise error
            return await self._turn(inputs, confirmations)
        return response

    async def _execute(
        self, calls: list[FunctionCallEntry], progress: _Progress
    ) -> list[FunctionResultEntry]:
        """Run the calls' tools at once; their results in the calls' order."""
        results: dict[str, str] = {}
        try:
            async with anyio.create_task_group() as tg:
                for call in calls:
                    tg.start_soon(self._run_trace.tool, self._run_one, call, results)
        except BaseExceptionGroup as group:
            failed = group.subgroup(ToolFailedError)
            if failed is not None:
                first = failed.exceptions[0]
                while isinstance(first, BaseExceptionGroup):
                    first = first.exceptions[0]
                cid = self.id or ""
                assert isinstance(first, ToolFailedError)
                first.result = progress.snapshot(cid)
                first.conversation_id = cid
                raise first from first.__cause__
            raise
        return [
            FunctionResultEntry(tool_call_id=c.tool_call_id, result=results[c.tool_call_id]) for c in calls
        ]

    async def _run_one(self, call: FunctionCallEntry, results: dict[str, str]) -> None:
        local = self.local_tools[call.name]
        limit = local.timeout if local.timeout is not None else self.tool_timeout
        try:
            with anyio.move_on_after(limit if limit is not None else float("inf")) as scope:
                results[call.tool_call_id] = await local.invoke(call.arguments)
            if scope.cancelled_caught:
                results[call.tool_call_id] = f"Error: {call.name} did not finish within {limit:g} s."
        except ToolArgumentsError as exc:
            results[call.tool_call_id] = f"Error: {exc}"
        except Exception as exc:
            if self.on_tool_error == "raise":
                error = ToolFailedError(f"tool {call.name!r} raised {type(exc).__name__}: {exc}")
                error.tool_name = call.name
                raise error from exc
            results[call.tool_call_id] = f"Error while executing {call.name}: {type(exc).__name__}: {exc}"


def _with_format(
    completion_args: CompletionArgs | CompletionArgsParam | None, output_type: type[Any]
) -> CompletionArgs:
    args = (
        completion_args
        if isinstance(completion_args, CompletionArgs)
        else msgspec.convert(completion_args or {}, CompletionArgs)
    )
    schema = (
        _schema(output_type, {})
        if isinstance(output_type, type) and issubclass(output_type, msgspec.Struct)
        else (msgspec.json.schema(output_type))
    )
    name = getattr(output_type, "__name__", "output")
    fmt = ResponseFormat(type="json_schema", json_schema=JsonSchema(name=name, schema_=schema, strict=True))
    return msgspec.structs.replace(args, response_format=fmt)


class RunStream(Generic[T]):
    """A streamed run: iterate it for `RunEvent` values, then `final_result()`.

    Use `async with`; leaving the block (or `aclose()`) stops the run and closes its stream.
    """

    def __init__(self, handle: ConversationHandle[T], events: AsyncIterator[RunEvent]) -> None:
        self._handle = handle
        self._events = events
        self._done = False
        self._first: list[RunEvent] = []

    @property
    def conversation_id(self) -> str | None:
        """The conversation's id, once its first turn has started."""
        return self._handle.id

    async def open(self) -> RunStream[T]:
        """Send the first turn and wait for its first event (an error status raises here); idempotent."""
        if not self._first and not self._done:
            try:
                self._first.append(await self._events.__anext__())
            except StopAsyncIteration:
                self._done = True
        return self

    def __aiter__(self) -> RunStream[T]:
        return self

    async def __anext__(self) -> RunEvent:
        if self._first:
            return self._first.pop()
        try:
            return await self._events.__anext__()
        except StopAsyncIteration:
            self._done = True
            raise

    async def __aenter__(self) -> RunStream[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the run: its open stream closes and its running tools are cancelled."""
        await self._events.aclose()  # type: ignore[attr-defined]

    async def text_stream(self) -> AsyncIterator[str]:
        """The text fragments of the assistant's messages, across every turn of the run."""
        async for event in self:
            if event.type == "message.output.delta" and isinstance(event.content, str):
                yield event.content

    async def final_result(self) -> RunResult[T]:
        """The run's result (reads the rest of the run first).

        Raises:
            RunError: the run could not go on (`UnknownToolError`, `ToolFailedError`,
                `MaxRoundsError`, `OutputParseError`, `TurnIncompleteError`).
            APIError: a request of the run failed, as the client's methods raise.
        """
        async for _ in self:
            pass
        return self._handle._result


def settled(history: ConversationHistory, after: str | None) -> ConversationResponse | None:
    """The turn stored past entry `after` (`None`: the whole conversation is the turn).

    Returns its response (outputs from the history; usage is not stored, so it is zero), or
    `None` when nothing was stored. Raises `TurnIncompleteError` when the turn's
    inputs are stored and no output is.
    """
    entries = history.entries
    if after is not None:
        ids = [e.id for e in entries]
        if after not in ids:
            raise InvalidRequestError(
                "last_entry_id", f"{after!r} is not an entry of {history.conversation_id}"
            )
        entries = entries[ids.index(after) + 1 :]
    if not entries:
        return None
    outputs: list[OutputEntry] = [e for e in entries if isinstance(e, _OUTPUTS)]
    if not outputs:
        incomplete = TurnIncompleteError(
            "the turn's inputs are stored but its run did not finish", conversation_id=history.conversation_id
        )
        incomplete.stored = list(entries)
        raise incomplete
    return ConversationResponse(
        conversation_id=history.conversation_id, outputs=outputs, usage=ConversationUsage()
    )


def new_conversation_id(error: RequestOutcomeUnknownError) -> str | None:
    """The id of the conversation a start or restart created, when its stream said so.

    A restart's `conversation_id` is the conversation it branched from; the new one is
    known only from the `conversation.response.started` event, kept in `partial`.
    """
    partial = error.partial
    return partial.conversation_id or None if partial is not None else None
