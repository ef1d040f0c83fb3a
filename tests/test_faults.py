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

KINDS = (
    "start, append, restart",
    "get, list, history, messages, delete",
    "stream, before the first event",
    "stream, after the first event",
)
NA = "n/a (a status comes before any event)"
RETRIED = "retried, succeeded"
UNKNOWN = "RequestOutcomeUnknownError"

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

MATRIX: dict[str, tuple[str, str, str, str]] = {
    "429 with Retry-After": (RETRIED, RETRIED, RETRIED, NA),
    "500": (f"{UNKNOWN}: InternalServerError", RETRIED, f"{UNKNOWN}: InternalServerError", NA),
    "503": (RETRIED, RETRIED, RETRIED, NA),
    "connection dropped before headers": (
        f"{UNKNOWN}: APIConnectionError",
        RETRIED,
        f"{UNKNOWN}: APIConnectionError",
        NA,
    ),
    "disconnect mid-body": (
        f"{UNKNOWN}: APIConnectionError",
        RETRIED,
        f"{UNKNOWN}: APIConnectionError",
        f"{UNKNOWN}: APIConnectionError, partial kept",
    ),
    "stall longer than the time limit": (
        f"{UNKNOWN}: APITimeoutError (read)",
        RETRIED,
        f"{UNKNOWN}: APITimeoutError (read)",
        f"{UNKNOWN}: APITimeoutError (read), partial kept",
    ),
    "slow trickle": ("succeeded", "succeeded", "succeeded", "succeeded"),
    "malformed JSON": (
        "ResponseDecodeError",
        "ResponseDecodeError",
        "ResponseDecodeError",
        "ResponseDecodeError, partial kept",
    ),
    "HTML error page (502)": (
        f"{UNKNOWN}: InternalServerError",
        RETRIED,
        f"{UNKNOWN}: InternalServerError",
        NA,
    ),
    "conversation.response.error": (
        f"{UNKNOWN}: InternalServerError",
        RETRIED,
        "StreamError",
        "StreamError, partial kept",
    ),
}


@pytest.fixture
async def server() -> AsyncIterator[LocalConversationsServer]:
    async with LocalConversationsServer(delta_chars=2) as s:
        yield s


def describe(exc: mc.MistralError) -> str:
    """What the caller saw, in the words of the README's table."""
    name = type(exc).__name__
    reason = exc.reason if isinstance(exc, mc.RequestOutcomeUnknownError) else exc
    if reason is not exc:
        name += f": {type(reason).__name__}"
    if isinstance(reason, mc.APITimeoutError):
        name += f" ({reason.limit})"
    partial = getattr(exc, "partial", None)
    return f"{name}, partial kept" if partial is not None and partial.output_text else name


async def observe(
    server: LocalConversationsServer, fault: Fault, kind: str, *, retry_unknown: bool = False
) -> str:
    """Run one cell and describe what the caller saw."""
    after = 2 if kind == KINDS[3] else 0
    if fault.kind in ("disconnect", "stall", "malformed", "stream_error"):
        fault = Fault(**{**fault.__dict__, "after_events": after})
    timeout = Timeout(connect=5, read=0.2, total=5, first_event=0.5)
    async with AsyncConversationsClient(
        "k", base_url=server.url, backoff=FAST_BACKOFF, timeout=timeout, retry_unknown_outcome=retry_unknown
    ) as client:
        method = "GET" if kind == KINDS[1] else "POST"
        if kind == KINDS[1]:
            cid = (await client.start(inputs="hello there", model="m")).conversation_id
        server.inject(fault, times=1, method=method)
        before = sum(1 for m, _ in server.requests if m == method)
        try:
            if kind == KINDS[0]:
                text = (await client.start(inputs="hello there", model="m")).output_text
                unknown = False
            elif kind == KINDS[1]:
                history = await client.history(cid)
                text = " ".join(getattr(e, "content", "") for e in history.entries)
                unknown = False
            else:
                stream = client.start_stream(inputs="hello there", model="m")
                events = [e async for e in stream]
                text = stream.current_response().output_text
                unknown = any(isinstance(e, UnknownEvent) for e in events)
        except mc.MistralError as exc:
            return describe(exc)
        assert "hello there" in text
        attempts = sum(1 for m, _ in server.requests if m == method) - before
        if attempts > 1:
            return RETRIED
        return "succeeded, UnknownEvent kept" if unknown else "succeeded"


CELLS = [(name, i) for name in MATRIX for i in range(4) if MATRIX[name][i] != NA]


@pytest.mark.parametrize(("name", "kind"), CELLS, ids=[f"{n} | {KINDS[k]}" for n, k in CELLS])
async def test_fault_cell(name: str, kind: int, server: LocalConversationsServer) -> None:
    assert await observe(server, FAULTS[name], KINDS[kind]) == MATRIX[name][kind]


OPTED_IN = [(name, i) for name, i in CELLS if i in (0, 2) and MATRIX[name][i].startswith(UNKNOWN)]


@pytest.mark.parametrize(("name", "kind"), OPTED_IN, ids=[f"{n} | {KINDS[k]}" for n, k in OPTED_IN])
async def test_retry_unknown_outcome_resends(name: str, kind: int, server: LocalConversationsServer) -> None:
    """With ``retry_unknown_outcome=True`` a turn whose outcome is unknown is sent again (and may be
    stored twice): the caller's explicit choice."""
    assert await observe(server, FAULTS[name], KINDS[kind], retry_unknown=True) == RETRIED


def test_readme_table_matches() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Fault matrix", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| fault")]
    table = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        table[cells[0]] = tuple(cells[1:])
    assert table == MATRIX
    assert "| fault | " + " | ".join(KINDS) + " |" in section


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
