"""Marble diagrams as pictures: a small, deterministic SVG renderer.

The rows are read with the marble engine's own parsers
(:func:`~rxflows.testing.parse_marbles` and
:func:`~rxflows.testing.parse_subscription_marbles`), so a picture shows exactly
what a marble test would play or expect.

Example:
    >>> svg = marble_svg({"source": "-a-b-c-|", "": "[ map(x * 10) ]", "result": "-x-y-z-|"})
    >>> svg.count('class="marble-event"')
    6
"""

from __future__ import annotations

import hashlib
import os
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from html import escape
from pathlib import Path
from typing import Any, Literal

from ._marbles import (
    DEFAULT_FRAME,
    Notification,
    parse_marbles,
    parse_subscription_marbles,
)

__all__ = [
    "SVG_DIR_ENV",
    "MarbleRow",
    "marble_rows",
    "marble_svg",
    "notifications_svg",
    "write_failure_svg",
]

SVG_DIR_ENV = "RXFLOWS_MARBLE_SVG_DIR"
"""The environment variable naming a directory for the pictures of failed marble tests."""

# Layout, in SVG user units (px).
_MARGIN = 12
_ROW_HEIGHT = 54
_NOTE_HEIGHT = 16
_BOX_HEIGHT = 34
_TITLE_HEIGHT = 26
_LEGEND_HEIGHT = 20
_RADIUS = 12
_CHAR_WIDTH = 7.2  # an estimate of one character at font-size 12 (for labels and notes)
_MAX_WIDTH = 760.0
_FONT = 'font-family="ui-monospace, SFMono-Regular, Menlo, Consolas, monospace"'
_PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)

RowKind = Literal["events", "subscription", "operator", "note"]

# "label:   marbles   note": a label is a word or a few words (no marble syntax).
_LABELLED = re.compile(r"^([A-Za-z][\w .]*?):\s+(.*)$")
_NOTE_SPLIT = re.compile(r"\s{2,}")


@dataclass(frozen=True)
class MarbleRow:
    """One line of a picture.

    ``kind`` is ``"events"`` (an observable's timeline: ``events`` holds
    ``(frame, kind, text)`` with kind "N", "E" or "C"), ``"subscription"`` (a span
    from ``subscribed`` to ``unsubscribed``), ``"operator"`` (a box with
    ``text``) or ``"note"`` (a line of text). ``hot`` marks a timeline drawn
    with a ``^``: its frame 0 is marked.
    """

    kind: RowKind
    label: str = ""
    events: tuple[tuple[int, str, str], ...] = ()
    subscribed: int | None = None
    unsubscribed: int | None = None
    text: str = ""
    note: str = ""
    hot: bool = False
    marbles: str = field(default="", compare=False)


def _is_operator(text: str) -> bool:
    text = text.strip()
    return text.startswith("[") and text.endswith("]") and (" " in text or "(" in text)


def _event_text(value: Any) -> str:
    if isinstance(value, BaseException):
        return type(value).__name__
    if isinstance(value, type):
        return value.__name__
    return value if isinstance(value, str) else repr(value)


def _parse_row(label: str, marbles: str, note: str, frame: float) -> MarbleRow:
    """A row from one marble string; raises ValueError if it is not a marble diagram."""
    if _is_operator(marbles):
        inner = marbles.strip()[1:-1].strip()
        return MarbleRow("operator", label, text=inner, note=note, marbles=marbles)
    if "!" in marbles:
        span = parse_subscription_marbles(marbles, frame=frame)
        return MarbleRow(
            "subscription",
            label,
            subscribed=span.subscribed,
            unsubscribed=span.unsubscribed,
            note=note,
            marbles=marbles,
        )
    notifications = parse_marbles(marbles, frame=frame)
    if not notifications and "^" in marbles and not marbles.strip("^- "):
        # a lone subscription point ("--^---"): a subscription that never ends
        span = parse_subscription_marbles(marbles, frame=frame)
        return MarbleRow(
            "subscription", label, subscribed=span.subscribed, note=note, marbles=marbles
        )
    events = tuple(
        (n.frame, n.kind, _event_text(n.value) if n.kind == "N" else "") for n in notifications
    )
    return MarbleRow("events", label, events=events, note=note, hot="^" in marbles, marbles=marbles)


def _looks_like_marbles(text: str) -> bool:
    return bool(text) and any(c in text for c in "-|#^!") and not text.startswith("(")


