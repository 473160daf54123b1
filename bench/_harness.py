"""The measuring machinery shared by every benchmark.

A benchmark is a set of *variants* (one workload each, e.g. "the hand-written
baseline" and "ParallelFlow") and a set of *rows*, each comparing one variant with
a baseline variant measured in the same run. :func:`measure` runs every variant
once as a warm-up, then ``rounds`` times, interleaved: each round runs every
variant once, in an order rotated by one each round so no variant always goes
first (or always runs right after the heaviest one). ``gc.collect()`` runs before
every run. :func:`summarize` turns the raw runs into rows: the median of each
side and the ratio candidate/baseline of the medians, plus the spread of the
per-round ratios as a noise indicator.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = [
    "Benchmark",
    "LoopFactory",
    "Progress",
    "Report",
    "Row",
    "RowSpec",
    "Run",
    "Sample",
    "Settings",
    "Target",
    "Variant",
    "measure",
    "run_on_loop",
    "summarize",
]

LoopFactory = Callable[[], asyncio.AbstractEventLoop]
Progress = Callable[[str], None]
RowKind = Literal["baseline", "candidate", "reference"]


@dataclass(frozen=True, slots=True)
class Settings:
    """How much work a run does: ``quick`` picks the small sizes."""

    quick: bool
    rounds: int
    warmup_rounds: int = 1


@dataclass(slots=True)
class Sample:
    """One timed run: its wall time and any other figure it measured (e.g. RSS)."""

    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    trace: list[float] = field(default_factory=list)
    """A series sampled during the run (e.g. RSS growth in MB every N items)."""


@dataclass(frozen=True, slots=True)
class Variant:
    """A workload that can be run (and timed) on demand; ``run`` does one run."""

    key: str
    description: str
    run: Callable[[], Sample]


@dataclass(frozen=True, slots=True)
class Run:
    """A raw record: which variant, which round (-1 for warm-up), which position."""

    variant: str
    round: int
    position: int
    seconds: float
    metrics: dict[str, float]
    trace: list[float]


@dataclass(frozen=True, slots=True)
class Target:
    """A goal a row should meet: ``value(metric) <= limit`` (``<`` when ``strict``).

    ``metric`` is ``"ratio"`` for the time ratio, or the name of a sample metric,
    in which case the worst (largest) value over the measured rounds is judged.
    """

    metric: str
    limit: float
    text: str
    strict: bool = False

    def met_by(self, value: float) -> bool:
        """Whether ``value`` meets the target."""
        return value < self.limit if self.strict else value <= self.limit


@dataclass(frozen=True, slots=True)
class RowSpec:
    """A row of the table: ``candidate`` compared with ``baseline`` (variant keys)."""

    label: str
    candidate: str
    baseline: str
    kind: RowKind = "candidate"
    target: Target | None = None
    items: int | None = None
    """Items one run processes; when set, the row shows items/s."""
    metrics: tuple[str, ...] = ()
    """Sample metrics to show (median and max over the rounds)."""


@dataclass(slots=True)
class Row:
    """A computed row: medians, the ratio, its per-round spread and the verdict."""

    label: str
    kind: RowKind
    candidate: str
    baseline: str
    candidate_median_s: float
    baseline_median_s: float
    ratio: float
    paired_ratio_min: float
    paired_ratio_max: float
    items_per_s: float | None
    metrics: dict[str, dict[str, float]]
    target: str | None
    target_value: float | None
    met: bool | None
    target_metric: str | None = None
    """What the target judges: "ratio" or a sample metric (for the docs chart)."""
    target_limit: float | None = None


@dataclass(slots=True)
class Report:
    """Everything one benchmark measured, raw runs included."""

    name: str
    title: str
    parameters: dict[str, Any]
    variants: dict[str, str]
    rows: list[Row]
    runs: list[Run]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict of the report."""
        return {
            "name": self.name,
            "title": self.title,
            "parameters": self.parameters,
            "variants": self.variants,
            "rows": [asdict(row) for row in self.rows],
            "runs": [asdict(run) for run in self.runs],
            "notes": self.notes,
        }


