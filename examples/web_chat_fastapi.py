"""The same chat page served by FastAPI (uvicorn), relaying with mistral_conv.asgi.

Needs FastAPI and uvicorn (pip install fastapi uvicorn "mistral-conv[asgi]").
Offline by default (a local server plays the model); set MISTRAL_API_KEY to use the real API.
    python examples/web_chat_fastapi.py            # then open http://127.0.0.1:8000
    python examples/web_chat_fastapi.py --smoke    # start, ask once over HTTP, print the answer, stop
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from mistral_conv import AsyncConversationsClient
from mistral_conv.asgi import EventStreamResponse
from mistral_conv.sse import SSEDecoder
from mistral_conv.testing import LocalConversationsServer

PAGE = (Path(__file__).parent / "chat.html").read_text(encoding="utf-8")
MODEL = "mistral-medium-latest"


def make_app(client: AsyncConversationsClient) -> FastAPI:
    """The page, and ``/chat?q=...&conversation=...`` relaying one turn as text."""
    app = FastAPI()

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return PAGE

    @app.get("/chat")
    async def chat(q: str = "", conversation: str | None = None) -> EventStreamResponse:
        if conversation:
            stream = client.append_stream(conversation, inputs=q)
        else:
            stream = client.start_stream(model=MODEL, inputs=q)
        return EventStreamResponse(stream, mode="text")

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
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--smoke", action="store_true", help="ask once, print the answer and stop")
    args = parser.parse_args()
    async with AsyncExitStack() as stack:
        if os.environ.get("MISTRAL_API_KEY"):
            client = await stack.enter_async_context(AsyncConversationsClient())
        else:
            server = await stack.enter_async_context(LocalConversationsServer())
            client = await stack.enter_async_context(AsyncConversationsClient("local", base_url=server.url))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0 if args.smoke else args.port))
        stack.callback(sock.close)
        web = uvicorn.Server(uvicorn.Config(make_app(client), log_level="warning", lifespan="off"))
        serving = asyncio.create_task(web.serve(sockets=[sock]))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        if not args.smoke:
            print(f"chat page on {url} (Ctrl+C to stop)")
            await serving
            return
        while not web.started:  # noqa: ASYNC110  (uvicorn has no startup event to wait on)
            await asyncio.sleep(0.01)
        print("assistant:", await ask(url, "Hello from the smoke test"))
        web.should_exit = True
        await serving


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
