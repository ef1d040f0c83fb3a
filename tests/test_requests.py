"""Request shapes, one test per endpoint (aioresponses): method, path, headers and exact JSON."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from yarl import URL

from mistral_conv import AsyncConversationsClient
from mistral_conv.models import FunctionResultEntry, MessageInputEntry, TextChunk

from .conftest import API_KEY, CompatAioresponses

BASE = "https://api.test"
RESPONSE = {"conversation_id": "conv_1", "outputs": [], "usage": {}}
CONV = {
    "id": "conv_1",
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
    "model": "m",
}


@pytest.fixture
async def api() -> Any:
    async with AsyncConversationsClient(API_KEY, base_url=BASE, max_retries=0) as c:
        yield c


def sent(m: CompatAioresponses, method: str, url: str) -> Any:
    """The one call made to ``url`` (query ignored)."""
    target = URL(url).with_query(None)
    calls = [
        c
        for (meth, u), cs in m.requests.items()
        if meth == method and u.with_query(None) == target
        for c in cs
    ]
    assert len(calls) == 1
    return calls[0].kwargs


def check_headers(kw: dict[str, Any], accept: str = "application/json", body: bool = True) -> None:
    headers = kw["headers"]
    assert headers["Accept"] == accept
    if body:
        assert headers["Content-Type"] == "application/json"


async def test_start(api: AsyncConversationsClient, mock_api: CompatAioresponses) -> None:
    mock_api.post(f"{BASE}/v1/conversations", payload=RESPONSE)
    await api.start(
        inputs=[MessageInputEntry(role="user", content=[TextChunk(text="hi")])],
        model="mistral-medium-latest",
        instructions="Be brief.",
        completion_args={"temperature": 0.2},
        metadata={"k": "v"},
    )
    kw = sent(mock_api, "POST", f"{BASE}/v1/conversations")
    check_headers(kw)
    assert json.loads(kw["data"]) == {
        "inputs": [
            {
                "type": "message.input",
                "object": "entry",
                "role": "user",
                "content": [{"type": "text", "text": "hi"}],
                "prefix": False,
            }
        ],
        "stream": False,
        "instructions": "Be brief.",
        "completion_args": {"temperature": 0.2},
        "metadata": {"k": "v"},
        "model": "mistral-medium-latest",
    }


async def test_append(api: AsyncConversationsClient, mock_api: CompatAioresponses) -> None:
    mock_api.post(f"{BASE}/v1/conversations/conv_1", payload=RESPONSE)
    await api.append("conv_1", inputs=[FunctionResultEntry(tool_call_id="t1", result="42")])
    kw = sent(mock_api, "POST", f"{BASE}/v1/conversations/conv_1")
    check_headers(kw)
    assert json.loads(kw["data"]) == {
        "inputs": [{"type": "function.result", "object": "entry", "tool_call_id": "t1", "result": "42"}],
        "stream": False,
        "store": True,
        "handoff_execution": "server",
    }


async def test_restart(api: AsyncConversationsClient, mock_api: CompatAioresponses) -> None:
    mock_api.post(f"{BASE}/v1/conversations/conv_1/restart", payload=RESPONSE)
    await api.restart("conv_1", from_entry_id="msg_1", inputs="again", agent_version=3)
    kw = sent(mock_api, "POST", f"{BASE}/v1/conversations/conv_1/restart")
    check_headers(kw)
    assert json.loads(kw["data"]) == {
        "from_entry_id": "msg_1",
        "inputs": "again",
        "stream": False,
        "store": True,
        "handoff_execution": "server",
        "agent_version": 3,
    }


async def test_get(api: AsyncConversationsClient, mock_api: CompatAioresponses) -> None:
    mock_api.get(f"{BASE}/v1/conversations/conv_1", payload=CONV)
    await api.get("conv_1")
    kw = sent(mock_api, "GET", f"{BASE}/v1/conversations/conv_1")
    check_headers(kw, body=False)
    assert kw["data"] is None


async def test_list(api: AsyncConversationsClient, mock_api: CompatAioresponses) -> None:
    url = f"{BASE}/v1/conversations"
    mock_api.get(re.compile(re.escape(url) + r"\?.*"), payload=[CONV])
    await api.list(page=1, page_size=5, metadata={"tags": ["a", "b"], "ok": True})
    (key, calls), *_ = mock_api.requests.items()
    assert key[0] == "GET" and str(key[1]).startswith(url + "?")
    check_headers(calls[0].kwargs, body=False)
    assert dict(key[1].query) == {"page": "1", "page_size": "5", "metadata": '{"tags":["a","b"],"ok":true}'}


async def test_list_without_metadata_sends_no_metadata(
    api: AsyncConversationsClient, mock_api: CompatAioresponses
) -> None:
    url = f"{BASE}/v1/conversations"
    mock_api.get(url, payload=[])
    assert await api.list() == []
    (key, _calls), *_ = mock_api.requests.items()
    assert str(key[1]) == url  # no query at all


async def test_history(api: AsyncConversationsClient, mock_api: CompatAioresponses) -> None:
    mock_api.get(
        f"{BASE}/v1/conversations/conv_1/history", payload={"conversation_id": "conv_1", "entries": []}
    )
    await api.history("conv_1")
    check_headers(sent(mock_api, "GET", f"{BASE}/v1/conversations/conv_1/history"), body=False)


async def test_messages(api: AsyncConversationsClient, mock_api: CompatAioresponses) -> None:
    mock_api.get(
        f"{BASE}/v1/conversations/conv_1/messages", payload={"conversation_id": "conv_1", "messages": []}
    )
    await api.messages("conv_1")
    check_headers(sent(mock_api, "GET", f"{BASE}/v1/conversations/conv_1/messages"), body=False)


async def test_delete(api: AsyncConversationsClient, mock_api: CompatAioresponses) -> None:
    mock_api.delete(f"{BASE}/v1/conversations/conv_1", status=204, body=b"")
    assert (await api.delete("conv_1")).status == 204
    check_headers(sent(mock_api, "DELETE", f"{BASE}/v1/conversations/conv_1"), body=False)


async def test_per_call_extras(api: AsyncConversationsClient, mock_api: CompatAioresponses) -> None:
    mock_api.post(f"{BASE}/v1/conversations?beta=1", payload=RESPONSE)
    await api.start(
        inputs="hi",
        model="m",
        extra_headers={"X-Trace": "abc"},
        extra_query={"beta": "1"},
        extra_body={"future_field": {"x": 1}},
    )
    kw = sent(mock_api, "POST", f"{BASE}/v1/conversations?beta=1")
    assert kw["headers"]["X-Trace"] == "abc"
    assert json.loads(kw["data"]) == {"inputs": "hi", "stream": False, "model": "m", "future_field": {"x": 1}}
