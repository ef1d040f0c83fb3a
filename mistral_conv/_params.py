"""The keyword arguments of each operation, as TypedDicts shared by the async and blocking clients."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Required, TypedDict

from ._options import Backoff, Timeout
from ._transport import Transport
from .models import (
    CompletionArgs,
    Entry,
    GuardrailConfig,
    HandoffExecution,
    Tool,
    ToolCallConfirmation,
)

__all__ = [
    "AppendParams",
    "ClientOptions",
    "InputsArg",
    "ListParams",
    "RequestOptions",
    "RestartParams",
    "StartParams",
]

InputsArg = str | Sequence[Entry | Mapping[str, Any]]
"""A string (one user message) or a list of entries, as structs or dicts."""


class ClientOptions(TypedDict, total=False):
    """Options of a client (after ``api_key``); every one has a default."""

    base_url: str | None
    """The API's address (default: ``$MISTRAL_BASE_URL``, else ``https://api.mistral.ai``)."""
    timeout: float | Timeout | None
    """Default time limits (default: ``Timeout()``)."""
    max_retries: int
    """Default retries of a failed call (default: 2)."""
    retry_unknown_outcome: bool
    """Resend ``start``, ``append`` and ``restart`` after a failure that leaves their outcome unknown
    (the turn may then be stored twice); default False: raise ``RequestOutcomeUnknownError``."""
    backoff: Backoff | None
    """Delays between retries (default: ``Backoff()``)."""
    max_connections: int
    """Size of the connection pool (default: 100)."""
    default_headers: Mapping[str, str] | None
    """Headers sent with every request."""
    verify_ssl: bool
    """Check TLS certificates (default: True; turn off only on purpose)."""
    allow_insecure_http: bool
    """Allow sending the key over plain http to a non-loopback host (default: False)."""
    max_event_size: int
    """The largest stream event accepted, in bytes (default: 16 MiB)."""
    max_response_size: int
    """The largest plain response body accepted, in bytes, decompressed (default: 64 MiB)."""
    max_stream_size: int
    """The most event bytes (decompressed) one stream may deliver (default: 256 MiB); a stream also
    stops at 10,000 output entries. Past either, ``ResponseTooLargeError`` with ``partial``."""
    log_bodies: bool
    """Log request and response bodies at DEBUG on the ``mistral_conv`` logger (default: False)."""
    transport: Transport | None
    """A transport to send through instead of the default ``AiohttpTransport`` (see
    ``mistral_conv.transport``); the client closes it when it closes."""


class RequestOptions(TypedDict, total=False):
    """Per-call options accepted by every method."""

    timeout: float | Timeout | None
    """Time limits for this call (a number sets connect, read, total and first-event)."""
    max_retries: int | None
    """Retries for this call, instead of the client's."""
    extra_headers: Mapping[str, str] | None
    """More HTTP headers."""
    extra_query: Mapping[str, str] | None
    """More query parameters."""


class BodyOptions(RequestOptions, total=False):
    """Per-call options of the methods that send a body."""

    extra_body: Mapping[str, Any] | None
    """Body fields this SDK version does not know yet, merged into the JSON as given."""
    retry_unknown_outcome: bool | None
    """This call's ``retry_unknown_outcome``, instead of the client's."""


class StartParams(BodyOptions, total=False):
    """Arguments of ``start`` / ``start_stream``: exactly one of ``model`` and ``agent_id``."""

    inputs: Required[InputsArg]
    model: str | None
    agent_id: str | None
    agent_version: str | int | None
    instructions: str | None
    tools: Sequence[Tool | Mapping[str, Any]] | None
    completion_args: CompletionArgs | Mapping[str, Any] | None
    guardrails: Sequence[GuardrailConfig | Mapping[str, Any]] | None
    store: bool | None
    handoff_execution: HandoffExecution | None
    name: str | None
    description: str | None
    metadata: Mapping[str, Any] | None


class AppendParams(BodyOptions, total=False):
    """Arguments of ``append`` / ``append_stream``: usually ``inputs``, ``tool_confirmations`` or both.

    Every field is optional on the wire (an empty body is valid: the model
    runs again on the stored history).
    """

    inputs: InputsArg
    store: bool
    handoff_execution: HandoffExecution
    completion_args: CompletionArgs | Mapping[str, Any]
    tool_confirmations: Sequence[ToolCallConfirmation | Mapping[str, Any]] | None


class RestartParams(BodyOptions, total=False):
    """Arguments of ``restart`` / ``restart_stream``: branch from ``from_entry_id``."""

    from_entry_id: Required[str]
    inputs: InputsArg
    store: bool
    handoff_execution: HandoffExecution
    completion_args: CompletionArgs | Mapping[str, Any]
    guardrails: Sequence[GuardrailConfig | Mapping[str, Any]] | None
    metadata: Mapping[str, Any] | None
    agent_version: str | int | None


class ListParams(RequestOptions, total=False):
    """Arguments of ``list``: a 0-based ``page``, ``page_size`` and a ``metadata`` filter."""

    page: int
    page_size: int
    metadata: Mapping[str, Any] | None


OPTION_KEYS = frozenset(BodyOptions.__optional_keys__)
