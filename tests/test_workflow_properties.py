"""Properties of random workflows, checked against a simple model of the engine's rules."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from rxflows import AsyncWorkflowEngine, StepStatus, TriggerRule, WorkflowStep

from .support import run_virtual
from .workflow_support import Trace

RULES = list(TriggerRule)


@dataclass(frozen=True)
class Node:
    dependencies: tuple[int, ...]
    duration: int
    fails: bool
    rule: TriggerRule


@st.composite
def workflows(draw: st.DrawFn) -> list[Node]:
    count = draw(st.integers(1, 10))
    nodes: list[Node] = []
    for i in range(count):
        deps = draw(st.lists(st.integers(0, i - 1), max_size=3, unique=True)) if i else []
        nodes.append(
            Node(
                tuple(deps),
                draw(st.integers(0, 3)),
                draw(st.booleans()),
                draw(st.sampled_from(RULES)),
            )
        )
    return nodes


@dataclass
class Expected:
    status: StepStatus
    bad: bool  # failed, or skipped because of a failure
    start: float | None
    end: float
    output: str | None


def model(nodes: list[Node]) -> list[Expected]:
    """What the engine must do with unbounded concurrency: the rules, by the book."""
    out: list[Expected] = []
    for i, node in enumerate(nodes):
        deps = [out[d] for d in node.dependencies]
        ready_at = max((d.end for d in deps), default=0.0)
        ok = [d.status is StepStatus.SUCCEEDED for d in deps]
        bad = [d.bad for d in deps]
        rule = node.rule
        if not deps or rule in (TriggerRule.ALL_DONE, TriggerRule.ALWAYS):
            runs = True
        elif rule is TriggerRule.ALL_SUCCESS:
            runs = all(ok)
        elif rule is TriggerRule.ONE_SUCCESS:
            runs = any(ok)
        elif rule is TriggerRule.ONE_FAILED:
            runs = any(bad)
        else:
            runs = not any(bad)
        if not runs:
            first_bad = next((d for d in deps if d.bad), None)
            if rule is TriggerRule.ONE_SUCCESS:
                caused = first_bad is not None
            elif rule is TriggerRule.ONE_FAILED:
                caused = False
            else:  # all_success / none_failed: the first dependency that is not fine
                culprit = next(
                    d
                    for d in deps
                    if (
                        d.bad
                        if rule is TriggerRule.NONE_FAILED
                        else d.status is not StepStatus.SUCCEEDED
                    )
                )
                caused = culprit.bad
            out.append(Expected(StepStatus.SKIPPED, caused, None, ready_at, None))
            continue
        args = ",".join(str(d.output) for d in deps) if deps else "in"
        end = ready_at + node.duration
        if node.fails:
            out.append(Expected(StepStatus.FAILED, True, ready_at, end, None))
        else:
            out.append(Expected(StepStatus.SUCCEEDED, False, ready_at, end, f"s{i}({args})"))
    return out


def build(nodes: list[Node], trace: Trace, limit: int) -> AsyncWorkflowEngine:
    engine = AsyncWorkflowEngine(max_concurrent=limit)
    for i, node in enumerate(nodes):
        step = trace.step(
            f"s{i}", duration=node.duration, error=RuntimeError("x") if node.fails else None
        )
        engine.add_step(
            WorkflowStep(
                f"s{i}", step, [f"s{d}" for d in node.dependencies], trigger_rule=node.rule
            )
        )
    return engine


@settings(max_examples=100, deadline=None)
@given(nodes=workflows())
def test_unbounded_runs_follow_the_model_exactly(nodes: list[Node]) -> None:
    expected = model(nodes)
    trace = Trace()

    async def main() -> None:
        result = await build(nodes, trace, limit=len(nodes)).run("in")
        for i, want in enumerate(expected):
            got = result[f"s{i}"]
            assert got.status is want.status, (i, got, want)
            assert got.started_at == want.start
            assert got.finished_at == want.end
            if want.status is StepStatus.SUCCEEDED:
                assert got.output == want.output
            assert trace.calls[f"s{i}"] == (0 if want.start is None else 1)
        assert result.duration == max(e.end for e in expected)

    run_virtual(main)


@settings(max_examples=100, deadline=None)
@given(nodes=workflows(), limit=st.integers(1, 3))
def test_bounded_runs_respect_the_limit_and_the_dependencies(nodes: list[Node], limit: int) -> None:
    expected = model(nodes)
    trace = Trace()

    async def main() -> None:
        result = await build(nodes, trace, limit).run("in")
        assert trace.peak <= limit
        for i, node in enumerate(nodes):
            got = result[f"s{i}"]
            assert got.status is expected[i].status  # outcomes do not depend on the limit
            if got.started_at is not None:
                for d in node.dependencies:
                    dep = result[f"s{d}"]
                    assert dep.finished_at is not None
                    assert got.started_at >= dep.finished_at
            assert trace.calls[f"s{i}"] <= 1

    run_virtual(main)
