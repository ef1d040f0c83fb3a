"""Start a conversation, continue it with a streamed answer, and read its history.

Runs against the real API when MISTRAL_API_KEY is set, else against an in-process local server.
    python examples/quickstart.py
"""

from __future__ import annotations

import asyncio
import os
from contextlib import AsyncExitStack

from mistral_conv import AsyncConversationsClient
from mistral_conv.testing import LocalConversationsServer


async def main() -> None:
    async with AsyncExitStack() as stack:
        if os.environ.get("MISTRAL_API_KEY"):
            client = await stack.enter_async_context(AsyncConversationsClient())
        else:
            server = await stack.enter_async_context(LocalConversationsServer())
            client = await stack.enter_async_context(AsyncConversationsClient("local", base_url=server.url))

        first = await client.start(model="mistral-medium-latest", inputs="Name three French cheeses.")
        print("assistant:", first.output_text)

        print("assistant: ", end="")
        async with client.append_stream(first.conversation_id, inputs="Which one is the mildest?") as stream:
            async for text in stream.text_stream():
                print(text, end="", flush=True)
        print()

        history = await client.history(first.conversation_id)
        print(f"{len(history.entries)} entries:", ", ".join(e.type for e in history.entries))


if __name__ == "__main__":
    asyncio.run(main())
