"""Faults the local server can inject, by script (`server.inject`) or per request (a header)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal

__all__ = ["FAULT_HEADER", "Fault"]

FAULT_HEADER = "X-Local-Fault"
"""A request header carrying a fault, e.g. `status=429,retry_after=1` or `disconnect,after_events=3`."""

Kind = Literal["status", "drop", "disconnect", "stall", "trickle", "malformed", "html", "stream_error"]


@dataclass(frozen=True)
class Fault:
    """One injected failure. Build it with the class methods.

    `after_events` places stream faults after that many events (for plain
    calls, the fault hits the response body instead).
    """

    kind: Kind
    status: int = 500
    retry_after: float | None = None
    after_events: int = 0
    seconds: float = 0.0
    message: str = "Response failed during handoff orchestration"
    code: int = 3000

    @classmethod
    def error_status(cls, status: int, retry_after: float | None = None) -> Fault:
        """Answer with an error status (429 with `Retry-After`, 500, 503, …) and an API error body."""
        return cls("status", status=status, retry_after=retry_after)

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection before sending any header."""
        return cls("drop")

    @classmethod
    def disconnect(cls, after_events: int = 1) -> Fault:
        """Close the connection in the middle of the body (a stream: after `after_events` events)."""
        return cls("disconnect", after_events=after_events)

    @classmethod
    def stall(cls, seconds: float, after_events: int = 0) -> Fault:
        """Go silent for `seconds` (before answering, or in a stream after `after_events` events)."""
        return cls("stall", seconds=seconds, after_events=after_events)

    @classmethod
    def trickle(cls, seconds: float) -> Fault:
        """Send slowly: `seconds` between events (a plain body: between small pieces)."""
        return cls("trickle", seconds=seconds)

    @classmethod
    def malformed(cls, after_events: int = 1) -> Fault:
        """A data line that is not JSON (a plain body: cut in the middle, with status 200)."""
        return cls("malformed", after_events=after_events)

    @classmethod
    def html(cls, status: int = 502) -> Fault:
        """An HTML error page, as a proxy sends it, with `Content-Type: text/html`."""
        return cls("html", status=status)

    @classmethod
    def stream_error(
        cls,
        message: str = "Response failed during handoff orchestration",
        code: int = 3000,
        after_events: int = 1,
    ) -> Fault:
        """A `conversation.response.error` event after `after_events` events (a plain call: HTTP 500)."""
        return cls("stream_error", message=message, code=code, after_events=after_events)

    def header(self) -> str:
        """This fault as a `FAULT_HEADER` value."""
        parts: list[str] = [self.kind]
        default = Fault(self.kind)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "kind" and value != getattr(default, f.name):
                parts.append(f"{f.name}={value}")
        return ",".join(parts)

    @classmethod
    def parse(cls, header: str) -> Fault:
        """Read a `FAULT_HEADER` value: `kind,name=value,…` (`status=429` alone: that status)."""
        items = [p.strip() for p in header.split(",") if p.strip()]
        kind = items[0] if items and "=" not in items[0] else "status"
        fault = cls(kind)  # type: ignore[arg-type]
        types = {f.name: f.type for f in fields(cls)}
        for item in items:
            if "=" not in item:
                continue
            name, _, raw = item.partition("=")
            if name not in types or name == "kind":
                raise ValueError(f"unknown fault setting {name!r}")
            kind_of = str(types[name])
            value: object = raw
            if "int" in kind_of:
                value = int(raw)
            elif "float" in kind_of:
                value = float(raw)
            fault = replace(fault, **{name: value})  # type: ignore[arg-type]
        if fault.kind not in Kind.__args__:  # type: ignore[attr-defined]
            raise ValueError(f"unknown fault kind {fault.kind!r}")
        return fault
