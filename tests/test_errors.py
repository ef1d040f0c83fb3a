"""Error mapping, retries and backoff, over real loopback HTTP."""

from __future__ import annotations

import email.utils
import json
import logging
import math
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import mistral_conv as mc
from mistral_conv import AsyncConversationsClient, Backoff
from mistral_conv._errors import status_error

from .conftest import API_KEY, EXAMPLES, REAL, spec_files
from .loopback import Drop, Json, Loopback

OK = Json({"conversation_id": "conv_1", "outputs": [], "usage": {}})
PATH = "/v1/conversations"


class Sleeps:
    """Records the delays the transport asks for, without waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def recording(
    client: AsyncConversationsClient, sleeps: Sleeps, jitter: float = 0.0
) -> AsyncConversationsClient:
    """``client`` with its retry waits recorded instead of slept, and a fixed jitter draw."""
    client._rt.retry.sleep = sleeps
    client._rt.retry.random = lambda: jitter
    return client


@pytest.fixture
async def api(loopback: Loopback, sleeps: Sleeps) -> AsyncIterator[AsyncConversationsClient]:
    c = AsyncConversationsClient(
        API_KEY, base_url=loopback.url, backoff=Backoff(0.5, 8.0, 60.0), max_retries=2
    )
    async with recording(c, sleeps) as c:
        yield c


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, mc.BadRequestError),
        (401, mc.AuthenticationError),
        (403, mc.PermissionDeniedError),
        (404, mc.NotFoundError),
        (409, mc.ConflictError),
        (422, mc.UnprocessableEntityError),
        (429, mc.RateLimitError),
        (500, mc.InternalServerError),
        (502, mc.InternalServerError),
        (503, mc.InternalServerError),
        (418, mc.APIStatusError),
    ],
)
async def test_status_maps_to_class(
    status: int, cls: type[mc.APIStatusError], api: AsyncConversationsClient, loopback: Loopback
) -> None:
    body = {"object": "error", "message": f"boom {status}", "type": "invalid_request_error", "code": None}
    loopback.reply("POST", PATH, Json(body, status=status, headers={"x-request-id": "rid-7"}))
    with pytest.raises(mc.APIError) as info:
        await api.start(inputs="hi", model="m", max_retries=0)
    err = unwrapped(info.value)
    assert type(err) is cls
    assert err.status == status and err.request_id == "rid-7"
    assert f"boom {status}" in str(err) and json.loads(err.body) == body


def unwrapped(error: mc.APIError) -> mc.APIStatusError:
    """The status error itself, also when a turn's 5xx made it an outcome-unknown error."""
    if isinstance(error, mc.RequestOutcomeUnknownError):
        assert isinstance(error.reason, mc.InternalServerError)
        return error.reason
    assert isinstance(error, mc.APIStatusError)
    return error


ERROR_FILES = spec_files(EXAMPLES, "error.*.json")


@pytest.mark.skipif(not ERROR_FILES, reason="../shared/spec is absent")
@pytest.mark.parametrize("path", ERROR_FILES, ids=lambda p: p.name)
async def test_error_body_shapes_give_server_message(
    path, api: AsyncConversationsClient, loopback: Loopback
) -> None:  # type: ignore[no-untyped-def]
    raw = json.loads(path.read_bytes())
    status = {"401": 401, "403": 403, "422": 422, "4xx": 400, "5xx": 500}[path.name.split(".")[1]]
    loopback.reply("POST", PATH, Json(raw, status=status))
    with pytest.raises(mc.APIError) as info:
        await api.start(inputs="hi", model="m", max_retries=0)
    err = unwrapped(info.value)
    if status == 422:
        detail = raw["detail"] if "detail" in raw else raw["message"]["detail"]
        assert [e.msg for e in err.errors] == [d["msg"] for d in detail]
        assert [e.loc for e in err.errors] == [d["loc"] for d in detail]
        assert detail[0]["msg"] in str(err)
    elif isinstance(raw.get("message"), str):
        assert raw["message"] in str(err)
        assert err.code == raw.get("code")
    elif isinstance(raw.get("detail"), str):
        assert raw["detail"] in str(err)
    else:
        assert raw["error"]["message"] in str(err)


