"""The operators' marble diagrams as SVG pictures, from their docstrings.

Each public operator in ``rxflows.operators`` draws its behaviour in a
``.. code::`` block of its docstring; that block is the single source of the
picture on the operators page (``img/marbles/<name>.svg``). A block with blank
lines between paragraphs gives one picture per paragraph, stacked.
"""

from __future__ import annotations

import inspect
import textwrap

import rxflows.operators
from rxflows.testing import marble_rows, marble_svg
from rxflows.testing._svg import MarbleRow

__all__ = ["diagram_text", "operator_pictures"]


def diagram_text(doc: str) -> str:
    """The text of the first ``.. code::`` block of a docstring (dedented)."""
    lines = inspect.cleandoc(doc).splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == ".. code::")
    block: list[str] = []
    for line in lines[start + 1 :]:
        if line.strip() and not line.startswith(" "):
            break
        block.append(line)
    return textwrap.dedent("\n".join(block)).strip("\n")


def operator_pictures() -> dict[str, str]:
    """``{operator name: SVG}`` for every operator in ``rxflows.operators.__all__``."""
    pictures: dict[str, str] = {}
    for name in rxflows.operators.__all__:
        doc = getattr(rxflows.operators, name).__doc__ or ""
        rows: list[MarbleRow] = marble_rows(diagram_text(doc))
        pictures[name] = marble_svg(rows, title=f"ops.{name}")
    return pictures
