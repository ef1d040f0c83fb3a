"""What a call sends and gets back as models: the request structs and the response decoders.

Loaded by the first call that needs it, not by `import mistral_conv` or by making a client,
so that constructing a client creates no model class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import msgspec

from ._calls import RawResponse
from ._errors import ResponseDecodeError
from ._info import ResponseInfo
from .models import ConversationHistory, ConversationMessages, ConversationResponse
from .models._base import Result
from .models._decoders import ModelDecoder
from .models.requests import AppendRequest, RestartRequest, StartRequest

__all__ = ["HISTORY", "MESSAGES", "OPERATIONS", "RESPONSE", "decode", "info"]

T = TypeVar("T")

RESPONSE: ModelDecoder[ConversationResponse] = ModelDecoder(ConversationResponse)
HISTORY: ModelDecoder[ConversationHistory] = ModelDecoder(ConversationHistory)
MESSAGES: ModelDecoder[ConversationMessages] = ModelDecoder(ConversationMessages)

# operation -> (request model, whether `inputs` is required, path suffix)
OPERATIONS: dict[str, tuple[type[msgspec.Struct], bool, str]] = {
    "start": (StartRequest, True, ""),
    "append": (AppendRequest, False, ""),
    "restart": (RestartRequest, False, "/restart"),
}


def decode(resp: RawResponse, decode: Callable[[bytes], T]) -> T:
    """`resp`'s body decoded, each result carrying `resp`'s `ResponseInfo` as `_raw_response`."""
    try:
        result = decode(resp.body)
    except msgspec.DecodeError as exc:
        raise ResponseDecodeError(
            f"unexpected response body: {exc}",
            body=resp.body,
            status=resp.status,
            request_id=resp.request_id,
        ) from None
    if isinstance(result, Result):
        result.__dict__["_raw_response"] = info(resp)
    elif isinstance(result, list):
        response_info = info(resp)
        for item in result:
            if isinstance(item, Result):
                item.__dict__["_raw_response"] = response_info
    return result


def info(raw: RawResponse) -> ResponseInfo:
    """The status, headers and request id of `raw`, as callers see them."""
    return ResponseInfo(raw.status, raw.headers, raw.request_id)
