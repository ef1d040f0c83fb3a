"""The typing scripts of tests/typing run for real against the local server, so what they assert holds.

``.ci/run`` type-checks the same scripts with ``mypy --strict`` and ``pyright --strict``.
"""

from __future__ import annotations

from mistral_conv import AsyncConversationsClient, ConversationsClient

from .typing import async_flows, sync_flows


async def test_async_flows_run(mistral_client: AsyncConversationsClient) -> None:
    seen = await async_flows.run(mistral_client)
    assert any(s.startswith("conv_") for s in seen) and any("Stream it" in s for s in seen)


def test_sync_flows_run(mistral_sync_client: ConversationsClient) -> None:
    assert "More" in sync_flows.run(mistral_sync_client)
