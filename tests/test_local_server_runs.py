"""The local server under client-side tool runs: result and confirmation checks, turn context, counters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import msgspec
import pytest

import mistral_conv as mc
from mistral_conv import AsyncConversationsClient
from mistral_conv.models import (
    CompletionArgs,
    Entry,
    FunctionCallEntry,
    FunctionResultEntry,
    FunctionTool,
    MessageInputEntry,
    OutputEntry,
    ResponseFormat,
    ToolCallConfirmation,
)
from mistral_conv.testing import (
    DefaultResponder,
    LocalConversationsServer,
    ScriptedResponder,
    Turn,
    TurnContext,
    call_function,
    reply_text,
)
from mistral_conv.types import FunctionToolParam, JsonSchemaParam

from .conftest import FAST_BACKOFF

KEY = "local-key"
TOOLS: list[FunctionToolParam] = [
    {"type": "function", "function": {"name": "delete_file", "parameters": {"type": "object"}}}
]


class Recorder:
    """Records each context, then answers as ``inner`` does."""

    def __init__(self, inner: ScriptedResponder | DefaultResponder) -> None:
        self.inner = inner
        self.contexts: list[TurnContext] = []

    def __call__(self, context: TurnContext) -> Turn:
        self.contexts.append(context)
        return self.inner(context)


def _calls(entries: Sequence[Entry | OutputEntry]) -> list[FunctionCallEntry]:
    return [e for e in entries if isinstance(e, FunctionCallEntry)]


async def _types(api: AsyncConversationsClient, conversation_id: str) -> list[str]:
    return [e.type for e in (await api.history(conversation_id)).entries]


async def test_result_for_a_call_never_issued_is_422_and_nothing_is_stored(
    api: AsyncConversationsClient, server: LocalConversationsServer
) -> None:
    server.responder = ScriptedResponder([[call_function("delete_file", {"path": "/tmp/a"})]])
    first = await api.start(inputs="Delete /tmp/a", model="m", tools=TOOLS)
    cid = first.conversation_id
    call = _calls(first.outputs)[0]
    before = await _types(api, cid)
    stored = server.turns_stored

    with pytest.raises(mc.UnprocessableEntityError) as info:
        await api.append(
            cid,
            inputs=[
                MessageInputEntry(role="user", content="here"),
                FunctionResultEntry(tool_call_id="never_issued", result="ok"),
            ],
        )
    (error,) = info.value.errors
    assert error.loc == ["body", "inputs", 1, "tool_call_id"] and error.type == "value_error"
    assert "never_issued" in error.msg

    with pytest.raises(mc.UnprocessableEntityError) as info:  # streamed too, and every bad result listed
        await api.append_stream(
            cid,
            inputs=[
                FunctionResultEntry(tool_call_id="x1", result="1"),
                FunctionResultEntry(tool_call_id=call.tool_call_id, result="2"),
                FunctionResultEntry(tool_call_id="x2", result="3"),
            ],
        ).final_response()
    assert [e.loc for e in info.value.errors] == [
        ["body", "inputs", 0, "tool_call_id"],
        ["body", "inputs", 2, "tool_call_id"],
    ]

    other = await api.start(inputs="elsewhere", model="m")  # a call of another conversation does not count
    with pytest.raises(mc.UnprocessableEntityError):
        await api.append(
            other.conversation_id, inputs=[FunctionResultEntry(tool_call_id=call.tool_call_id, result="x")]
        )
    assert await _types(api, other.conversation_id) == ["message.input", "message.output"]

    assert await _types(api, cid) == before == ["message.input", "function.call"]
    assert server.turns_stored == stored + 1  # only the second start

    ok = await api.append(cid, inputs=[FunctionResultEntry(tool_call_id=call.tool_call_id, result="deleted")])
    assert ok.output_text == "The function returned deleted."
    assert await _types(api, cid) == [*before, "function.result", "message.output"]


async def test_start_and_restart_check_results_too(
    api: AsyncConversationsClient, server: LocalConversationsServer
) -> None:
    with pytest.raises(mc.UnprocessableEntityError) as info:
        await api.start(inputs=[FunctionResultEntry(tool_call_id="t1", result="x")], model="m")
    assert info.value.errors[0].loc == ["body", "inputs", 0, "tool_call_id"]
    assert await api.list() == [] and server.store.conversations == {} and server.turns_stored == 0

    # A call given earlier in the same inputs (a replayed transcript) may be answered.
    replay = await api.start(
        inputs=[
            MessageInputEntry(role="user", content="Delete /tmp/a"),
            FunctionCallEntry(tool_call_id="t1", name="delete_file", arguments="{}"),
            FunctionResultEntry(tool_call_id="t1", result="done"),
        ],
        model="m",
    )
    assert replay.output_text == "The function returned done."

    server.responder = ScriptedResponder([[reply_text("first")], [call_function("delete_file", {}, "late")]])
    first = await api.start(inputs="one", model="m")
    await api.append(first.conversation_id, inputs="two")
    history = (await api.history(first.conversation_id)).entries
    assert history[1].id is not None
    count = len(await api.list())
    with pytest.raises(mc.UnprocessableEntityError) as info:  # "late" comes after the branch point
        await api.restart(
            first.conversation_id,
            from_entry_id=history[1].id,
            inputs=[FunctionResultEntry(tool_call_id="late", result="x")],
        )
    assert info.value.errors[0].loc == ["body", "inputs", 0, "tool_call_id"]
    assert len(await api.list()) == count


async def test_bad_confirmations_are_422_and_nothing_is_stored(
    api: AsyncConversationsClient, server: LocalConversationsServer
) -> None:
    server.responder = ScriptedResponder(
        [[call_function("delete_file", {}, "plain"), call_function("delete_file", {}, "wait", pending=True)]]
    )
    first = await api.start(inputs="go", model="m", tools=TOOLS)
    cid = first.conversation_id
    before = (await api.history(cid)).entries
    stored = server.turns_stored

    cases: list[tuple[list[ToolCallConfirmation], list[int]]] = [
        ([ToolCallConfirmation(tool_call_id="nope", confirmation="allow")], [0]),
        ([ToolCallConfirmation(tool_call_id="plain", confirmation="allow")], [0]),  # not pending
        (  # the same call twice
            [
                ToolCallConfirmation(tool_call_id="wait", confirmation="allow"),
                ToolCallConfirmation(tool_call_id="wait", confirmation="deny"),
            ],
            [1],
        ),
    ]
    for confirmations, bad in cases:
        with pytest.raises(mc.UnprocessableEntityError) as info:
            await api.append(cid, tool_confirmations=confirmations)
        assert [e.loc for e in info.value.errors] == [
            ["body", "tool_confirmations", i, "tool_call_id"] for i in bad
        ]
        assert all(e.type == "value_error" for e in info.value.errors)

    with pytest.raises(mc.UnprocessableEntityError) as info:  # a bad result and a bad confirmation together
        await api.append(
            cid,
            inputs=[FunctionResultEntry(tool_call_id="ghost", result="x")],
            tool_confirmations=[{"tool_call_id": "ghost", "confirmation": "deny"}],
        )
    assert [e.loc for e in info.value.errors] == [
        ["body", "inputs", 0, "tool_call_id"],
        ["body", "tool_confirmations", 0, "tool_call_id"],
    ]

    assert (await api.history(cid)).entries == before
    assert [c.confirmation_status for c in _calls(before)] == [msgspec.UNSET, "pending"]
    assert server.turns_stored == stored


async def test_pending_call_confirmed_then_history_shows_allowed(
    api: AsyncConversationsClient, server: LocalConversationsServer
) -> None:
    recorder = Recorder(
        ScriptedResponder(
            [
                [call_function("delete_file", {"path": "/tmp/a"}, pending=True)],
                [reply_text("Deleted.")],
                [call_function("delete_file", {"path": "/tmp/b"}, pending=True)],
            ]
        )
    )
    server.responder = recorder
    async with api.start_stream(inputs="Delete /tmp/a", model="m", tools=TOOLS) as stream:
        first = await stream.final_response()
    (call,) = _calls(first.outputs)
    assert call.confirmation_status == "pending" and json.loads(str(call.arguments)) == {"path": "/tmp/a"}
    cid = first.conversation_id
    stored = (await api.history(cid)).entries
    assert [c.confirmation_status for c in _calls(stored)] == ["pending"]

    # Confirmation only: no inputs.
    answer = await api.append(
        cid, tool_confirmations=[{"tool_call_id": call.tool_call_id, "confirmation": "allow"}]
    )
    assert answer.output_text == "Deleted."
    history = (await api.history(cid)).entries
    assert [e.type for e in history] == ["message.input", "function.call", "message.output"]
    (confirmed,) = _calls(history)
    assert confirmed.confirmation_status == "allowed" and confirmed.id == call.id
    assert confirmed.tool_call_id == call.tool_call_id and confirmed.arguments == call.arguments

    context = recorder.contexts[1]
    assert context.inputs == [] and context.confirmations == [
        ToolCallConfirmation(tool_call_id=call.tool_call_id, confirmation="allow")
    ]
    assert [c.confirmation_status for c in _calls(context.history)] == ["allowed"]

    with pytest.raises(mc.UnprocessableEntityError):  # no longer pending
        await api.append(
            cid, tool_confirmations=[{"tool_call_id": call.tool_call_id, "confirmation": "deny"}]
        )

    # Deny, together with inputs, streamed; the default responder mentions confirmations.
    second = await api.append(cid, inputs="And /tmp/b")
    (call_b,) = _calls(second.outputs)
    server.responder = DefaultResponder()
    async with api.append_stream(
        cid, tool_confirmations=[{"tool_call_id": call_b.tool_call_id, "confirmation": "deny"}]
    ) as stream:
        denied = await stream.final_response()
    assert call_b.tool_call_id in denied.output_text and "deny" in denied.output_text
    statuses = [c.confirmation_status for c in _calls((await api.history(cid)).entries)]
    assert statuses == ["allowed", "denied"]


async def test_result_and_confirmation_in_one_append(
    api: AsyncConversationsClient, server: LocalConversationsServer
) -> None:
    """The official SDK's resumption: the client ran the paused function and confirms it in one request."""
    server.responder = ScriptedResponder([[call_function("delete_file", {}, "c1", pending=True)]])
    first = await api.start(inputs="go", model="m", tools=TOOLS)
    answer = await api.append(
        first.conversation_id,
        inputs=[FunctionResultEntry(tool_call_id="c1", result="gone")],
        tool_confirmations=[{"tool_call_id": "c1", "confirmation": "allow"}],
    )
    assert answer.output_text == "The function returned gone."
    history = (await api.history(first.conversation_id)).entries
    assert [e.type for e in history] == [
        "message.input",
        "function.call",
        "function.result",
        "message.output",
    ]
    assert _calls(history)[0].confirmation_status == "allowed"


