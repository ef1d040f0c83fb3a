"""Server-sent events: the spec-exact decoder the streams use, and its inverse for servers.

Decoding: `SSEDecoder` turns body chunks into `SSEFrame` objects
(WHATWG event-stream rules), for callers who parse SSE themselves.

Encoding, for web handlers that relay a conversation to browsers (each call
returns one complete, UTF-8 frame that ends with a blank line):

* `encode` - one event from text, with optional `event`, `id` and
  `retry` fields. Multi-line text becomes one `data:` line per line, split
  on CRLF, CR or LF, so a decoder gives back exactly the text with its line
  ends as LF (an empty text is one empty `data:` line, still dispatched).
* `encode_json` - one event whose data is the compact JSON of a value.
* `encode_event` - one of the SDK's typed stream events, framed as the
  API frames it: `event: <type>` and `data: <compact JSON with "type">`.
* `comment` - a `:` comment (keep-alive), which dispatches nothing.

>>> encode("two\\nlines", event="note", id="7")
b'event: note\\nid: 7\\ndata: two\\ndata: lines\\n\\n'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from ._sse import SSEDecoder, SSEFrame
from .models.events import UnknownEvent

if TYPE_CHECKING:
    from ._runs import RunEvent

__all__ = ["SSEDecoder", "SSEFrame", "comment", "encode", "encode_event", "encode_json"]

_json = msgspec.json.Encoder()


def _field(name: str, value: str, *, nul: bool = False) -> bytes:
    """One `name: value` line; the value may not hold a line end (nor, for `id`, a NUL)."""
    if "\n" in value or "\r" in value:
        raise ValueError(f"{name} must not contain a line break (CR or LF): {value!r}")
    if nul and "\0" in value:
        raise ValueError(f"{name} must not contain NUL: {value!r}")
    return f"{name}: {value}\n".encode()


def _frame(data: bytes, event: str | None, id: str | None, retry: int | None) -> bytes:
    """One event from UTF-8 data bytes: the fields, then a `data:` line per line, then a blank line."""
    head = b""
    if event:  # an empty name is the default ("message"): no line needed
        head += _field("event", event)
    if id is not None:
        head += _field("id", id, nul=True)
    if retry is not None:
        if type(retry) is not int or retry < 0:
            raise ValueError(f"retry must be a non-negative int (milliseconds): {retry!r}")
        head += b"retry: %d\n" % retry
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    # Always "data: " with a space: the decoder strips one space after the colon, so a
    # line that starts with a space keeps it.
    return head + b"data: " + data.replace(b"\n", b"\ndata: ") + b"\n\n"


def encode(data: str, *, event: str | None = None, id: str | None = None, retry: int | None = None) -> bytes:
    """One event whose data is `data`, as UTF-8 bytes ending with a blank line.

    Args:
        data: The text; each line (split on CRLF, CR or LF) becomes a `data:` line,
            which a decoder joins back with LF.
        event: The event name (`None` or `""`: no `event:` line, which browsers see
            as `"message"`); no CR or LF.
        id: The event id (the browser's `lastEventId`; `""` resets it); no CR, LF or NUL.
        retry: The reconnection delay in milliseconds; a non-negative int.

    Raises:
        ValueError: `event`, `id` or `retry` is invalid (the message names it).
    """
    return _frame(data.encode(), event, id, retry)


def encode_json(
    value: object, *, event: str | None = None, id: str | None = None, retry: int | None = None
) -> bytes:
    """One event whose data is the compact JSON of `value` (msgspec-encodable); see `encode`."""
    return _frame(_json.encode(value), event, id, retry)


def encode_event(event: RunEvent, *, id: str | None = None, retry: int | None = None) -> bytes:
    """One of the SDK's typed stream events, framed like the API: `event: <type>` and its JSON.

    Known events (`mistral_conv.models.ConversationEvent`) and the run's local events
    (`ToolCallStartedEvent`, `FunctionResultEvent`)
    are sent as compact JSON that includes `"type"`, so `decode_event` of the data gives
    an equal event back. An `UnknownEvent` is sent as its raw
    data under its `type_name` (no `event:` line when that is empty or not a valid name).
    """
    if isinstance(event, UnknownEvent):
        name = event.type_name
        if "\n" in name or "\r" in name:
            name = ""
        return _frame(event.data, name, id, retry)
    body = _json.encode(event)
    if type(event).__struct_config__.tag is None:
        # A plain struct with a ClassVar type (the run's local events): add "type" first.
        tag = _json.encode(event.type)
        body = b'{"type":' + tag + (b"," + body[1:] if body != b"{}" else b"}")
    return _frame(body, event.type, id, retry)


def comment(text: str = "") -> bytes:
    """A comment (`:` line, one per line of `text`), ending with a blank line; it dispatches nothing.

    Send one as a keep-alive while the upstream is silent: it keeps proxies and browsers
    from timing the connection out, and the blank line makes buffering proxies flush it.
    """
    if not text:
        return b":\n\n"
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return (": " + text.replace("\n", "\n: ") + "\n\n").encode()
