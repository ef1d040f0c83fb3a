"""The chat examples in a real browser: headless Chromium, driven over WebDriver by chromedriver.

The page's EventSource must show the answer as it arrives (several messages), then "done", and a
second question must continue the same conversation. Skipped when chromium or chromedriver is
missing, unless MISTRAL_CONV_REQUIRE_BROWSER is set (CI sets it, after installing both).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mistral_conv import AsyncConversationsClient
from mistral_conv.testing import LocalConversationsServer

from .servers import serve_aiohttp, serve_asgi

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")

if not (CHROMIUM and DRIVER):
    if os.environ.get("MISTRAL_CONV_REQUIRE_BROWSER"):
        raise RuntimeError(
            "the browser tests need chromium and chromedriver (apt-get install chromium chromium-driver)"
        )
    pytest.skip("chromium and chromedriver are not installed", allow_module_level=True)


def _example(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Browser:
    """A minimal W3C WebDriver client over aiohttp (chromedriver speaks it)."""

    def __init__(self, session: aiohttp.ClientSession, base: str, session_id: str) -> None:
        self.http, self.base, self.id = session, base, session_id

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        async with self.http.request(method, f"{self.base}/session/{self.id}{path}", json=body) as r:
            answer = await r.json()
            assert r.status == 200, answer
            return answer["value"]

    async def script(self, source: str) -> Any:
        return await self.call("POST", "/execute/sync", {"script": source, "args": []})

    async def click(self, css: str) -> None:
        element = await self.call("POST", "/element", {"using": "css selector", "value": css})
        await self.call("POST", f"/element/{next(iter(element.values()))}/click", {})


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    port = _free_port()
    quiet = subprocess.DEVNULL
    driver = subprocess.Popen([str(DRIVER), f"--port={port}"], stdout=quiet, stderr=quiet)  # noqa: ASYNC220
    base = f"http://127.0.0.1:{port}"
    options = ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
    capabilities = {"browserName": "chrome", "goog:chromeOptions": {"binary": CHROMIUM, "args": options}}
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):  # chromedriver needs a moment to listen
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with http.get(f"{base}/status") as r:
                        if (await r.json())["value"]["ready"]:
                            break
                await asyncio.sleep(0.05)
            async with http.post(
                f"{base}/session", json={"capabilities": {"alwaysMatch": capabilities}}
            ) as r:
                created = await r.json()
                assert r.status == 200, created
            session = Browser(http, base, created["value"]["sessionId"])
            try:
                yield session
            finally:
                async with http.delete(f"{base}/session/{session.id}"):
                    pass
    finally:
        driver.terminate()
        driver.wait(10)


async def _serve_aiohttp(client: AsyncConversationsClient) -> AsyncIterator[str]:
    async with serve_aiohttp(_example("web_chat").make_app(client)) as url:
        yield url


async def _serve_fastapi(client: AsyncConversationsClient) -> AsyncIterator[str]:
    async with serve_asgi(_example("web_chat_fastapi").make_app(client)) as url:
        yield url


READ_PAGE = (
    "const a = document.getElementById('answer');"
    "return [document.getElementById('status').textContent, a.textContent, a.dataset.events]"
)


@pytest.mark.parametrize("serve", [_serve_aiohttp, _serve_fastapi], ids=["aiohttp", "fastapi"])
async def test_the_chat_page_shows_tokens_as_they_arrive(browser: Browser, serve: Any) -> None:
    async with (
        LocalConversationsServer(delta_chars=3) as upstream,
        AsyncConversationsClient("local", base_url=upstream.url) as client,
    ):
        async for url in serve(client):
            await browser.call("POST", "/url", {"url": url})
            answers = []
            for question in ("First question", "Second question"):
                await browser.script(f"document.getElementById('question').value = {question!r}")
                await browser.click("#send")
                state: list[str] = ["", "", "0"]
                for _ in range(400):
                    state = await browser.script(READ_PAGE)
                    if state[0] != "streaming" and state[0]:
                        break
                    await asyncio.sleep(0.025)
                status, text, events = state
                assert status == "done", state
                assert question in text and int(events) > 5  # many messages, shown as they came
                answers.append(text)
            assert len(upstream.store.conversations) == 1  # the second question continued the first
            assert upstream.requests_per_route["POST /v1/conversations/{id}"] == 1
