"""Request building: argument checks, dict inputs, encoding and validation before sending."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import msgspec
from msgspec import UNSET

from ._errors import InvalidRequestError
from .models import MessageInputEntry, Unknown
from .models._decoders import ModelDecoder
from .models.requests import AppendRequest, RestartRequest, StartRequest

__all__ = ["conversation_path", "encode_body", "inputs_value"]

_PATH_RE = re.compile(r" - at `\$(.*)`$")
_validators: dict[type[Any], ModelDecoder[Any]] = {
    t: ModelDecoder(t) for t in (StartRequest, AppendRequest, RestartRequest)
}


def conversation_path(conversation_id: str, suffix: str = "") -> str:
    """`/v1/conversations/{id}{suffix}` with the id percent-encoded, so no id can reach another route."""
    if not isinstance(conversation_id, str) or not conversation_id:
        raise InvalidRequestError("conversation_id", "must be a non-empty string")
    try:
        encoded = quote(conversation_id, safe="").replace(".", "%2E")
    except UnicodeEncodeError:
        raise InvalidRequestError(
            "conversation_id", "must be valid Unicode text (no lone surrogates)"
        ) from None
    return f"/v1/conversations/{encoded}{suffix}"


def inputs_value(inputs: Any, *, required: bool) -> Any:
    """Check `inputs` and return it as it will be encoded.

    A string is sent as is. A list may hold entry structs or plain dicts; a
    dict without `type` but with `role` is a `message.input`. An
    `Unknown…` entry is sent back as the raw object it was decoded from.
    """
    if inputs is UNSET or inputs is None:
        if required:
            raise InvalidRequestError("inputs", "is required")
        return UNSET
    if isinstance(inputs, str):
        if not inputs:
            raise InvalidRequestError("inputs", "must not be empty")
        return inputs
    if isinstance(inputs, Mapping | msgspec.Struct):
        inputs = [inputs]
    if not isinstance(inputs, Sequence):
        raise InvalidRequestError(
            "inputs", f"must be a string or a list of entries, got {type(inputs).__name__}"
        )
    if not inputs:
        raise InvalidRequestError("inputs", "must not be empty")
    out: list[Any] = []
    for i, item in enumerate(inputs):
        if isinstance(item, Unknown):
            out.append(item.data)
        elif isinstance(item, Mapping):
            entry = dict(item)
            if "type" not in entry and "role" in entry:
                entry["type"] = "message.input"
            if entry.get("type") == "message.input":
                _check_role(i, entry.get("role"))
            out.append(entry)
        elif isinstance(item, msgspec.Struct):
            if isinstance(item, MessageInputEntry):
                _check_role(i, item.role)
            out.append(item)
        else:
            raise InvalidRequestError(
                f"inputs[{i}]", f"must be an entry or a dict, got {type(item).__name__}"
            )
    return out


def _check_role(index: int, role: object) -> None:
    # Role is an open str at run time (history may hold roles a newer API adds); a sent one is checked.
    if role not in ("user", "assistant"):
        raise InvalidRequestError(
            f"inputs[{index}].role",
            f"must be 'user' or 'assistant' (for a system prompt use instructions), got {role!r}",
        )


def encode_body(body: msgspec.Struct, extra_body: Mapping[str, Any] | None) -> bytes:
    """Encode `body` as compact JSON, check it against its model, then merge `extra_body`.

    Every value, whether a struct or a plain dict, is checked by decoding the
    encoded bytes with the request model, so a wrong type anywhere raises an
    `InvalidRequestError` naming its path (for example
    `completion_args.temperature`) before anything is sent.
    """
    try:
        data = msgspec.json.encode(body)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidRequestError(_unencodable(body), f"cannot be encoded as JSON: {exc}") from None
    try:
        _validators[type(body)].decode(data)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = _PATH_RE.search(message)
        path = match.group(1).lstrip(".") if match else "body"
        problem = message[: match.start()] if match else message
        raise InvalidRequestError(path or "body", problem) from None
    if extra_body:
        merged = msgspec.json.decode(data)
        merged.update(extra_body)
        try:
            data = msgspec.json.encode(merged)
        except (TypeError, ValueError, RecursionError) as exc:
            raise InvalidRequestError("extra_body", f"cannot be encoded as JSON: {exc}") from None
    return data


def _unencodable(body: msgspec.Struct) -> str:
    """The name of the first field of `body` that cannot be encoded (the slow path of an error)."""
    for name in body.__struct_fields__:
        value = getattr(body, name)
        if value is UNSET:
            continue
        try:
            msgspec.json.encode(value)
        except (TypeError, ValueError, RecursionError):
            return name
    return "body"
