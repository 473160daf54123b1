"""The benchmark ratios as a picture: a hand-written SVG bar chart for the docs.

``python -m bench`` (``make bench``) calls :func:`update` after a full-size run: the
rows of the benchmarks that ran replace their old rows in
``docs/img/benchmarks.json`` (so running one benchmark updates its bars only), and
the chart ``docs/img/benchmarks.svg`` is drawn again from that file.

One bar per row that compares rxflows with its baseline (``kind`` "candidate"):
the ratio of the medians, candidate / baseline, on a log scale, so 0.5 (twice as
fast) and 2 (twice as slow) are as far from the baseline line at 1. A row with a
ratio target has a tick at its limit. Green: target met; red: missed; grey: no
target, or a target on another figure (e.g. RSS), said in the label.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

__all__ = ["CHART", "DATA", "chart_rows", "merge", "render", "update"]

DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
DATA = DOCS_IMG / "benchmarks.json"
CHART = DOCS_IMG / "benchmarks.svg"

_LEFT = 470.0  # room for the labels
_PLOT = 380.0
_RIGHT = 90.0
_BAR = 16.0
_GAP = 6.0
_TOP = 70.0
_LOW, _HIGH = 0.01, 30.0  # the log axis
_COLOURS = {True: "#2e9d57", False: "#d64541", None: "#9aa0a6"}


def merge(previous: Mapping[str, Any] | None, result: Mapping[str, Any]) -> dict[str, Any]:
    """The chart data with the benchmarks of ``result`` (a bench JSON) replaced.

    Example:
        >>> merged = merge(None, {"generated": "2026-11-29T14:29:00+00:00",
        ...     "settings": {"quick": False, "rounds": 5}, "machine": {"nproc": 2},
        ...     "benchmarks": {"cache": {"title": "t", "rows": []}}})
        >>> sorted(merged["benchmarks"])
        ['cache']
    """
    data: dict[str, Any] = {"benchmarks": {}}
    if previous:
        data["benchmarks"].update(previous.get("benchmarks", {}))
    for name, report in result.get("benchmarks", {}).items():
        data["benchmarks"][name] = {
            "title": report.get("title", name),
            "measured": result.get("generated"),
            "rounds": result.get("settings", {}).get("rounds"),
            "nproc": result.get("machine", {}).get("nproc"),
            "rows": [
                {
                    key: row.get(key)
                    for key in (
                        "label",
                        "kind",
                        "ratio",
                        "paired_ratio_min",
                        "paired_ratio_max",
                        "target",
                        "target_metric",
                        "target_limit",
                        "target_value",
                        "met",
                    )
                }
                for row in report.get("rows", [])
            ],
        }
    return data


def chart_rows(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The bars, benchmarks by name, rows in their order: the candidate rows with a ratio."""
    bars: list[dict[str, Any]] = []
    for name, bench in sorted(data.get("benchmarks", {}).items()):
        for row in bench.get("rows", []):
            if row.get("kind") != "candidate" or not row.get("ratio"):
                continue
            bars.append({"benchmark": name, **row})
    return bars


def _x(ratio: float) -> float:
    clamped = min(max(ratio, _LOW), _HIGH)
    span = math.log10(_HIGH) - math.log10(_LOW)
    return _LEFT + (math.log10(clamped) - math.log10(_LOW)) / span * _PLOT


def _fmt(value: float) -> str:
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _ratio_text(ratio: float) -> str:
    return f"{ratio:.2f}" if ratio < 10 else f"{ratio:.0f}"


