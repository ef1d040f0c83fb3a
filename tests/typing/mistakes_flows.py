"""Mistakes the type checkers must catch. Each line carries the error it must raise: mypy reports an
unused ``type: ignore`` and pyright an unnecessary ``pyright: ignore`` when the mistake goes unseen,
so this file fails CI the day a mistake stops being caught."""

from __future__ import annotations

import mistral_conv as mc
from mistral_conv.models import ConversationEvent


def mistakes(client: mc.AsyncConversationsClient, event: ConversationEvent) -> None:
    client.start_stream(inputs="x", model="m", completion_args={"temperature": "hot"})  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    client.start_stream(inputs="x", model="m", completion_args={"temprature": 0.1})  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    client.start_stream(inputs="x", model="m", completion_args={"tool_choice": "aut"})  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    client.start_stream(inputs=[{"role": "system", "content": "x"}], model="m")  # type: ignore[list-item]  # pyright: ignore[reportArgumentType]
    client.start_stream(inputs="x", model="m", tools=[{"type": "web_serch"}])  # type: ignore[list-item]  # pyright: ignore[reportArgumentType]
    client.start_stream(inputs="x", modle="m")  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    client.start_stream(inputs="x", model="m", handoff_execution="local")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    if event.type == "message.output.delta":
        print(event.usage)  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType, reportUnknownArgumentType]


async def awaited(client: mc.AsyncConversationsClient) -> None:
    await client.start_stream(inputs="x", model="m")  # type: ignore[misc]  # pyright: ignore[reportGeneralTypeIssues]
