"""The documentation runs: every Python snippet of every page, and the site's wiring.

Each page's ```` ```python ```` blocks run in order in one namespace (see
``tests/docs_runner.py``); a snippet that is not meant to run uses another fence
(``text``, ``bash``), and there must be very few of those that look like Python.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

import rxflows
import rxflows.operators
import rxflows.testing

from .docs_runner import DOCS, blocks, python_blocks, run_page

ROOT = DOCS.parent
PAGES = sorted(DOCS.glob("*.md"))
# Fence languages a page may use; anything else (py, python3, pycon, ...) would escape
# the runner unnoticed.
FENCES = {"python", "text", "bash", "sh", "json", "mermaid", ""}


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_snippets_run(page: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_page(page)


def test_readme_taste_runs(capsys: pytest.CaptureFixture[str]) -> None:
    [taste] = python_blocks(ROOT / "README.md")
    assert len(taste.source.splitlines()) <= 20
    run_page(ROOT / "README.md")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "['video1.webm', 'video2.webm', 'video3.webm']"
    assert out[-1] == "['video1.webm', 'video2.webm', 'video3.webm']"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo\nmake test\n" in readme
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).exists(), link


def test_every_fence_language_is_known() -> None:
    for page in PAGES:
        for block in blocks(page):
            assert block.language in FENCES, f"{page.name}:{block.line}: ```{block.language}"


def test_python_blocks_outnumber_the_rest() -> None:
    """Most code on the pages is executed; the guide pages have snippets at all."""
    runnable = sum(len(python_blocks(page)) for page in PAGES)
    looks_like_python = [
        f"{page.name}:{block.line}"
        for page in PAGES
        for block in blocks(page)
        if block.language == "text"
        and re.search(r"^(await |async def |from rxflows)", block.source, re.M)
    ]
    assert runnable >= 100
    assert len(looks_like_python) <= 5, looks_like_python
    for name in ("flows", "event-bus", "pools", "cache", "circuit-breaker", "task-queue"):
        assert python_blocks(DOCS / f"{name}.md"), name


def _mermaid(page: Path) -> list[str]:
    return [block.source for block in blocks(page) if block.language == "mermaid"]


def test_workflow_diagram_is_generated_from_the_engine(capsys: pytest.CaptureFixture[str]) -> None:
    namespace = run_page(DOCS / "workflows.md")
    [diagram] = _mermaid(DOCS / "workflows.md")
    assert diagram == namespace.video_pipeline.to_mermaid().rstrip("\n") + "\n"
    assert diagram.count(" --> ") == 7  # the guide's eight steps in a chain


def _generator(name: str) -> ModuleType:
    """A module of docs/gen (the build's hooks import them the same way)."""
    spec = importlib.util.spec_from_file_location(f"docs_gen_{name}", DOCS / "gen" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_api_reference_covers_every_public_name() -> None:
    pages = _generator("api_pages").api_pages()
    targets = [t for text in pages.values() for t in re.findall(r"^::: (\S+)$", text, re.M)]
    wanted = {f"rxflows.{name}" for name in rxflows.__all__}
    wanted |= {f"rxflows.operators.{name}" for name in rxflows.operators.__all__}
    wanted |= {f"rxflows.testing.{name}" for name in rxflows.testing.__all__}
    assert sorted(targets) == sorted(wanted)  # each exactly once, nothing private
    assert "::: rxflows.CircuitBreaker\n" in pages["api/resilience.md"]
    assert "::: rxflows.testing.marble_svg\n" in pages["api/testing.md"]
    assert "::: rxflows.operators.map_async\n" in pages["api/operators.md"]


def _nav() -> str:
    return (ROOT / "mkdocs.yml").read_text(encoding="utf-8")


def test_every_page_is_in_the_navigation() -> None:
    nav = _nav()
    generated = list(_generator("api_pages").api_pages())
    for relative in [*(page.name for page in PAGES), *generated]:
        assert f": {relative}\n" in nav, relative


def test_the_build_is_strict_and_offline() -> None:
    config = _nav()
    assert "strict: true" in config
    assert "font: false" in config
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "mkdocs build --strict --site-dir site" in makefile


def test_operators_page_shows_every_operator_picture() -> None:
    text = (DOCS / "operators.md").read_text(encoding="utf-8")
    for name in rxflows.operators.__all__:
        assert f"(img/marbles/{name}.svg)" in text, name


def test_benchmarks_page_embeds_the_chart() -> None:
    text = (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    assert "](img/benchmarks.svg)" in text
    assert (DOCS / "img" / "benchmarks.svg").read_text(encoding="utf-8").startswith("<svg")


def test_error_tree_on_the_page_is_the_real_one(capsys: pytest.CaptureFixture[str]) -> None:
    namespace = run_page(DOCS / "errors.md")
    [shown] = [
        block.source
        for block in blocks(DOCS / "errors.md")
        if block.language == "text" and block.source.startswith("RxFlowsError\n")
    ]
    assert shown == namespace.error_tree + "\n"


def test_integration_page_includes_the_example_files() -> None:
    text = (DOCS / "integration.md").read_text(encoding="utf-8")
    for name in ("pipeline", "event_driven", "batch_progress", "realtime_stream"):
        assert f'--8<-- "examples/{name}.py"' in text
        assert (ROOT / "examples" / f"{name}.py").exists()
    included = [b for b in python_blocks(DOCS / "integration.md") if "async def main" in b.source]
    assert len(included) == 4  # expanded by the runner, as by pymdownx.snippets
