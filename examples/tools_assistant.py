"""An assistant with three local tools (two sync, one async): the run calls them and answers.

Offline by default: a scripted local server plays the model. Set MISTRAL_API_KEY to use the real API.
    python examples/tools_assistant.py
"""

from __future__ import annotations

import asyncio
import os
from contextlib import AsyncExitStack

from mistral_conv import AsyncConversationsClient, tool
from mistral_conv.testing import LocalConversationsServer, ScriptedResponder, call_function, reply_text


def get_weather(city: str) -> dict[str, object]:
    """The current weather in a city.

    Args:
        city: The city's name, e.g. "Paris".
    """
    return {"city": city, "celsius": 18, "sky": "clear"}


def convert(celsius: float) -> float:
    """Degrees Celsius to Fahrenheit."""
    return celsius * 9 / 5 + 32


@tool(timeout=10)
async def local_time(city: str) -> str:
    """The local time in a city (an async tool: it may await I/O)."""
    await asyncio.sleep(0.01)
    return "14:05"


async def main() -> None:
    async with AsyncExitStack() as stack:
        if os.environ.get("MISTRAL_API_KEY"):
            client = await stack.enter_async_context(AsyncConversationsClient())
        else:
            script = ScriptedResponder(
                [
                    [
                        call_function("get_weather", {"city": "Paris"}),
                        call_function("local_time", {"city": "Paris"}),
                    ],
                    [call_function("convert", {"celsius": 18})],
                    [reply_text("In Paris it is 14:05, clear and 18 °C (64.4 °F).")],
                ]
            )
            server = await stack.enter_async_context(LocalConversationsServer(responder=script))
            client = await stack.enter_async_context(AsyncConversationsClient("local", base_url=server.url))

        conversation = client.conversation(
            model="mistral-medium-latest", tools=[get_weather, convert, local_time], max_rounds=5
        )
        async with conversation.stream("What's the weather and time in Paris, in Fahrenheit too?") as run:
            async for event in run:
                if event.type == "local.tool.started":
                    print(f"running {event.name}({event.arguments})")
                elif event.type == "local.function.result":
                    print(f"  -> {event.entry.result}")
            result = await run.final_result()
        print("assistant:", result.output_text)
        print(f"({result.rounds} rounds, {result.usage.total_tokens} tokens)")


if __name__ == "__main__":
    asyncio.run(main())
