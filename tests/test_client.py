"""Every plain method over real loopback HTTP, argument checks, ids, timeouts and lifecycle."""

from __future__ import annotations

import asyncio

import pytest

import mistral_conv as mc
from mistral_conv import AsyncConversationsClient, Timeout
from mistral_conv.models import AgentConversation, FunctionCallEntry, ModelConversation

from .conftest import API_KEY, TimersAhead
from .loopback import Json, Loopback, Stall

CONV_M = {
    "id": "conv_m",
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:01Z",
    "model": "m",
}
CONV_A = {
    "id": "conv_a",
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:01Z",
    "agent_id": "ag_1",
}
RESPONSE = {
    "object": "conversation.response",
    "conversation_id": "conv_1",
    "outputs": [
        {"object": "entry", "type": "message.output", "id": "msg_1", "content": "Hello", "model": "m"},
        {
            "object": "entry",
            "type": "function.call",
            "id": "fc_1",
            "tool_call_id": "t1",
            "name": "f",
            "arguments": "{}",
        },
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
}


async def test_every_plain_method_over_loopback(client: AsyncConversationsClient, loopback: Loopback) -> None:
    loopback.reply("POST", "/v1/conversations", Json(RESPONSE))
    loopback.reply("POST", "/v1/conversations/conv_1", Json(RESPONSE))
    loopback.reply(
        "POST", "/v1/conversations/conv_1/restart", Json({**RESPONSE, "conversation_id": "conv_2"})
    )
    loopback.reply("GET", "/v1/conversations/conv_1", Json(CONV_A))
    loopback.reply("GET", "/v1/conversations", Json([CONV_A, CONV_M]))
    loopback.reply(
        "GET",
        "/v1/conversations/conv_1/history",
        Json(
            {
                "conversation_id": "conv_1",
                "entries": [{"type": "message.input", "role": "user", "content": "hi"}],
            }
        ),
    )
    loopback.reply(
        "GET",
        "/v1/conversations/conv_1/messages",
        Json({"conversation_id": "conv_1", "messages": [{"type": "message.output", "content": "yo"}]}),
    )
    loopback.reply("DELETE", "/v1/conversations/conv_1", Json(b"", status=204))

    started = await client.start(inputs="hi", model="m")
    assert started.output_text == "Hello" and isinstance(started.outputs[1], FunctionCallEntry)
    assert started.usage.total_tokens == 3
    appended = await client.append("conv_1", inputs="more")
    assert appended.conversation_id == "conv_1"
    restarted = await client.restart("conv_1", from_entry_id="msg_1", inputs="again")
    assert restarted.conversation_id == "conv_2"
    got = await client.get("conv_1")
    assert isinstance(got, AgentConversation) and got.agent_id == "ag_1"
    listed = await client.list(page=0, page_size=10)
    assert [type(c) for c in listed] == [AgentConversation, ModelConversation]
    history = await client.history("conv_1")
    assert history.entries[0].type == "message.input"
    messages = await client.messages("conv_1")
    assert messages.messages[0].type == "message.output"
    assert (await client.delete("conv_1")).status == 204
    methods = [(r.method, r.path) for r in loopback.requests]
    assert methods == [
        ("POST", "/v1/conversations"),
        ("POST", "/v1/conversations/conv_1"),
        ("POST", "/v1/conversations/conv_1/restart"),
        ("GET", "/v1/conversations/conv_1"),
        ("GET", "/v1/conversations"),
        ("GET", "/v1/conversations/conv_1/history"),
        ("GET", "/v1/conversations/conv_1/messages"),
        ("DELETE", "/v1/conversations/conv_1"),
    ]
    for r in loopback.requests:
        assert r.headers["Authorization"] == f"Bearer {API_KEY}"
        assert r.headers["User-Agent"] == f"mistral_conv/{mc.__version__}"


async def test_iter_conversations_walks_every_page(
    client: AsyncConversationsClient, loopback: Loopback
) -> None:
    page = [dict(CONV_M, id=f"conv_{i}") for i in range(3)]
    loopback.reply("GET", "/v1/conversations", Json(page), Json(page), Json(page[:1]))
    ids = [c.id async for c in client.iter_conversations(page_size=3, metadata={"u": 1})]
    assert len(ids) == 7
    assert [r.query["page"] for r in loopback.requests] == ["0", "1", "2"]
    assert all(r.query["metadata"] == '{"u":1}' for r in loopback.requests)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.start(inputs="hi"), "model/agent_id"),
        (lambda c: c.start(inputs="hi", model="m", agent_id="a"), "model/agent_id"),
        (lambda c: c.start(inputs="", model="m"), "inputs"),
        (lambda c: c.start(inputs=[], model="m"), "inputs"),
        (lambda c: c.start(model="m"), "inputs"),
        (lambda c: c.start(inputs=[42], model="m"), "inputs[0]"),
        (lambda c: c.start(inputs=[{"role": "system", "content": "x"}], model="m"), "inputs[0].role"),
        (
            lambda c: c.start(inputs="x", model="m", completion_args={"temperature": "hot"}),
            "completion_args.temperature",
        ),
        (lambda c: c.start(inputs="x", model="m", tools=[{"type": "function"}]), "tools[0]"),
        (lambda c: c.start(inputs="x", model="m", temprature=1), "temprature"),
        (lambda c: c.append("conv_1", inputs=[]), "inputs"),
        (lambda c: c.append("", inputs="x"), "conversation_id"),
        (lambda c: c.restart("conv_1", inputs="x"), "from_entry_id"),
        (lambda c: c.restart("conv_1", from_entry_id=""), "from_entry_id"),
        (lambda c: c.list(page=-1), "page"),
        (lambda c: c.list(page_size=-5), "page_size"),
        (lambda c: c.get("c", max_retries=-1), "max_retries"),
        (lambda c: c.get("c", extra_headers={"X": "a\r\nInjected: 1"}), "extra_headers['X']"),
        (lambda c: c.get("c", timeout=-1), "timeout"),
    ],
)
async def test_bad_arguments_fail_before_sending(
    call,
    field: str,
    client: AsyncConversationsClient,
    loopback: Loopback,  # type: ignore[no-untyped-def]
) -> None:
    with pytest.raises(mc.InvalidRequestError) as info:
        await call(client)
    assert info.value.field.startswith(field), info.value
    assert isinstance(info.value, ValueError)
    assert loopback.requests == []


