"""How the local server delivers an answer when a fault is injected: before, during or instead of the body."""

from __future__ import annotations

import asyncio

import msgspec
from aiohttp import web

from ._faults import Fault
from ._http import api_error

__all__ = ["early_fault", "write_faulty_body", "write_stream"]

_encoder = msgspec.json.Encoder()


async def early_fault(request: web.Request, fault: Fault) -> web.StreamResponse | None:
    """The answer for a fault that strikes before any body (a status, an HTML page, a drop), if any."""
    if fault.kind == "status":
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        response = api_error(fault.status, f"Injected error {fault.status}")
        response.headers.update(headers)
        return response
    if fault.kind == "html":
        page = f"<html><body><h1>{fault.status} Bad Gateway</h1></body></html>"
        return web.Response(text=page, status=fault.status, content_type="text/html")
    if fault.kind == "drop":
        assert request.transport is not None
        request.transport.close()
        return web.Response()
    return None


async def write_stream(request: web.Request, frames: list[bytes], fault: Fault | None) -> web.StreamResponse:
    """Send SSE frames, applying a stream fault at its place."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    if fault is None or fault.kind in ("status", "html", "drop"):
        await response.write(b"".join(frames))
        await response.write_eof()
        return response
    for i, data in enumerate(frames):
        if i == fault.after_events:
            if fault.kind == "disconnect":
                assert request.transport is not None
                request.transport.close()
                return response
            if fault.kind == "stall":
                await asyncio.sleep(fault.seconds)
            elif fault.kind == "malformed":
                await response.write(
                    b'event: message.output.delta\ndata: {"type": "message.output.delta", "id": \n\n'
                )
            elif fault.kind == "stream_error":
                error = {"type": "conversation.response.error", "message": fault.message, "code": fault.code}
                await response.write(
                    b"event: conversation.response.error\ndata: " + _encoder.encode(error) + b"\n\n"
                )
                await response.write_eof()
                return response
        if fault.kind == "trickle" and i:
            await asyncio.sleep(fault.seconds)
        await response.write(data)
    await response.write_eof()
    return response


async def write_faulty_body(request: web.Request, body: bytes, fault: Fault) -> web.StreamResponse:
    """Send a plain JSON body with a fault applied to it."""
    if fault.kind == "stream_error":
        return api_error(500, fault.message, code=fault.code, capital=True)
    if fault.kind == "stall":
        await asyncio.sleep(fault.seconds)
        return web.Response(body=body, content_type="application/json")
    if fault.kind == "malformed":
        return web.Response(body=body[: len(body) // 2], content_type="application/json")
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = len(body)
    await response.prepare(request)
    if fault.kind == "disconnect":
        await response.write(body[: len(body) // 2])
        assert request.transport is not None
        request.transport.close()
        return response
    for i in range(0, len(body), 16):  # trickle
        if i:
            await asyncio.sleep(fault.seconds)
        await response.write(body[i : i + 16])
    await response.write_eof()
    return response
