"""The exceptions raised by mistral_conv. Catch what you can handle::

    MistralError                      every error this SDK raises
    ├── InvalidRequestError           bad input, found before anything is sent (also a ValueError)
    ├── ResponseDecodeError           the response is not what the wire reference says
    ├── ClientClosedError             the client was used after close()
    └── APIError                      the API could not be used
        ├── APIStatusError            the API answered with a non-success status
        │   ├── BadRequestError             400
        │   ├── AuthenticationError         401
        │   ├── PermissionDeniedError       403
        │   ├── NotFoundError               404
        │   ├── ConflictError               409
        │   ├── UnprocessableEntityError    422 (``errors`` holds the parsed detail list)
        │   ├── RateLimitError              429
        │   └── InternalServerError         5xx
        ├── APIConnectionError        no usable answer: connection failed, dropped or stalled
        │   ├── APITimeoutError       a time limit was reached
        │   ├── StreamInterruptedError a stream ended before its terminal event
        │   └── ResponseTooLargeError a body or an event outgrew its size limit
        └── StreamError               the server reported a failure inside a stream

Every ``APIError`` carries ``request_id`` when the server sent one. Errors
raised during a stream carry ``partial``: what had arrived so far.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from .models import ErrorBody, ModelDecoder, ValidationErrorItem

if TYPE_CHECKING:
    from .models import ConversationResponse

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConflictError",
    "InternalServerError",
    "InvalidRequestError",
    "MistralError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "StreamError",
    "StreamInterruptedError",
    "UnprocessableEntityError",
]


class MistralError(Exception):
    """Base of every exception raised by mistral_conv."""


class InvalidRequestError(MistralError, ValueError):
    """An argument is invalid; ``field`` names it. Raised before anything is sent."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class ClientClosedError(MistralError, RuntimeError):
    """The client was used after it was closed."""


class ResponseDecodeError(MistralError):
    """A response body does not have the shape the API documents.

    ``body`` keeps the raw bytes; ``status`` and ``request_id`` say where it came from.
    """

    def __init__(
        self,
        message: str,
        *,
        body: bytes,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.body = body
        self.status = status
        self.request_id = request_id


class APIError(MistralError):
    """The API could not be used. ``request_id`` is the server's id for the request, if known."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id


class APIStatusError(APIError):
    """The API answered with an error status.

    ``status``: the HTTP status; ``body``: the raw body; ``parsed``: the body
    as an :class:`ErrorBody`, or ``None`` when it is not a JSON object;
    ``code``: the API's own error code, when it sent one; ``headers``: the
    response headers, with lowercase names.
    """

    status: int = 0

    def __init__(
        self,
        message: str,
        *,
        status: int,
        body: bytes,
        parsed: ErrorBody | None,
        request_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.status = status
        self.body = body
        self.parsed = parsed
        self.headers = headers or {}
        code = parsed.code if parsed is not None else None
        self.code: int | str | None = code if isinstance(code, int | str) else None

    @property
    def errors(self) -> list[ValidationErrorItem]:
        """The validation problems of a 422 body, in either observed envelope (else empty)."""
        return validation_items(self.parsed)


class BadRequestError(APIStatusError):
    """400: the request was malformed."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or wrong."""


class PermissionDeniedError(APIStatusError):
    """403: not allowed (for example blocked by a guardrail)."""


class NotFoundError(APIStatusError):
    """404: no such conversation (or route)."""


class ConflictError(APIStatusError):
    """409: the conversation is busy or changed; retried by default."""


class UnprocessableEntityError(APIStatusError):
    """422: the body failed validation; ``errors`` lists each problem with its ``loc``."""


class RateLimitError(APIStatusError):
    """429: too many requests; retried by default, honouring ``Retry-After``."""


class InternalServerError(APIStatusError):
    """5xx: the server failed; retried by default."""


class APIConnectionError(APIError):
    """The connection failed, broke or stalled before a complete answer arrived.

    For streams, ``partial`` is the response assembled from the events that
    did arrive, and ``conversation_id`` the conversation, when known.
    """

    def __init__(
        self,
        message: str = "Connection error.",
        *,
        request_id: str | None = None,
        partial: ConversationResponse | None = None,
        conversation_id: str | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.partial = partial
        self.conversation_id = conversation_id


class APITimeoutError(APIConnectionError):
    """A time limit was reached; ``limit`` names which one (connect, read, total, …)."""

    def __init__(self, message: str = "Request timed out.", *, limit: str = "", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.limit = limit


class StreamInterruptedError(APIConnectionError):
    """A stream ended (or broke) before ``conversation.response.done`` or ``.error``."""


class ResponseTooLargeError(APIConnectionError):
    """A response body (``max_response_size``) or a stream event (``max_event_size``) was too large.

    The connection is closed at once; never retried.
    """


class StreamError(APIError):
    """The server sent ``conversation.response.error`` inside a stream.

    ``code`` is the server's error code; ``partial`` what had arrived before it.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int,
        request_id: str | None = None,
        partial: ConversationResponse | None = None,
        conversation_id: str | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.code = code
        self.partial = partial
        self.conversation_id = conversation_id


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}

_error_body: ModelDecoder[ErrorBody] = ModelDecoder(ErrorBody)


def validation_items(parsed: ErrorBody | None) -> list[ValidationErrorItem]:
    """The validation list of a plain (``detail``) or wrapped (``message.detail``) 422 body."""
    if parsed is None:
        return []
    if isinstance(parsed.detail, list):
        return parsed.detail
    if isinstance(parsed.message, dict) and isinstance(parsed.message.get("detail"), list):
        try:
            return msgspec.convert(parsed.message["detail"], list[ValidationErrorItem])
        except msgspec.ValidationError:
            return []
    return []


def _server_message(parsed: ErrorBody | None, body: bytes) -> str:
    """The server's own words, following the decoding order of the wire reference §8."""
    if parsed is not None:
        items = validation_items(parsed)
        if items:
            return "; ".join(f"{'.'.join(map(str, i.loc))}: {i.msg}" for i in items)
        if isinstance(parsed.message, str) and parsed.message:
            return parsed.message
        if isinstance(parsed.detail, str) and parsed.detail:
            return parsed.detail
        if isinstance(parsed.error, dict) and isinstance(parsed.error.get("message"), str):
            return str(parsed.error["message"])
    text = body[:500].decode("utf-8", "replace").strip()
    return text or "(empty body)"


def status_error(
    status: int,
    body: bytes,
    *,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> APIStatusError:
    """The exception for an error status, with the server's message and parsed body."""
    try:
        parsed: ErrorBody | None = _error_body.decode(body)
    except msgspec.DecodeError:
        parsed = None
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = InternalServerError if status >= 500 else APIStatusError
    message = f"Error code: {status} - {_server_message(parsed, body)}"
    if request_id:
        message += f" (request id {request_id})"
    return cls(message, status=status, body=body, parsed=parsed, request_id=request_id, headers=headers)
