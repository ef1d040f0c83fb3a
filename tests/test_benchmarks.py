"""The benchmark harness in smoke mode: tiny sizes, every implementation, correctness only.

It takes half a minute, so a plain ``pytest`` leaves it out (marker ``bench``); CI runs it with
``python -m pytest -m bench``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.bench
def test_benchmarks_smoke(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert "decoded every scenario correctly" in done.stdout
    for scenario in ("stream", "many_streams", "starts", "history", "import"):
        assert f" {scenario} " in done.stderr
    assert not out.exists()  # a smoke run measures nothing worth writing down
