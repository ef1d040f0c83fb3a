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
            async for event in stream:
                # Comparing ``type`` narrows the event union: here ``event`` is a MessageOutputDeltaEvent.
                if event.type == "message.output.delta" and isinstance(event.content, str):
                    print(event.content, end="", flush=True)
        print(f"\n(request id {stream.request_id})")

        history = await client.history(first.conversation_id)
        print(f"{len(history.entries)} entries:", ", ".join(e.type for e in history.entries))

        # Branch from the first answer: entries the server returned have a ``str`` id.
        answer = history.entries[1]
        branch = await client.restart(first.conversation_id, from_entry_id=answer.id, inputs="And Italian?")
        print("branch:", branch.output_text)


if __name__ == "__main__":
    asyncio.run(main())
