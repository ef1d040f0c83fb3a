"""Human in the loop: a tool that needs the user's approval pauses the run; the saved state resumes it.

Offline by default: a scripted local server plays the model. Set MISTRAL_API_KEY to use the real API.
    python examples/confirmations.py
"""

from __future__ import annotations

import asyncio
import os
from contextlib import AsyncExitStack

import msgspec

from mistral_conv import AsyncConversationsClient, RunState, tool
from mistral_conv.testing import LocalConversationsServer, ScriptedResponder, call_function, reply_text


@tool(requires_confirmation=True)
def send_invoice(customer: str, amount: float) -> str:
    """Send an invoice to a customer."""
    return f"invoice of {amount:.2f} EUR sent to {customer}"


async def main() -> None:
    async with AsyncExitStack() as stack:
        if os.environ.get("MISTRAL_API_KEY"):
            client = await stack.enter_async_context(AsyncConversationsClient())
        else:
            script = ScriptedResponder(
                [
                    [call_function("send_invoice", {"customer": "ACME", "amount": 120})],
                    [reply_text("The invoice to ACME is on its way.")],
                ]
            )
            server = await stack.enter_async_context(LocalConversationsServer(responder=script))
            client = await stack.enter_async_context(AsyncConversationsClient("local", base_url=server.url))

        conversation = client.conversation(model="mistral-medium-latest", tools=[send_invoice])
        paused = await conversation.send("Invoice ACME 120 EUR.")
        assert paused.status == "paused" and paused.state is not None
        saved = msgspec.json.encode(paused.state)  # store it anywhere: a database row, a file, a queue
        for call in paused.pending:
            print(f"approval needed: {call.name}({call.arguments})")

        # Later, maybe in another process: load the state and answer each pending call.
        state = msgspec.json.decode(saved, type=RunState)
        resumed = client.conversation(state.conversation_id, tools=[send_invoice])
        result = await resumed.resume(state, {call.tool_call_id: "allow" for call in state.pending})
        print("assistant:", result.output_text)


if __name__ == "__main__":
    asyncio.run(main())
