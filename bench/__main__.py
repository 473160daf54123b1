"""Command line: ``python -m bench [--quick] [--rounds N] [NAME ...]``.

Runs the selected benchmarks (all by default), prints one table per benchmark
and a summary of the targets, and writes every raw timing to
``bench/results/latest.json`` (or ``--output``). A full-size run also redraws the
docs' chart of the ratios (``docs/img/benchmarks.svg``, see ``bench/_chart.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from . import registry
from ._harness import Report, Row, Settings

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
FULL_ROUNDS = 5
QUICK_ROUNDS = 2


def parse_args(argv: Sequence[str] | None, names: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="rxflows benchmarks: ratios against hand-written baselines, same run.",
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(names)} (all)"
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"small sizes, {QUICK_ROUNDS} rounds (smoke test)"
    )
    parser.add_argument("--rounds", type=int, help="measured rounds (after 1 warm-up round)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 1 when a target is missed"
    )
    parser.add_argument(
        "--no-chart",
        action="store_true",
        help="do not update docs/img/benchmarks.svg (never updated by --quick runs)",
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in names]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)} (choose from {', '.join(names)})")
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be >= 1")
    return args


def version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return []


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "nproc": len(affinity(0)) if affinity is not None else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "uvloop": version("uvloop"),
        "reactivex": version("reactivex"),
        "rxflows": version("rxflows"),
        "psutil": version("psutil"),
    }


def duration(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.3f} s"


def rate(items_per_s: float | None) -> str:
    if items_per_s is None:
        return ""
    if items_per_s >= 1e6:
        return f"{items_per_s / 1e6:.2f} M/s"
    return f"{items_per_s / 1e3:.1f} k/s"


def details(row: Row) -> str:
    parts: list[str] = []
    for name, stats in row.metrics.items():
        if name == "rss_growth_mb":
            parts.append(f"RSS +{stats['median']:.1f} MB (max {stats['max']:.1f})")
        elif name == "read_ahead_items":
            parts.append(f"read-ahead {stats['median']:.0f}")
        else:
            parts.append(f"{name} {stats['median']:.3g}")
    return ", ".join(parts)


def verdict(row: Row) -> str:
    if row.met is None:
        return ""
    return "met" if row.met else "MISSED"


def table(report: Report) -> str:
    """The report as an aligned text table."""
    header = ("row", "median", "baseline", "ratio", "per-round", "items/s", "details", "target")
    lines: list[tuple[str, ...]] = [header]
    for row in report.rows:
        target = f"{row.target}: {verdict(row)}" if row.target else ""
        lines.append(
            (
                row.label,
                duration(row.candidate_median_s),
                duration(row.baseline_median_s),
                f"{row.ratio:.2f}",
                f"{row.paired_ratio_min:.2f}-{row.paired_ratio_max:.2f}",
                rate(row.items_per_s),
                details(row),
                target,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    right = {1, 2, 3, 4, 5}
    out = [f"== {report.name}: {report.title}"]
    for number, line in enumerate(lines):
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ]
        out.append("  " + "  ".join(cells).rstrip())
        if number == 0:
            out.append("  " + "  ".join("-" * width for width in widths))
    out.extend(f"  note: {note}" for note in report.notes)
    return "\n".join(out)


class Progress:
    """Shows what is running on a terminal (one overwritten line); silent otherwise."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tty = sys.stderr.isatty()
        self.width = 0

    def __call__(self, message: str) -> None:
        if self.tty:
            text = f"[{self.name}] {message}"
            sys.stderr.write("\r" + text.ljust(self.width))
            sys.stderr.flush()
            self.width = len(text)

    def clear(self) -> None:
        if self.tty and self.width:
            sys.stderr.write("\r" + " " * self.width + "\r")
            sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    benchmarks = registry()
    args = parse_args(argv, list(benchmarks))
    if args.list:
        for name, benchmark in benchmarks.items():
            print(f"{name:18} {benchmark.summary}")
        return 0
    rounds = args.rounds or (QUICK_ROUNDS if args.quick else FULL_ROUNDS)
    settings = Settings(quick=args.quick, rounds=rounds)
    selected = args.names or list(benchmarks)
    started = datetime.now(UTC)
    info = machine()
    load_before = load_average()
    print(
        f"rxflows benchmarks, {started:%Y-%m-%d %H:%M} UTC: {info['nproc']} cores ({info['cpu']}), "
        f"Python {info['python']}, uvloop {info['uvloop']}, reactivex {info['reactivex']}; "
        f"{rounds} rounds after a warm-up round (none for fresh-process runs)"
        f"{', quick sizes' if args.quick else ''}"
    )
    reports: dict[str, Any] = {}
    verdicts: list[tuple[str, str, Row]] = []
    wall = time.perf_counter()
    for name in selected:
        progress = Progress(name)
        began = time.perf_counter()
        report = benchmarks[name].run(settings, progress)
        progress.clear()
        elapsed = time.perf_counter() - began
        print()
        print(table(report))
        print(f"  ({elapsed:.0f} s)")
        sys.stdout.flush()
        data = report.to_json()
        data["elapsed_s"] = elapsed
        reports[name] = data
        verdicts += [(name, row.label, row) for row in report.rows if row.met is not None]
    total = time.perf_counter() - wall
    print()
    print("Targets:")
    for name, label, row in verdicts:
        print(f"  {name}: {label}: {row.target} -> {row.target_value:.3g}: {verdict(row)}")
    if not verdicts:
        print("  (none in the selected benchmarks)")
    result = {
        "generated": started.isoformat(timespec="seconds"),
        "command": ["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)],
        "machine": info,
        "load_average": {"before": load_before, "after": load_average()},
        "settings": {
            "quick": settings.quick,
            "rounds": settings.rounds,
            "warmup_rounds": settings.warmup_rounds,
        },
        "elapsed_s": total,
        "benchmarks": reports,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"\nRaw timings: {args.output} ({total:.0f} s in all)")
    if not settings.quick and not args.no_chart:
        from . import _chart

        chart_data, chart = _chart.update(result)
        print(f"Chart: {chart} (from {chart_data})")
    missed = any(row.met is False for _, _, row in verdicts)
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
