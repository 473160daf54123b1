"""Marble diagrams as pictures (rxflows.testing.marble_svg) and the failure pictures."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reactivex import operators as rx_ops

import rxflows.operators
from rxflows import operators as ops
from rxflows.testing import (
    MarbleRow,
    Notification,
    marble_rows,
    marble_svg,
    marbles,
    notifications_svg,
    parse_marbles,
)
from rxflows.testing._svg import SVG_DIR_ENV

SVG = "{http://www.w3.org/2000/svg}"
DOCS = Path(__file__).resolve().parent.parent / "docs"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # also proves the document is well-formed XML


def by_class(svg: str, css: str) -> list[ET.Element]:
    return [e for e in parse(svg).iter() if e.get("class") == css]


def event_frames(svg: str) -> list[int]:
    return [int(e.get("data-frame", "-1")) for e in by_class(svg, "marble-event")]


def event_xs(svg: str) -> list[float]:
    return [float(e.find(f"{SVG}circle").get("cx", "nan")) for e in by_class(svg, "marble-event")]  # type: ignore[union-attr]  # every event group holds a circle


def event_labels(svg: str) -> list[str]:
    return [e.findtext(f"{SVG}text", "") for e in by_class(svg, "marble-event")]


# --------------------------------------------------------------------------- one timeline


def test_values_completion_and_error_are_drawn() -> None:
    svg = marble_svg("-a-b-|")
    assert event_labels(svg) == ["a", "b"]
    assert event_frames(svg) == [1, 3]
    assert len(by_class(svg, "marble-complete")) == 1
    assert by_class(svg, "marble-error") == []
    assert by_class(svg, "marble-arrow") == []  # a completed stream has no arrow head

    failed = marble_svg("--x#")
    assert len(by_class(failed, "marble-error")) == 1
    assert by_class(failed, "marble-complete") == []

    endless = marble_svg("-a--")
    assert len(by_class(endless, "marble-arrow")) == 1


def test_x_positions_follow_time_at_frame_width() -> None:
    svg = marble_svg("a-b---c", frame_width=10)
    xs = event_xs(svg)
    assert [round(x - xs[0], 6) for x in xs] == [0, 20, 60]


def test_time_progressions_are_to_scale() -> None:
    svg = marble_svg("a 9ms b", frame_width=5)
    xs = event_xs(svg)
    assert event_frames(svg) == [0, 10]
    assert xs[1] - xs[0] == pytest.approx(50)


def test_groups_share_a_frame_and_are_stacked() -> None:
    svg = marble_svg("-(ab)-(c|)")
    assert event_frames(svg) == [1, 1, 6]
    circles = [e.find(f"{SVG}circle") for e in by_class(svg, "marble-event")]
    a, b, _ = circles
    assert a is not None
    assert b is not None
    assert a.get("cx") == b.get("cx")
    assert float(b.get("cy", "0")) < float(a.get("cy", "0"))  # stacked upwards
    # a completion in a value's frame is drawn just after that value's circle
    [bar] = by_class(svg, "marble-complete")
    assert float(bar.get("x1", "0")) > event_xs(svg)[2]


def test_names_in_brackets_and_long_labels() -> None:
    svg = marble_svg("-[ok]-[timeout]|")
    assert event_labels(svg) == ["ok", "tim…"]
    assert event_frames(svg) == [1, 6]


def test_hot_subscription_point_is_marked() -> None:
    svg = marble_svg("-a-^-b-|")
    assert len(by_class(svg, "marble-origin")) == 1
    assert event_frames(svg) == [-2, 2]  # frames relative to '^'
    assert by_class(marble_svg("-a-b-|"), "marble-origin") == []


def test_the_engine_parser_is_used() -> None:
    with pytest.raises(ValueError, match="never closed"):
        marble_svg("-a-(b")
    text = "-a-(bc)-#"
    assert event_frames(marble_svg(text)) == [n.frame for n in parse_marbles(text) if n.kind == "N"]


def test_output_is_deterministic() -> None:
    diagram = {"in": "-a-b|", "": "[ map(f) ]", "out": "-x-y|"}
    assert marble_svg(diagram, title="t") == marble_svg(dict(diagram), title="t")


# --------------------------------------------------------------------------- several rows


def test_named_rows_operator_box_and_subscriptions() -> None:
    svg = marble_svg(
        {
            "source": "-a-b-c|",
            "": "[ map_async(f, max_concurrent=2) ]",
            "result": "----yx(z|)",
            "sub": "^-----!",
        },
        values={"x": 1},
        title="map_async",
    )
    labels = [e.text for e in by_class(svg, "marble-label")]
    assert labels == ["source", "result", "sub"]
    [box] = by_class(svg, "marble-operator")
    assert box.tag == f"{SVG}rect"
    assert [e.text for e in by_class(svg, "marble-operator-text")] == [
        "map_async(f, max_concurrent=2)"
    ]
    assert len(by_class(svg, "marble-subscription")) == 1
    assert [e.text for e in by_class(svg, "marble-legend")] == ["x = 1"]
    assert [e.text for e in by_class(svg, "marble-title")] == ["map_async"]
    assert len(by_class(svg, "marble-event")) == 6
    # columns line up across rows: frame 4 of "result" is right of frame 3 of "source"
    xs = event_xs(svg)
    assert xs[3] > xs[1]


def test_docstring_style_blocks_are_read_row_by_row() -> None:
    rows = marble_rows(
        """
        source:  --a|          (a cold source)
        [ cache(c, "k") ]
        sub 1:   ^-----
        out 1:   ---(a|)       (a note
                               continued)
        per="item" (a caption)
        """
    )
    assert [(r.kind, r.label) for r in rows] == [
        ("events", "source"),
        ("operator", ""),
        ("subscription", "sub 1"),
        ("events", "out 1"),
        ("note", ""),
    ]
    assert rows[0].note == "(a cold source)"
    assert rows[1].text == 'cache(c, "k")'
    assert (rows[2].subscribed, rows[2].unsubscribed) == (0, None)
    assert rows[3].events == ((3, "N", "a"), (3, "C", ""))
    assert rows[3].note == "(a note continued)"
    assert rows[4].text == 'per="item" (a caption)'


def test_rows_can_be_given_directly() -> None:
    svg = marble_svg([MarbleRow("events", "x", events=((2, "N", "v"), (4, "E", "")))])
    assert event_frames(svg) == [2]
    assert len(by_class(svg, "marble-error")) == 1


def test_notifications_svg_draws_expected_and_actual() -> None:
    svg = notifications_svg(
        {
            "expected": [Notification.on_next(1, 10), Notification.on_completed(3)],
            "actual": [Notification.on_next(2, 10), Notification.on_error(2, ValueError("x"))],
        },
        values={"x": 10},
    )
    assert [e.text for e in by_class(svg, "marble-label")] == ["expected", "actual"]
    assert event_labels(svg) == ["x", "x"]
    assert event_frames(svg) == [1, 2]
    assert len(by_class(svg, "marble-complete")) == 1
    assert len(by_class(svg, "marble-error")) == 1


@given(
    st.lists(st.sampled_from("-abc"), min_size=1, max_size=30).map("".join),
    st.sampled_from(["", "|", "#"]),
)
def test_any_diagram_draws_one_circle_per_value(body: str, end: str) -> None:
    text = body + end
    svg = marble_svg(text, frame_width=8)
    values = [n for n in parse_marbles(text) if n.kind == "N"]
    assert event_frames(svg) == [n.frame for n in values]
    xs = event_xs(svg)
    if values:
        # one frame is 8 px: every circle sits at its frame
        assert [round((x - xs[0]) / 8) for x in xs] == [n.frame - values[0].frame for n in values]
        assert [x - xs[0] for x in xs] == [8.0 * (n.frame - values[0].frame) for n in values]


# --------------------------------------------------------------------------- failures


def test_failure_writes_a_picture_and_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SVG_DIR_ENV, str(tmp_path))
    with pytest.raises(AssertionError) as failure, marbles() as m:
        m.expect(m.cold("-a-b|").pipe(rx_ops.map(str.upper))).to_be("-A--B|")
    [picture] = tmp_path.glob("*.svg")
    assert picture.name.startswith("test_failure_writes_a_picture_and_names_it-")
    message = str(failure.value)
    assert message.endswith(f"picture of expected vs actual ({SVG_DIR_ENV}): {picture}")
    svg = picture.read_text()
    assert [e.text for e in by_class(svg, "marble-label")] == ["expected", "actual"]
    assert event_frames(svg) == [1, 4, 1, 3]


def test_no_picture_without_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SVG_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssertionError) as failure, marbles() as m:
        m.expect(m.cold("-a|")).to_be("--a|")
    assert "picture" not in str(failure.value)
    assert list(tmp_path.iterdir()) == []


def test_a_passing_test_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SVG_DIR_ENV, str(tmp_path))
    with marbles() as m:
        m.expect(m.cold("-a|")).to_be("-a|")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- the operators


def _pictures() -> ModuleType:
    path = DOCS / "gen" / "marble_pictures.py"
    spec = importlib.util.spec_from_file_location("docs_gen_marble_pictures", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_operator_has_a_picture_from_its_docstring() -> None:
    module = _pictures()
    pictures = module.operator_pictures()
    assert sorted(pictures) == sorted(rxflows.operators.__all__)
    for name, svg in pictures.items():
        assert by_class(svg, "marble-operator"), name  # the operator box
        assert by_class(svg, "marble-event") or by_class(svg, "marble-error"), name
        assert [e.text for e in by_class(svg, "marble-title")] == [f"ops.{name}"]
    text = module.diagram_text(rxflows.operators.map_async.__doc__ or "")
    assert text.splitlines()[0].startswith("source:  -a-b-c|")


def _diagram(name: str) -> dict[str, str]:
    """``{label or kind: marbles}`` of an operator's docstring diagram."""
    text = _pictures().diagram_text(getattr(rxflows.operators, name).__doc__ or "")
    rows = marble_rows(text)
    return {row.label or f"row{i}": row.marbles for i, row in enumerate(rows)}


def test_the_map_async_picture_is_a_true_marble_test() -> None:
    diagram = _diagram("map_async")
    work = {"a": 4, "b": 1, "c": 1}  # frames, as the diagram's note says

    async def f(item: str) -> str:
        await asyncio.sleep(work[item] / 1000)
        return {"a": "x", "b": "y", "c": "z"}[item]

    with marbles() as m:
        source = m.cold(diagram["source"])
        m.expect(source.pipe(ops.map_async(f, max_concurrent=2))).to_be(diagram["result"])


def test_the_retry_picture_is_a_true_marble_test() -> None:
    rows = list(_diagram("retry").values())
    with marbles() as m:
        source = m.cold(rows[0])
        m.expect(source.pipe(ops.retry(max_attempts=3, delay=0.002, backoff=1))).to_be(rows[2])