@pytest.mark.parametrize("conv_id", ["../other", "a/b", "x?y=1", "#frag", "..", "a b", "ü"])
async def test_conversation_id_cannot_escape_its_route(
    conv_id: str, client: AsyncConversationsClient, loopback: Loopback
) -> None:
    loopback.reply("GET", "/v1/conversations/x", Json(CONV_M))
    with pytest.raises(mc.APIStatusError):  # the loopback answers 599 for anything but a known route
        await client.get(conv_id)
    sent = loopback.requests[-1]
    assert sent.path == f"/v1/conversations/{conv_id}"  # one path segment, decoded back exactly
    assert sent.raw_path.count("/") == 3 and sent.query == {}


async def test_inputs_dict_without_type_is_a_user_message(
    client: AsyncConversationsClient, loopback: Loopback
) -> None:
    loopback.reply("POST", "/v1/conversations", Json(RESPONSE))
    await client.start(inputs=[{"role": "user", "content": "hi"}], agent_id="ag_1")
    assert loopback.requests[0].json()["inputs"] == [
        {"role": "user", "content": "hi", "type": "message.input"}
    ]


async def test_read_timeout_fires(client: AsyncConversationsClient, loopback: Loopback) -> None:
    loopback.reply("GET", "/v1/conversations/slow", Stall())
    with pytest.raises(mc.APITimeoutError) as info:
        await client.get("slow", timeout=Timeout(read=0.2), max_retries=0)
    assert info.value.limit == "read"


async def test_total_timeout_fires(client: AsyncConversationsClient, loopback: Loopback) -> None:
    loopback.reply("GET", "/v1/conversations/slow", Stall())
    with pytest.raises(mc.APITimeoutError) as info:
        await client.get("slow", timeout=Timeout(total=0.2, read=None), max_retries=0)
    assert info.value.limit == "total"


async def test_total_limits_of_calls_in_flight_each_fire_on_time(
    client: AsyncConversationsClient, loopback: Loopback
) -> None:
    loopback.reply("GET", "/v1/conversations/slow", Stall())
    loop = asyncio.get_running_loop()
    started = loop.time()
    longer = asyncio.create_task(client.get("slow", timeout=Timeout(total=0.6, read=None), max_retries=0))
    await asyncio.sleep(0.05)  # the longer limit is armed first, the shorter one comes after
    with pytest.raises(mc.APITimeoutError) as shorter:
        await client.get("slow", timeout=Timeout(total=0.2, read=None), max_retries=0)
    assert shorter.value.limit == "total" and loop.time() - started < 0.5
    assert not longer.done()
    with pytest.raises(mc.APITimeoutError) as info:
        await longer
    assert info.value.limit == "total" and loop.time() - started >= 0.55


