"""mistral_conv: an async-first client for Mistral AI's Beta Conversations API."""

from . import models
from ._accumulate import StreamState, accumulate
from ._client import AsyncConversationsClient
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
    MistralError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestOutcomeUnknownError,
    ResponseDecodeError,
    ResponseTooLargeError,
    StreamClosedError,
    StreamError,
    StreamInterruptedError,
    UnprocessableEntityError,
)
from ._options import Backoff, Timeout
from ._sse import SSEDecoder, SSEFrame
from ._streaming import ConversationStream, StreamEvent, StreamStatus
from ._sync import ConversationsClient, SyncConversationStream, run_sync
from ._transport import Transport
from ._version import __version__

__all__ = [
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
    "ConversationStream",
    "ConversationsClient",
    "EventLoopError",
    "InternalServerError",
    "InvalidRequestError",
    "MistralError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestOutcomeUnknownError",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "SSEDecoder",
    "SSEFrame",
    "StreamClosedError",
    "StreamError",
    "StreamEvent",
    "StreamInterruptedError",
    "StreamState",
    "StreamStatus",
    "SyncConversationStream",
    "Timeout",
    "Transport",
    "UnprocessableEntityError",
    "__version__",
    "accumulate",
    "models",
    "run_sync",
]
