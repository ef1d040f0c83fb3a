"""The pytest plugin's fixtures, as a user's test suite meets them."""

from __future__ import annotations

from mistral_conv import AsyncConversationsClient, ConversationsClient
from mistral_conv.testing import Fault, LocalConversationsServer


async def test_fixtures_give_a_bound_client(
    mistral_client: AsyncConversationsClient, mistral_server: LocalConversationsServer
) -> None:
    reply = await mistral_client.start(inputs="hi", model="mistral-small-latest")
    assert "hi" in reply.output_text
    assert mistral_server.requests == [("POST", "/v1/conversations")]


async def test_faults_through_the_fixture(
    mistral_client: AsyncConversationsClient, mistral_server: LocalConversationsServer
) -> None:
    mistral_server.inject(Fault.error_status(503))
    reply = await mistral_client.start(inputs="retry me", model="m")
    assert "retry me" in reply.output_text and len(mistral_server.requests) == 2


def test_sync_fixture(mistral_sync_client: ConversationsClient) -> None:
    assert "sync" in mistral_sync_client.start(inputs="sync hi", model="m").output_text
