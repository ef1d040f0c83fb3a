"""Every Python snippet of docs/observability.md runs, as a program, against the local server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mistral_conv.testing import LocalConversationsServer, ScriptedResponder, call_function, reply_text

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "observability.md"
KEY = "docs-key"
SNIPPETS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.DOTALL)


def test_the_page_has_its_snippets() -> None:
    assert len(SNIPPETS) >= 6


@pytest.fixture(scope="module")
def server() -> Iterator[LocalConversationsServer]:
    with LocalConversationsServer(api_key=KEY) as s:
        yield s


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_snippet_runs(
    index: int,
    server: LocalConversationsServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = SNIPPETS[index]
    if "tools=[add]" in source:  # the tool-run example: the model calls the tool, then answers
        server.responder = ScriptedResponder(
            [[call_function("add", {"a": 2, "b": 3})], [reply_text("2 + 3 = 5")]]
        )
    monkeypatch.setenv("MISTRAL_BASE_URL", server.url)
    monkeypatch.setenv("MISTRAL_API_KEY", KEY)
    if "set_tracer_provider" in source:
        # The global provider can be set once per process: this one runs in a process of its own.
        script = tmp_path / f"snippet_{index}.py"
        script.write_text(source)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("MISTRAL_CONV_TEST_TRANSPORT", None)
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path
        )
        assert done.returncode == 0, f"snippet {index} failed:\n{source}\n{done.stderr}"
        out = done.stdout
    else:
        exec(compile(source, f"docs/observability.md, snippet {index}", "exec"), {"__name__": "__main__"})
        out = capsys.readouterr().out
    assert out.strip(), "every snippet prints what it shows"
    assert KEY not in out
    if "tools=[add]" in source:
        assert "execute_tool add" in out and "mistral_conv.round" in out
