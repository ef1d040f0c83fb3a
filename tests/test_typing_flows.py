"""The typing scripts of tests/typing run for real against the local server, so what they assert holds.

``.ci/run`` type-checks the same scripts with ``mypy --strict`` and ``pyright --strict``.
"""

from __future__ import annotations

from mistral_conv import AsyncConversationsClient, ConversationsClient
from mistral_conv.testing import LocalConversationsServer, ScriptedResponder, call_function, reply_text
from mistral_conv.testing.pytest_plugin import LOCAL_API_KEY

from .typing import async_flows, sync_flows


async def test_async_flows_run(mistral_client: AsyncConversationsClient) -> None:
    seen = await async_flows.run(mistral_client)
    assert any(s.startswith("conv_") for s in seen) and any("Stream it" in s for s in seen)


def test_sync_flows_run(mistral_sync_client: ConversationsClient) -> None:
    assert "More" in sync_flows.run(mistral_sync_client)


async def test_async_run_flow(
    mistral_server: LocalConversationsServer, mistral_client: AsyncConversationsClient
) -> None:
    mistral_server.responder = ScriptedResponder(
        [[call_function("weather", {"city": "London"})], [reply_text('{"name": "Ada", "age": 36}')]]
    )
    assert await async_flows.run_with_tools(mistral_client) == "weather sunny in London Ada"


def test_sync_run_flow(
    mistral_server: LocalConversationsServer, mistral_sync_client: ConversationsClient
) -> None:
    mistral_server.responder = ScriptedResponder(
        [[call_function("add", {"a": 1, "b": 2})], [reply_text("3")], [reply_text("5")]]
    )
    assert sync_flows.run_with_tools(mistral_sync_client) == "35"


async def test_async_observed_flow(mistral_server: LocalConversationsServer) -> None:
    seen = await async_flows.run_observed(mistral_server.url, LOCAL_API_KEY)
    assert seen[:2] == ["start #1", "200 True"]
    _, opened, *rest = seen[2].split()  # an idle connection is kept by a pooling transport
    assert opened in ("0", "1") and rest == ["0", "0", "100"]


def test_sync_observed_flow(mistral_server: LocalConversationsServer) -> None:
    assert sync_flows.run_observed(mistral_server.url, LOCAL_API_KEY) == ["start 200", "in use 0"]