def marble_rows(text: str, *, frame: float = DEFAULT_FRAME) -> list[MarbleRow]:
    """Read a diagram written as in rxflows' docstrings, one row per line.

    A line is ``label: marbles  note``, ``marbles  note`` or ``[ operator ]  note``
    (the note starts after two or more spaces). A line whose marbles do not parse
    is kept as a note, so prose inside a diagram block is shown, not lost.

    Example:
        >>> rows = marble_rows('''
        ...     source:  -a-b-|
        ...     [ map(f) ]
        ...     result:  -x-y-|    (f(a) = x)
        ... ''')
        >>> [row.kind for row in rows]
        ['events', 'operator', 'events']
    """
    rows: list[MarbleRow] = []
    for raw in textwrap.dedent(text).splitlines():
        line = raw.strip()
        if not line:
            continue
        if raw[0].isspace() and rows:
            # an indented line continues the note of the row above
            last = rows[-1]
            if last.kind == "note":
                rows[-1] = replace(last, text=f"{last.text} {line}")
            else:
                rows[-1] = replace(last, note=f"{last.note} {line}".strip())
            continue
        label = ""
        match = _LABELLED.match(line)
        if match is not None:
            label, line = match.group(1).strip(), match.group(2).strip()
        if _is_operator(line.split("  ", 1)[0]) or (line.startswith("[ ") and "]" in line):
            end = line.index("]") + 1
            rows.append(_parse_row(label, line[:end], line[end:].strip(), frame))
            continue
        parts = _NOTE_SPLIT.split(line, maxsplit=1)
        marbles, note = parts[0], (parts[1] if len(parts) > 1 else "")
        if _looks_like_marbles(marbles):
            try:
                rows.append(_parse_row(label, marbles, note, frame))
                continue
            except ValueError:
                pass
        rows.append(MarbleRow("note", label, text=line))
    return rows


def _rows_from(
    diagram: str | Mapping[str, str] | Sequence[MarbleRow], frame: float
) -> list[MarbleRow]:
    if isinstance(diagram, str):
        if "\n" in diagram:
            return marble_rows(diagram, frame=frame)
        return [_parse_row("", diagram, "", frame)]
    if isinstance(diagram, Mapping):
        return [_parse_row(label, marbles, "", frame) for label, marbles in diagram.items()]
    return list(diagram)


def _fmt(x: float) -> str:
    text = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


class _Canvas:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, element: str) -> None:
        self.parts.append(element)

    def text(self, x: float, y: float, content: str, css: str, extra: str = "") -> None:
        self.add(
            f'<text class="{css}" x="{_fmt(x)}" y="{_fmt(y)}" {extra}>{escape(content)}</text>'
        )


