"""mistral_conv: an async-first client for Mistral AI's Beta Conversations API."""

from . import models
from ._api import AsyncConversationsClient, ConversationsClient
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
from ._info import ConversationPage, ResponseInfo
from ._options import Backoff, Timeout
from ._streaming import ConversationStream, StreamStatus
from ._sync import SyncConversationStream, run_sync
from ._version import __version__
from .models import ConversationEvent

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
    "ConversationPage",
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
    "ResponseInfo",
    "ResponseTooLargeError",
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
