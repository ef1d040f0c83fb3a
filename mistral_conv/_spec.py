"""The one source of truth for the clients' public signatures.

Every parameter of every public method of `AsyncConversationsClient` and
`ConversationsClient` is declared here once, with its type, default and
documentation. `python mistral_conv/_codegen.py` writes the classes into
`_api.py` and `_sync_api.py` from this table; a test fails when either is not what
the table gives. The request bodies' fields come from the request models
(`models/requests.py`), and a test keeps them and this table in step.

Annotations are source text, resolved in `_api.py`'s and `_sync_api.py`'s namespaces.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CLIENT", "METHODS", "Method", "Param"]


@dataclass(frozen=True)
class Param:
    """One parameter: `default` is source text, or `None` for a required one."""

    name: str
    annotation: str
    default: str | None
    doc: str


def _p(name: str, annotation: str, doc: str, default: str | None = "None") -> Param:
    return Param(name, annotation, default, doc)


# -- body fields (`None` means: not sent, the API's default applies) ----------------

_INPUTS = _p(
    "inputs",
    "Inputs",
    "A string (one user message) or a list of entries, as models or dicts.",
    default=None,
)
_INPUTS_OPTIONAL = _p(
    "inputs",
    "Inputs | None",
    "A string (one user message) or a list of entries, as models or dicts; may be left out "
    "(the model runs again on the stored history).",
)
_STORE = _p("store", "bool | None", "Store the new entries on the server (the API's default: true).")
_HANDOFF = _p(
    "handoff_execution",
    "HandoffExecution | None",
    'Where agent handoffs run: `"server"` (the API\'s default) or `"client"`.',
)
_COMPLETION_ARGS = _p(
    "completion_args",
    "CompletionArgs | CompletionArgsParam | None",
    "Sampling and output settings (temperature, max_tokens, response_format, tool_choice, ...).",
)
_GUARDRAILS = _p(
    "guardrails",
    "Sequence[GuardrailConfig | GuardrailConfigParam] | None",
    "Moderation guardrails (with `agent_id` they override the agent's).",
)
_METADATA = _p(
    "metadata",
    "Mapping[str, Any] | None",
    "Free-form metadata stored on the conversation (filterable in list).",
)
_AGENT_VERSION = _p("agent_version", "str | int | None", "The agent version to run (with `agent_id`).")

_START_FIELDS = (
    _INPUTS,
    _p(
        "model",
        "str | None",
        'The model to run, e.g. `"mistral-medium-latest"`; exactly one of model/agent_id.',
    ),
    _p("agent_id", "str | None", "The agent to run; exactly one of model/agent_id."),
    _AGENT_VERSION,
    _p("instructions", "str | None", "The system prompt (model conversations)."),
    _p(
        "tools",
        "Sequence[Tool | ToolParam] | None",
        "Tools the model may use: functions, web search, code interpreter, connectors, ...",
    ),
    _COMPLETION_ARGS,
    _GUARDRAILS,
    _STORE,
    _HANDOFF,
    _p("name", "str | None", "A name stored on the conversation."),
    _p("description", "str | None", "A description stored on the conversation."),
    _METADATA,
)
_APPEND_FIELDS = (
    _INPUTS_OPTIONAL,
    _p(
        "tool_confirmations",
        "Sequence[ToolCallConfirmation | ToolCallConfirmationParam] | None",
        'Answers to pending function calls: `{"tool_call_id": ..., "confirmation": "allow" | "deny"}`.',
    ),
    _STORE,
    _HANDOFF,
    _COMPLETION_ARGS,
)
_RESTART_FIELDS = (
    _p("from_entry_id", "str", "The id of the entry to branch from (it is kept in the new history).", None),
    _INPUTS_OPTIONAL,
    _STORE,
    _HANDOFF,
    _COMPLETION_ARGS,
    _GUARDRAILS,
    _METADATA,
    _AGENT_VERSION,
)

# -- per-call options ---------------------------------------------------------------

_REQUEST_OPTIONS = (
    _p(
        "timeout",
        "float | Timeout | None",
        "Time limits for this call instead of the client's (a number sets connect, read, total and "
        "first event).",
    ),
    _p("max_retries", "int | None", "Retries for this call instead of the client's."),
    _p("extra_headers", "Mapping[str, str] | None", "More HTTP headers for this call."),
    _p("extra_query", "Mapping[str, str | int | float] | None", "More query parameters for this call."),
)
_BODY_OPTIONS = (
    *_REQUEST_OPTIONS,
    _p(
        "retry_unknown_outcome",
        "bool | None",
        "Resend after a failure that leaves the outcome unknown (the turn may then be stored twice) "
        "instead of raising `RequestOutcomeUnknownError`; default: the client's.",
    ),
    _p(
        "extra_body",
        "Mapping[str, Any] | None",
        "Body fields this SDK version does not know yet, merged into the JSON as given.",
    ),
)
_CONVERSATION_ID = _p("conversation_id", "str", "The conversation's id.", None)


@dataclass(frozen=True)
class Method:
    """One public method.

    `kind` says how the generated body delegates: `turn` (a plain call that stores
    a turn), `stream` (its streamed form), `read` (a GET), `list`, `iterate`
    or `delete`. `positional` parameters come before the `*`; `fields` are
    body fields or query parameters, `options` the per-call options.
    """

    name: str
    kind: str
    doc: str
    returns: str
    sync_returns: str
    positional: tuple[Param, ...] = ()
    fields: tuple[Param, ...] = ()
    options: tuple[Param, ...] = _REQUEST_OPTIONS
    raises: str = ""
    operation: str = ""

    @property
    def params(self) -> tuple[Param, ...]:
        return (*self.positional, *self.fields, *self.options)


_TURN_RAISES = (
    "InvalidRequestError: an argument is invalid (nothing was sent).\n"
    "RequestOutcomeUnknownError: the request went out and the attempt failed: the turn may be "
    "stored; it was not sent again.\n"
    "APIStatusError: the API answered with an error status (a subclass per status).\n"
    "APIConnectionError: the request could not be sent or answered (`APITimeoutError` for a time limit).\n"
    "APIError: the answer could not be accepted (`ResponseDecodeError`, `ResponseTooLargeError`)."
)
_READ_RAISES = (
    "InvalidRequestError: an argument is invalid (nothing was sent).\n"
    "APIStatusError: the API answered with an error status (`NotFoundError` for an unknown id).\n"
    "APIConnectionError: the request could not be sent or answered (`APITimeoutError` for a time limit).\n"
    "APIError: the answer could not be accepted."
)
_STREAM_NOTE = (
    "Arguments are checked now; the request is sent when the stream is opened: by `async with`, "
    "`await stream.open()` or the first read (`for` in the blocking client). Errors before the "
    "first event raise there; errors later raise from the read, with `partial`."
)

METHODS: tuple[Method, ...] = (
    Method(
        "start",
        "turn",
        "Start a conversation with a `model` or an `agent_id` and run it on `inputs`.\n\n"
        "Returns the new entries (`outputs`), the new `conversation_id` and the usage.",
        "ConversationResponse",
        "ConversationResponse",
        fields=_START_FIELDS,
        options=_BODY_OPTIONS,
        raises=_TURN_RAISES,
    ),
    Method(
        "start_stream",
        "stream",
        "Start a conversation, streamed: a `ConversationStream` of events.\n\n" + _STREAM_NOTE,
        "ConversationStream",
        "SyncConversationStream",
        fields=_START_FIELDS,
        options=_BODY_OPTIONS,
        operation="start",
    ),
    Method(
        "append",
        "turn",
        "Append `inputs` (and/or `tool_confirmations`) to a conversation and run it.\n\n"
        "Returns only the new entries. With neither, the model runs again on the stored history.",
        "ConversationResponse",
        "ConversationResponse",
        positional=(_CONVERSATION_ID,),
        fields=_APPEND_FIELDS,
        options=_BODY_OPTIONS,
        raises=_TURN_RAISES,
    ),
    Method(
        "append_stream",
        "stream",
        "Append to a conversation, streamed.\n\n" + _STREAM_NOTE,
        "ConversationStream",
        "SyncConversationStream",
        positional=(_CONVERSATION_ID,),
        fields=_APPEND_FIELDS,
        options=_BODY_OPTIONS,
        operation="append",
    ),
    Method(
        "restart",
        "turn",
        "Branch a new conversation from entry `from_entry_id` of `conversation_id` and run it.\n\n"
        "The response carries the new conversation's id.",
        "ConversationResponse",
        "ConversationResponse",
        positional=(_CONVERSATION_ID,),
        fields=_RESTART_FIELDS,
        options=_BODY_OPTIONS,
        raises=_TURN_RAISES,
    ),
    Method(
        "restart_stream",
        "stream",
        "Restart a conversation from an entry, streamed.\n\n" + _STREAM_NOTE,
        "ConversationStream",
        "SyncConversationStream",
        positional=(_CONVERSATION_ID,),
        fields=_RESTART_FIELDS,
        options=_BODY_OPTIONS,
        operation="restart",
    ),
    Method(
        "get",
        "read",
        "Fetch one conversation: a `ModelConversation` or an `AgentConversation`.",
        "Conversation",
        "Conversation",
        positional=(_CONVERSATION_ID,),
        raises=_READ_RAISES,
    ),
    Method(
        "list",
        "list",
        "One page of conversations, newest first.",
        "ConversationPage",
        "ConversationPage",
        fields=(
            _p("page", "int | None", "The 0-based page number (the API's default: 0)."),
            _p("page_size", "int | None", "Conversations per page (the API's default: 100)."),
            _p(
                "metadata", "Mapping[str, Any] | None", "Only conversations whose metadata holds these pairs."
            ),
        ),
        raises=_READ_RAISES,
    ),
    Method(
        "iter_conversations",
        "iterate",
        "Every conversation, newest first, fetching pages as the iteration goes.",
        "AsyncIterator[Conversation]",
        "Iterator[Conversation]",
        fields=(
            _p("page_size", "int", "Conversations per request.", "100"),
            _p(
                "metadata", "Mapping[str, Any] | None", "Only conversations whose metadata holds these pairs."
            ),
        ),
        raises=_READ_RAISES,
    ),
    Method(
        "history",
        "read",
        "Every entry of a conversation, in order.",
        "ConversationHistory",
        "ConversationHistory",
        positional=(_CONVERSATION_ID,),
        raises=_READ_RAISES,
    ),
    Method(
        "messages",
        "read",
        "The input and output messages of a conversation.",
        "ConversationMessages",
        "ConversationMessages",
        positional=(_CONVERSATION_ID,),
        raises=_READ_RAISES,
    ),
    Method(
        "delete",
        "delete",
        "Delete a conversation. Returns what the API answered (status, headers, request id).",
        "ResponseInfo",
        "ResponseInfo",
        positional=(_CONVERSATION_ID,),
        raises=_READ_RAISES,
    ),
)

_HANDLE_FIELDS = (
    *(p for p in _START_FIELDS if p.name not in ("inputs", "tools")),
    _p(
        "tools",
        "Sequence[LocalTool[..., Any] | Callable[..., Any] | Tool | ToolParam] | None",
        "Tools: Python functions (plain or `@tool`; run locally when the model calls them), "
        "and API tools (web search, connectors, ...).",
    ),
    _p(
        "output_type",
        "type[T] | None",
        "A msgspec Struct (or any msgspec type) the final answer must decode into: sets a strict "
        "`json_schema` response format, and the run's `parsed` holds the decoded answer.",
    ),
    _p("max_rounds", "int", "The most model turns one run may take (a turn per round of tool calls).", "10"),
    _p(
        "tool_timeout",
        "float | None",
        "Seconds one local tool call may take (a tool's own `timeout` wins).",
    ),
    _p(
        "on_tool_error",
        'Literal["result", "raise"]',
        'What a tool\'s exception does: `"result"` tells the model what failed; `"raise"` stops '
        "the run with `ToolFailedError`.",
        '"result"',
    ),
)

METHODS = (
    *METHODS,
    Method(
        "conversation",
        "handle",
        "A handle on a conversation: a new one (its first `send` starts it), or `conversation_id`'s.\n\n"
        "The handle remembers the conversation's id and entries; its `send` and `stream` run "
        "local tools for the model's function calls, and settle a turn whose outcome is unknown "
        "from the stored history, so no turn is stored twice. Nothing is sent here.",
        "ConversationHandle[T]",
        "SyncConversationHandle[T]",
        positional=(
            _p("conversation_id", "str | None", "An existing conversation's id (default: a new one)."),
        ),
        fields=_HANDLE_FIELDS,
        options=(),
        raises="InvalidRequestError: an argument is invalid.",
    ),
)

METHODS = (
    *METHODS,
    Method(
        "settle",
        "settle",
        "Find out what became of a turn that raised `RequestOutcomeUnknownError`, from the stored "
        "history.\n\n"
        "Returns the turn's response when it was stored (its outputs; usage is zero, as the "
        "history does not keep it), or `None` when nothing was stored: then it is safe to send it "
        "again. Conversation handles do this by themselves.",
        "ConversationResponse | None",
        "ConversationResponse | None",
        positional=(_p("error", "RequestOutcomeUnknownError", "The error the turn raised.", None),),
        fields=(
            _p(
                "last_entry_id",
                "str | None",
                "For an append: the id of the last entry seen before it (required). For a start or "
                "restart whose new conversation id arrived on a stream: leave it out.",
            ),
        ),
        raises="InvalidRequestError: the turn cannot be looked up (no conversation id, or no "
        "`last_entry_id` for an append).\n"
        "TurnIncompleteError: the turn's inputs are stored but its run did not finish.\n"
        "APIError: reading the history failed.",
    ),
)

CLIENT: tuple[Param, ...] = (
    _p(
        "api_key",
        "str | None",
        "The API key (default: `$MISTRAL_API_KEY`). Never logged, never in a repr or an error.",
    ),
    _p(
        "base_url",
        "str | None",
        "The API's address (default: `$MISTRAL_BASE_URL`, else `https://api.mistral.ai`).",
    ),
    _p("timeout", "float | Timeout | None", "Default time limits (default: `Timeout()`)."),
    _p("max_retries", "int", "Default retries of a failed call.", "2"),
    _p(
        "retry_unknown_outcome",
        "bool",
        "Resend `start`, `append` and `restart` after a failure that leaves their outcome unknown "
        "(the turn may then be stored twice); by default they raise `RequestOutcomeUnknownError`.",
        "False",
    ),
    _p("backoff", "Backoff | None", "Delays between retries (default: `Backoff()`)."),
    _p(
        "max_connections",
        "int",
        "Size of the connection pool: at most this many requests are in flight at once; more wait.",
        "100",
    ),
    _p("default_headers", "Mapping[str, str] | None", "Headers sent with every request."),
    _p("verify_ssl", "bool", "Check TLS certificates (turn off only on purpose).", "True"),
    _p(
        "allow_insecure_http",
        "bool",
        "Allow sending the key over plain http to a host that is not loopback.",
        "False",
    ),
    _p("max_event_size", "int", "The largest stream event accepted, in bytes (16 MiB).", "16_777_216"),
    _p(
        "max_response_size",
        "int",
        "The largest plain response body accepted, in bytes, decompressed (64 MiB).",
        "67_108_864",
    ),
    _p(
        "max_stream_size",
        "int",
        "The most event bytes one stream may deliver, decompressed (256 MiB); a stream also stops at "
        "10,000 output entries. Past either: `ResponseTooLargeError` with `partial`.",
        "268_435_456",
    ),
    _p(
        "log_bodies",
        "bool",
        "Log request and response bodies at DEBUG on the `mistral_conv` logger.",
        "False",
    ),
    _p(
        "transport",
        "Transport | None",
        "A transport to send through instead of the default `AiohttpTransport` (see "
        "`mistral_conv.transport`); the client closes it when it closes.",
    ),
    _p(
        "tracer_provider",
        "TracerProvider | None",
        "The OpenTelemetry tracer provider for this client's spans (the `otel` extra); by default "
        "the global one, when `opentelemetry` was imported before the client was made. "
        "`NoOpTracerProvider()` turns spans off.",
    ),
    _p(
        "trace_content",
        "bool",
        "Record prompts, instructions, outputs and tool arguments and results in spans "
        "(`gen_ai.input.messages`, ...). Off by default: spans hold ids, models and counts only.",
        "False",
    ),
    _p(
        "on_request",
        "Callable[[RequestEvent], None] | None",
        "Called on the event loop before each attempt is sent (see `docs/observability.md`); "
        "what it raises is logged and ignored.",
    ),
    _p(
        "on_response",
        "Callable[[ResponseEvent], None] | None",
        "Called on the event loop when an attempt's answer arrives (status and headers), or it "
        "failed without one; what it raises is logged and ignored.",
    ),
    _p(
        "on_retry",
        "Callable[[RetryEvent], None] | None",
        "Called on the event loop when a failed attempt is about to be retried, with the back-off "
        "delay; what it raises is logged and ignored.",
    ),
)
