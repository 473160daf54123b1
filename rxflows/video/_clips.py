"""Choosing which stretches of a video become clips.

:func:`pick_windows` is a pure function of the recognized words: it scores every
window that starts at one word and ends at another, by how much of it is speech,
how dense the speech is, and whether it begins and ends at a pause (a sentence
boundary), then keeps the best windows that do not overlap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .._errors import ConfigurationError
from ._captions import Word

__all__ = ["ClipWindow", "pick_windows"]

_PAD: Final = 0.2
"""Seconds of silence kept before the first and after the last word, when there is room."""
_PAUSE_CAP: Final = 1.0
_EPSILON: Final = 1e-9


@dataclass(frozen=True, slots=True)
class ClipWindow:
    """A stretch ``[start, end)`` of the video (seconds) and the words said in it."""

    start: float
    end: float
    words: tuple[Word, ...]

    @property
    def duration(self) -> float:
        """``end - start`` in seconds."""
        return self.end - self.start

    @property
    def text(self) -> str:
        """The window's words joined by spaces."""
        return " ".join(word.text for word in self.words)


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(
            f"{name} must be a positive number, got {value!r}", field=name, value=value
        )
    if not math.isfinite(value):
        raise ConfigurationError(f"{name} must be finite, got {value!r}", field=name, value=value)
    return float(value)


def _clean_words(words: Sequence[Word], duration: float) -> list[Word]:
    cleaned: list[Word] = []
    for word in sorted(words, key=lambda w: (w.start, w.end)):
        if not 0 <= word.start < word.end:
            raise ConfigurationError(
                f"words must have 0 <= start < end, got {word!r}", field="words", value=word
            )
        if word.start >= duration:  # a recognizer's timing may run past the end
            break
        if cleaned and word.start < cleaned[-1].end:
            raise ConfigurationError(
                f"words must not overlap, got {cleaned[-1]!r} and {word!r}",
                field="words",
                value=word,
            )
        cleaned.append(word if word.end <= duration else Word(word.text, word.start, duration))
    return cleaned


def _fit(
    lo_start: float, hi_start: float, lo_end: float, hi_end: float, shortest: float, longest: float
) -> tuple[float, float] | None:
    """A ``(start, end)`` with start in [lo_start, hi_start], end in [lo_end, hi_end] and
    shortest <= end - start <= longest, padded into the pauses; None if impossible."""
    if lo_end - hi_start > longest or hi_end - lo_start < shortest:
        return None
    budget = longest - (lo_end - hi_start)
    pad_start = min(_PAD, hi_start - lo_start, budget / 2)
    pad_end = min(_PAD, hi_end - lo_end, budget - pad_start)
    start, end = hi_start - pad_start, lo_end + pad_end
    missing = shortest - (end - start)
    if missing > 0:
        grow_end = min(hi_end - end, missing / 2)
        grow_start = min(start - lo_start, missing - grow_end)
        grow_end = min(hi_end - end, missing - grow_start)
        start, end = start - grow_start, end + grow_end
    # Rounding may leave the length a hair outside the bounds; clamp it back in.
    start = max(min(start, hi_start), lo_start)
    end = min(max(end, lo_end), hi_end)
    if end - start < shortest - _EPSILON or end - start > longest + _EPSILON:
        return None
    return start, end


def pick_windows(
    words: Sequence[Word],
    clip_count: int,
    min_seconds: float,
    max_seconds: float,
    duration: float,
) -> list[ClipWindow]:
    """Pick up to ``clip_count`` non-overlapping windows of speech for clips.

    Each window lasts between ``min_seconds`` and ``max_seconds``, lies within
    ``[0, duration]``, and starts and ends in a pause, so no word is cut in half:
    every word is either wholly inside a window or wholly outside it. Windows are
    scored by speech ratio, words per second, and the pauses around them (a clip
    that starts and ends at a sentence boundary reads better); the best are kept
    greedily and returned in time order. Fewer than ``clip_count`` come back when
    the speech does not allow more (none without words).

    Words past ``duration`` are ignored (a word running over it is cut at it);
    overlapping words are an error.

    Example:
        >>> words = [Word("hello", 0.5, 0.9), Word("world", 1.0, 1.5)]
        >>> pick_windows(words, clip_count=1, min_seconds=1, max_seconds=3, duration=5)
        [ClipWindow(start=0.3, end=1.7, words=(...))]
    """
    if isinstance(clip_count, bool) or not isinstance(clip_count, int) or clip_count <= 0:
        raise ConfigurationError(
            f"clip_count must be a positive int, got {clip_count!r}",
            field="clip_count",
            value=clip_count,
        )
    shortest = _positive("min_seconds", min_seconds)
    longest = _positive("max_seconds", max_seconds)
    total = _positive("duration", duration)
    if longest < shortest:
        raise ConfigurationError(
            f"max_seconds must be >= min_seconds ({min_seconds!r}), got {max_seconds!r}",
            field="max_seconds",
            value=max_seconds,
        )
    spoken = _clean_words(words, total)
    count = len(spoken)
    candidates: list[tuple[float, float, float, int, int]] = []
    for first in range(count):
        lo_start = spoken[first - 1].end if first else 0.0
        hi_start = spoken[first].start
        pause_before = min(hi_start - lo_start, _PAUSE_CAP)
        talk = 0.0
        for last in range(first, count):
            talk += spoken[last].end - spoken[last].start
            lo_end = spoken[last].end
            if lo_end - hi_start > longest:
                break
            hi_end = spoken[last + 1].start if last + 1 < count else total
            span = _fit(lo_start, hi_start, lo_end, hi_end, shortest, longest)
            if span is None:
                continue
            start, end = span
            length = end - start
            pause_after = min(hi_end - lo_end, _PAUSE_CAP)
            words_per_second = (last - first + 1) / length
            score = talk / length + words_per_second / 3 + (pause_before + pause_after) / 2
            candidates.append((score, start, end, first, last))
    candidates.sort(key=lambda c: (-c[0], c[1]))
    chosen: list[tuple[float, float, int, int]] = []
    for _, start, end, first, last in candidates:
        if len(chosen) == clip_count:
            break
        if all(end <= other_start or other_end <= start for other_start, other_end, _, _ in chosen):
            chosen.append((start, end, first, last))
    chosen.sort()
    return [
        ClipWindow(start, end, tuple(spoken[first : last + 1]))
        for start, end, first, last in chosen
    ]