async def test_plain_calls_share_one_timer_for_their_total_limit(
    client: AsyncConversationsClient, loopback: Loopback
) -> None:
    loopback.reply("GET", "/v1/conversations/c", Json(CONV_M))
    limit = 7.25  # told apart from every other timer by its delay (the pool's is 5 ms shorter)
    with TimersAhead(limit, tolerance=0.002) as timers:
        for _ in range(20):
            await client.get("c", timeout=Timeout(total=limit))
        assert len(timers.armed) <= 1  # asyncio.timeout armed (and cancelled) one a call
    await client.aclose()
    assert timers.pending() == []  # the client's close cancels it


async def test_timeouts_are_retried(client: AsyncConversationsClient, loopback: Loopback) -> None:
    loopback.reply("GET", "/v1/conversations/c", Stall(), Json(CONV_M))
    conv = await client.get("c", timeout=0.2, max_retries=1)
    assert conv.id == "conv_m" and loopback.count("GET", "/v1/conversations/c") == 2


async def test_closed_client_says_so(loopback: Loopback) -> None:
    client = AsyncConversationsClient(API_KEY, base_url=loopback.url)
    await client.aclose()
    with pytest.raises(mc.ClientClosedError, match="closed"):
        await client.get("c")


async def test_env_fallbacks(monkeypatch: pytest.MonkeyPatch, loopback: Loopback) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", "env-key")
    monkeypatch.setenv("MISTRAL_BASE_URL", loopback.url)
    loopback.reply("GET", "/v1/conversations/c", Json(CONV_M))
    async with AsyncConversationsClient() as c:
        await c.get("c")
    assert loopback.requests[0].headers["Authorization"] == "Bearer env-key"


def test_default_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MISTRAL_BASE_URL", raising=False)
    assert AsyncConversationsClient("k").base_url == "https://api.mistral.ai"


def test_key_is_refused_over_plain_http_to_remote_host() -> None:
    with pytest.raises(mc.InvalidRequestError, match="plain http"):
        AsyncConversationsClient("k", base_url="http://api.example.com")
    AsyncConversationsClient("k", base_url="http://api.example.com", allow_insecure_http=True)
    AsyncConversationsClient("k", base_url="http://localhost:8080")


def test_header_injection_in_key_is_refused() -> None:
    with pytest.raises(mc.InvalidRequestError) as info:
        AsyncConversationsClient("abc\r\nX-Evil: 1", base_url="https://api.test")
    assert info.value.field == "api_key" and "abc" not in str(info.value)


@pytest.mark.aiohttp_only
async def test_session_is_created_lazily_in_the_running_loop(loopback: Loopback) -> None:
    client = AsyncConversationsClient(API_KEY, base_url=loopback.url)
    assert client.transport.session is None
    loopback.reply("GET", "/v1/conversations/c", Json(CONV_M))
    await client.get("c")
    session = client.transport.session
    assert session is not None and session._loop is asyncio.get_running_loop()
    await client.aclose()
    assert session.closed


@pytest.mark.aiohttp_only
async def test_proxy_variables_are_honoured(monkeypatch: pytest.MonkeyPatch, loopback: Loopback) -> None:
    monkeypatch.setenv("HTTP_PROXY", loopback.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    loopback.reply("GET", "http://api.test/v1/conversations/c", Json(CONV_M))
    loopback.reply("GET", "/v1/conversations/c", Json(CONV_M))
    async with AsyncConversationsClient(API_KEY, base_url="http://api.test", allow_insecure_http=True) as c:
        assert (await c.get("c")).id == "conv_m"
    sent = loopback.requests[0]
    assert sent.headers["Host"] == "api.test" and sent.path == "/v1/conversations/c"


async def test_no_proxy_bypasses_the_proxy(monkeypatch: pytest.MonkeyPatch, loopback: Loopback) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    loopback.reply("GET", "/v1/conversations/c", Json(CONV_M))
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url) as c:
        assert (await c.get("c")).id == "conv_m"


@pytest.mark.parametrize(
    ("kwargs", "hint"),
    [
        ({"modle": "m"}, "did you mean 'model'?"),
        ({"instrucions": "be brief"}, "did you mean 'instructions'?"),
        ({"temperature": 0.2}, "completion_args={'temperature': ...}"),
    ],
)
def test_misspelt_arguments_get_a_hint(kwargs: dict[str, object], hint: str) -> None:
    client = AsyncConversationsClient("k", base_url="http://127.0.0.1:9")
    given = {"inputs": "x", **({} if "modle" in kwargs else {"model": "m"}), **kwargs}
    with pytest.raises(mc.InvalidRequestError) as info:
        client.start_stream(**given)  # type: ignore[arg-type]
    assert hint in str(info.value) and info.value.field == next(iter(kwargs))
