"""A function-calling round trip: the model asks for a function, the app runs it and appends the result.

Offline by default: a scripted local server plays the model. Set MISTRAL_API_KEY to use the real API.
    python examples/function_calling.py
"""

from __future__ import annotations

import asyncio
import json
import os
from contextlib import AsyncExitStack
from typing import Any

from mistral_conv import AsyncConversationsClient
from mistral_conv.models import Function, FunctionResultEntry, FunctionTool
from mistral_conv.testing import LocalConversationsServer, ScriptedResponder, call_function, reply_text

WEATHER = FunctionTool(
    function=Function(
        name="get_weather",
        description="The current temperature in a city.",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )
)


def get_weather(city: str) -> dict[str, Any]:
    return {"city": city, "celsius": 18}


async def main() -> None:
    async with AsyncExitStack() as stack:
        if os.environ.get("MISTRAL_API_KEY"):
            client = await stack.enter_async_context(AsyncConversationsClient())
        else:
            script = ScriptedResponder(
                [
                    [call_function("get_weather", {"city": "Paris"})],
                    [reply_text("It is 18 °C in Paris right now.")],
                ]
            )
            server = await stack.enter_async_context(LocalConversationsServer(responder=script))
            client = await stack.enter_async_context(AsyncConversationsClient("local", base_url=server.url))

        response = await client.start(
            model="mistral-medium-latest", inputs="How warm is it in Paris?", tools=[WEATHER]
        )
        while calls := [o for o in response.outputs if o.type == "function.call"]:
            results: list[FunctionResultEntry] = []
            for call in calls:
                args = json.loads(call.arguments) if isinstance(call.arguments, str) else call.arguments
                print(f"running {call.name}({args})")
                results.append(
                    FunctionResultEntry(
                        tool_call_id=call.tool_call_id, result=json.dumps(get_weather(**args))
                    )
                )
            response = await client.append(response.conversation_id, inputs=results)
        print("assistant:", response.output_text)


if __name__ == "__main__":
    asyncio.run(main())
