"""The benchmark server: pre-rendered bytes only, in a process of its own.

``POST /v1/conversations``: a stream when the body asks for one (its ``inputs``
text is ``deltas:N``), else a fixed response. ``GET …/history?n=`` or the id
``hist_N``: a history of N entries. Prints ``PORT <n>`` when ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys

from aiohttp import web

from . import payloads


async def conversations(request: web.Request) -> web.StreamResponse:
    body = json.loads(await request.read())
    if body.get("stream"):
        inputs = body.get("inputs")
        n = int(inputs.split(":", 1)[1]) if isinstance(inputs, str) and inputs.startswith("deltas:") else 10
        return web.Response(body=payloads.stream_body(n), content_type="text/event-stream")
    return web.Response(body=payloads.start_body(), content_type="application/json")


async def history(request: web.Request) -> web.StreamResponse:
    n = int(request.match_info["id"].removeprefix("hist_"))
    return web.Response(body=payloads.history_body(n), content_type="application/json")


async def main(port: int, sizes: dict[str, int]) -> None:
    # Render every body before serving, so that no client pays for it.
    for n in {sizes.get("stream_deltas", 10), sizes.get("stream_len", 10), 10}:
        payloads.stream_body(n)
    payloads.start_body()
    payloads.history_body(sizes.get("history", 10))
    app = web.Application()
    app.router.add_post("/v1/conversations", conversations)
    app.router.add_get("/v1/conversations/{id}/history", history)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            main(
                int(sys.argv[1]) if len(sys.argv) > 1 else 0,
                json.loads(sys.argv[2]) if len(sys.argv) > 2 else {},
            )
        )
