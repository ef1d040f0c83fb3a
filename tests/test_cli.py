"""The command line: the offline demo, chat driven through stdin, and every command against a server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mistral_conv._cli import main
from mistral_conv.testing import LocalConversationsServer


def offline_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("MISTRAL_API_KEY", "MISTRAL_BASE_URL")}


def command(*args: str) -> list[str]:
    """The installed ``mistral-conv`` script when there is one, else ``python -m mistral_conv``."""
    script = Path(sys.executable).parent / "mistral-conv"
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "mistral_conv", *args]


def test_demo_runs_offline() -> None:
    cmd = command("demo")
    done = subprocess.run(
        cmd, env=offline_env(), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, done.stderr
    assert "in-process local server" in done.stderr
    assert "local Conversations server" in done.stdout


def test_chat_through_stdin() -> None:
    done = subprocess.run(
        command("chat"),
        input="First question\nSecond question\n",
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("assistant> ")]
    assert len(lines) == 2
    assert "First question" in lines[0] and "Second question" in lines[1]


def test_every_command_against_a_server(capsys: pytest.CaptureFixture[str]) -> None:
    with LocalConversationsServer(api_key="k") as server:
        base = ["--api-key", "k", "--base-url", server.url]
        assert main([*base, "--json", "start", "--model", "m", "Hello"]) == 0
        started = json.loads(capsys.readouterr().out)
        cid = started["conversation_id"]
        assert main([*base, "append", "--stream", cid, "More"]) == 0
        assert "More" in capsys.readouterr().out
        assert main([*base, "--json", "history", cid]) == 0
        entries = json.loads(capsys.readouterr().out)["entries"]
        assert main([*base, "restart", cid, "--from-entry-id", entries[1]["id"], "Branch"]) == 0
        assert "Branch" in capsys.readouterr().out
        assert main([*base, "get", cid]) == 0
        assert cid in capsys.readouterr().out
        assert main([*base, "list"]) == 0
        assert len(capsys.readouterr().out.splitlines()) == 2
        assert main([*base, "messages", cid]) == 0
        assert "[message.output]" in capsys.readouterr().out
        assert main([*base, "delete", cid]) == 0
        assert main([*base, "get", cid]) == 1
        assert "404" in capsys.readouterr().err
