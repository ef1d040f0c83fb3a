"""Security defaults and logging: one test per promise."""

from __future__ import annotations

import logging
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web

import mistral_conv as mc
from mistral_conv import AsyncConversationsClient

from .conftest import API_KEY, FAST_BACKOFF
from .loopback import Json, Loopback, Sse, sse_body

CONV = {"id": "c1", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "model": "m"}


@pytest.fixture
def certificate(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    yield cert, key


@pytest.fixture
async def tls_server(certificate: tuple[Path, Path]) -> AsyncIterator[str]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)

    async def get(_: web.Request) -> web.Response:
        return web.json_response(CONV)

    app = web.Application()
    app.router.add_get("/v1/conversations/c1", get)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    yield f"https://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.mark.aiohttp_only
async def test_tls_is_verified_by_default_and_only_off_on_request(tls_server: str) -> None:
    async with AsyncConversationsClient(API_KEY, base_url=tls_server, max_retries=0) as client:
        with pytest.raises(mc.APIConnectionError, match=r"(?i)certificate"):
            await client.get("c1")
    async with AsyncConversationsClient(API_KEY, base_url=tls_server, verify_ssl=False) as client:
        assert (await client.get("c1")).id == "c1"


def test_key_is_refused_over_plain_http_except_loopback_or_opt_in() -> None:
    with pytest.raises(mc.InvalidRequestError, match="plain http"):
        AsyncConversationsClient(API_KEY, base_url="http://10.1.2.3:8080")
    AsyncConversationsClient(API_KEY, base_url="http://[::1]:8080")
    AsyncConversationsClient(API_KEY, base_url="http://127.0.0.5")
    AsyncConversationsClient(API_KEY, base_url="http://10.1.2.3:8080", allow_insecure_http=True)
    AsyncConversationsClient(None, base_url="http://10.1.2.3:8080")  # no key, nothing to leak


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\r\nX-Evil: 1", "a\x00b"])
def test_cr_lf_nul_in_key_and_headers_are_refused(value: str) -> None:
    with pytest.raises(mc.InvalidRequestError) as info:
        AsyncConversationsClient(value, base_url="https://api.test")
    assert info.value.field == "api_key"
    with pytest.raises(mc.InvalidRequestError):
        AsyncConversationsClient(API_KEY, base_url="https://api.test", default_headers={"X-App": value})


async def test_cr_lf_in_per_call_headers_are_refused(
    client: AsyncConversationsClient, loopback: Loopback
) -> None:
    with pytest.raises(mc.InvalidRequestError):
        await client.get("c1", extra_headers={"X-Trace": "1\r\nX-Evil: 1"})
    with pytest.raises(mc.InvalidRequestError):
        await client.get("c1", extra_headers={"X-Trace\r\nX-Evil": "1"})
    assert loopback.requests == []


async def test_conversation_ids_stay_in_their_route(
    client: AsyncConversationsClient, loopback: Loopback
) -> None:
    loopback.reply("DELETE", "/v1/conversations/x", Json(b"", status=204))
    with pytest.raises(mc.APIStatusError):
        await client.delete("../../v1/agents/ag_1")
    assert loopback.requests[0].raw_path == "/v1/conversations/%2E%2E%2F%2E%2E%2Fv1%2Fagents%2Fag_1"


@pytest.mark.parametrize("chunked", [False, True])
async def test_response_body_size_limit(chunked: bool, loopback: Loopback) -> None:
    big = (
        b'{"conversation_id":"c","entries":['
        + b'{"type":"message.input","role":"user","content":"x"},' * 5000
        + b"]}"
    )

    async def send(request: web.Request) -> web.StreamResponse:
        if not chunked:
            return web.Response(body=big, content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        for i in range(0, len(big), 4096):
            await resp.write(big[i : i + 4096])
        await resp.write_eof()
        return resp

    loopback.reply("GET", "/v1/conversations/c/history", send)
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url, max_response_size=10_000) as c:
        with pytest.raises(mc.ResponseTooLargeError, match="limit"):
            await c.history("c")
    assert loopback.count("GET", "/v1/conversations/c/history") == 1  # never retried


async def test_stream_event_size_limit_keeps_partial(loopback: Loopback) -> None:
    start = {"type": "conversation.response.started", "conversation_id": "c"}
    small = {"type": "message.output.delta", "id": "m", "content": "ok"}
    huge = {"type": "message.output.delta", "id": "m", "content": "x" * 50_000}
    loopback.reply("POST", "/v1/conversations", Sse([sse_body(start, small), sse_body(huge)]))
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url, max_event_size=10_000) as c:
        with pytest.raises(mc.ResponseTooLargeError, match="maximum size") as info:
            await c.start_stream(inputs="x", model="m").final_response()
    assert info.value.partial is not None and info.value.partial.output_text == "ok"


async def test_one_log_line_per_attempt(loopback: Loopback, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mistral_conv")
    loopback.reply(
        "GET",
        "/v1/conversations/c1",
        Json({"message": "busy"}, status=503, headers={"x-request-id": "r-1"}),
        Json(CONV, headers={"x-request-id": "r-2"}),
    )
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url, backoff=FAST_BACKOFF) as c:
        await c.get("c1")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("GET ")]
    assert len(lines) == 2
    assert (
        lines[0].startswith("GET /v1/conversations/c1 -> 503 in ") and "request id r-1, attempt 1" in lines[0]
    )
    assert (
        lines[1].startswith("GET /v1/conversations/c1 -> 200 in ") and "request id r-2, attempt 2" in lines[1]
    )
    assert " ms " in lines[0]


async def test_connection_failures_are_logged_too(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mistral_conv")
    async with AsyncConversationsClient(API_KEY, base_url="http://127.0.0.1:9", max_retries=0) as c:
        with pytest.raises(mc.APIConnectionError):
            await c.get("c1")
    assert any(
        "GET /v1/conversations/c1 -> failed (" in r.getMessage() and "attempt 1" in r.getMessage()
        for r in caplog.records
    )


@pytest.mark.parametrize("opt_in", [False, True])
async def test_bodies_are_logged_only_on_request(
    opt_in: bool, loopback: Loopback, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mistral_conv")
    loopback.reply("POST", "/v1/conversations", Json({"conversation_id": "c", "outputs": [], "usage": {}}))
    async with AsyncConversationsClient(API_KEY, base_url=loopback.url, log_bodies=opt_in) as c:
        await c.start(inputs="secret question", model="m")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert ("secret question" in text) is opt_in
    assert ('response body: {"conversation_id"' in text) is opt_in
    assert API_KEY not in text
