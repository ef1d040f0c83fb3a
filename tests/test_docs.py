"""The documentation site: every snippet runs, every public name is documented and in the reference.

The site itself is built in strict mode by `.ci/run` (`mkdocs build --strict`), which fails on
a broken reference or a dead link; these tests cover what a build does not check.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest

from .snippets import ROOT, Snippet, run_page, run_test_file, snippets

DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if snippets(p))
PUBLIC_MODULES = [
    "mistral_conv",
    "mistral_conv.asgi",
    "mistral_conv.batch",
    "mistral_conv.models",
    "mistral_conv.sse",
    "mistral_conv.testing",
    "mistral_conv.testing.pytest_plugin",
    "mistral_conv.transport",
    "mistral_conv.types",
    "mistral_conv.web",
]
# Modules being rewritten on another branch keep their reST roles until it lands; the site's
# griffe extension (docs/_ext/markdown_docstrings.py) renders them meanwhile. No other may have them.
REST = re.compile(r":(?:class|meth|func|attr|mod|exc|data|obj|const):`|``")


def test_every_page_of_the_guide_has_runnable_snippets() -> None:
    guide = {p.stem for p in PAGES}
    for page in ("quickstart", "streaming", "errors", "blocking", "runs", "relay", "batch", "testing"):
        assert page in guide, f"docs/{page}.md has no snippet"
    assert "migration" in guide


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_the_snippets_of_a_page_run_against_the_local_server(
    page: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert run_page(page, monkeypatch, tmp_path) >= 1


def test_a_failing_snippet_fails_its_page(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Text.\n\n```python\nreply = await client_missing.start(inputs='hi')\n```\n", encoding="utf-8"
    )
    with pytest.raises(NameError, match="client_missing"):
        run_page(page, monkeypatch, tmp_path)


def test_hidden_checks_run_in_order_with_the_snippets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- test\nfrom mistral_conv.testing import ScriptedResponder, reply_text\n"
        'server.responder = ScriptedResponder([[reply_text("scripted")]])\n-->\n\n'
        "- In a list:\n\n    ```python\n    from mistral_conv import AsyncConversationsClient\n\n"
        "    async with AsyncConversationsClient() as client:\n"
        '        reply = await client.start(model="m", inputs="hi")\n    ```\n\n'
        '<!-- test\nassert reply.output_text == "scripted"\n-->\n',
        encoding="utf-8",
    )
    assert [s.hidden for s in snippets(page)] == [True, False, True]
    assert run_page(page, monkeypatch, tmp_path) == 3


def test_the_official_sdk_tabs_are_known_as_such() -> None:
    by_tab = {s.tab for s in snippets(DOCS / "migration.md")}
    assert by_tab == {"mistralai", "mistral_conv", None}
    assert all(s.needs_official_sdk for s in snippets(DOCS / "migration.md") if s.tab == "mistralai")
    assert not any(s.needs_official_sdk for s in snippets(DOCS / "migration.md") if s.tab == "mistral_conv")


def test_snippets_cannot_leave_the_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nimport socket\n\nsocket.create_connection(('192.0.2.1', 443), timeout=1)\n```\n",
        encoding="utf-8",
    )
    with pytest.raises(ConnectionRefusedError, match=r"192\.0\.2\.1"):
        run_page(page, monkeypatch, tmp_path)


def test_a_snippet_that_is_a_test_file_runs_under_pytest(tmp_path: Path) -> None:
    failing = Snippet(DOCS / "testing.md", 1, "def test_no() -> None:\n    assert 1 == 2\n", hidden=False)
    assert failing.is_test_file
    with pytest.raises(AssertionError, match="1 failed"):
        run_test_file(failing, tmp_path)


@functools.cache
def _package() -> Any:
    """The package as griffe (the docs' reader) sees it, without importing it."""
    griffe = pytest.importorskip("griffe", reason="the docs extra is not installed")
    return griffe.GriffeLoader(search_paths=[str(ROOT)]).load("mistral_conv")


def _public_objects() -> list[tuple[str, Any]]:
    package = _package()
    found = []
    for module_name in PUBLIC_MODULES:
        module = (
            package if module_name == "mistral_conv" else package[module_name.removeprefix("mistral_conv.")]
        )
        if module.exports is not None:
            names = [n if isinstance(n, str) else n.name for n in module.exports]
        else:
            names = [n for n, m in module.members.items() if not n.startswith("_") and not m.is_alias]
        found.extend((f"{module_name}.{n}", module[n]) for n in names)
    return found


def test_every_public_name_has_a_docstring() -> None:
    missing = []
    for path, obj in _public_objects():
        target = obj.final_target if obj.is_alias else obj
        if not target.docstring:
            missing.append(path)
        if target.is_class:
            for name, member in target.members.items():
                member = member.final_target if member.is_alias else member
                if not name.startswith("_") and not member.is_attribute and not member.docstring:
                    missing.append(f"{path}.{name}")
    assert not missing, f"public names without a docstring: {missing}"


def test_every_public_name_is_in_the_api_reference() -> None:
    documented: set[str] = set()
    objects = dict(_public_objects())
    directives = [
        d
        for page in (DOCS / "reference").glob("*.md")
        for d in re.findall(r"^::: ([\w.]+)", page.read_text(), re.M)
    ]
    package = _package()
    for directive in directives:
        obj = package if directive == "mistral_conv" else package[directive.removeprefix("mistral_conv.")]
        obj = obj.final_target if obj.is_alias else obj
        documented.add(obj.path)
        if obj.is_module and obj.exports is not None:
            for name in obj.exports:
                member = obj[name if isinstance(name, str) else name.name]
                documented.add((member.final_target if member.is_alias else member).path)
        elif obj.is_module:
            documented.update(
                m.path for n, m in obj.members.items() if not n.startswith("_") and not m.is_alias
            )
    missing = [
        path
        for path, obj in objects.items()
        if (obj.final_target if obj.is_alias else obj).path not in documented
    ]
    assert not missing, f"public names missing from docs/reference: {missing}"


def test_no_rest_roles_are_left_in_docstrings() -> None:
    with_roles = {
        str(p.relative_to(ROOT)) for p in (ROOT / "mistral_conv").rglob("*.py") if REST.search(p.read_text())
    }
    assert not with_roles, sorted(with_roles)


def test_rest_markup_becomes_markdown() -> None:
    pytest.importorskip("griffe", reason="the docs extra is not installed")
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "markdown_docstrings", DOCS / "_ext" / "markdown_docstrings.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rest = (
        "Use :class:`ConversationStream` or :meth:`~mistral_conv.ConversationStream.aclose`,\n"
        ":func:`the helper <mistral_conv.run_sync>` and ``code``. A state machine::\n\n"
        "    NEW -> OPEN\n\nExample::\n\n    x = 1\n"
    )
    assert module.to_markdown(rest) == (
        "Use `ConversationStream` or `aclose`,\n"
        "`the helper` and `code`. A state machine:\n\n"
        "    NEW -> OPEN\n\nFor example:\n\n    x = 1\n"
    )
    markdown = "Already `Markdown`: [x][mistral_conv.X], ```python fences```."
    assert module.to_markdown(markdown) == markdown
