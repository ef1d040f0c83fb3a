"""Starting a benchmark's server in a process of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def start_listening(args: list[str], what: str, *, stdin: bool = False) -> tuple[subprocess.Popen[str], str]:
    """Run `python -m <args>`; its first line is `PORT <port>` or `URL <url>`: return it as a URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", *args],
        stdin=subprocess.PIPE if stdin else None,
        stdout=subprocess.PIPE,
        text=True,
        cwd=HERE.parent,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.startswith("PORT "):
        return proc, f"http://127.0.0.1:{int(line.split()[1])}"
    if line.startswith("URL "):
        return proc, line.split()[1]
    proc.kill()
    proc.wait()
    raise SystemExit(f"{what} did not start")
