"""reST markup in docstrings, rewritten as Markdown for mkdocstrings.

Two uses:

* a griffe extension (mkdocs.yml loads it) that rewrites each docstring as it is loaded,
  so modules whose docstrings still use reST roles render correctly;
* a command that rewrites the source files themselves:
  ``python docs/_ext/markdown_docstrings.py mistral_conv/_streaming.py ...``.

What it rewrites: roles (``:class:`X```, ``:meth:`~a.b.c```, ``:func:`title <target>```)
become inline code; double backquotes become single ones; a line ending in ``::``
ends in ``:`` (the indented block after it stays a code block in Markdown).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|mod|exc|data|obj|const):`([^`]+)`")
_LITERAL = re.compile(r"(?<!`)``(?!`)(.+?)(?<!`)``(?!`)")
_LITERAL_BLOCK = re.compile(r"(?m)^(\s*)(\S.*?)\s*::$")
_LONE_MARKER = re.compile(r"(?m)^[ \t]*::\n")


def _role(match: re.Match[str]) -> str:
    target = match.group(1)
    titled = re.fullmatch(r"(.+?)\s*<(.+)>", target)
    if titled:
        target = titled.group(1)
    elif target.startswith("~"):
        target = target[1:].rsplit(".", 1)[-1]
    return f"`{target}`"


def _block(match: re.Match[str]) -> str:
    indent, text = match.group(1), match.group(2)
    if text.rstrip(":") in {"Example", "Examples", "For example"}:
        text = "For example"  # "Example:" alone would start a Google-style section
    return f"{indent}{text}:"


def to_markdown(text: str) -> str:
    """``text`` with its reST roles, double backquotes and ``::`` blocks written as Markdown."""
    text = _ROLE.sub(_role, text)
    text = _LITERAL.sub(lambda m: f"`{m.group(1)}`", text)
    return _LONE_MARKER.sub("", _LITERAL_BLOCK.sub(_block, text))


class MarkdownDocstrings(griffe.Extension):
    """Rewrites each docstring griffe loads (a no-op on docstrings already in Markdown)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        path = Path(name)
        path.write_text(to_markdown(path.read_text(encoding="utf-8")), encoding="utf-8")
