"""Span attributes read from a turn's request and answer, in the GenAI conventions' shapes.

The message shapes (`gen_ai.input.messages`, `gen_ai.output.messages`) are recorded
only when a client was made with `trace_content=True`; the ids, the model and the
token counts always are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from .models import ConversationResponse

__all__ = ["input_messages", "output_messages", "response_attributes"]


class _Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _Output(msgspec.Struct):
    type: str = ""
    id: str | None = None
    model: str | None = None


class _Answer(msgspec.Struct):
    conversation_id: str | None = None
    usage: _Usage | None = None
    outputs: list[_Output] = []


_answer = msgspec.json.Decoder(_Answer)


def response_attributes(
    body: bytes | None, turn: bool, content: bool, response: ConversationResponse | None = None
) -> dict[str, Any]:
    """The answer's attributes: conversation id, usage, response id and model (and outputs, on request)."""
    attrs: dict[str, Any] = {}
    outputs: list[_Output]
    if response is not None:
        outputs = [_Output(e.type, e.id or None, getattr(e, "model", None) or None) for e in response.outputs]
    elif body and turn:
        try:
            answer = _answer.decode(body)
        except msgspec.DecodeError:
            return attrs
        if answer.conversation_id:
            attrs["gen_ai.conversation.id"] = answer.conversation_id
        if answer.usage is not None:
            attrs["gen_ai.usage.input_tokens"] = answer.usage.prompt_tokens
            attrs["gen_ai.usage.output_tokens"] = answer.usage.completion_tokens
        outputs = answer.outputs
        if content:
            raw = msgspec.json.decode(body)
            attrs["gen_ai.output.messages"] = msgspec.json.encode(
                output_messages(raw.get("outputs") or [])
            ).decode()
    else:
        return attrs
    ids = [o.id for o in outputs if o.id]
    if ids:
        attrs["gen_ai.response.id"] = ids[-1]
    models = [o.model for o in outputs if o.model]
    if models:
        attrs["gen_ai.response.model"] = models[-1]
    return attrs


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    if not isinstance(content, list):  # not a content shape the API defines: nothing to record
        return parts
    for chunk in content:
        if isinstance(chunk, dict) and chunk.get("type") == "text":
            parts.append({"type": "text", "content": chunk.get("text", "")})
        elif isinstance(chunk, dict):
            parts.append({"type": str(chunk.get("type", "unknown"))})
    return parts


def input_messages(inputs: Any) -> list[dict[str, Any]]:
    """A request's `inputs` (a string or entries, as JSON values) as GenAI input messages."""
    if isinstance(inputs, str):
        return [{"role": "user", "parts": _parts(inputs)}]
    messages: list[dict[str, Any]] = []
    for entry in inputs if isinstance(inputs, list) else ():
        if not isinstance(entry, dict):
            continue
        kind = entry.get("type", "message.input")
        if kind == "function.result":
            part = {
                "type": "tool_call_response",
                "id": entry.get("tool_call_id"),
                "response": entry.get("result"),
            }
            messages.append({"role": "tool", "parts": [part]})
        elif kind in ("message.input", "message.output"):
            role = entry.get("role") or ("assistant" if kind == "message.output" else "user")
            messages.append({"role": role, "parts": _parts(entry.get("content"))})
        else:
            messages.append({"role": "user", "parts": [{"type": str(kind)}]})
    return messages


def output_messages(outputs: list[Any]) -> list[dict[str, Any]]:
    """A response's output entries (as JSON values) as GenAI output messages."""
    messages: list[dict[str, Any]] = []
    for entry in outputs:
        if not isinstance(entry, dict):
            continue
        kind = entry.get("type")
        if kind == "message.output":
            messages.append(
                {"role": "assistant", "parts": _parts(entry.get("content")), "finish_reason": "stop"}
            )
        elif kind == "function.call":
            part = {
                "type": "tool_call",
                "id": entry.get("tool_call_id"),
                "name": entry.get("name"),
                "arguments": entry.get("arguments"),
            }
            messages.append({"role": "assistant", "parts": [part], "finish_reason": "tool_call"})
    return messages