async def test_store_false_confirmation_leaves_the_call_pending(
    api: AsyncConversationsClient, server: LocalConversationsServer
) -> None:
    recorder = Recorder(ScriptedResponder([[call_function("delete_file", {}, "c1", pending=True)]]))
    server.responder = recorder
    first = await api.start(inputs="go", model="m", tools=TOOLS)
    await api.append(
        first.conversation_id,
        tool_confirmations=[{"tool_call_id": "c1", "confirmation": "allow"}],
        store=False,
    )
    assert [c.confirmation_status for c in _calls(recorder.contexts[1].history)] == ["allowed"]
    history = (await api.history(first.conversation_id)).entries
    assert [c.confirmation_status for c in _calls(history)] == ["pending"]


async def test_responder_sees_completion_args_and_tools(
    api: AsyncConversationsClient, server: LocalConversationsServer
) -> None:
    recorder = Recorder(DefaultResponder())
    server.responder = recorder
    schema: JsonSchemaParam = {"name": "Answer", "schema": {"type": "object"}, "strict": True}
    first = await api.start(
        inputs="hi",
        model="m",
        tools=TOOLS,
        completion_args={
            "temperature": 0.2,
            "response_format": {"type": "json_schema", "json_schema": schema},
        },
    )
    cid = first.conversation_id
    await api.append(cid, inputs="again")
    await api.append(cid, inputs="json", completion_args={"response_format": {"type": "json_object"}})
    agent = await api.start(inputs="hi", agent_id="ag_1")
    await api.restart(
        cid,
        from_entry_id=str((await api.history(cid)).entries[1].id),
        inputs="branch",
        completion_args={"max_tokens": 5},
    )

    start, append, append_json, agent_start, restart = recorder.contexts
    args = start.completion_args
    assert isinstance(args, CompletionArgs) and args.temperature == 0.2
    assert isinstance(args.response_format, ResponseFormat) and args.response_format.type == "json_schema"
    assert args.response_format.json_schema is not None
    assert append.completion_args is None  # nothing sent on that append
    assert append_json.completion_args == CompletionArgs(response_format=ResponseFormat(type="json_object"))
    assert restart.completion_args == CompletionArgs(max_tokens=5)
    for context in (start, append, append_json, restart):
        (tool,) = context.tools
        assert isinstance(tool, FunctionTool) and tool.function.name == "delete_file"
        assert context.confirmations == []
    assert agent_start.tools == [] and agent_start.completion_args is None
    assert agent_start.conversation_id == agent.conversation_id


