"""Request parsing and error answers of the local server, shaped as the real API's."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from aiohttp import web

from ..models import Unknown
from ..models._decoders import ModelDecoder

__all__ = ["api_error", "decode_request", "validation_error"]

_PATH = re.compile(r"\.([A-Za-z_][\w]*)|\[(\d+)\]")
_AT = re.compile(r"^(.*) - at `\$(.*)`$")
_decoders: dict[type[Any], ModelDecoder[Any]] = {}


def validation_error(items: list[dict[str, Any]]) -> web.Response:
    """422 with the FastAPI `{"detail": [...]}` body the spec declares."""
    return web.json_response({"detail": items}, status=422)


def api_error(
    status: int,
    message: str,
    *,
    code: int | str | None = None,
    capital: bool = False,
    type: str = "invalid_request_error",
) -> web.Response:
    """An error in the API's common envelope (`"Error"` with an integer code for run failures)."""
    body: dict[str, Any] = {
        "object": "Error" if capital else "error",
        "message": message,
        "type": type,
    }
    if capital:
        body["code"] = code
    else:
        body.update(param=None, code=code)
    return web.json_response(body, status=status)


def _loc(path: str) -> list[str | int]:
    loc: list[str | int] = ["body"]
    for name, index in _PATH.findall(path):
        loc.append(name if name else int(index))
    return loc


def decode_request(body: bytes, model: type[msgspec.Struct]) -> Any:
    """The body as `model`, or a 422 response naming what is wrong (unknown keys are refused)."""
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return validation_error([{"loc": ["body"], "msg": "JSON decode error", "type": "json_invalid"}])
    if not isinstance(raw, dict):
        return validation_error(
            [{"loc": ["body"], "msg": "Input should be an object", "type": "model_type", "input": raw}]
        )
    known = {f.encode_name for f in msgspec.structs.fields(model)}
    extra = [k for k in raw if k not in known]
    if extra:
        return validation_error(
            [
                {
                    "loc": ["body", k],
                    "msg": "Extra inputs are not permitted",
                    "type": "extra_forbidden",
                    "input": raw[k],
                }
                for k in extra
            ]
        )
    decoder = _decoders.setdefault(model, ModelDecoder(model))
    try:
        parsed = decoder.decode(body)
    except msgspec.ValidationError as exc:
        match = _AT.match(str(exc))
        msg, path = (match.group(1), match.group(2)) if match else (str(exc), "")
        return validation_error([{"loc": _loc(path), "msg": msg, "type": "value_error"}])
    inputs = getattr(parsed, "inputs", None)
    if isinstance(inputs, list):
        for i, entry in enumerate(inputs):
            if isinstance(entry, Unknown):
                return validation_error(
                    [
                        {
                            "loc": ["body", "inputs", i, "type"],
                            "msg": f"Unknown entry type {entry.type_name!r}",
                            "type": "union_tag_invalid",
                        }
                    ]
                )
    return parsed
