"""The exceptions raised by mistral_conv. Catch what you can handle:

    MistralError                      every error this SDK raises
    ├── InvalidRequestError           bad input, found before anything is sent (also a ValueError)
    ├── ClientClosedError             the client was closed (before or during the call)
    │   └── StreamClosedError         the stream was closed with aclose() before it completed
    ├── EventLoopError                an async client used from another event loop than its own
    ├── RunError                      a run with local tools could not go on (`result`: so far)
    │   ├── UnknownToolError          the model called a function that is not registered
    │   ├── ToolFailedError           a local tool raised, and the run was told to raise
    │   ├── MaxRoundsError            the run reached its round limit
    │   ├── OutputParseError          the final answer does not decode into `output_type`
    │   └── TurnIncompleteError       a turn's inputs were stored but its run did not finish
    └── APIError                      the API could not be used
        ├── APIStatusError            the API answered with a non-success status
        │   ├── BadRequestError             400
        │   ├── AuthenticationError         401
        │   ├── PermissionDeniedError       403
        │   ├── NotFoundError               404
        │   ├── ConflictError               409
        │   ├── UnprocessableEntityError    422 (`errors` holds the parsed detail list)
        │   ├── RateLimitError              429
        │   └── InternalServerError         5xx
        ├── APIConnectionError        no usable answer: connection failed, dropped or stalled
        │   ├── APITimeoutError       a time limit was reached
        │   ├── StreamInterruptedError a stream ended before its terminal event
        │   └── RequestOutcomeUnknownError  start/append/restart may have run: not resent
        ├── ResponseDecodeError       what the server sent is not what the API documents
        ├── ResponseTooLargeError     a body, an event or a stream outgrew its size limit
        └── StreamError               the server reported a failure inside a stream

Every `APIError` carries `request_id` when the server sent one and
`attempts`, the number of requests sent for the call. Errors raised during a
stream carry `partial`: what had arrived so far, a snapshot.

Every instance pickles and copies with its attributes (`__reduce__`), so errors
cross process pools, and a stored failure is raised as a fresh copy each time.
"""

from __future__ import annotations

import copy as copy_module
import email.utils
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

if TYPE_CHECKING:  # the models load with the first error body, not with `import mistral_conv`
    from .models import ConversationResponse, ErrorBody, ValidationErrorItem

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConflictError",
    "EventLoopError",
    "MaxRoundsError",
    "OutputParseError",
    "RunError",
    "ToolFailedError",
    "TurnIncompleteError",
    "UnknownToolError",
    "InternalServerError",
    "InvalidRequestError",
    "MistralError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestOutcomeUnknownError",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "StreamClosedError",
    "StreamError",
    "StreamInterruptedError",
    "UnprocessableEntityError",
]


E = TypeVar("E", bound=BaseException)