async def test_non_json_error_keeps_raw_text(api: AsyncConversationsClient, loopback: Loopback) -> None:
    loopback.reply("POST", PATH, Json(b"<html>Bad gateway</html>", status=400, content_type="text/html"))
    with pytest.raises(mc.BadRequestError) as info:
        await api.start(inputs="hi", model="m")
    assert info.value.parsed is None and "Bad gateway" in str(info.value)


@pytest.mark.parametrize("status", [408, 409, 429, 503])
async def test_refused_status_is_retried_then_succeeds(
    status: int, api: AsyncConversationsClient, loopback: Loopback, sleeps: Sleeps
) -> None:
    """These statuses say the request was not processed: safe to resend even a turn."""
    loopback.reply(
        "POST", PATH, Json({"message": "x"}, status=status), Json({"message": "x"}, status=status), OK
    )
    result = await api.start(inputs="hi", model="m")
    assert result.conversation_id == "conv_1"
    assert loopback.count("POST", PATH) == 3
    assert len(sleeps.delays) == 2


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_unknown_outcome_status_is_retried_for_reads_only(
    status: int, api: AsyncConversationsClient, loopback: Loopback, sleeps: Sleeps
) -> None:
    history = "/v1/conversations/c1/history"
    loopback.reply(
        "GET", history, Json({"message": "x"}, status=status), Json({"conversation_id": "c1", "entries": []})
    )
    assert (await api.history("c1")).conversation_id == "c1"
    assert loopback.count("GET", history) == 2
    loopback.reply("POST", PATH, Json({"message": "x"}, status=status), OK)
    with pytest.raises(mc.RequestOutcomeUnknownError) as info:
        await api.start(inputs="hi", model="m")
    assert loopback.count("POST", PATH) == 1  # never resent
    err = info.value
    assert err.attempts == 1 and err.operation == "start"
    assert isinstance(err.reason, mc.InternalServerError) and err.reason.status == status
    assert err.__cause__ is err.reason


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_are_not_retried(
    status: int, api: AsyncConversationsClient, loopback: Loopback, sleeps: Sleeps
) -> None:
    loopback.reply("POST", PATH, Json({"message": "x"}, status=status), OK)
    with pytest.raises(mc.APIStatusError):
        await api.start(inputs="hi", model="m")
    assert loopback.count("POST", PATH) == 1 and sleeps.delays == []


async def test_retries_exhausted_raise_last_error(
    api: AsyncConversationsClient, loopback: Loopback, sleeps: Sleeps
) -> None:
    loopback.reply("POST", PATH, Json({"message": "down"}, status=503))
    with pytest.raises(mc.InternalServerError) as info:
        await api.start(inputs="hi", model="m", max_retries=4)
    assert loopback.count("POST", PATH) == 5
    assert info.value.attempts == 5 and "attempts" not in str(info.value.__dict__.get("message", ""))


@pytest.mark.parametrize("jitter", [0.0, 0.5, 0.999999])
async def test_backoff_is_exponential_with_full_jitter(
    jitter: float, loopback: Loopback, sleeps: Sleeps
) -> None:
    loopback.reply("POST", PATH, Json({"message": "down"}, status=503))
    c = AsyncConversationsClient(API_KEY, base_url=loopback.url, backoff=Backoff(0.5, 8.0, 60.0))
    async with recording(c, sleeps, jitter) as c:
        with pytest.raises(mc.InternalServerError):
            await c.start(inputs="hi", model="m", max_retries=6)
    caps = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert sleeps.delays == pytest.approx([cap * jitter for cap in caps])


def test_backoff_never_overflows() -> None:
    backoff = Backoff(0.5, 8.0, 60.0)
    for attempt in (1023, 1024, 10**6, 10**18):
        assert backoff.delay(attempt, None, 0.5) == 4.0
    assert backoff.delay(10**6, 2.0, 0.5) == 6.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After": "600"}, 60.0),  # capped
    ],
)
async def test_retry_after_is_honoured(
    headers: dict[str, str],
    expected: float,
    api: AsyncConversationsClient,
    loopback: Loopback,
    sleeps: Sleeps,
) -> None:
    loopback.reply("POST", PATH, Json({"message": "slow down"}, status=429, headers=headers), OK)
    await api.start(inputs="hi", model="m")
    assert sleeps.delays == [expected]  # the floor, with a jitter draw of 0


