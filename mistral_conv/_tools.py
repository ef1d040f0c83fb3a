"""Local function tools: plain Python functions the model may call, with schemas from their hints.

`@tool` (or passing a function in `tools=[...]` of a conversation) turns a function,
sync or async, into a `LocalTool`: its JSON schema comes from the type hints
(msgspec's schema generation; msgspec Structs as parameters decode into Structs) and
its descriptions from the docstring (Google style: a summary, then `Args:`). A sync
function runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import re
import typing
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec, TypeVar, overload

import anyio
import anyio.to_thread
import msgspec

from ._errors import InvalidRequestError
from .models import Function, FunctionTool

__all__ = ["LocalTool", "ToolArgumentsError", "tool"]

P = ParamSpec("P")
R = TypeVar("R")

_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Returns|Return|Raises|Yields|Examples?|Notes?):\s*$")
_PARAM = re.compile(r"^\s*(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


class ToolArgumentsError(ValueError):
    """The model's arguments do not match the tool's parameters (sent back to it as the result)."""


def _docs(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """The summary of `fn`'s docstring, and its `Args:` descriptions by parameter."""
    doc = inspect.getdoc(fn) or ""
    summary: list[str] = []
    params: dict[str, str] = {}
    section = None
    current = None
    for line in doc.splitlines():
        m = _SECTION.match(line)
        if m:
            section = m.group(1)
            current = None
            continue
        if section is None:
            summary.append(line)
        elif section in ("Args", "Arguments", "Parameters"):
            p = _PARAM.match(line)
            if p and (len(line) - len(line.lstrip())) <= 4:
                current = p.group(1)
                params[current] = p.group(2).strip()
            elif current and line.strip():
                params[current] = f"{params[current]} {line.strip()}".strip()
    return " ".join(" ".join(summary).split()), params


def _strip_titles(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _strip_titles(v) for k, v in schema.items() if k != "title"}
    if isinstance(schema, list):
        return [_strip_titles(v) for v in schema]
    return schema


def _arguments_type(fn: Callable[..., Any], name: str) -> type[msgspec.Struct]:
    hints = typing.get_type_hints(fn, include_extras=True)
    fields: list[Any] = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            raise InvalidRequestError("tools", f"tool {name!r}: parameter {p.name!r} must be a plain keyword")
        annotation = hints.get(p.name, Any)
        fields.append((p.name, annotation) if p.default is p.empty else (p.name, annotation, p.default))
    return msgspec.defstruct(f"{name}_arguments", fields, kw_only=True, forbid_unknown_fields=True)


def _schema(args: type[msgspec.Struct], descriptions: dict[str, str]) -> dict[str, Any]:
    (_, components) = msgspec.json.schema_components([args], ref_template="#/$defs/{name}")
    components = dict(components)
    top: dict[str, Any] = dict(components.pop(args.__name__))
    if components:
        top["$defs"] = components
    properties = top.setdefault("properties", {})
    for field, text in descriptions.items():
        if field in properties and text:
            properties[field] = {**properties[field], "description": text}
    top.setdefault("required", [])
    result: dict[str, Any] = _strip_titles(top)
    return result


class LocalTool(Generic[P, R]):
    """A Python function the model may call. Call it like the function it wraps.

    `definition` is the `function` tool sent to the API (`strict: true`);
    `requires_confirmation` pauses a run before it runs; `timeout` limits one call.
    """

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        requires_confirmation: bool = False,
        timeout: float | None = None,
    ) -> None:
        if not callable(fn):
            raise InvalidRequestError("tools", f"a tool must be a function, got {type(fn).__name__}")
        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", ""))
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", self.name):
            raise InvalidRequestError(
                "tools", f"tool name {self.name!r} must be 1-64 letters, digits, _ or -"
            )
        summary, params = _docs(fn)
        self.description = description if description is not None else summary
        self.requires_confirmation = requires_confirmation
        self.timeout = timeout
        self.is_async = inspect.iscoroutinefunction(fn)
        self.arguments_type = _arguments_type(fn, self.name)
        self.parameters = _schema(self.arguments_type, params)
        self._decoder = msgspec.json.Decoder(self.arguments_type)
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"LocalTool({self.name!r})"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    @property
    def definition(self) -> FunctionTool:
        """The `function` tool for the API."""
        return FunctionTool(
            function=Function(
                name=self.name, parameters=self.parameters, description=self.description, strict=True
            )
        )

    def arguments(self, raw: str | dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments for a call, decoded from the model's `arguments`."""
        try:
            if isinstance(raw, str):
                decoded = self._decoder.decode(raw or "{}")
            else:
                decoded = msgspec.convert(raw, self.arguments_type)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise ToolArgumentsError(f"invalid arguments for {self.name}: {exc}") from None
        return {f: getattr(decoded, f) for f in decoded.__struct_fields__}

    async def invoke(self, raw: str | dict[str, Any]) -> str:
        """Run the tool on the model's `arguments` and return its result as a string.

        A sync function runs in a worker thread. The result is sent as is when it is a
        string, JSON-encoded otherwise.
        """
        kwargs = self.arguments(raw)
        if self.is_async:
            result: Any = await typing.cast(Callable[..., Awaitable[Any]], self.fn)(**kwargs)
        else:
            call = functools.partial(self.fn, **kwargs)
            result = await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
        if isinstance(result, str):
            return result
        return msgspec.json.encode(result).decode()


_made: weakref.WeakKeyDictionary[Callable[..., Any], LocalTool[..., Any]] = weakref.WeakKeyDictionary()


def as_tool(fn: Callable[..., Any]) -> LocalTool[..., Any]:
    """`fn` as a tool with the default settings, built once per function (schemas cost time)."""
    try:
        return _made[fn]
    except (KeyError, TypeError):  # not seen yet, or not weakly referenceable
        made: LocalTool[..., Any] = LocalTool(fn)
        with contextlib.suppress(TypeError):
            _made[fn] = made
        return made


@overload
def tool(fn: Callable[P, R], /) -> LocalTool[P, R]: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    requires_confirmation: bool = False,
    timeout: float | None = None,
) -> Callable[[Callable[P, R]], LocalTool[P, R]]: ...


def tool(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    requires_confirmation: bool = False,
    timeout: float | None = None,
) -> LocalTool[P, R] | Callable[[Callable[P, R]], LocalTool[P, R]]:
    """Make a function a tool the model may call: `@tool` or `@tool(requires_confirmation=True)`.

    Args:
        name: The name the model sees (default: the function's name).
        description: What the tool does (default: the docstring's summary).
        requires_confirmation: Pause the run before each call, for the caller to allow or deny it.
        timeout: Seconds one call may take; past it the model is told the tool timed out.

    Raises:
        InvalidRequestError: the function cannot be a tool: its name is not 1-64 letters, digits,
            `_` or `-`, or a parameter is not a plain keyword.
    """

    def make(f: Callable[P, R]) -> LocalTool[P, R]:
        return LocalTool(
            f,
            name=name,
            description=description,
            requires_confirmation=requires_confirmation,
            timeout=timeout,
        )

    return make(fn) if fn is not None else make
