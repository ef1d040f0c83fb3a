"""Error mapping, retries and backoff, over real loopback HTTP."""

from __future__ import annotations

import email.utils
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import mistral_conv as mc
from mistral_conv import AsyncConversationsClient, Backoff, Transport
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


@pytest.fixture
async def api(loopback: Loopback, sleeps: Sleeps) -> AsyncIterator[AsyncConversationsClient]:
    transport = Transport(
        base_url=loopback.url, api_key=API_KEY, backoff=Backoff(0.5, 8.0, 60.0), sleep=sleeps
    )
    async with AsyncConversationsClient(transport=transport, max_retries=2) as c:
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
    with pytest.raises(cls) as info:
        await api.start(inputs="hi", model="m", max_retries=0)
    err = info.value
    assert type(err) is cls
    assert err.status == status and err.request_id == "rid-7"
    assert f"boom {status}" in str(err) and json.loads(err.body) == body


ERROR_FILES = spec_files(EXAMPLES, "error.*.json")


@pytest.mark.skipif(not ERROR_FILES, reason="../shared/spec is absent")
@pytest.mark.parametrize("path", ERROR_FILES, ids=lambda p: p.name)
async def test_error_body_shapes_give_server_message(
    path, api: AsyncConversationsClient, loopback: Loopback
) -> None:  # type: ignore[no-untyped-def]
    raw = json.loads(path.read_bytes())
    status = {"401": 401, "403": 403, "422": 422, "4xx": 400, "5xx": 500}[path.name.split(".")[1]]
    loopback.reply("POST", PATH, Json(raw, status=status))
    with pytest.raises(mc.APIStatusError) as info:
        await api.start(inputs="hi", model="m", max_retries=0)
    err = info.value
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


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
async def test_retryable_status_is_retried_then_succeeds(
    status: int, api: AsyncConversationsClient, loopback: Loopback, sleeps: Sleeps
) -> None:
    loopback.reply(
        "POST", PATH, Json({"message": "x"}, status=status), Json({"message": "x"}, status=status), OK
    )
    result = await api.start(inputs="hi", model="m")
    assert result.conversation_id == "conv_1"
    assert loopback.count("POST", PATH) == 3
    assert len(sleeps.delays) == 2


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
    with pytest.raises(mc.InternalServerError):
        await api.start(inputs="hi", model="m", max_retries=4)
    assert loopback.count("POST", PATH) == 5


async def test_backoff_grows_exponentially_with_jitter(
    api: AsyncConversationsClient, loopback: Loopback, sleeps: Sleeps
) -> None:
    loopback.reply("POST", PATH, Json({"message": "down"}, status=500))
    with pytest.raises(mc.InternalServerError):
        await api.start(inputs="hi", model="m", max_retries=6)
    caps = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert len(sleeps.delays) == 6
    for delay, cap in zip(sleeps.delays, caps, strict=True):
        assert 0.75 * cap <= delay <= cap


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
    assert sleeps.delays == [expected]


async def test_retry_after_http_date(
    api: AsyncConversationsClient, loopback: Loopback, sleeps: Sleeps
) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    loopback.reply("POST", PATH, Json({"message": "later"}, status=503, headers={"Retry-After": when}), OK)
    await api.start(inputs="hi", model="m")
    assert 25 <= sleeps.delays[0] <= 31


async def test_connection_dropped_is_retried(api: AsyncConversationsClient, loopback: Loopback) -> None:
    loopback.reply("POST", PATH, Drop(), OK)
    assert (await api.start(inputs="hi", model="m")).conversation_id == "conv_1"
    assert loopback.count("POST", PATH) == 2


async def test_connection_error_is_typed(sleeps: Sleeps) -> None:
    transport = Transport(base_url="http://127.0.0.1:9", api_key=API_KEY, sleep=sleeps)
    async with AsyncConversationsClient(transport=transport, max_retries=1) as c:
        with pytest.raises(mc.APIConnectionError) as info:
            await c.get("conv_1")
    assert not isinstance(info.value, mc.APIStatusError) and len(sleeps.delays) == 1


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
            await c.start(inputs="hi", model="m")
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