async def test_retry_after_is_a_floor_with_jitter_above(loopback: Loopback) -> None:
    """200 callers told "Retry-After: 1" at once do not come back in the same millisecond."""
    loopback.reply("POST", PATH, Json({"message": "slow down"}, status=429, headers={"Retry-After": "1"}), OK)
    waits: list[float] = []
    for _ in range(200):
        sleeps = Sleeps()
        c = AsyncConversationsClient(API_KEY, base_url=loopback.url, backoff=Backoff(0.5, 8.0, 60.0))
        c._rt.retry.sleep = sleeps
        waits.append(c._rt.retry._delay(c._call("POST", PATH, {}, operation="start"), _failure_429(), 1))
        await c.aclose()
    assert min(waits) >= 1.0 and max(waits) <= 1.5
    assert len({round(w, 3) for w in waits}) > 150  # spread, not lock-step


def _failure_429() -> object:
    from mistral_conv._retry import Failure, Outcome

    return Failure(status_error(429, b"{}", headers={"retry-after": "1"}), Outcome.REFUSED, 1.0)


async def test_rate_limit_error_says_the_servers_wait(
    api: AsyncConversationsClient, loopback: Loopback
) -> None:
    loopback.reply("POST", PATH, Json({"message": "slow down"}, status=429, headers={"Retry-After": "7"}))
    with pytest.raises(mc.RateLimitError) as info:
        await api.start(inputs="hi", model="m", max_retries=0)
    assert info.value.retry_after == 7.0 and info.value.attempts == 1


async def test_retry_after_http_date(
    api: AsyncConversationsClient, loopback: Loopback, sleeps: Sleeps
) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    loopback.reply("POST", PATH, Json({"message": "later"}, status=503, headers={"Retry-After": when}), OK)
    await api.start(inputs="hi", model="m")
    assert 25 <= sleeps.delays[0] <= 31


async def test_connection_dropped_is_retried_for_reads_not_for_turns(
    api: AsyncConversationsClient, loopback: Loopback
) -> None:
    loopback.reply(
        "GET",
        "/v1/conversations/c1",
        Drop(),
        Json(
            {
                "id": "c1",
                "model": "m",
                "created_at": "2025-01-01T00:00:00Z",
                "updated_at": "2025-01-01T00:00:00Z",
            }
        ),
    )
    assert (await api.get("c1")).id == "c1"
    assert loopback.count("GET", "/v1/conversations/c1") == 2
    loopback.reply("POST", PATH, Drop(), OK)
    with pytest.raises(mc.RequestOutcomeUnknownError):
        await api.start(inputs="hi", model="m")
    assert loopback.count("POST", PATH) == 1
    assert (await api.start(inputs="hi", model="m", retry_unknown_outcome=True)).conversation_id == "conv_1"


@pytest.mark.parametrize("operation", ["get", "start"])
async def test_refused_connection_is_not_sent_so_retried_for_every_method(
    operation: str, sleeps: Sleeps
) -> None:
    c = AsyncConversationsClient(API_KEY, base_url="http://127.0.0.1:9", max_retries=1)
    async with recording(c, sleeps) as c:
        with pytest.raises(mc.APIConnectionError) as info:
            if operation == "get":
                await c.get("conv_1")
            else:
                await c.start(inputs="hi", model="m")
    err = info.value
    assert type(err) is mc.APIConnectionError and len(sleeps.delays) == 1 and err.attempts == 2


async def test_bad_json_body_raises_response_decode_error(
    api: AsyncConversationsClient, loopback: Loopback
) -> None:
    loopback.reply(
        "GET", "/v1/conversations/c1/history", Json(b'{"conversation_id": 5}', headers={"x-request-id": "r9"})
    )
    with pytest.raises(mc.ResponseDecodeError) as info:
        await api.history("c1")
    assert info.value.body == b'{"conversation_id": 5}' and info.value.request_id == "r9"


async def test_api_key_never_leaks(loopback: Loopback, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="mistral_conv")
    loopback.reply(
        "POST", PATH, Json({"message": "no"}, status=500), Json({"detail": "Unauthorized"}, status=401)
    )
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url, backoff=Backoff(0.001, 0.001)) as c:
        texts = [repr(c), repr(c.transport), str(c.__dict__)]
        with pytest.raises(mc.AuthenticationError) as info:
            await c.start(inputs="hi", model="m", retry_unknown_outcome=True)
        texts += [str(info.value), repr(info.value), str(info.value.__dict__)]
    texts += [r.getMessage() for r in caplog.records]
    assert caplog.records  # the attempts were logged
    assert loopback.requests[0].headers["Authorization"] == f"Bearer {API_KEY}"
    for text in texts:
        assert API_KEY not in text


