"""The enum-like strings of the API, as `Literal` types.

A type checker sees each as the `Literal` of the values the API documents, so a
typo such as `tool_choice="aut"` fails there. At run time the fields that the
server sends back are plain `str`: a value added by a newer API still decodes
(it is kept as sent), rather than failing the whole response. `Confirmation` and
`HandoffExecution` are only ever sent, so they are checked at run time too.
"""

from typing import TYPE_CHECKING, Literal, TypeAlias

__all__ = [
    "Confirmation",
    "ConfirmationStatus",
    "HandoffExecution",
    "ImageDetail",
    "ModerationAction",
    "ReasoningEffort",
    "ResponseFormatType",
    "Role",
    "ToolChoice",
]

Confirmation: TypeAlias = Literal["allow", "deny"]
"""The answer to a pending function call."""
HandoffExecution: TypeAlias = Literal["client", "server"]
"""Where agent handoffs run."""

if TYPE_CHECKING:
    Role: TypeAlias = Literal["user", "assistant"]
    """Who wrote a message."""
    ToolChoice: TypeAlias = Literal["auto", "none", "any", "required"]
    """Whether and how the model must call a tool."""
    ReasoningEffort: TypeAlias = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]
    """How much the model reasons before it answers (reasoning models)."""
    ResponseFormatType: TypeAlias = Literal["text", "json_object", "json_schema"]
    """The kind of output the model must produce."""
    ConfirmationStatus: TypeAlias = Literal["pending", "allowed", "denied"]
    """Where a call that needs a confirmation stands."""
    ImageDetail: TypeAlias = Literal["low", "auto", "high"]
    """The resolution an image is read at."""
    ModerationAction: TypeAlias = Literal["none", "block"]
    """What a guardrail does with content it flags."""
else:  # open at run time: the server may send values a newer API added
    Role = ToolChoice = ReasoningEffort = ResponseFormatType = str
    ConfirmationStatus = ImageDetail = ModerationAction = str
