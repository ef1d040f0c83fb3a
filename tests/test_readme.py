"""The README's security table names tests: each one it names exists."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_test_the_readme_names_exists() -> None:
    section = (
        (ROOT / "README.md").read_text().split("### Security defaults and logging", 1)[1].split("\n## ", 1)[0]
    )
    named: list[tuple[str, str | None]] = []
    for row in section.splitlines():
        current = None
        for path, name in re.findall(r"`(tests/[\w/]+\.py)?(?:::([\w*]+))?`", row):
            current = path or current
            if current:
                named.append((current, name or None))
    assert len(named) >= 15
    for path, name in named:
        source = (ROOT / path).read_text()
        if name is not None:
            defined = re.findall(r"^(?:async )?def (test_\w+)", source, re.MULTILINE)
            assert fnmatch.filter(defined, name), f"{path}::{name} does not exist"