REAL_ERRORS = spec_files(REAL, "issue_*.json") + spec_files(REAL, "docs_error_*.json")


@pytest.mark.skipif(not REAL_ERRORS, reason="../shared/spec is absent")
@pytest.mark.parametrize("path", REAL_ERRORS, ids=lambda p: p.name)
def test_real_error_bodies_give_the_server_message(path: Path) -> None:
    body = path.read_bytes()
    raw = json.loads(body)
    status = int(next((part[4:] for part in path.name.split("_") if part.startswith("http")), "400"))
    err = status_error(status, body, request_id="r1")
    assert err.status == status and err.body == body and err.parsed is not None
    if isinstance(raw.get("detail"), list) or isinstance(raw.get("message"), dict):
        assert err.errors and err.errors[0].msg in str(err)
    elif isinstance(raw.get("message"), str):
        assert raw["message"] in str(err)
    elif isinstance(raw.get("detail"), str):
        assert raw["detail"] in str(err)
    else:
        assert raw["error"]["message"] in str(err)


@pytest.mark.parametrize(
    "value",
    ["Mon, 01 Jan 99999999999999999999 00:00:00 GMT", "Mon, 01 Jan 0 00:00:00 GMT", "nan", "-5", "soon"],
)
async def test_a_retry_after_that_makes_no_sense_is_ignored(
    value: str, api: AsyncConversationsClient, loopback: Loopback, sleeps: Sleeps
) -> None:
    loopback.reply(
        "POST", PATH, Json({"message": "slow down"}, status=429, headers={"Retry-After": value}), OK
    )
    assert (await api.start(inputs="hi", model="m")).conversation_id == "conv_1"
    assert len(sleeps.delays) == 1 and 0 <= sleeps.delays[0] < 60
    loopback.reply("POST", PATH, Json({"message": "slow down"}, status=429, headers={"Retry-After": value}))
    with pytest.raises(mc.RateLimitError) as info:
        await api.start(inputs="hi", model="m", max_retries=0)
    wait = info.value.retry_after
    assert wait is None or 0 <= wait < math.inf  # a date in the past (year 0 reads as 2000) waits 0


def test_the_error_tree() -> None:
    """What the server sent and the SDK could not accept is an APIError; size limits are not
    network blips; the wrong event loop is its own error."""
    assert issubclass(mc.ResponseDecodeError, mc.APIError)
    assert issubclass(mc.ResponseTooLargeError, mc.APIError)
    assert not issubclass(mc.ResponseTooLargeError, mc.APIConnectionError)
    assert issubclass(mc.RequestOutcomeUnknownError, mc.APIConnectionError)
    assert issubclass(mc.EventLoopError, RuntimeError) and not issubclass(
        mc.EventLoopError, mc.ClientClosedError
    )
    assert issubclass(mc.StreamClosedError, mc.ClientClosedError)


def test_the_readme_draws_the_same_tree() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    drawing = mc._errors.__doc__.split("handle:", 1)[1].split("\n\n", 2)[1]  # type: ignore[union-attr]
    assert textwrap.dedent(drawing).strip() in readme


@pytest.mark.aiohttp_only
def test_a_client_used_from_another_running_loop_says_so(loopback: Loopback) -> None:
    import asyncio
    import threading

    loopback.reply("GET", "/v1/conversations/c1", Json({"detail": "nope"}, status=404))
    client = AsyncConversationsClient(API_KEY, base_url=loopback.url, max_retries=0)
    first_loop_running = threading.Event()
    release = threading.Event()

    def other_loop() -> None:
        async def hold() -> None:
            with pytest.raises(mc.NotFoundError):
                await client.get("c1")  # binds the client to this loop
            first_loop_running.set()
            await asyncio.to_thread(release.wait, 10)  # this loop keeps running meanwhile
            await client.aclose()

        asyncio.run(hold())

    thread = threading.Thread(target=other_loop)
    thread.start()
    try:
        assert first_loop_running.wait(10)

        async def elsewhere() -> None:
            with pytest.raises(mc.EventLoopError, match="another running event loop"):
                await client.get("c1")

        asyncio.run(elsewhere())
    finally:
        release.set()
        thread.join(10)