def _rebuild(cls: type[E], args: tuple[Any, ...], state: dict[str, Any]) -> E:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class MistralError(Exception):
    """Base of every exception raised by mistral_conv."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its attributes, not by calling __init__ again with `args`
        # (the constructors take keyword-only arguments).
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def fresh(error: E) -> E:
    """A new instance of `error` with the same attributes and cause, and no traceback yet.

    Raising it (rather than `error` again) keeps tracebacks from growing with each raise.
    """
    state = dict(error.__dict__)
    if state.get("partial") is not None:  # each raise hands out its own snapshot
        state["partial"] = copy_module.deepcopy(state["partial"])
    copy = _rebuild(type(error), error.args, state)
    copy.__cause__ = error.__cause__
    copy.__suppress_context__ = True
    return copy


class InvalidRequestError(MistralError, ValueError):
    """An argument is invalid; `field` names it. Raised before anything is sent."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class ClientClosedError(MistralError, RuntimeError):
    """The client was closed: before the call, or while the call or stream was in flight.

    `partial` and `conversation_id`: for a stream, what had arrived (a snapshot).
    """

    def __init__(
        self,
        message: str = "the client is closed",
        *,
        partial: ConversationResponse | None = None,
        conversation_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.partial = partial
        self.conversation_id = conversation_id


class EventLoopError(MistralError, RuntimeError):
    """An `AsyncConversationsClient` was used from another event loop than the one it runs in.

    Use one client per event loop, or the blocking `ConversationsClient`, which owns its loop.
    """


class StreamClosedError(ClientClosedError):
    """The stream was closed with `aclose()` (or left `async with`) before it completed.

    Raised by `final_response()` on such a stream, with `partial`.
    """


class RunError(MistralError):
    """A run with local tools could not go on. `result` holds every entry of the run so far
    (a `RunResult`) and `conversation_id` the conversation."""

    def __init__(self, message: str, *, result: Any = None, conversation_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.result = result
        self.conversation_id = conversation_id


class UnknownToolError(RunError):
    """The model called a function that is not registered; `tool_name` names it."""

    tool_name: str = ""


class ToolFailedError(RunError):
    """A local tool raised and the run was set to raise (`on_tool_error="raise"`); the tool's
    exception is `__cause__`."""

    tool_name: str = ""


class MaxRoundsError(RunError):
    """The run reached `max_rounds` model turns with function calls still to answer."""


class OutputParseError(RunError):
    """The final answer does not decode into the run's `output_type`; `text` is the answer."""

    text: str = ""


class TurnIncompleteError(RunError):
    """After an unknown outcome, the conversation's history shows the turn's inputs but no output:
    the server stored the turn and did not finish its run. `stored` holds those entries."""

    stored: list[Any] = []  # noqa: RUF012  (replaced per instance)


class APIError(MistralError):
    """The API could not be used. `request_id` is the server's id for the request, if known.

    For a stream, `partial` is the response assembled from the events that did arrive (a
    snapshot) and `conversation_id` the conversation, when known; both are `None` otherwise.
    """

    attempts: int = 1
    """How many requests were sent for this call, the failing one included."""

    def __init__(
        self,
        message: str,
        *,
        request_id: str | None = None,
        partial: ConversationResponse | None = None,
        conversation_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id
        self.partial = partial
        self.conversation_id = conversation_id


class APIStatusError(APIError):
    """The API answered with an error status.

    `status`: the HTTP status; `body`: the raw body; `parsed`: the body
    as an `ErrorBody`, or `None` when it is not a JSON object;
    `code`: the API's own error code, when it sent one; `headers`: the
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
    """422: the body failed validation; `errors` lists each problem with its `loc`."""


class RateLimitError(APIStatusError):
    """429: too many requests; retried by default, honouring `Retry-After`."""

    @property
    def retry_after(self) -> float | None:
        """The server's wait in seconds (`retry-after-ms` or `Retry-After`), if it sent one."""
        return retry_after(self.headers)


class InternalServerError(APIStatusError):
    """5xx: the server failed; retried by default."""


class APIConnectionError(APIError):
    """The connection failed, broke or stalled before a complete answer arrived."""

    def __init__(self, message: str = "Connection error.", **kw: Any) -> None:
        super().__init__(message, **kw)


class APITimeoutError(APIConnectionError):
    """A time limit was reached; `limit` names which one (connect, read, total, …)."""

    def __init__(self, message: str = "Request timed out.", *, limit: str = "", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.limit = limit


class StreamInterruptedError(APIConnectionError):
    """A stream ended (or broke) before `conversation.response.done` or `.error`."""


class ResponseDecodeError(APIError):
    """A response body (or a stream's event) is not what the API documents: not JSON, nested
    too deeply, or of another shape where no `Unknown…` can stand in.

    `body` keeps the raw bytes (for an event, the first KiB of its data); `status` and
    `request_id` say where it came from; for a stream, `partial` and
    `conversation_id` keep what arrived before it.
    """

    def __init__(
        self,
        message: str,
        *,
        body: bytes,
        status: int | None = None,
        request_id: str | None = None,
        partial: ConversationResponse | None = None,
        conversation_id: str | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id, partial=partial, conversation_id=conversation_id)
        self.body = body
        self.status = status


class ResponseTooLargeError(APIError):
    """A body (`max_response_size`), an event (`max_event_size`) or a stream
    (`max_stream_size`) outgrew its limit, counted in decoded bytes.

    Not a network failure: the server sent more than this client accepts. The connection
    is closed at once; never retried. For a stream, `partial` keeps what arrived.
    """


class RequestOutcomeUnknownError(APIConnectionError):
    """A `start`, `append` or `restart` was sent and may have run and been stored.

    The request went out, then the connection broke, a time limit passed, or the
    server answered 500/502/504. Those operations store and bill a turn and the API
    has no idempotency key, so the SDK does not send them again (unless asked to, with
    `retry_unknown_outcome=True`). Look at the conversation's history to find out.

    `operation`: `"start"`, `"append"` or `"restart"`. `conversation_id`: the
    conversation the turn runs in when known (a stream's `conversation.response.started`
    says it); otherwise, for append and restart, the conversation the request was sent
    to. `reason`: the failure itself (also `__cause__`). `partial`: for a stream,
    what arrived. `attempts`: requests sent for the call.
    """

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        reason: APIError,
        request_id: str | None = None,
        partial: ConversationResponse | None = None,
        conversation_id: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message, request_id=request_id, partial=partial, conversation_id=conversation_id)
        self.operation = operation
        self.reason = reason
        self.attempts = attempts


class StreamError(APIError):
    """The server sent `conversation.response.error` inside a stream.

    `code` is the server's error code; `partial` what had arrived before it.
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
        super().__init__(message, request_id=request_id, partial=partial, conversation_id=conversation_id)
        self.code = code


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` as seconds or an HTTP date."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            value = float(ms) / 1000
            if value >= 0 and value == value and value != float("inf"):
                return value
        except ValueError:
            pass
    text = headers.get("retry-after")
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if 0 <= seconds < float("inf") else None
    try:
        when = email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError, OSError):  # not a date this machine can hold
        return None
    return max(0.0, when - time.time())


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def validation_items(parsed: ErrorBody | None) -> list[ValidationErrorItem]:
    """The validation list of a plain (`detail`) or wrapped (`message.detail`) 422 body."""
    if parsed is None:
        return []
    if isinstance(parsed.detail, list):
        return parsed.detail
    if isinstance(parsed.message, dict) and isinstance(parsed.message.get("detail"), list):
        from .models import ValidationErrorItem

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
    note: str | None = None,
) -> APIStatusError:
    """The exception for an error status, with the server's message, parsed body and `note`."""
    from .models._decoders import ERROR_BODY

    try:
        parsed: ErrorBody | None = ERROR_BODY.decode(body)
    except (msgspec.DecodeError, RecursionError):
        parsed = None
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = InternalServerError if status >= 500 else APIStatusError
    message = f"Error code: {status} - {_server_message(parsed, body)}"
    if note:
        message += f" ({note})"
    if request_id:
        message += f" (request id {request_id})"
    return cls(message, status=status, body=body, parsed=parsed, request_id=request_id, headers=headers)