def marble_svg(
    diagram: str | Mapping[str, str] | Sequence[MarbleRow],
    *,
    values: Mapping[str, Any] | None = None,
    title: str | None = None,
    frame: float = DEFAULT_FRAME,
    frame_width: float | None = None,
) -> str:
    """Draw a marble diagram as an SVG picture (a str, deterministic).

    ``diagram`` is one marble string (one timeline), a mapping ``{label: marbles}``
    (one timeline per stream, top to bottom; a value written ``"[ name ]"`` is
    drawn as an operator box), a multi-line block written as in rxflows'
    docstrings (see :func:`marble_rows`), or a list of :class:`MarbleRow`.
    Values are circles labelled with their character or ``[name]``, ``|`` a
    completion bar, ``#`` an error cross, ``(ab)`` a group (stacked at one frame),
    ``^`` on a hot timeline marks frame 0, a subscription row (``^--!``) is drawn
    as a bracket. Time progressions (``10ms``) are to scale: one frame is
    ``frame_width`` pixels (default: what fits 760 px, at most 24).

    ``values`` adds a legend (``a = 1``); ``title`` a caption above.

    Example:
        >>> svg = marble_svg("-a-(bc)-#")
        >>> svg.count('class="marble-event"'), svg.count('class="marble-error"')
        (3, 1)
    """
    rows = _rows_from(diagram, frame)
    frames = [f for row in rows for f, _, _ in row.events]
    frames += [f for row in rows for f in (row.subscribed, row.unsubscribed) if f is not None]
    frames += [0 for row in rows if row.hot]
    first = min([0, *frames])
    last = max([0, *frames])
    span = last - first + 3  # room for the last event and the arrow head
    label_width = max([0.0, *(len(row.label) * _CHAR_WIDTH + 14 for row in rows if row.label)])
    x0 = _MARGIN + label_width + _RADIUS
    if frame_width is None:
        frame_width = max(4.0, min(24.0, (_MAX_WIDTH - x0 - _MARGIN) / span))
    width_frames = span * frame_width
    notes = [len(row.note) * _CHAR_WIDTH for row in rows if row.note]
    texts = [len(row.text) * _CHAR_WIDTH + 24 for row in rows if row.kind != "events"]
    legend = (
        ", ".join(f"{key} = {_event_text(value)}" for key, value in values.items())
        if values
        else ""
    )
    width = max(
        x0 + width_frames + _MARGIN,
        *(_MARGIN * 2 + label_width + w for w in [*notes, *texts]),
        _MARGIN * 2 + len(title or "") * _CHAR_WIDTH * 1.1,
        _MARGIN * 2 + len(legend) * _CHAR_WIDTH,
    )

    def x_of(f: int) -> float:
        return x0 + (f - first) * frame_width

    colours: dict[str, str] = {}

    def colour(text: str) -> str:
        if text not in colours:
            colours[text] = _PALETTE[len(colours) % len(_PALETTE)]
        return colours[text]

    canvas = _Canvas()
    y = float(_MARGIN)
    if title:
        canvas.text(_MARGIN, y + 16, title, "marble-title", 'font-weight="bold"')
        y += _TITLE_HEIGHT
    for row in rows:
        height = {"operator": _BOX_HEIGHT + 10, "note": _NOTE_HEIGHT + 4}.get(row.kind, _ROW_HEIGHT)
        mid = y + height / 2
        if row.label:
            canvas.text(_MARGIN, mid + 4, row.label, "marble-label")
        if row.kind == "note":
            canvas.text(x0 - _RADIUS, mid + 4, row.text, "marble-note", 'fill="#555"')
        elif row.kind == "operator":
            box = max(width_frames + _RADIUS, len(row.text) * _CHAR_WIDTH + 24)
            canvas.add(
                f'<rect class="marble-operator" x="{_fmt(x0 - _RADIUS)}" '
                f'y="{_fmt(mid - _BOX_HEIGHT / 2)}" width="{_fmt(box)}" '
                f'height="{_BOX_HEIGHT}" rx="4" fill="#f4f4f8" stroke="#333"/>'
            )
            canvas.text(
                x0 - _RADIUS + box / 2,
                mid + 4,
                row.text,
                "marble-operator-text",
                'text-anchor="middle"',
            )
        elif row.kind == "subscription":
            _draw_subscription(canvas, row, x_of, mid, x0 + width_frames)
        else:
            _draw_timeline(canvas, row, x_of, mid, x0 + width_frames, colour)
        if row.note:
            gap = 12 if row.kind == "operator" else 8
            canvas.text(x0 - _RADIUS, y + height + gap, row.note, "marble-note", 'fill="#555"')
            height += _NOTE_HEIGHT + gap - 8
        y += height
    if legend:
        canvas.text(_MARGIN, y + 14, legend, "marble-legend", 'fill="#555"')
        y += _LEGEND_HEIGHT
    total_height = y + _MARGIN
    label = escape(title or "marble diagram")
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="marble-diagram" '
        f'width="{_fmt(width)}" height="{_fmt(total_height)}" '
        f'viewBox="0 0 {_fmt(width)} {_fmt(total_height)}" role="img" aria-label="{label}" '
        f'{_FONT} font-size="12">'
    )
    style = '<rect width="100%" height="100%" fill="white"/>'
    return "\n".join([head, f"<title>{label}</title>", style, *canvas.parts, "</svg>"]) + "\n"


