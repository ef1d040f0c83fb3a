"""Against the real API: opt-in with ``MISTRAL_API_KEY=… python -m pytest -m live``; skipped otherwise."""

from __future__ import annotations

import pytest

from mistral_conv import AsyncConversationsClient, NotFoundError

pytestmark = pytest.mark.live
MODEL = "mistral-small-latest"


async def test_live_round_trip() -> None:
    async with AsyncConversationsClient() as client:
        first = await client.start(model=MODEL, inputs="Reply with the single word: pong", store=True)
        assert first.output_text.strip()
        async with client.append_stream(first.conversation_id, inputs="Again, one word.") as stream:
            text = "".join([t async for t in stream.text_stream()])
        assert text.strip() and stream.conversation_id == first.conversation_id
        history = await client.history(first.conversation_id)
        assert [e.type for e in history.entries][:2] == ["message.input", "message.output"]
        await client.delete(first.conversation_id)
        with pytest.raises(NotFoundError):
            await client.get(first.conversation_id)
