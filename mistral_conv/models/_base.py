"""Base classes and the lenient fallback decoder shared by every model family.

msgspec rejects an unknown tag in a tagged union. The API grows new entry,
chunk, tool and event types over time, so every union here also holds an
`Unknown…` struct under a reserved tag. Real payloads never carry that tag:
decoding first runs the strict, fast decoder, and only when it fails does
`decode_lenient` rewrite unknown tags into the reserved one and convert
again. The fast path therefore pays nothing for the fallback.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import msgspec

if TYPE_CHECKING:
    from msgspec import inspect as mi

    from .._info import ResponseInfo

__all__ = ["UNKNOWN_TAG", "Model", "Result", "Tagged", "Unknown", "decode_lenient"]

TOO_DEEP = "JSON is nested too deeply"
UNKNOWN_TAG = "mistral_conv.unknown"
"""The reserved tag under which unknown union members are decoded."""

T = TypeVar("T")


class Model(msgspec.Struct, kw_only=True, gc=False):
    """Base of every wire model: keyword-only, untracked by the GC (no cycles)."""


class Result(Model, kw_only=True, dict=True, gc=True):
    """Base of what a client call returns: a model that also carries the HTTP answer."""

    @property
    def raw_response(self) -> ResponseInfo | None:
        """Status, headers and request id of the answer this came from (`None` when built here)."""
        info: ResponseInfo | None = self.__dict__.get("_raw_response")
        return info

    @property
    def request_id(self) -> str | None:
        """The server's request id of the answer this came from."""
        info = self.raw_response
        return info.request_id if info is not None else None


class Tagged(Model, tag_field="type", kw_only=True):
    """Base of every member of a tagged union on `type`.

    Each member declares `type` as a `ClassVar` of its `Literal` tag, so that
    `if x.type == "text":` narrows a union for type checkers.
    """

    type: ClassVar[str]


class Unknown(Tagged, tag=UNKNOWN_TAG, kw_only=True):
    """An object of a `type` this version of the SDK does not know.

    `type` is `"unknown"`; `type_name` is the type name the server sent and
    `data` the whole JSON object as received, so nothing is lost.
    """

    type: ClassVar[Literal["unknown"]] = "unknown"
    type_name: str
    data: dict[str, Any]


@functools.cache
def _info(tp: Any) -> mi.Type:  # tp: a hashable type
    from msgspec import inspect  # only the fallback needs it: keep it off the import path

    return inspect.type_info(tp)


def _rewrite(obj: Any, t: mi.Type) -> Any:
    """Replace unknown union members in `obj` (plain JSON data) by reserved-tag objects."""
    from msgspec import inspect as mi

    if isinstance(t, mi.StructType):
        if isinstance(obj, dict):
            for f in t.fields:
                if f.encode_name in obj:
                    obj[f.encode_name] = _rewrite(obj[f.encode_name], f.type)
        return obj
    if isinstance(t, mi.ListType | mi.VarTupleType | mi.SetType | mi.FrozenSetType):
        if isinstance(obj, list):
            return [_rewrite(x, t.item_type) for x in obj]
        return obj
    if isinstance(t, mi.DictType):
        if isinstance(obj, dict):
            return {k: _rewrite(v, t.value_type) for k, v in obj.items()}
        return obj
    if isinstance(t, mi.UnionType):
        return _rewrite_union(obj, t)
    return obj


def _rewrite_union(obj: Any, t: mi.UnionType) -> Any:
    from msgspec import inspect as mi

    structs = [m for m in t.types if isinstance(m, mi.StructType)]
    if isinstance(obj, dict) and structs and structs[0].tag_field is not None:
        tag_field = structs[0].tag_field
        by_tag = {m.tag: m for m in structs}
        tag = obj.get(tag_field)
        member = by_tag.get(tag) if isinstance(tag, str) else None
        if member is not None and tag != UNKNOWN_TAG:
            return _rewrite(obj, member)
        if isinstance(tag, str) and UNKNOWN_TAG in by_tag:
            return {tag_field: UNKNOWN_TAG, "type_name": tag, "data": obj}
        return obj
    if isinstance(obj, list):
        for m in t.types:
            if isinstance(m, mi.ListType):
                return _rewrite(obj, m)
    if isinstance(obj, dict):
        for m in t.types:
            if isinstance(m, mi.StructType | mi.DictType):
                return _rewrite(obj, m)
    return obj


def decode_lenient(data: bytes, tp: type[T]) -> T:
    """Decode `data` as `tp`, turning unknown union members into `Unknown…` structs.

    Raises `msgspec.DecodeError` (not JSON) or `msgspec.ValidationError`
    (JSON of another shape), which the caller maps to its own error.
    """
    try:
        obj = msgspec.json.decode(data)
        return msgspec.convert(_rewrite(obj, _info(tp)), tp)  # type: ignore[arg-type]
    except UnicodeDecodeError as exc:  # a string that is not UTF-8: the same failure, as msgspec's type
        raise msgspec.DecodeError(f"invalid UTF-8 in a JSON string: {exc}") from None
    except RecursionError:  # nested deeper than msgspec or the rewrite goes: not a shape, a refusal
        raise msgspec.DecodeError(TOO_DEEP) from None