def _draw_timeline(
    canvas: _Canvas,
    row: MarbleRow,
    x_of: Any,
    mid: float,
    x_end: float,
    colour: Any,
) -> None:
    terminal = next((f for f, kind, _ in row.events if kind in "CE"), None)
    # a terminal notification in the frame of a value is drawn just after its circle
    values_at = {f for f, kind, _ in row.events if kind == "N"}
    shift = _RADIUS + 5 if terminal in values_at else 0
    end = x_of(terminal) + shift if terminal is not None else x_end
    start = x_of(min([0, *(f for f, _, _ in row.events)])) - _RADIUS
    canvas.add(
        f'<line class="marble-line" x1="{_fmt(start)}" y1="{_fmt(mid)}" x2="{_fmt(end)}" '
        f'y2="{_fmt(mid)}" stroke="#333" stroke-width="2"/>'
    )
    if terminal is None:
        canvas.add(
            f'<path class="marble-arrow" d="M{_fmt(end)},{_fmt(mid)} l-8,-5 v10 z" fill="#333"/>'
        )
    if row.hot:
        x = x_of(0)
        canvas.add(
            f'<path class="marble-origin" d="M{_fmt(x)},{_fmt(mid + 6)} l-5,9 h10 z" fill="#333"/>'
        )
    stacked: dict[int, int] = {}
    for f, kind, text in row.events:
        level = stacked.get(f, 0)
        stacked[f] = level + 1
        x, cy = x_of(f), mid - level * (_RADIUS * 2 - 4)
        if kind in "CE":
            x += shift
        if kind == "C":
            canvas.add(
                f'<line class="marble-complete" x1="{_fmt(x)}" y1="{_fmt(mid - 14)}" '
                f'x2="{_fmt(x)}" y2="{_fmt(mid + 14)}" stroke="#333" stroke-width="3"/>'
            )
        elif kind == "E":
            canvas.add(
                f'<path class="marble-error" d="M{_fmt(x - 8)},{_fmt(mid - 8)} l16,16 '
                f'M{_fmt(x + 8)},{_fmt(mid - 8)} l-16,16" stroke="#c0392b" stroke-width="3"/>'
            )
        else:
            shown = text if len(text) <= 4 else text[:3] + "…"
            radius = _RADIUS if len(shown) <= 2 else _RADIUS + 3 * (len(shown) - 2)
            canvas.add(
                f'<g class="marble-event" data-frame="{f}">'
                f'<circle cx="{_fmt(x)}" cy="{_fmt(cy)}" r="{_fmt(radius)}" '
                f'fill="{colour(text)}" stroke="#333"/>'
                f'<text x="{_fmt(x)}" y="{_fmt(cy + 4)}" text-anchor="middle" fill="white">'
                f"{escape(shown)}</text></g>"
            )


def _draw_subscription(
    canvas: _Canvas, row: MarbleRow, x_of: Any, mid: float, x_end: float
) -> None:
    assert row.subscribed is not None
    start = x_of(row.subscribed)
    end = x_of(row.unsubscribed) if row.unsubscribed is not None else x_end
    canvas.add(
        f'<path class="marble-subscription" d="M{_fmt(start)},{_fmt(mid - 8)} v16 '
        f"M{_fmt(start)},{_fmt(mid)} H{_fmt(end)}"
        + (f" M{_fmt(end)},{_fmt(mid - 8)} v16" if row.unsubscribed is not None else "")
        + '" stroke="#2c7" stroke-width="3" fill="none"/>'
    )
    canvas.text(start, mid - 12, "^", "marble-subscribe", 'text-anchor="middle"')
    if row.unsubscribed is not None:
        canvas.text(end, mid - 12, "!", "marble-unsubscribe", 'text-anchor="middle"')


def _notifications_row(
    label: str, notifications: Sequence[Notification], values: Mapping[str, Any] | None
) -> MarbleRow:
    from ._marbles import _value_token

    events = []
    for n in notifications:
        text = _value_token(n.value, values) if n.kind == "N" else ""
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        events.append((n.frame, n.kind, text))
    return MarbleRow("events", label, events=tuple(events))


def notifications_svg(
    rows: Mapping[str, Sequence[Notification]],
    *,
    values: Mapping[str, Any] | None = None,
    title: str | None = None,
) -> str:
    """Draw recorded notifications, one timeline per entry (e.g. expected and actual).

    Values are labelled with their key in ``values`` when they have one, else with
    their ``repr``, as in the failure messages.

    Example:
        >>> svg = notifications_svg({
        ...     "expected": [Notification.on_next(1, "a"), Notification.on_completed(2)],
        ...     "actual": [Notification.on_next(3, "a"), Notification.on_completed(4)],
        ... })
        >>> svg.count('class="marble-complete"')
        2
    """
    picture = [_notifications_row(label, ns, values) for label, ns in rows.items()]
    return marble_svg(picture, values=values, title=title)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.")[:80] or "marbles"


def write_failure_svg(
    expected: Sequence[Notification],
    actual: Sequence[Notification],
    values: Mapping[str, Any] | None,
) -> Path | None:
    """Write expected vs actual to ``$RXFLOWS_MARBLE_SVG_DIR``; None when it is not set.

    The file is named after the running pytest test (``PYTEST_CURRENT_TEST``) and
    a hash of the picture, so repeated runs overwrite, and two failing
    expectations in one test get two files.
    """
    directory = os.environ.get(SVG_DIR_ENV)
    if not directory:
        return None
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    name = test.rsplit("::", 1)[-1] if test else "marbles"
    svg = notifications_svg(
        {"expected": expected, "actual": actual}, values=values, title=test or "marbles differ"
    )
    digest = hashlib.sha1(svg.encode(), usedforsecurity=False).hexdigest()[:8]
    path = Path(directory) / f"{_safe_name(name)}-{digest}.svg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(svg, encoding="utf-8")
    return path
