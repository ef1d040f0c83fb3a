"""The fault matrix: every fault the local server injects, against every kind of call.

``MATRIX`` is the expected outcome of each cell; the README's "Fault matrix" table
must say the same (``test_readme_table_matches``), and each cell is run for real.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import mistral_conv as mc
from mistral_conv import AsyncConversationsClient, Timeout
from mistral_conv.models import UnknownEvent
from mistral_conv.testing import Fault, LocalConversationsServer

from .conftest import FAST_BACKOFF

KINDS = ("plain", "stream, before the first event", "stream, after the first event")
NA = "n/a (a status comes before any event)"
RETRIED = "retried, succeeded"

FAULTS: dict[str, Fault] = {
    "429 with Retry-After": Fault.error_status(429, retry_after=0.01),
    "500": Fault.error_status(500),
    "503": Fault.error_status(503),
    "connection dropped before headers": Fault.drop(),
    "disconnect mid-body": Fault.disconnect(),
    "stall longer than the time limit": Fault.stall(1.0),
    "slow trickle": Fault.trickle(0.002),
    "malformed JSON": Fault.malformed(),
    "HTML error page (502)": Fault.html(502),
    "conversation.response.error": Fault.stream_error(),
}

MATRIX: dict[str, tuple[str, str, str]] = {
    "429 with Retry-After": (RETRIED, RETRIED, NA),
    "500": (RETRIED, RETRIED, NA),
    "503": (RETRIED, RETRIED, NA),
    "connection dropped before headers": (RETRIED, RETRIED, NA),
    "disconnect mid-body": (RETRIED, RETRIED, "StreamInterruptedError, partial kept"),
    "stall longer than the time limit": (RETRIED, RETRIED, "APITimeoutError (read), partial kept"),
    "slow trickle": ("succeeded", "succeeded", "succeeded"),
    "malformed JSON": ("ResponseDecodeError", "succeeded, UnknownEvent kept", "succeeded, UnknownEvent kept"),
    "HTML error page (502)": (RETRIED, RETRIED, NA),
    "conversation.response.error": (RETRIED, "StreamError", "StreamError, partial kept"),
}


@pytest.fixture
async def server() -> AsyncIterator[LocalConversationsServer]:
    async with LocalConversationsServer(delta_chars=2) as s:
        yield s


async def observe(server: LocalConversationsServer, fault: Fault, kind: str) -> str:
    """Run one cell and describe what the caller saw."""
    after = 2 if kind == KINDS[2] else 0
    if fault.kind in ("disconnect", "stall", "malformed", "stream_error"):
        fault = Fault(**{**fault.__dict__, "after_events": after})
    server.inject(fault, times=1)
    timeout = Timeout(connect=5, read=0.2, total=5, first_event=0.2)
    async with AsyncConversationsClient(
        "k", base_url=server.url, backoff=FAST_BACKOFF, timeout=timeout
    ) as client:
        before = len(server.requests)
        try:
            if kind == "plain":
                result = await client.start(inputs="hello there", model="m")
                text = result.output_text
                unknown = False
            else:
                stream = client.start_stream(inputs="hello there", model="m")
                events = [e async for e in stream]
                text = stream.current_response().output_text
                unknown = any(isinstance(e, UnknownEvent) for e in events)
        except mc.MistralError as exc:
            name = type(exc).__name__
            if isinstance(exc, mc.APITimeoutError):
                name += f" ({exc.limit})"
            partial = getattr(exc, "partial", None)
            return f"{name}, partial kept" if partial is not None and partial.output_text else name
        assert "hello there" in text
        attempts = len(server.requests) - before
        if attempts > 1:
            return RETRIED
        return "succeeded, UnknownEvent kept" if unknown else "succeeded"


CELLS = [(name, i) for name in MATRIX for i in range(3) if MATRIX[name][i] != NA]


@pytest.mark.parametrize(("name", "kind"), CELLS, ids=[f"{n} | {KINDS[k]}" for n, k in CELLS])
async def test_fault_cell(name: str, kind: int, server: LocalConversationsServer) -> None:
    assert await observe(server, FAULTS[name], KINDS[kind]) == MATRIX[name][kind]


def test_readme_table_matches() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Fault matrix", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| fault")]
    table = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        table[cells[0]] = tuple(cells[1:])
    assert table == MATRIX


def test_fault_header_round_trip() -> None:
    for fault in FAULTS.values():
        assert Fault.parse(fault.header()) == fault
    assert Fault.parse("status=429,retry_after=2") == Fault.error_status(429, 2.0)
    with pytest.raises(ValueError):
        Fault.parse("stall,nonsense=1")


async def test_fault_by_request_header(server: LocalConversationsServer) -> None:
    async with AsyncConversationsClient("k", base_url=server.url, backoff=FAST_BACKOFF) as client:
        with pytest.raises(mc.RateLimitError):
            await client.start(
                inputs="x",
                model="m",
                max_retries=0,
                extra_headers={"X-Local-Fault": Fault.error_status(429).header()},
            )
        assert re.match(r"^conv_", (await client.start(inputs="x", model="m")).conversation_id)
