"""``mistral-conv batch`` as a user runs it: plain progress lines, a live bar in a terminal, and a
process stopped by Ctrl+C or killed outright, then resumed: one stored conversation per item."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from mistral_conv.testing import DefaultResponder, LocalConversationsServer, TurnContext
from mistral_conv.testing._responders import Turn

KEY = "local-key"


class Slow:
    """The default answers, each after a short think: a batch takes long enough to interrupt."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def __call__(self, context: TurnContext) -> Turn:
        await asyncio.sleep(self.seconds)
        return DefaultResponder()(context)


@pytest.fixture
def slow_server() -> Iterator[LocalConversationsServer]:
    with LocalConversationsServer(api_key=KEY, responder=Slow(0.02)) as server:  # type: ignore[arg-type]
        yield server


def _input(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "in.jsonl"
    lines = [msgspec.json.encode({"id": f"item-{i}", "inputs": f"question {i}"}) for i in range(n)]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _command(server: LocalConversationsServer, source: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mistral_conv",
        "--api-key",
        KEY,
        "--base-url",
        server.url,
        "batch",
        str(source),
        "-o",
        str(out),
        *extra,
    ]


def _per_item(server: LocalConversationsServer) -> Counter[str]:
    return Counter(
        str(c.record.metadata.get("mistral_conv_item"))
        for c in list(server.store.conversations.values())
        if isinstance(c.record.metadata, dict)
    )


def _wait_for_lines(path: Path, count: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and len(path.read_bytes().splitlines()) >= count:
            return
        time.sleep(0.01)
    raise AssertionError(f"the checkpoint never reached {count} lines")


def test_plain_progress_lines_without_a_terminal(
    slow_server: LocalConversationsServer, tmp_path: Path
) -> None:
    source, out = _input(tmp_path, 30), tmp_path / "out.jsonl"
    done = subprocess.run(_command(slow_server, source, out), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "batch: 30/30 done, 0 failed" in done.stderr and "\r" not in done.stderr
    results = [msgspec.json.decode(line) for line in out.read_bytes().splitlines()]
    assert [r["id"] for r in results] == [f"item-{i}" for i in range(30)]
    assert all(r["error"] is None and f"question {r['index']}" in r["output_text"] for r in results)


def test_a_live_bar_in_a_terminal(slow_server: LocalConversationsServer, tmp_path: Path) -> None:
    source, out = _input(tmp_path, 40), tmp_path / "out.jsonl"
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    process = subprocess.Popen(
        _command(slow_server, source, out), stdin=terminal, stdout=terminal, stderr=terminal
    )
    os.close(terminal)
    screen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal closed: the process is done
                break
            if not chunk:
                break
            screen += chunk
        elif process.poll() is not None:
            break
    os.close(controller)
    assert process.wait(10) == 0, screen.decode(errors="replace")
    text = screen.decode(errors="replace")
    assert "\r" in text and "40/40" in text and "item/s" in text  # a bar redrawn in place
    assert "batch: " not in text  # no plain lines on a terminal


def test_ctrl_c_keeps_the_checkpoint_and_says_how_to_resume(
    slow_server: LocalConversationsServer, tmp_path: Path
) -> None:
    source, out = _input(tmp_path, 200), tmp_path / "out.jsonl"
    checkpoint = tmp_path / "out.jsonl.checkpoint"
    process = subprocess.Popen(
        _command(slow_server, source, out, "--concurrency", "4"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _wait_for_lines(checkpoint, 10, process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert b"--resume" in err and str(checkpoint).encode() in err
    resumed = subprocess.run(
        _command(slow_server, source, out, "--concurrency", "16", "--resume"), capture_output=True, timeout=60
    )
    assert resumed.returncode == 0, resumed.stderr
    assert len(out.read_bytes().splitlines()) == 200
    assert _per_item(slow_server) == Counter({f"item-{i}": 1 for i in range(200)})


@pytest.mark.parametrize("kills", [1, 2])
def test_a_killed_batch_resumes_with_one_conversation_per_item(
    slow_server: LocalConversationsServer, tmp_path: Path, kills: int
) -> None:
    source, out = _input(tmp_path, 150), tmp_path / "out.jsonl"
    checkpoint = tmp_path / "out.jsonl.checkpoint"
    for round_ in range(kills):
        extra = ("--concurrency", "8", *(("--resume",) if round_ else ()))
        process = subprocess.Popen(
            _command(slow_server, source, out, *extra), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_for_lines(checkpoint, 20 * (round_ + 1), process)
        process.kill()  # SIGKILL: nothing runs after this, starts in flight are stored or not
        process.wait(10)
    done = subprocess.run(_command(slow_server, source, out, "--resume"), capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    results = [msgspec.json.decode(line) for line in out.read_bytes().splitlines()]
    assert [r["id"] for r in results] == [f"item-{i}" for i in range(150)]
    assert all(r["error"] is None for r in results)
    assert _per_item(slow_server) == Counter({f"item-{i}": 1 for i in range(150)})


def test_failed_items_make_a_nonzero_exit_with_every_line_written(
    slow_server: LocalConversationsServer, tmp_path: Path
) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text('"fine"\n{"id": "bad", "inputs": ""}\n')
    done = subprocess.run(_command(slow_server, source, out), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "1 failed" in done.stderr
    results = [msgspec.json.decode(line) for line in out.read_bytes().splitlines()]
    assert [r["error"] is None for r in results] == [True, False]
