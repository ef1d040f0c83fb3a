"""Prebuilt decoders: strict and fast first, lenient only when that fails."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

from ._base import TOO_DEEP, decode_lenient
from .responses import AgentConversation, Conversation, ErrorBody, ModelConversation

__all__ = ["ConversationDecoder", "ModelDecoder"]

T = TypeVar("T")


class ModelDecoder(Generic[T]):
    """Decodes JSON bytes into `tp`; unknown union members become `Unknown…` structs.

    Raises `msgspec.DecodeError` (or its subclass `msgspec.ValidationError`)
    when the bytes are not JSON of that shape.
    """

    __slots__ = ("_decoder", "_type")

    def __init__(self, tp: Any) -> None:
        self._type = tp
        self._decoder: msgspec.json.Decoder[T] | None = None  # built on first use, then kept

    def decode(self, data: bytes) -> T:
        decoder = self._decoder
        if decoder is None:
            decoder = self._decoder = msgspec.json.Decoder(self._type)
        try:
            return decoder.decode(data)
        except msgspec.ValidationError:
            result: T = decode_lenient(data, self._type)
            return result
        except UnicodeDecodeError as exc:  # msgspec lets this one through: make it its own kind
            raise msgspec.DecodeError(f"invalid UTF-8 in a JSON string: {exc}") from None
        except RecursionError:  # JSON nested deeper than msgspec (or Python) goes
            raise msgspec.DecodeError(TOO_DEEP) from None


class _Probe(msgspec.Struct):
    agent_id: Any = None


_probe: ModelDecoder[_Probe] = ModelDecoder(_Probe)
_raw_list: ModelDecoder[list[msgspec.Raw]] = ModelDecoder(list[msgspec.Raw])
ERROR_BODY: ModelDecoder[ErrorBody] = ModelDecoder(ErrorBody)  # what an error status's body holds
_agent: ModelDecoder[AgentConversation] = ModelDecoder(AgentConversation)
_model: ModelDecoder[ModelConversation] = ModelDecoder(ModelConversation)


class ConversationDecoder:
    """Decodes conversations, which carry no tag: `agent_id` marks an agent conversation."""

    @staticmethod
    def one(data: bytes | msgspec.Raw) -> Conversation:
        if _probe.decode(data).agent_id is not None:
            return _agent.decode(bytes(data))
        return _model.decode(bytes(data))

    @classmethod
    def many(cls, data: bytes) -> list[Conversation]:
        return [cls.one(raw) for raw in _raw_list.decode(data)]
