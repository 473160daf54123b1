"""The benchmarks chart of the docs (bench/_chart.py), on sample data."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from bench import _chart

SVG = "{http://www.w3.org/2000/svg}"


def row(label: str, ratio: float, **extra: Any) -> dict[str, Any]:
    return {"label": label, "kind": "candidate", "ratio": ratio, **extra}


def result(benchmarks: dict[str, list[dict[str, Any]]], when: str = "2026-11-29") -> dict[str, Any]:
    return {
        "generated": when,
        "settings": {"quick": False, "rounds": 5},
        "machine": {"nproc": 2},
        "benchmarks": {
            name: {"title": f"{name} title", "rows": rows} for name, rows in benchmarks.items()
        },
    }


SAMPLE = result(
    {
        "cache": [
            {"label": "baseline", "kind": "baseline", "ratio": 1.0},
            row(
                "get hit",
                0.5,
                target="ratio <= 1.5",
                target_metric="ratio",
                target_limit=1.5,
                met=True,
            ),
            row(
                "get_or_set hit",
                2.0,
                target="ratio <= 1.5",
                target_metric="ratio",
                target_limit=1.5,
                met=False,
            ),
        ],
        "streaming-memory": [
            row(
                "StreamingFlow",
                1.2,
                target="RSS growth < 20 MB (worst run)",
                target_metric="rss_growth_mb",
                target_limit=20.0,
                met=True,
            ),
        ],
        "metrics": [row("record", 3.0)],
    }
)


def bars(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    return [e for e in root.iter(f"{SVG}rect") if e.get("class") == "bar"]


def test_one_bar_per_candidate_row_coloured_by_verdict() -> None:
    data = _chart.merge(None, SAMPLE)
    svg = _chart.render(data)
    found = bars(svg)
    assert len(found) == 4  # the baseline row has no bar
    colours = [bar.get("fill") for bar in found]
    # cache: met (green), missed (red); RSS target is not a ratio target (grey); none (grey)
    assert colours == ["#2e9d57", "#d64541", "#9aa0a6", "#9aa0a6"]
    assert svg.count('class="target"') == 2  # ticks only for ratio targets
    assert "[RSS growth &lt; 20 MB: met]" in svg


def test_bar_lengths_are_log_scaled_around_the_baseline() -> None:
    svg = _chart.render(_chart.merge(None, SAMPLE))
    widths = {
        bar.findtext(f"{SVG}title", "").split(": ")[1]: float(bar.get("width", "0"))
        for bar in bars(svg)
    }
    start = _chart._x(_chart._LOW)
    one = _chart._x(1.0) - start
    # 0.5 and 2.0 are equally far below and above the line at 1 (log scale)
    assert abs((widths["get hit"] - one) + (widths["get_or_set hit"] - one)) < 0.2
    assert widths["get hit"] < one < widths["get_or_set hit"]
    tick = re.search(r'class="target" x1="([0-9.]+)"', svg)
    assert tick is not None
    assert abs(float(tick.group(1)) - _chart._x(1.5)) < 0.1


def test_rendering_is_deterministic_and_clamps_extremes() -> None:
    data = _chart.merge(None, result({"x": [row("tiny", 0.0001), row("huge", 500.0)]}))
    assert _chart.render(data) == _chart.render(json.loads(json.dumps(data)))
    widths = [float(bar.get("width", "0")) for bar in bars(_chart.render(data))]
    assert widths[0] == 0.0
    assert widths[1] == _chart._PLOT


def test_a_run_of_one_benchmark_replaces_only_its_rows(tmp_path: Path) -> None:
    data, chart = tmp_path / "b.json", tmp_path / "b.svg"
    _chart.update(SAMPLE, data_path=data, chart_path=chart)
    _chart.update(
        result({"cache": [row("get hit", 0.7)]}, "later"), data_path=data, chart_path=chart
    )
    merged = json.loads(data.read_text())
    assert merged["benchmarks"]["cache"]["measured"] == "later"
    assert [r["label"] for r in merged["benchmarks"]["cache"]["rows"]] == ["get hit"]
    assert merged["benchmarks"]["metrics"]["rows"][0]["ratio"] == 3.0  # kept
    assert len(bars(chart.read_text())) == 3


def test_the_committed_chart_is_drawn_from_the_committed_data() -> None:
    data = json.loads(_chart.DATA.read_text(encoding="utf-8"))
    assert _chart.CHART.read_text(encoding="utf-8") == _chart.render(data)
    assert len(bars(_chart.CHART.read_text(encoding="utf-8"))) >= 5