def render(data: Mapping[str, Any], *, title: str = "rxflows / baseline (lower is faster)") -> str:
    """The chart as an SVG document (deterministic: same data, same bytes).

    Example:
        >>> svg = render({"benchmarks": {"cache": {"rows": [
        ...     {"label": "get", "kind": "candidate", "ratio": 0.5, "target": "ratio <= 1.5",
        ...      "target_metric": "ratio", "target_limit": 1.5, "met": True}]}}})
        >>> svg.count('class="bar"'), svg.count('class="target"')
        (1, 1)
    """
    bars = chart_rows(data)
    height = _TOP + len(bars) * (_BAR + _GAP) + 46
    width = _LEFT + _PLOT + _RIGHT
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_fmt(width)}" '
        f'height="{_fmt(height)}" viewBox="0 0 {_fmt(width)} {_fmt(height)}" role="img" '
        f'aria-label="{escape(title)}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="12" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
        '<text x="12" y="40" fill="#555">bars: the ratio of the medians, candidate / '
        "hand-written baseline, measured in the same run (log scale)</text>",
        '<text x="12" y="56" fill="#555">black ticks: the ratio targets; green: met, red: '
        "missed, grey: no ratio target</text>",
    ]
    bottom = _TOP + len(bars) * (_BAR + _GAP)
    for tick in (0.01, 0.1, 0.5, 1.0, 2.0, 10.0, 30.0):
        x = _x(tick)
        stroke = "#333" if tick == 1.0 else "#ddd"
        out.append(
            f'<line class="grid" x1="{_fmt(x)}" y1="{_fmt(_TOP - 6)}" x2="{_fmt(x)}" '
            f'y2="{_fmt(bottom)}" stroke="{stroke}"/>'
        )
        out.append(
            f'<text x="{_fmt(x)}" y="{_fmt(bottom + 16)}" text-anchor="middle" '
            f'fill="#555">{tick:g}</text>'
        )
    out.append(
        f'<text x="{_fmt(_x(1.0))}" y="{_fmt(bottom + 32)}" text-anchor="middle" '
        'fill="#333">1 = as fast as the baseline</text>'
    )
    for index, bar in enumerate(bars):
        y = _TOP + index * (_BAR + _GAP)
        ratio = float(bar["ratio"])
        ratio_target = bar.get("target_metric") == "ratio" and bar.get("target_limit")
        met = bar.get("met") if ratio_target else None
        colour = _COLOURS[met]
        label = f"{bar['benchmark']}: {bar['label']}"
        if bar.get("target") and not ratio_target:
            verdict = (
                "met" if bar.get("met") is True else "missed" if bar.get("met") is False else ""
            )
            label += f" [{bar['target'].split(' (')[0]}: {verdict}]"
        if len(label) > 68:
            label = label[:67] + "…"
        x0, x1 = _x(_LOW), _x(ratio)
        out.append(
            f'<text x="{_fmt(_LEFT - 8)}" y="{_fmt(y + _BAR - 4)}" text-anchor="end">'
            f"{escape(label)}</text>"
        )
        out.append(
            f'<rect class="bar" x="{_fmt(x0)}" y="{_fmt(y)}" width="{_fmt(x1 - x0)}" '
            f'height="{_fmt(_BAR)}" fill="{colour}"><title>{escape(label)}: '
            f"{_ratio_text(ratio)}</title></rect>"
        )
        out.append(
            f'<text class="value" x="{_fmt(x1 + 4)}" y="{_fmt(y + _BAR - 4)}">'
            f"{_ratio_text(ratio)}</text>"
        )
        if ratio_target:
            tx = _x(float(bar["target_limit"]))
            out.append(
                f'<line class="target" x1="{_fmt(tx)}" y1="{_fmt(y - 2)}" x2="{_fmt(tx)}" '
                f'y2="{_fmt(y + _BAR + 2)}" stroke="#111" stroke-width="2.5"/>'
            )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def update(
    result: Mapping[str, Any], *, data_path: Path = DATA, chart_path: Path = CHART
) -> Sequence[Path]:
    """Merge ``result`` into the chart data and redraw the chart; returns both paths."""
    previous = json.loads(data_path.read_text(encoding="utf-8")) if data_path.exists() else None
    data = merge(previous, result)
    data_path.parent.mkdir(parents=True, exist_ok=True)
    data_path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    chart_path.write_text(render(data), encoding="utf-8")
    return (data_path, chart_path)
