"""mistral_conv: an async-first client for Mistral AI's Beta Conversations API."""

from typing import TYPE_CHECKING, Any

from ._api import AsyncConversationsClient
from ._errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConflictError,
    EventLoopError,
    InternalServerError,
    InvalidRequestError,
    MaxRoundsError,
    MistralError,
    NotFoundError,
    OutputParseError,
    PermissionDeniedError,
    RateLimitError,
    RequestOutcomeUnknownError,
    ResponseDecodeError,
    ResponseTooLargeError,
    RunError,
    StreamClosedError,
    StreamError,
    StreamInterruptedError,
    ToolFailedError,
    TurnIncompleteError,
    UnknownToolError,
    UnprocessableEntityError,
)
from ._options import Backoff, Timeout
from ._version import __version__

if TYPE_CHECKING:
    from . import models
    from ._events import PoolStats, RequestEvent, ResponseEvent, RetryEvent
    from ._info import ConversationPage, ResponseInfo
    from ._runs import (
        ConversationHandle,
        FunctionResultEvent,
        PendingCall,
        RunEvent,
        RunResult,
        RunState,
        RunStream,
        ToolCallStartedEvent,
    )
    from ._streaming import ConversationStream, StreamStatus
    from ._sync import SyncConversationHandle, SyncConversationStream, SyncRunStream, run_sync
    from ._sync_api import ConversationsClient
    from ._tools import LocalTool, tool
    from .models import ConversationEvent

# What making an async client does not need loads on first use: the models, streams, events,
# the blocking client and the run layer (local tools, handles). `import mistral_conv` stays light.
_LAZY = {
    "models": "",  # the subpackage itself
    "ConversationsClient": "_sync_api",
    "SyncConversationHandle": "_sync",
    "SyncConversationStream": "_sync",
    "SyncRunStream": "_sync",
    "run_sync": "_sync",
    "ConversationEvent": "models",
    "PoolStats": "_events",
    "RequestEvent": "_events",
    "ResponseEvent": "_events",
    "RetryEvent": "_events",
    "ConversationPage": "_info",
    "ResponseInfo": "_info",
    "ConversationStream": "_streaming",
    "StreamStatus": "_streaming",
    "ConversationHandle": "_runs",
    "FunctionResultEvent": "_runs",
    "PendingCall": "_runs",
    "RunEvent": "_runs",
    "RunResult": "_runs",
    "RunState": "_runs",
    "RunStream": "_runs",
    "ToolCallStartedEvent": "_runs",
    "LocalTool": "_tools",
    "tool": "_tools",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mistral_conv' has no attribute {name!r}")
    import importlib

    value = importlib.import_module(f"{__name__}.{module or name}")
    if module:
        value = getattr(value, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "TurnIncompleteError",
    "OutputParseError",
    "MaxRoundsError",
    "ToolFailedError",
    "UnknownToolError",
    "RunError",
    "tool",
    "LocalTool",
    "SyncRunStream",
    "SyncConversationHandle",
    "ToolCallStartedEvent",
    "RunStream",
    "RunState",
    "RunResult",
    "RunEvent",
    "PendingCall",
    "FunctionResultEvent",
    "ConversationHandle",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncConversationsClient",
    "AuthenticationError",
    "Backoff",
    "BadRequestError",
    "ClientClosedError",
    "ConflictError",
    "ConversationPage",
    "ConversationStream",
    "ConversationsClient",
    "EventLoopError",
    "InternalServerError",
    "InvalidRequestError",
    "MistralError",
    "NotFoundError",
    "PermissionDeniedError",
    "PoolStats",
    "RateLimitError",
    "RequestEvent",
    "RequestOutcomeUnknownError",
    "ResponseDecodeError",
    "ResponseEvent",
    "ResponseInfo",
    "ResponseTooLargeError",
    "RetryEvent",
    "StreamClosedError",
    "StreamError",
    "ConversationEvent",
    "StreamInterruptedError",
    "StreamStatus",
    "SyncConversationStream",
    "Timeout",
    "UnprocessableEntityError",
    "__version__",
    "models",
    "run_sync",
]
