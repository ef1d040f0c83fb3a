"""Every example runs offline, to the end, without a warning."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_offline(path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MISTRAL_API_KEY", "MISTRAL_BASE_URL")}
    smoke = ["--smoke"] if "--smoke" in path.read_text(encoding="utf-8") else []  # servers: ask once, stop
    done = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", str(path), *smoke],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "assistant:" in done.stdout
    assert done.stderr == ""
