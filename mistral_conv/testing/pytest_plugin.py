"""pytest fixtures for apps built on mistral_conv (registered through the `pytest11` entry point).

* `mistral_server`: a running `LocalConversationsServer` on its own thread
  (so it works for sync and async tests alike); script it with
  `mistral_server.responder = ScriptedResponder(...)` or `mistral_server.inject(Fault...)`.
* `mistral_client`: an `AsyncConversationsClient` bound to it (needs pytest-asyncio).
* `mistral_sync_client`: a blocking `ConversationsClient` bound to it.

For example:

    async def test_my_bot(mistral_client):
        answer = await my_bot(mistral_client, "hi")
        assert "hi" in answer
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from .._api import AsyncConversationsClient
from .._sync_api import ConversationsClient
from ._server import LocalConversationsServer

LOCAL_API_KEY = "local-test-key"
"""The API key the fixtures' server accepts and their clients send."""


@pytest.fixture
def mistral_server() -> Iterator[LocalConversationsServer]:
    """A fresh local Conversations API server for one test."""
    server = LocalConversationsServer(api_key=LOCAL_API_KEY)
    server.start_in_thread()
    try:
        yield server
    finally:
        server.stop_thread()


@pytest.fixture
def mistral_sync_client(mistral_server: LocalConversationsServer) -> Iterator[ConversationsClient]:
    """A blocking client bound to `mistral_server`, closed after the test."""
    with ConversationsClient(LOCAL_API_KEY, base_url=mistral_server.url) as client:
        yield client


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the async fixture needs pytest-asyncio
    pass
else:

    @pytest_asyncio.fixture
    async def mistral_client(
        mistral_server: LocalConversationsServer,
    ) -> AsyncIterator[AsyncConversationsClient]:
        """An async client bound to `mistral_server`, closed after the test."""
        async with AsyncConversationsClient(LOCAL_API_KEY, base_url=mistral_server.url) as client:
            yield client
