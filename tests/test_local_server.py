"""The local server: every client method over loopback HTTP, validation, state, and scripted runs."""

from __future__ import annotations

import json

import pytest

import mistral_conv as mc
from mistral_conv import AsyncConversationsClient
from mistral_conv.models import (
    AgentConversation,
    AgentHandoffEntry,
    FunctionResultEntry,
    MessageOutputEntry,
    ModelConversation,
    ToolExecutionEntry,
)
from mistral_conv.testing import (
    LocalConversationsServer,
    ScriptedResponder,
    call_function,
    fail,
    hand_off,
    reply_text,
    run_tool,
)
from mistral_conv.types import FunctionToolParam

KEY = "local-key"


async def test_every_method_plain_and_streaming(api: AsyncConversationsClient) -> None:
    first = await api.start(inputs="Hello", model="mistral-small-latest", name="t", metadata={"user": "u1"})
    assert "Hello" in first.output_text and first.usage.total_tokens > 0
    cid = first.conversation_id
    assert cid.startswith("conv_") and len(cid) == 37

    appended = await api.append(cid, inputs="Again")
    assert appended.conversation_id == cid and "Again" in appended.output_text

    async with api.append_stream(cid, inputs="Streamed") as stream:
        text = "".join([t async for t in stream.text_stream()])
    assert "Streamed" in text and stream.conversation_id == cid
    final = await stream.final_response()
    assert final.output_text == text and final.usage.total_tokens > 0

    history = await api.history(cid)
    assert [e.type for e in history.entries] == ["message.input", "message.output"] * 3
    assert all(e.id and e.type != "unknown" and e.created_at for e in history.entries)
    messages = await api.messages(cid)
    assert len(messages.messages) == 6

    branch_from = history.entries[1].id
    restarted = await api.restart(cid, from_entry_id=branch_from, inputs="Branch")
    assert restarted.conversation_id != cid
    branch = await api.history(restarted.conversation_id)
    assert [e.id for e in branch.entries[:2]] == [e.id for e in history.entries[:2]]
    assert len(branch.entries) == 4

    async with api.restart_stream(cid, from_entry_id=branch_from, inputs="Branch 2") as rs:
        restarted2 = await rs.final_response()
    assert restarted2.conversation_id not in (cid, restarted.conversation_id)

    async with api.start_stream(inputs="Agent?", agent_id="ag_1", agent_version=2) as ss:
        agent_run = await ss.final_response()
    got = await api.get(agent_run.conversation_id)
    assert isinstance(got, AgentConversation) and got.agent_id == "ag_1" and got.agent_version == 2
    model_conv = await api.get(cid)
    assert (
        isinstance(model_conv, ModelConversation)
        and model_conv.metadata == {"user": "u1"}
        and model_conv.name == "t"
    )

    listed = await api.list()
    assert listed[0].id == agent_run.conversation_id  # newest first
    assert [c.id for c in await api.list(metadata={"user": "u1"})] == [
        c.id for c in listed if c.metadata == {"user": "u1"}
    ]
    assert len(await api.list(page=1, page_size=2)) == 2
    assert len([c async for c in api.iter_conversations(page_size=1)]) == len(listed)

    await api.delete(cid)
    with pytest.raises(mc.NotFoundError):
        await api.get(cid)


async def test_store_false_keeps_nothing(api: AsyncConversationsClient) -> None:
    r = await api.start(inputs="secret", model="m", store=False)
    with pytest.raises(mc.NotFoundError):
        await api.history(r.conversation_id)
    assert await api.list() == []


async def test_wrong_key_is_401(server: LocalConversationsServer) -> None:
    async with AsyncConversationsClient("wrong", base_url=server.url) as c:
        with pytest.raises(mc.AuthenticationError, match="Unauthorized"):
            await c.list()


