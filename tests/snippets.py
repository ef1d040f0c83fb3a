"""Runs the Python code of Markdown pages against a local server, as a reader would run it.

A page's code runs in order in one namespace, so a later snippet may use what an earlier one
made (a client, a function). Two kinds of code run:

* each fenced `python` block, including those indented in tabs or lists;
* each fenced `bash` block, run by bash with `mistral-conv` on the PATH (this checkout's CLI);
  its output is `shell_output` in the namespace (`console` blocks, for installs and
  long runs, are shown only);
* hidden checks, `<!-- test` ... `-->` comments, which the site does not show: they script the
  local server (`server` is in the namespace) before a snippet, or assert what it did after.

Snippets with top-level `await` run on one event loop kept for the page; the others run as a
script does (so `asyncio.run(main())` works). A block that defines `test_` functions is a test
file: it is run by pytest (in this process), with this package's pytest plugin. Code that imports
the official `mistralai` SDK, or sits in a `=== "mistralai"` tab, runs only when that SDK is
installed.

Every snippet reaches the API through `MISTRAL_API_KEY` and `MISTRAL_BASE_URL`, set here to the
page's local server; connecting anywhere but the loopback interface fails the test.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import inspect
import os
import re
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mistral_conv.testing import LocalConversationsServer

ROOT = Path(__file__).resolve().parents[1]
SNIPPET_KEY = "docs-test-key"

_CODE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<language>python|bash)[^\n]*\n(?P<fenced>.*?)^(?P=indent)```[ \t]*$"
    r"|^(?P<hidden_indent>[ \t]*)<!-- test\n(?P<hidden>.*?)^(?P=hidden_indent)-->[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


@dataclass(frozen=True)
class Snippet:
    """One piece of a page's code: its text, where it starts, and whether readers see it."""

    path: Path
    line: int
    code: str
    hidden: bool
    language: str = "python"
    tab: str | None = None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def needs_official_sdk(self) -> bool:
        """Code of a `=== "mistralai"` tab, or code that imports that SDK."""
        imports = re.search(r"^\s*(from|import) mistralai\b", self.code, re.MULTILINE) is not None
        return imports or self.tab == "mistralai"

    @property
    def is_test_file(self) -> bool:
        return re.search(r"^(async )?def test_", self.code, re.MULTILINE) is not None


def snippets(path: Path) -> list[Snippet]:
    """The code of a Markdown page, in order."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in _CODE.finditer(text):
        hidden = match.group("hidden") is not None
        body = match.group("hidden") if hidden else match.group("fenced")
        line = text.count("\n", 0, match.start()) + 2
        language = "python" if hidden else match.group("language")
        indent = match.group("hidden_indent") if hidden else match.group("indent")
        tabs = re.findall(r'^=== "([^"]+)"', text[: match.start()], re.MULTILINE) if indent else []
        found.append(Snippet(path, line, textwrap.dedent(body), hidden, language, tabs[-1] if tabs else None))
    return found


@contextmanager
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Connections to anything but 127.0.0.1, ::1 or a Unix socket raise `ConnectionRefusedError`."""
    connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1"):
            raise ConnectionRefusedError(f"a docs snippet tried to reach {address[0]}")
        connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield


# The configuration docs/testing.md tells readers to use.
PYTEST_INI = """\
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""


class _Outcomes:
    """Collects what an in-process pytest run did."""

    def __init__(self) -> None:
        self.passed: list[str] = []
        self.failed: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.failed.append(f"{report.nodeid}\n{report.longreprtext}")
        elif report.when == "call" and report.passed:
            self.passed.append(report.nodeid)


def run_test_file(snippet: Snippet, folder: Path) -> None:
    """Runs a snippet that is a test file with pytest (in this process) and requires it to pass."""
    test_file = folder / f"test_snippet_{snippet.line}.py"
    test_file.write_text(snippet.code, encoding="utf-8")
    (folder / "pytest.ini").write_text(PYTEST_INI, encoding="utf-8")
    outcomes = _Outcomes()
    args = ["-q", "-p", "no:cacheprovider", "--rootdir", str(folder), "-c", str(folder / "pytest.ini")]
    code = pytest.main([*args, str(test_file)], plugins=[outcomes])
    failed = "\n".join(outcomes.failed)
    assert code == 0 and not outcomes.failed, f"{snippet.where}: {len(outcomes.failed)} failed\n{failed}"
    assert outcomes.passed, f"{snippet.where}: no test ran"


def run_shell(snippet: Snippet, folder: Path) -> str:
    """Runs a `bash` snippet in `folder`, with this checkout's `mistral-conv` first on the PATH."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "mistral-conv"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mistral_conv "$@"\n', encoding="utf-8")
    shim.chmod(0o755)
    path = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", snippet.code],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{snippet.where}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def run_page(path: Path, monkeypatch: pytest.MonkeyPatch, folder: Path) -> int:
    """Runs every snippet of `path` against a fresh local server; returns how many ran."""
    server = LocalConversationsServer(api_key=SNIPPET_KEY)
    server.start_in_thread()
    monkeypatch.setenv("MISTRAL_API_KEY", SNIPPET_KEY)
    monkeypatch.setenv("MISTRAL_BASE_URL", server.url)
    monkeypatch.chdir(folder)
    namespace: dict[str, Any] = {"__name__": "__main__", "server": server}
    ran = 0
    try:
        with loopback_only(monkeypatch), asyncio.Runner() as runner:
            for snippet in snippets(path):
                if snippet.needs_official_sdk and importlib.util.find_spec("mistralai") is None:
                    continue
                if snippet.language == "bash":
                    namespace["shell_output"] = run_shell(snippet, folder)
                    ran += 1
                    continue
                if snippet.is_test_file:
                    run_test_file(snippet, folder)
                    ran += 1
                    continue
                source = "\n" * (snippet.line - 1) + snippet.code
                code = compile(source, str(snippet.path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
                if code.co_flags & inspect.CO_COROUTINE:
                    runner.run(eval(code, namespace))
                else:
                    exec(code, namespace)
                ran += 1
    finally:
        server.stop_thread()
    return ran