def test_turn_context_keeps_its_positional_form() -> None:
    context = TurnContext("conv_1", "m", None, [], [])
    assert context.confirmations == [] and context.completion_args is None and context.tools == []
    assert call_function("f", {"a": 1}, "t1").confirmation_status is msgspec.UNSET
    assert call_function("f", "{}", pending=True).confirmation_status == "pending"


async def test_counters(server: LocalConversationsServer) -> None:
    assert server.open_connections == 0 and server.turns_stored == 0
    async with AsyncConversationsClient(KEY, base_url=server.url, backoff=FAST_BACKOFF) as api:
        first = await api.start(inputs="one", model="m")
        cid = first.conversation_id
        await api.append(cid, inputs="two")
        async with api.append_stream(cid, inputs="three") as stream:
            await stream.final_response()
        await api.start(inputs="not kept", model="m", store=False)
        with pytest.raises(mc.UnprocessableEntityError):
            await api.append(cid, inputs=[FunctionResultEntry(tool_call_id="x", result="y")])
        await api.history(cid)
        await api.history(cid)
        await api.get(cid)
        await api.list()
        await api.delete(cid)
        with pytest.raises(mc.NotFoundError):
            await api.messages(cid)
    assert server.turns_stored == 3
    assert server.requests_per_route == {
        "POST /v1/conversations": 2,
        "POST /v1/conversations/{id}": 3,
        "GET /v1/conversations/{id}/history": 2,
        "GET /v1/conversations/{id}": 1,
        "GET /v1/conversations": 1,
        "DELETE /v1/conversations/{id}": 1,
        "GET /v1/conversations/{id}/messages": 1,
    }
    for _ in range(200):  # the server notices the client's close on a later loop turn
        if server.open_connections == 0:
            break
        await asyncio.sleep(0.01)
    assert server.open_connections == 0


@pytest.mark.aiohttp_only
async def test_pooled_connections_are_counted_until_the_client_closes(
    server: LocalConversationsServer,
) -> None:
    async with AsyncConversationsClient(KEY, base_url=server.url) as api:
        await api.start(inputs="one", model="m")
        assert server.open_connections == 1  # kept alive by the client's pool
    for _ in range(200):  # the server notices the close on a later loop turn
        if server.open_connections == 0:
            break
        await asyncio.sleep(0.005)
    assert server.open_connections == 0


async def test_counters_on_a_thread_and_401s_counted() -> None:
    with LocalConversationsServer(api_key=KEY) as server:
        async with AsyncConversationsClient("wrong", base_url=server.url) as bad:
            with pytest.raises(mc.AuthenticationError):
                await bad.list()
        assert server.requests_per_route["GET /v1/conversations"] == 1 and server.turns_stored == 0
    assert server.open_connections == 0
