"""Runs with local tools over loopback HTTP: rounds, concurrency, failures, limits, confirmations,
structured output and exactly-once turns through the handle."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator

import anyio
import msgspec
import pytest

import mistral_conv as mc
from mistral_conv import AsyncConversationsClient, RunState, tool
from mistral_conv.models import FunctionResultEntry
from mistral_conv.testing import Fault, LocalConversationsServer, ScriptedResponder, call_function, reply_text

KEY = "local-key"


@pytest.fixture
async def client(server: LocalConversationsServer) -> AsyncIterator[AsyncConversationsClient]:
    async with AsyncConversationsClient(KEY, base_url=server.url, max_retries=0) as c:
        yield c


def script(server: LocalConversationsServer, *turns: list[object]) -> ScriptedResponder:
    responder = ScriptedResponder(turns)  # type: ignore[arg-type]
    server.responder = responder
    return responder


async def test_three_rounds_with_a_sync_and_an_async_tool_at_once(
    server: LocalConversationsServer, client: AsyncConversationsClient
) -> None:
    loop_thread = threading.get_ident()
    threads: dict[str, int] = {}
    started, release = threading.Event(), threading.Event()

    def weather(city: str) -> dict[str, object]:
        """The weather in a city.

        Args:
            city: The city's name.
        """
        threads["weather"] = threading.get_ident()
        started.set()
        overlapped = release.wait(5)  # released by the async tool while this one runs
        return {"city": city, "celsius": 18, "overlapped": overlapped}

    @tool
    async def population(city: str) -> int:
        """How many people live in a city."""
        threads["population"] = threading.get_ident()
        await anyio.to_thread.run_sync(started.wait, 5)
        release.set()
        return 2_100_000

    script(
        server,
        [call_function("weather", {"city": "Paris"}), call_function("population", {"city": "Paris"})],
        [call_function("weather", {"city": "Lyon"})],
        [reply_text("Paris: 18 °C, 2.1 M people.")],
    )
    conv = client.conversation(model="m", tools=[weather, population])
    result = await conv.send("Weather and population of Paris?")

    assert result.status == "completed" and result.rounds == 3
    assert result.output_text == "Paris: 18 °C, 2.1 M people."
    assert threads["weather"] != loop_thread and threads["population"] == loop_thread
    results = [e for e in result.entries if isinstance(e, FunctionResultEntry)]
    assert json.loads(results[0].result)["overlapped"] is True and results[1].result == "2100000"
    history = await conv.history()
    assert [e.type for e in history.entries] == [e.type for e in result.entries]
    assert conv.id == result.conversation_id and len(conv.entries) == len(result.entries)
    sent = msgspec.json.decode(json.dumps(server_tools(server)).encode())
    assert {t["function"]["name"] for t in sent} == {"weather", "population"}
    assert all(t["function"]["strict"] is True for t in sent)
    assert sent[0]["function"]["parameters"]["properties"]["city"]["description"] == "The city's name."


def server_tools(server: LocalConversationsServer) -> list[dict[str, object]]:
    record = next(iter(server.store.conversations.values())).record
    assert isinstance(record, mc.models.ModelConversation) and isinstance(record.tools, list)
    return [msgspec.to_builtins(t) for t in record.tools]


async def test_a_tool_that_raises_tells_the_model_or_stops_the_run(
    server: LocalConversationsServer, client: AsyncConversationsClient
) -> None:
    def broken(x: int) -> str:
        raise ValueError(f"bad {x}")

    script(server, [call_function("broken", {"x": 1})], [reply_text("sorry")])
    result = await client.conversation(model="m", tools=[broken]).send("go")
    told = next(e for e in result.entries if isinstance(e, FunctionResultEntry)).result
    assert "ValueError: bad 1" in told and result.output_text == "sorry"

    script(server, [call_function("broken", {"x": 2})])
    with pytest.raises(mc.ToolFailedError) as info:
        await client.conversation(model="m", tools=[broken], on_tool_error="raise").send("go")
    assert info.value.tool_name == "broken" and isinstance(info.value.__cause__, ValueError)
    assert info.value.result.rounds == 1 and info.value.conversation_id


async def test_bad_arguments_go_back_to_the_model(
    server: LocalConversationsServer, client: AsyncConversationsClient
) -> None:
    def add(a: int, b: int) -> int:
        return a + b

    script(server, [call_function("add", {"a": "one", "b": 2})], [reply_text("fixed")])
    result = await client.conversation(model="m", tools=[add]).send("1+2?")
    told = next(e for e in result.entries if isinstance(e, FunctionResultEntry)).result
    assert told.startswith("Error: invalid arguments for add") and "Expected `int`" in told


async def test_an_unknown_tool_is_a_typed_error_and_nothing_is_sent(
    server: LocalConversationsServer, client: AsyncConversationsClient
) -> None:
    def walk(to: str) -> str:
        return to

    script(server, [call_function("teleport", {"to": "Mars"})])
    conv = client.conversation(model="m", tools=[walk])
    with pytest.raises(mc.UnknownToolError) as info:
        await conv.send("go")
    assert info.value.tool_name == "teleport" and info.value.conversation_id == conv.id
    assert "teleport" in str(info.value) and str(conv.id) in str(info.value)
    posts = [r for r in server.requests if r[0] == "POST"]
    assert len(posts) == 1  # no append, empty or not


async def test_a_tool_time_limit_tells_the_model(
    server: LocalConversationsServer, client: AsyncConversationsClient
) -> None:
    @tool(timeout=0.05)
    async def slow() -> str:
        await anyio.sleep(30)
        return "never"

    script(server, [call_function("slow", {})], [reply_text("ok")])
    result = await client.conversation(model="m", tools=[slow]).send("go")
    told = next(e for e in result.entries if isinstance(e, FunctionResultEntry)).result
    assert "did not finish within 0.05 s" in told


async def test_the_round_limit_stops_with_everything_so_far(
    server: LocalConversationsServer, client: AsyncConversationsClient
) -> None:
    def again() -> str:
        return "again"

    script(server, *[[call_function("again", {})] for _ in range(5)])
    with pytest.raises(mc.MaxRoundsError) as info:
        await client.conversation(model="m", tools=[again], max_rounds=3).send("loop")
    assert info.value.result.rounds == 3
    assert len([e for e in info.value.result.entries if e.type == "function.result"]) == 2


async def test_cancelling_a_run_cancels_its_running_tools(
    server: LocalConversationsServer, client: AsyncConversationsClient
) -> None:
    running, cancelled = anyio.Event(), anyio.Event()

    async def forever() -> str:
        running.set()
        try:
            await anyio.sleep(60)
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise
        return "never"

    script(server, [call_function("forever", {}), call_function("forever", {})])
    conv = client.conversation(model="m", tools=[forever])
    async with anyio.create_task_group() as tg:
        tg.start_soon(conv.send, "go")
        await running.wait()
        tg.cancel_scope.cancel()
    assert cancelled.is_set()


async def test_a_streamed_run_matches_the_plain_run(
    server: LocalConversationsServer, client: AsyncConversationsClient
) -> None:
    def double(n: int) -> int:
        return 2 * n

    turns = ([call_function("double", {"n": 21}, "call_1")], [reply_text("It is 42.")])
    script(server, *turns)
    plain = await client.conversation(model="m", tools=[double]).send("double 21")
    script(server, *turns)
    async with client.conversation(model="m", tools=[double]).stream("double 21") as run:
        kinds = [event.type async for event in run]
        streamed = await run.final_result()
    assert kinds.count("local.tool.started") == 1 and kinds.count("local.function.result") == 1
    assert kinds.count("conversation.response.done") == 2
    assert kinds.index("local.tool.started") < kinds.index("local.function.result")
    assert streamed.output_text == plain.output_text == "It is 42."
    assert [e.type for e in streamed.entries] == [e.type for e in plain.entries]
    assert streamed.rounds == plain.rounds == 2


async def test_a_pending_confirmation_resumes_from_a_stored_state(
    server: LocalConversationsServer, client: AsyncConversationsClient
) -> None:
    @tool(requires_confirmation=True)
    def delete_file(path: str) -> str:
        return f"deleted {path}"

    script(
        server,
        [
            call_function("delete_file", {"path": "/tmp/a"}, "local_1"),
            call_function("send_mail", {"to": "x"}, "server_1", pending=True),
        ],
        [reply_text("Done.")],
    )
    conv = client.conversation(model="m", tools=[delete_file])
    paused = await conv.send("clean up and tell x")
    assert paused.status == "paused" and paused.state is not None
    assert {(p.tool_call_id, p.local) for p in paused.pending} == {("local_1", True), ("server_1", False)}
    stored = msgspec.json.encode(paused.state)  # the caller keeps it anywhere; a new process resumes
    state = msgspec.json.decode(stored, type=RunState)
    fresh = client.conversation(state.conversation_id, tools=[delete_file])
    done = await fresh.resume(state, {"local_1": "allow", "server_1": "deny"})
    assert done.status == "completed" and done.output_text == "Done."
    history = await fresh.history()
    results = [e for e in history.entries if isinstance(e, FunctionResultEntry)]
    assert [r.result for r in results] == ["deleted /tmp/a"]
    confirmed = [e for e in history.entries if e.type == "function.call" and e.tool_call_id == "server_1"]
    assert confirmed[0].confirmation_status == "denied"
    with pytest.raises(mc.InvalidRequestError, match="no decision"):
        await fresh.resume(state, {"local_1": "allow"})


class Person(msgspec.Struct):
    name: str
    age: int


async def test_structured_output_is_decoded_and_a_bad_answer_refused(
    server: LocalConversationsServer, client: AsyncConversationsClient
) -> None:
    responder = script(server, [reply_text('{"name": "Ada", "age": 36}')], [reply_text("not json")])
    result = await client.conversation(model="m", output_type=Person).send("Who?")
    assert result.parsed == Person(name="Ada", age=36)
    record = next(iter(server.store.conversations.values())).record
    assert isinstance(record, mc.models.ModelConversation)
    assert isinstance(record.completion_args, mc.models.CompletionArgs)
    fmt = record.completion_args.response_format
    assert isinstance(fmt, mc.models.ResponseFormat) and isinstance(fmt.json_schema, mc.models.JsonSchema)
    assert fmt.type == "json_schema" and fmt.json_schema.strict and fmt.json_schema.name == "Person"
    assert fmt.json_schema.schema_["required"] == ["name", "age"]
    with pytest.raises(mc.OutputParseError) as info:
        await client.conversation(model="m", output_type=Person).send("Who?")
    assert info.value.text == "not json" and info.value.result.output_text == "not json"
    assert responder.remaining == 0


@pytest.mark.parametrize("fault", [Fault.drop(), Fault.disconnect()], ids=["not-stored", "stored"])
async def test_a_lost_answer_to_the_results_is_settled_from_the_history(
    server: LocalConversationsServer, client: AsyncConversationsClient, fault: Fault
) -> None:
    async def lookup(key: str) -> str:
        server.inject(fault, method="POST")  # strikes the append that carries this result
        return f"value of {key}"

    script(server, [call_function("lookup", {"key": "k"})], [reply_text("The value is known.")])
    conv = client.conversation(model="m", tools=[lookup])
    result = await conv.send("look it up")
    assert result.status == "completed" and result.output_text == "The value is known."
    history = await conv.history()
    results = [e for e in history.entries if isinstance(e, FunctionResultEntry)]
    assert [r.result for r in results] == ["value of k"]  # stored once
    assert [e.type for e in history.entries][-1] == "message.output"
    posts = [path for method, path in server.requests if method == "POST"]
    reads = [path for method, path in server.requests if method == "GET" and path.endswith("/history")]
    # settled: the history was read; the append was sent again only when it had not been stored
    assert len(posts) == (3 if fault.kind == "drop" else 2) and len(reads) == 2


@pytest.mark.parametrize("fault", [Fault.drop(), Fault.disconnect()], ids=["not-stored", "stored"])
async def test_client_settle_tells_a_stored_turn_from_a_lost_one(
    server: LocalConversationsServer, client: AsyncConversationsClient, fault: Fault
) -> None:
    first = await client.start(inputs="hello", model="m")
    anchor = first.outputs[-1].id
    server.inject(fault, method="POST")
    with pytest.raises(mc.RequestOutcomeUnknownError) as info:
        await client.append(first.conversation_id, inputs="again")
    settled = await client.settle(info.value, last_entry_id=anchor)
    if fault.kind == "drop":
        assert settled is None  # not stored: safe to send again
    else:
        assert settled is not None and "again" in settled.output_text
        assert settled.conversation_id == first.conversation_id
    with pytest.raises(mc.InvalidRequestError, match="last_entry_id"):
        await client.settle(info.value)


async def test_a_handle_on_an_existing_conversation_settles_too(
    server: LocalConversationsServer, client: AsyncConversationsClient
) -> None:
    first = await client.start(inputs="hello", model="m")
    conv = client.conversation(first.conversation_id)  # reads the history once, before its first turn
    server.inject(Fault.disconnect(), method="POST")
    result = await conv.send("again")
    assert "again" in result.output_text and len(conv.entries) == 4
    history = await client.history(first.conversation_id)
    assert len(history.entries) == 4  # stored once, not resent


async def test_a_lost_restart_is_not_mistaken_for_the_conversation_it_branched_from(
    server: LocalConversationsServer, client: AsyncConversationsClient
) -> None:
    conv = client.conversation(model="m")
    first = await conv.send("hello")
    server.inject(Fault.disconnect(), method="POST")
    with pytest.raises(mc.RequestOutcomeUnknownError) as info:
        await conv.restart(first.outputs[-1].id, "branch")  # the new id never arrived: nothing to settle
    assert conv.id == first.conversation_id
    with pytest.raises(mc.InvalidRequestError, match="never arrived"):
        await client.settle(info.value)


async def test_a_tool_that_raises_timeout_error_is_a_failure_not_the_time_limit(
    server: LocalConversationsServer, client: AsyncConversationsClient
) -> None:
    def flaky() -> str:
        raise TimeoutError("the tool's own socket timed out")

    script(server, [call_function("flaky", {})], [reply_text("ok")])
    result = await client.conversation(model="m", tools=[flaky]).send("go")
    told = next(e for e in result.entries if isinstance(e, FunctionResultEntry)).result
    assert "TimeoutError: the tool's own socket timed out" in told
