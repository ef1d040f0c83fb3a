"""Testing helpers: a local Conversations API server, its responders and faults, and a pytest plugin.

`LocalConversationsServer` serves all 11 operations from memory over real
HTTP on 127.0.0.1, streams SSE in the API's exact framing, validates requests
as the API does, can inject faults, and can enforce a rate limit (`RateLimit`).
See `mistral_conv.testing.pytest_plugin` for the `mistral_server` and
`mistral_client` fixtures.
"""

from ._faults import FAULT_HEADER, Fault
from ._ratelimit import RateLimit
from ._responders import (
    DefaultResponder,
    Failure,
    Responder,
    ScriptedResponder,
    Turn,
    TurnContext,
    call_function,
    fail,
    hand_off,
    reply_text,
    run_tool,
)
from ._server import LocalConversationsServer
from ._sockets import hanging_port

__all__ = [
    "FAULT_HEADER",
    "DefaultResponder",
    "Failure",
    "Fault",
    "LocalConversationsServer",
    "RateLimit",
    "Responder",
    "ScriptedResponder",
    "Turn",
    "TurnContext",
    "call_function",
    "fail",
    "hand_off",
    "hanging_port",
    "reply_text",
    "run_tool",
]