@dataclass(frozen=True, slots=True)
class Benchmark:
    """A named benchmark: ``run(settings, progress)`` measures and returns its report."""

    name: str
    summary: str
    run: Callable[[Settings, Progress | None], Report]


def run_on_loop(
    main: Callable[[], Coroutine[Any, Any, Sample]],
    loop_factory: LoopFactory = asyncio.new_event_loop,
) -> Sample:
    """Run ``main()`` on a fresh loop from ``loop_factory`` and close the loop.

    The coroutine times itself (``time.perf_counter`` around the work), so loop
    creation and shutdown are not part of the figure.
    """
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(main())


def measure(
    variants: Sequence[Variant],
    settings: Settings,
    progress: Progress | None = None,
) -> list[Run]:
    """Run every variant ``warmup_rounds`` + ``rounds`` times, interleaved.

    Round ``r`` runs the variants rotated left by ``r``; warm-up runs are recorded
    with ``round=-1`` and left out of the medians.
    """
    runs: list[Run] = []
    schedule = [-1] * settings.warmup_rounds + list(range(settings.rounds))
    for index, round_number in enumerate(schedule):
        shift = index % len(variants)
        order = [*variants[shift:], *variants[:shift]]
        for position, variant in enumerate(order):
            if progress is not None:
                label = "warm-up" if round_number < 0 else f"round {round_number + 1}"
                progress(f"{label}: {variant.key}")
            gc.collect()
            sample = variant.run()
            runs.append(
                Run(
                    variant.key,
                    round_number,
                    position,
                    sample.seconds,
                    dict(sample.metrics),
                    list(sample.trace),
                )
            )
    gc.collect()
    return runs


def _measured(runs: Sequence[Run], key: str) -> list[Run]:
    return [run for run in runs if run.variant == key and run.round >= 0]


def summarize(specs: Sequence[RowSpec], runs: Sequence[Run]) -> list[Row]:
    """Compute each row's medians, ratio, per-round ratio spread and target verdict."""
    rows: list[Row] = []
    for spec in specs:
        candidate = _measured(runs, spec.candidate)
        baseline = _measured(runs, spec.baseline)
        if not candidate or not baseline:
            raise ValueError(f"row {spec.label!r}: no measured runs")
        cand_median = statistics.median(run.seconds for run in candidate)
        base_median = statistics.median(run.seconds for run in baseline)
        ratio = cand_median / base_median
        by_round = {run.round: run.seconds for run in baseline}
        paired = [run.seconds / by_round[run.round] for run in candidate if run.round in by_round]
        metrics: dict[str, dict[str, float]] = {}
        for name in spec.metrics:
            values = [run.metrics[name] for run in candidate if name in run.metrics]
            if values:
                metrics[name] = {"median": statistics.median(values), "max": max(values)}
        target_value: float | None = None
        met: bool | None = None
        if spec.target is not None:
            if spec.target.metric == "ratio":
                target_value = ratio
            else:
                target_value = max(run.metrics[spec.target.metric] for run in candidate)
            met = spec.target.met_by(target_value)
        rows.append(
            Row(
                label=spec.label,
                kind=spec.kind,
                candidate=spec.candidate,
                baseline=spec.baseline,
                candidate_median_s=cand_median,
                baseline_median_s=base_median,
                ratio=ratio,
                paired_ratio_min=min(paired) if paired else ratio,
                paired_ratio_max=max(paired) if paired else ratio,
                items_per_s=spec.items / cand_median if spec.items else None,
                metrics=metrics,
                target=spec.target.text if spec.target is not None else None,
                target_value=target_value,
                met=met,
                target_metric=spec.target.metric if spec.target is not None else None,
                target_limit=spec.target.limit if spec.target is not None else None,
            )
        )
    return rows
