"""Run the Python code of a documentation page, as a reader would (tests/test_docs.py).

Every ```` ```python ```` block of a page runs, in order, in one module namespace
(so a later block uses what an earlier one defined). A block may use top-level
``await``: it then runs on the page's event loop, a :class:`VirtualTimeLoop`
(``await asyncio.sleep(60)`` returns at once, the loop clock 60 s later), unless
the page holds the comment ``<!-- docs-test: real-time -->`` (its snippets talk to
real sockets, so it runs on an ordinary loop). A block
without ``await`` runs with no loop running, so ``with marbles():`` and
``asyncio.run(...)`` work in it. A function named ``test_*`` that a block defines
is called right after the block (an ``async def`` one on a fresh
:class:`VirtualTimeLoop`, as pytest-asyncio would), so the pages' example tests run too.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import sys
import textwrap
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rxflows.testing import VirtualTimeLoop

DOCS = Path(__file__).resolve().parent.parent / "docs"

# A fence at the start of a line, or indented (inside an admonition or a list).
_FENCE = re.compile(r"^( *)```(\S*)[^\n]*\n(.*?)^\1```\s*$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    """One fenced code block: its page, first line number, language and source."""

    page: str
    line: int
    language: str
    source: str


def blocks(path: Path) -> Iterator[Block]:
    """The fenced code blocks of a Markdown page, in order."""
    text = path.read_text(encoding="utf-8")
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 2
        source = textwrap.dedent(match.group(3)) if match.group(1) else match.group(3)
        yield Block(path.name, line, match.group(2), source)


# pymdownx.snippets: a line `--8<-- "examples/pipeline.py"` in a fence includes that file.
_SNIPPET = re.compile(r'^[ \t]*--8<--[ \t]+"([^"]+)"[ \t]*$', re.MULTILINE)


def _include(match: re.Match[str]) -> str:
    return (DOCS.parent / match.group(1)).read_text(encoding="utf-8")


def python_blocks(path: Path) -> list[Block]:
    """The page's python blocks, with included files (``--8<--``) expanded."""
    return [
        Block(block.page, block.line, block.language, _SNIPPET.sub(_include, block.source))
        for block in blocks(path)
        if block.language == "python"
    ]


def run_page(path: Path) -> types.ModuleType:
    """Run every python block of ``path``; returns the page's namespace."""
    name = "docs_" + re.sub(r"\W", "_", path.stem)
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    namespace = module.__dict__
    try:
        # A page that talks to real sockets says so: its clock must not jump past I/O.
        real_time = "<!-- docs-test: real-time" in path.read_text(encoding="utf-8")
        factory = asyncio.new_event_loop if real_time else VirtualTimeLoop
        with asyncio.Runner(loop_factory=factory) as runner:
            for block in python_blocks(path):
                before = set(namespace)
                code = compile(
                    "\n" * (block.line - 1) + block.source,
                    str(path),
                    "exec",
                    flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
                )
                try:
                    result = eval(code, namespace)
                    if inspect.iscoroutine(result):
                        runner.run(result)
                    for key in [k for k in namespace if k not in before]:
                        value = namespace[key]
                        if key.startswith("test_") and inspect.isfunction(value):
                            if inspect.iscoroutinefunction(value):
                                # as pytest-asyncio would: a fresh loop of its own
                                with asyncio.Runner(loop_factory=VirtualTimeLoop) as fresh:
                                    fresh.run(value())
                            else:
                                value()
                except BaseException as error:
                    error.add_note(f"in the python block at {path.name}:{block.line}")
                    raise
            leftover = runner.run(_leftover_tasks())
            if leftover:
                raise AssertionError(
                    f"{path.name} left {len(leftover)} task(s) running: {leftover}"
                )
    finally:
        sys.modules.pop(name, None)
    return module


async def _leftover_tasks() -> list[asyncio.Task[object]]:
    """The page's tasks still running after a few loop turns (cancelled work unwinding)."""
    me = asyncio.current_task()
    pending: list[asyncio.Task[object]] = []
    for _ in range(20):
        pending = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
        if not pending:
            break
        await asyncio.sleep(0)
    return pending
