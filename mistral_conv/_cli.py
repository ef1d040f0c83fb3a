"""The command line: `mistral-conv` / `python -m mistral_conv`.

`demo` and `chat` run against an in-process local server when there is
no `MISTRAL_API_KEY` and no `--base-url`, and say so on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec

from ._api import AsyncConversationsClient
from ._errors import InvalidRequestError, MistralError
from ._streaming import ConversationStream
from .models import (
    AgentConversation,
    Conversation,
    ConversationResponse,
    FunctionCallEntry,
    FunctionResultEntry,
    MessageInputEntry,
    MessageOutputEntry,
    ToolExecutionEntry,
    content_text,
)

DEFAULT_MODEL = "mistral-medium-latest"
DEMO_PROMPT = "In two sentences: what is the Mistral Conversations API good for?"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mistral-conv", description="Mistral Conversations API from the command line."
    )
    p.add_argument("--api-key", help="API key (default: $MISTRAL_API_KEY)")
    p.add_argument("--base-url", help="API base URL (default: $MISTRAL_BASE_URL or https://api.mistral.ai)")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.add_argument("--timeout", type=float, help="time limit in seconds")
    sub = p.add_subparsers(dest="command", required=True)

    def with_stream(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--stream", action="store_true", help="stream the answer as it arrives")

    sp = sub.add_parser("demo", help="start a conversation and stream the answer (works offline)")
    sp.add_argument("--model", default=DEFAULT_MODEL)
    sp.add_argument("prompt", nargs="?", default=DEMO_PROMPT)
    sp = sub.add_parser("chat", help="an interactive chat; tokens print as they arrive (works offline)")
    sp.add_argument("--model", default=DEFAULT_MODEL)
    sp.add_argument("--agent-id")
    sp.add_argument("--instructions")
    sp = sub.add_parser("start", help="start a conversation")
    group = sp.add_mutually_exclusive_group()
    group.add_argument("--model")
    group.add_argument("--agent-id")
    sp.add_argument("--instructions")
    sp.add_argument("--no-store", action="store_true", help="do not store the conversation")
    sp.add_argument("inputs")
    with_stream(sp)
    sp = sub.add_parser("append", help="append to a conversation")
    sp.add_argument("conversation_id")
    sp.add_argument("inputs")
    with_stream(sp)
    sp = sub.add_parser("restart", help="branch a new conversation from an entry")
    sp.add_argument("conversation_id")
    sp.add_argument("--from-entry-id", required=True)
    sp.add_argument("inputs")
    with_stream(sp)
    for name in ("get", "history", "messages", "delete"):
        sub.add_parser(name, help=f"{name} a conversation").add_argument("conversation_id")
    sp = sub.add_parser("list", help="list conversations, newest first")
    sp.add_argument("--page", type=int, default=0)
    sp.add_argument("--page-size", type=int, default=20)
    sp.add_argument("--metadata", help="a JSON object to filter on")
    sp = sub.add_parser("batch", help="one conversation per input line, at the rate limit (works offline)")
    sp.add_argument("input", help="JSONL: a prompt string or a start body (with an optional id) per line")
    sp.add_argument("-o", "--output", required=True, help="JSONL results, one line per item, in input order")
    sp.add_argument("--model", default=DEFAULT_MODEL, help="the model of items that name none")
    sp.add_argument("--concurrency", type=int, default=32, help="conversations in flight at most")
    sp.add_argument("--resume", action="store_true", help="go on from the checkpoint of an interrupted run")
    sp.add_argument("--shard", help="k/n: run only shard k of n (a stable split by item id)")
    sp.add_argument("--checkpoint", help="default: OUTPUT.checkpoint (OUTPUT.k-of-n.checkpoint for a shard)")
    sp.add_argument("--requests-per-second", type=float, help="a client-side budget")
    sp.add_argument(
        "--progress",
        choices=("auto", "bar", "lines", "none"),
        default="auto",
        help="a live bar on a terminal (needs the cli extra), else a line every few seconds",
    )
    sp = sub.add_parser("serve", help="run the local Conversations API server")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=8080)
    sp.add_argument("--server-api-key", help="accept only this key (default: any)")
    return p


def _print_json(value: Any) -> None:
    print(msgspec.json.format(msgspec.json.encode(value)).decode())


def _show_entry(entry: Any) -> str:
    if isinstance(entry, MessageInputEntry | MessageOutputEntry):
        who = entry.role if isinstance(entry, MessageInputEntry) else "assistant"
        return f"[{entry.type}] {who}: {content_text(entry.content)}"
    if isinstance(entry, FunctionCallEntry):
        return f"[function.call] {entry.name}({entry.arguments}) tool_call_id={entry.tool_call_id}"
    if isinstance(entry, FunctionResultEntry):
        return f"[function.result] {entry.tool_call_id}: {entry.result}"
    if isinstance(entry, ToolExecutionEntry):
        return f"[tool.execution] {entry.name}({entry.arguments})"
    return f"[{getattr(entry, 'type_name', entry.type)}]"


def _show_conversation(c: Conversation) -> str:
    who = f"agent {c.agent_id}" if isinstance(c, AgentConversation) else f"model {c.model}"
    name = f"  {c.name}" if isinstance(c.name, str) else ""
    return f"{c.id}  {c.created_at.isoformat()}  {who}{name}"


async def _print_stream(stream: ConversationStream, as_json: bool) -> ConversationResponse:
    async with stream:
        if as_json:
            async for event in stream:
                print(msgspec.json.encode(event).decode(), flush=True)
        else:
            async for text in stream.text_stream():
                print(text, end="", flush=True)
            print()
        return await stream.final_response()


def _show_response(r: ConversationResponse, as_json: bool) -> None:
    if as_json:
        _print_json(r)
        return
    for entry in r.outputs:
        print(content_text(entry.content) if isinstance(entry, MessageOutputEntry) else _show_entry(entry))
    print(f"conversation: {r.conversation_id}", file=sys.stderr)


@contextlib.asynccontextmanager
async def _client(args: argparse.Namespace, *, offline_ok: bool) -> AsyncIterator[AsyncConversationsClient]:
    key = args.api_key or os.environ.get("MISTRAL_API_KEY")
    base = args.base_url or os.environ.get("MISTRAL_BASE_URL")
    if offline_ok and not key and not base:
        from .testing import LocalConversationsServer

        print(
            "No MISTRAL_API_KEY and no --base-url: using an in-process local server (mistral_conv.testing).",
            file=sys.stderr,
        )
        server = LocalConversationsServer()
        async with (
            server,
            AsyncConversationsClient("local", base_url=server.url, timeout=args.timeout) as client,
        ):
            yield client
        return
    async with AsyncConversationsClient(key, base_url=base, timeout=args.timeout) as client:
        yield client


async def _chat(args: argparse.Namespace, client: AsyncConversationsClient) -> None:
    conversation_id: str | None = None
    loop = asyncio.get_running_loop()
    print("Type a message; an empty line or end of input quits.", file=sys.stderr)
    while True:
        print("you> ", end="", file=sys.stderr, flush=True)
        line = await loop.run_in_executor(None, sys.stdin.readline)
        text = line.strip()
        if not text:
            return
        if conversation_id is None:
            who = {"agent_id": args.agent_id} if args.agent_id else {"model": args.model}
            extra = {"instructions": args.instructions} if args.instructions else {}
            stream = client.start_stream(inputs=text, **who, **extra)
        else:
            stream = client.append_stream(conversation_id, inputs=text)
        print("assistant> ", end="", flush=True)
        final = await _print_stream(stream, False)
        conversation_id = final.conversation_id


async def _run(args: argparse.Namespace) -> None:
    cmd = args.command
    if cmd == "serve":
        from .testing import LocalConversationsServer

        server = LocalConversationsServer(api_key=args.server_api_key, host=args.host, port=args.port)
        await server.start()
        print(f"Local Conversations API server on {server.url} (Ctrl+C stops it)", file=sys.stderr)
        try:
            await asyncio.Event().wait()
        finally:
            await server.close()
    async with _client(args, offline_ok=cmd in ("demo", "chat", "batch")) as client:
        if cmd == "batch":
            from ._batch_cli import run_batch_command

            await run_batch_command(args, client)
        elif cmd == "demo":
            final = await _print_stream(client.start_stream(inputs=args.prompt, model=args.model), args.json)
            print(
                f"conversation: {final.conversation_id}, {final.usage.total_tokens} tokens", file=sys.stderr
            )
        elif cmd == "chat":
            await _chat(args, client)
        elif cmd in ("start", "append", "restart"):
            await _run_turn(args, client)
        elif cmd == "get":
            conv = await client.get(args.conversation_id)
            _print_json(conv) if args.json else print(_show_conversation(conv))
        elif cmd == "list":
            try:
                metadata = msgspec.json.decode(args.metadata) if args.metadata else None
            except msgspec.DecodeError as exc:
                raise InvalidRequestError("--metadata", f"is not JSON: {exc}") from None
            items = await client.list(page=args.page, page_size=args.page_size, metadata=metadata)
            if args.json:
                _print_json(items)
            for c in [] if args.json else items:
                print(_show_conversation(c))
        elif cmd in ("history", "messages"):
            result = await getattr(client, cmd)(args.conversation_id)
            entries = result.entries if cmd == "history" else result.messages
            if args.json:
                _print_json(result)
            for e in [] if args.json else entries:
                print(_show_entry(e))
        elif cmd == "delete":
            await client.delete(args.conversation_id)
            print(f"deleted {args.conversation_id}", file=sys.stderr)


async def _run_turn(args: argparse.Namespace, client: AsyncConversationsClient) -> None:
    kw: dict[str, Any] = {"inputs": args.inputs}
    if args.command == "start":
        kw.update(agent_id=args.agent_id) if args.agent_id else kw.update(model=args.model or DEFAULT_MODEL)
        if args.instructions:
            kw["instructions"] = args.instructions
        if args.no_store:
            kw["store"] = False
        target: list[Any] = []
    else:
        target = [args.conversation_id]
        if args.command == "restart":
            kw["from_entry_id"] = args.from_entry_id
    if args.stream:
        final = await _print_stream(getattr(client, f"{args.command}_stream")(*target, **kw), args.json)
        print(f"conversation: {final.conversation_id}", file=sys.stderr)
    else:
        _show_response(await getattr(client, args.command)(*target, **kw), args.json)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        asyncio.run(_run(args))
    except MistralError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except (msgspec.DecodeError, ValueError, OSError) as exc:  # bad input given on the command line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
