"""Structured extraction: the answer must decode into a msgspec Struct, and arrives decoded.

Offline by default: a scripted local server plays the model. Set MISTRAL_API_KEY to use the real API.
    python examples/structured_output.py
"""

from __future__ import annotations

import asyncio
import os
from contextlib import AsyncExitStack

import msgspec

from mistral_conv import AsyncConversationsClient
from mistral_conv.testing import LocalConversationsServer, ScriptedResponder, reply_text


class Invoice(msgspec.Struct):
    customer: str
    total: float
    currency: str
    lines: list[str]


async def main() -> None:
    async with AsyncExitStack() as stack:
        if os.environ.get("MISTRAL_API_KEY"):
            client = await stack.enter_async_context(AsyncConversationsClient())
        else:
            answer = '{"customer": "ACME", "total": 120.0, "currency": "EUR", "lines": ["consulting"]}'
            server = await stack.enter_async_context(
                LocalConversationsServer(responder=ScriptedResponder([[reply_text(answer)]]))
            )
            client = await stack.enter_async_context(AsyncConversationsClient("local", base_url=server.url))

        conversation = client.conversation(model="mistral-medium-latest", output_type=Invoice)
        result = await conversation.send("Extract the invoice: 'ACME owes 120 EUR for consulting.'")
        invoice = result.parsed
        assert invoice is not None
        print("assistant:", invoice)
        print(f"{invoice.customer} owes {invoice.total:.2f} {invoice.currency}")


if __name__ == "__main__":
    asyncio.run(main())
