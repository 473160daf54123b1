"""A Griffe extension for the API reference: reads rxflows' docstrings as written.

rxflows' docstrings are Google style with an ``Example:`` section (Griffe reads the
singular as an admonition, so its doctest lines would be rendered as prose) and
Sphinx roles (``:class:`~rxflows.RetryPolicy```). Before the docstrings are
parsed this extension renames ``Example:`` to ``Examples:`` and turns each role
into a cross-reference to the API page of a public name, or into inline code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

import rxflows
import rxflows.operators
import rxflows.testing

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)
_ROLE = re.compile(r":(?:class|meth|func|attr|mod|exc|data|obj):`(~?)([^`]+)`")


def _public_targets() -> set[str]:
    targets = {f"rxflows.{name}" for name in rxflows.__all__}
    targets |= {f"rxflows.operators.{name}" for name in rxflows.operators.__all__}
    targets |= {f"rxflows.testing.{name}" for name in rxflows.testing.__all__}
    return targets


_TARGETS = _public_targets()


def _role(match: re.Match[str]) -> str:
    short, path = match.group(1) == "~", match.group(2).strip()
    shown = path.rsplit(".", 1)[-1] if short else path
    if path in _TARGETS:
        return f"[`{shown}`][{path}]"
    return f"`{shown}`"


def convert(text: str) -> str:
    """The docstring ``text`` with ``Examples:`` sections and roles rewritten."""
    return _ROLE.sub(_role, _EXAMPLE.sub(r"\1Examples:", text))


class RxflowsDocstrings(griffe.Extension):
    """Rewrites every docstring once the object tree is loaded."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
