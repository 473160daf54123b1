"""The API reference pages, generated from the public names at build time.

Every name in ``rxflows.__all__``, ``rxflows.operators.__all__`` and
``rxflows.testing.__all__`` gets a ``::: name`` entry (rendered by mkdocstrings
from its docstring) on the page of the module that defines it, so a new public
name is documented the moment it is exported. A name from a module this table
does not know lands on the first page, under "Other names".
"""

from __future__ import annotations

import rxflows
import rxflows.operators
import rxflows.testing

__all__ = ["PAGES", "api_pages", "page_of"]

# slug: (title, intro, defining modules (prefixes))
PAGES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "core": (
        "Configuration, scheduling and bridges",
        "Settings, the loop scheduler and clock, and the bridges between coroutines, "
        "async iterators and observables ([concepts](../index.md), "
        "[operators and bridges](../operators.md#bridges)).",
        ("rxflows._config", "rxflows._scheduling", "rxflows._clock", "rxflows._bridges"),
    ),
    "flows": ("Flow patterns", "The six flows ([guide](../flows.md)).", ("rxflows._flows",)),
    "operators": (
        "Operators",
        "`from rxflows import operators as ops`; the [operators guide](../operators.md) "
        "draws each one's marble diagram.",
        ("rxflows.operators",),
    ),
    "events": ("Event bus", "[Guide](../event-bus.md).", ("rxflows._events",)),
    "pools": ("Connection pools", "[Guide](../pools.md).", ("rxflows._pools", "rxflows._http")),
    "cache": ("Cache", "[Guide](../cache.md).", ("rxflows._cache",)),
    "resilience": (
        "Circuit breaker and retry",
        "Guides: [circuit breaker](../circuit-breaker.md), [retry](../retry.md).",
        ("rxflows._breaker", "rxflows._retry"),
    ),
    "tasks": ("Task queue", "[Guide](../task-queue.md).", ("rxflows._tasks",)),
    "workflows": ("Workflow engine", "[Guide](../workflows.md).", ("rxflows._workflow",)),
    "metrics": (
        "Metrics and monitoring",
        "[Guide](../metrics.md).",
        ("rxflows._metrics", "rxflows._monitor"),
    ),
    "manager": ("Flow manager", "[Guide](../manager.md).", ("rxflows._manager",)),
    "executors": (
        "Executors",
        "Where work runs: in this process or on a cluster ([scaling out](../scaling-out.md)).",
        ("rxflows._executor", "rxflows.dask"),
    ),
    "video": ("Video processor", "[Guide](../video.md).", ("rxflows.video",)),
    "errors": ("Errors", "[Error handling](../errors.md) explains the tree.", ("rxflows._errors",)),
    "testing": (
        "Testing",
        "`rxflows.testing`: marble diagrams on a virtual-time loop, and their pictures "
        "([guide](../testing.md)).",
        ("rxflows.testing",),
    ),
}

# Constants have no __module__: where each one is defined.
_CONSTANTS = {
    "DEAD_LETTER_TOPIC": "rxflows._events",
    "LOOP_CLOCK": "rxflows._clock",
    "UNBOUNDED": "rxflows._bridges",
    "DEFAULT_EXECUTOR": "rxflows._executor",
}


def _module(namespace: object, name: str) -> str:
    value = getattr(namespace, name)
    module = getattr(value, "__module__", None)
    if not isinstance(value, type) and not callable(value):
        module = _CONSTANTS.get(name, module)
    return module or ""


def page_of(module: str) -> str:
    """The slug of the page for a defining module ("core" when none matches)."""
    for slug, (_, _, prefixes) in PAGES.items():
        if any(module.startswith(p) for p in prefixes):
            return slug
    return "core"


def _entries() -> dict[str, list[tuple[str, bool]]]:
    """``{slug: [(dotted path, known module)]}`` in the order of the ``__all__`` lists."""
    entries: dict[str, list[tuple[str, bool]]] = {slug: [] for slug in PAGES}
    for name in rxflows.operators.__all__:
        entries["operators"].append((f"rxflows.operators.{name}", True))
    for name in rxflows.testing.__all__:
        entries["testing"].append((f"rxflows.testing.{name}", True))
    for name in rxflows.__all__:
        module = _module(rxflows, name)
        slug = page_of(module)
        known = slug != "core" or any(module.startswith(p) for p in PAGES["core"][2])
        entries[slug].append((f"rxflows.{name}", known))
    return entries


def api_pages() -> dict[str, str]:
    """``{"api/<slug>.md": markdown}`` for every page of the reference."""
    pages: dict[str, str] = {}
    for slug, items in _entries().items():
        title, intro, _ = PAGES[slug]
        lines = [f"# {title}", "", intro, ""]
        lines += [f"::: {path}\n" for path, known in items if known]
        others = [path for path, known in items if not known]
        if others:
            lines += ["## Other names", ""] + [f"::: {path}\n" for path in others]
        pages[f"api/{slug}.md"] = "\n".join(lines).rstrip("\n") + "\n"
    return pages
