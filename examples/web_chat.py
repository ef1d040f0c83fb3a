"""A chat page served by aiohttp.web: the browser's EventSource shows the tokens as they arrive.

Offline by default (a local server plays the model); set MISTRAL_API_KEY to use the real API.
    python examples/web_chat.py            # then open http://127.0.0.1:8080
    python examples/web_chat.py --smoke    # start, ask once over HTTP, print the answer, stop
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
from aiohttp import web

from mistral_conv import AsyncConversationsClient
from mistral_conv.sse import SSEDecoder
from mistral_conv.testing import LocalConversationsServer
from mistral_conv.web import relay

PAGE = (Path(__file__).parent / "chat.html").read_text(encoding="utf-8")
MODEL = "mistral-medium-latest"


def make_app(client: AsyncConversationsClient) -> web.Application:
    """The page, and ``/chat?q=...&conversation=...`` relaying one turn as text."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def chat(request: web.Request) -> web.StreamResponse:
        question = request.query.get("q", "")
        conversation = request.query.get("conversation")
        if conversation:
            stream = client.append_stream(conversation, inputs=question)
        else:
            stream = client.start_stream(model=MODEL, inputs=question)
        return await relay(request, stream, mode="text")

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/chat", chat)
    return app


async def ask(url: str, question: str) -> str:
    """What a browser's EventSource would show for one question."""
    decoder, text = SSEDecoder(), []
    async with (
        aiohttp.ClientSession() as browser,
        browser.get(f"{url}/chat", params={"q": question}) as reply,
    ):
        async for chunk in reply.content.iter_any():
            text += [f.data.decode() for f in decoder.feed(chunk) if f.event == "message"]
    return "".join(text)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--smoke", action="store_true", help="ask once, print the answer and stop")
    args = parser.parse_args()
    async with AsyncExitStack() as stack:
        if os.environ.get("MISTRAL_API_KEY"):
            client = await stack.enter_async_context(AsyncConversationsClient())
        else:
            server = await stack.enter_async_context(LocalConversationsServer())
            client = await stack.enter_async_context(AsyncConversationsClient("local", base_url=server.url))
        runner = web.AppRunner(make_app(client))
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, "127.0.0.1", 0 if args.smoke else args.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        url = f"http://{host}:{port}"
        if args.smoke:
            print("assistant:", await ask(url, "Hello from the smoke test"))
            return
        print(f"chat page on {url} (Ctrl+C to stop)")
        await asyncio.Event().wait()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
