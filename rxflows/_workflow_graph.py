"""Validating a workflow's graph and compiling it into a plan a run can execute."""

from __future__ import annotations

import difflib
import graphlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from ._errors import ConfigurationError, WorkflowCycleError, WorkflowValidationError
from ._workflow_model import TriggerRule, WorkflowResult, WorkflowStep

__all__ = ["Plan", "compile_plan", "to_mermaid"]


@dataclass(frozen=True, slots=True)
class Plan:
    """A validated graph, by step index (the order the steps were added)."""

    steps: tuple[WorkflowStep, ...]
    names: tuple[str, ...]
    deps: tuple[tuple[int, ...], ...]
    """Per step: the indices of its dependencies, in declared order."""
    dependents: tuple[tuple[int, ...], ...]
    """Per step: the indices of the steps that depend on it, in the order they were added."""
    roots: tuple[int, ...]
    """Steps without dependencies, in the order they were added."""
    index: Mapping[str, int]
    """Step name to index."""


def _cycle_message(cycle: Sequence[str], position: dict[str, int]) -> tuple[str, tuple[str, ...]]:
    loop = list(cycle[:-1]) if len(cycle) > 1 and cycle[0] == cycle[-1] else list(cycle)
    first = min(range(len(loop)), key=lambda k: position.get(loop[k], 0))
    loop = loop[first:] + loop[:first]
    path = (*loop, loop[0])
    message = (
        f"the workflow has a dependency cycle: {' -> '.join(path)} (a -> b: b depends on a), "
        "so none of these steps can ever start; remove one of these dependencies"
    )
    return message, path


def compile_plan(steps: Sequence[WorkflowStep]) -> Plan:
    """Validate ``steps`` and index them.

    Raises:
        WorkflowValidationError: No steps, or dependencies on unknown steps (every
            one is listed, each with the closest existing name).
        WorkflowCycleError: The dependencies form a cycle (its full path is given).
    """
    if not steps:
        raise WorkflowValidationError(
            "the workflow has no steps: add them with engine.add_step(WorkflowStep(name, func))"
        )
    names = tuple(step.name for step in steps)
    position = {name: index for index, name in enumerate(names)}
    problems: list[str] = []
    for step in steps:
        for dependency in step.dependencies:
            if dependency not in position:
                close = difflib.get_close_matches(dependency, names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.append(
                    f"step {step.name!r} depends on {dependency!r}, which is not a step of "
                    f"this workflow{hint}"
                )
    if problems:
        message = (
            problems[0]
            if len(problems) == 1
            else f"the workflow has {len(problems)} unknown dependencies: " + "; ".join(problems)
        )
        raise WorkflowValidationError(message, problems=tuple(problems))

    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for step in steps:
        sorter.add(step.name, *step.dependencies)
    try:
        sorter.prepare()
    except graphlib.CycleError as error:
        message, path = _cycle_message(error.args[1], position)
        raise WorkflowCycleError(message, cycle=path) from None

    deps = tuple(tuple(position[d] for d in step.dependencies) for step in steps)
    dependents: list[list[int]] = [[] for _ in steps]
    for index, step_deps in enumerate(deps):
        for d in step_deps:
            dependents[d].append(index)
    return Plan(
        steps=tuple(steps),
        names=names,
        deps=deps,
        dependents=tuple(tuple(d) for d in dependents),
        roots=tuple(i for i, d in enumerate(deps) if not d),
        index=MappingProxyType(position),
    )


_DIRECTIONS = ("TD", "TB", "BT", "LR", "RL")

_CLASSES = {  # by status value, plus "restored" (succeeded from a checkpoint)
    "succeeded": "fill:#d4edda,stroke:#28a745",
    "restored": "fill:#d1ecf1,stroke:#17a2b8",
    "failed": "fill:#f8d7da,stroke:#dc3545",
    "timed_out": "fill:#fff3cd,stroke:#fd7e14",
    "cancelled": "fill:#e2e3e5,stroke:#6c757d",
    "skipped": "fill:#f8f9fa,stroke:#adb5bd,stroke-dasharray: 5 5",
}


def _label(text: str) -> str:
    return (
        text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    )


def _node_label(step: WorkflowStep) -> str:
    lines = [_label(step.name)]
    details: list[str] = []
    if step.timeout is not None:
        details.append(f"timeout {step.timeout:g}s")
    if step.retry is not None:
        details.append(f"retry x{step.retry.max_attempts}")
    if step.breaker is not None:
        details.append(f"breaker {_label(step.breaker.name)}")
    if details:
        lines.append(", ".join(details))
    if step.trigger_rule is not TriggerRule.ALL_SUCCESS:
        lines.append(f"[{step.trigger_rule.value}]")
    return "<br/>".join(lines)


def to_mermaid(
    steps: Sequence[WorkflowStep], *, direction: str = "TD", result: WorkflowResult | None = None
) -> str:
    """The steps as a Mermaid flowchart (see ``AsyncWorkflowEngine.to_mermaid``)."""
    if direction not in _DIRECTIONS:
        text = str(direction)
        close = [d for d in _DIRECTIONS if d == text.upper()] or difflib.get_close_matches(
            text, _DIRECTIONS, n=1
        )
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigurationError(
            f"direction must be one of {', '.join(map(repr, _DIRECTIONS))}, got "
            f"{direction!r}{hint}",
            field="direction",
            value=direction,
        )
    ids = {step.name: f"s{index}" for index, step in enumerate(steps)}
    lines = [f"flowchart {direction}"]
    for step in steps:
        lines.append(f'    {ids[step.name]}["{_node_label(step)}"]')
    for step in steps:
        for dependency in step.dependencies:
            source = ids.get(dependency)
            if source is None:  # unknown: shown, so the diagram helps find it
                source = f"missing_{len(ids)}"
                ids[dependency] = source
                lines.append(f'    {source}["{_label(dependency)}<br/>(missing)"]')
            lines.append(f"    {source} --> {ids[step.name]}")
    if result is not None:
        used: dict[str, list[str]] = {}
        for step in steps:
            outcome = result.steps.get(step.name)
            if outcome is not None:
                kind = "restored" if outcome.restored else outcome.status.value
                used.setdefault(kind, []).append(ids[step.name])
        for kind, style in _CLASSES.items():
            if kind in used:
                lines.append(f"    classDef {kind} {style}")
                lines.append(f"    class {','.join(used[kind])} {kind}")
    return "\n".join(lines) + "\n"