async def test_bad_bodies_are_422_with_detail(
    api: AsyncConversationsClient, server: LocalConversationsServer
) -> None:
    with pytest.raises(mc.UnprocessableEntityError) as info:
        await api.start(inputs="x", model="m", extra_body={"not_a_field": 1})
    assert (
        info.value.errors[0].loc == ["body", "not_a_field"] and info.value.errors[0].type == "extra_forbidden"
    )
    with pytest.raises(mc.UnprocessableEntityError) as info:
        await api.start(inputs="x", model="m", extra_body={"temperature_typo": 1, "store": "yes"})
    assert info.value.errors[0].loc == ["body", "temperature_typo"]
    with pytest.raises(mc.UnprocessableEntityError) as info:
        await api.start(inputs="x", model="m", extra_body={"store": "yes"})
    assert info.value.errors[0].loc == ["body", "store"]
    with pytest.raises(mc.UnprocessableEntityError):
        await api.start(inputs=[{"type": "message.future", "x": 1}], model="m")  # type: ignore[list-item]


async def test_unknown_conversation_is_404(api: AsyncConversationsClient) -> None:
    for call in (api.get, api.history, api.messages, api.delete):
        with pytest.raises(mc.NotFoundError):
            await call("conv_missing")
    with pytest.raises(mc.NotFoundError):
        await api.append("conv_missing", inputs="x")


async def test_function_calling_round_trip(
    api: AsyncConversationsClient, server: LocalConversationsServer
) -> None:
    script = ScriptedResponder(
        [
            [call_function("get_weather", {"city": "Paris"})],
            [reply_text("It is 18 °C in Paris.")],
        ]
    )
    server.responder = script
    tools: list[FunctionToolParam] = [
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    ]
    async with api.start_stream(inputs="Weather in Paris?", model="m", tools=tools) as stream:
        first = await stream.final_response()
    call = first.outputs[0]
    assert call.type == "function.call" and isinstance(call.arguments, str)
    assert json.loads(call.arguments) == {"city": "Paris"}
    result = FunctionResultEntry(tool_call_id=call.tool_call_id, result=json.dumps({"celsius": 18}))
    answer = await api.append(first.conversation_id, inputs=[result])
    assert answer.output_text == "It is 18 °C in Paris."
    assert script.remaining == 0
    history = await api.history(first.conversation_id)
    assert [e.type for e in history.entries] == [
        "message.input",
        "function.call",
        "function.result",
        "message.output",
    ]
    stored = history.entries[2]
    assert isinstance(stored, FunctionResultEntry) and stored.tool_call_id == call.tool_call_id


async def test_tools_handoffs_and_failures_stream_and_rebuild(
    api: AsyncConversationsClient, server: LocalConversationsServer
) -> None:
    server.responder = ScriptedResponder(
        [
            [
                hand_off("ag_a", "router", "ag_b", "searcher"),
                run_tool("web_search", '{"query": "x"}', {"results": 3}),
                reply_text("Found it."),
            ],
            [reply_text("Partial"), fail("Response failed during handoff orchestration", 3000)],
            [fail("boom", 3001)],
        ]
    )
    async with api.start_stream(inputs="go", agent_id="ag_a") as stream:
        final = await stream.final_response()
    handoff, tool, message = final.outputs
    assert isinstance(handoff, AgentHandoffEntry) and handoff.next_agent_name == "searcher"
    assert (
        isinstance(tool, ToolExecutionEntry)
        and tool.arguments == '{"query": "x"}'
        and tool.info == {"results": 3}
    )
    assert isinstance(message, MessageOutputEntry) and message.content == "Found it."
    plain = await api.history(final.conversation_id)
    assert [e.type for e in plain.entries] == [
        "message.input",
        "agent.handoff",
        "tool.execution",
        "message.output",
    ]

    with pytest.raises(mc.StreamError) as info:
        await api.append_stream(final.conversation_id, inputs="more").final_response()
    assert (
        info.value.code == 3000
        and info.value.partial is not None
        and info.value.partial.output_text == "Partial"
    )

    with pytest.raises(mc.RequestOutcomeUnknownError) as err:  # a 500 on a turn: it may have been stored
        await api.append(final.conversation_id, inputs="again", max_retries=0)
    reason = err.value.reason
    assert isinstance(reason, mc.InternalServerError) and reason.code == 3001 and "boom" in str(reason)
    assert err.value.conversation_id == final.conversation_id
