"""``pick_windows``: which stretches of speech become clips (a pure function)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxflows import ConfigurationError
from rxflows.video import ClipWindow, Word, pick_windows


def _sentence(start: float, sentence: str, word: float = 0.3, gap: float = 0.1) -> list[Word]:
    words = []
    for text in sentence.split():
        words.append(Word(text, round(start, 3), round(start + word, 3)))
        start += word + gap
    return words


# Three sentences of 3.6 s, 2.0 s and 3.6 s, with long pauses between them.
FIRST = _sentence(1.0, "the first sentence is a long one with nine words")
SECOND = _sentence(6.5, "short one here too ok")
THIRD = _sentence(10.0, "and the third sentence has nine words in it")
SPEECH = FIRST + SECOND + THIRD


def test_windows_follow_sentence_boundaries() -> None:
    windows = pick_windows(SPEECH, clip_count=2, min_seconds=3, max_seconds=5, duration=15)
    assert [w.text for w in windows] == [
        "the first sentence is a long one with nine words",
        "and the third sentence has nine words in it",
    ]
    first, third = windows
    assert first.start == pytest.approx(0.8)  # 0.2 s of the pause kept before
    assert first.end == pytest.approx(FIRST[-1].end + 0.2)
    assert third.start == pytest.approx(9.8)
    assert 3 <= first.duration <= 5
    assert isinstance(first, ClipWindow)


def test_short_speech_is_padded_into_the_pauses_to_reach_min_seconds() -> None:
    windows = pick_windows(SECOND, clip_count=1, min_seconds=4, max_seconds=6, duration=15)
    assert len(windows) == 1
    (window,) = windows
    assert window.duration == pytest.approx(4)
    assert window.text == "short one here too ok"
    assert window.start < SECOND[0].start
    assert window.end > SECOND[-1].end


def test_no_window_when_speech_cannot_fit() -> None:
    assert pick_windows([], clip_count=3, min_seconds=1, max_seconds=5, duration=10) == []
    # A single sentence longer than max_seconds cannot be cut without splitting it...
    long_words = _sentence(0.0, "word " * 20, gap=0.0)
    windows = pick_windows(long_words, clip_count=1, min_seconds=1, max_seconds=2, duration=6)
    # ...so the window ends between two words, never inside one.
    assert len(windows) == 1
    assert windows[0].duration <= 2
    # The video is shorter than min_seconds: nothing fits.
    assert pick_windows(SECOND, clip_count=1, min_seconds=20, max_seconds=30, duration=15) == []


def test_words_past_the_duration_are_ignored() -> None:
    words = [Word("in", 0.5, 1.0), Word("over", 1.8, 2.4), Word("after", 3.0, 3.5)]
    windows = pick_windows(words, clip_count=3, min_seconds=0.1, max_seconds=3, duration=2.0)
    assert [w.text for w in windows] == ["in", "over"]
    assert windows[-1].words[-1] == Word("over", 1.8, 2.0)  # cut at the end of the video
    assert windows[-1].end == 2.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"clip_count": 0}, "clip_count must be a positive int, got 0"),
        ({"clip_count": True}, "clip_count must be a positive int, got True"),
        ({"min_seconds": 0}, "min_seconds must be a positive number, got 0"),
        ({"max_seconds": float("inf")}, "max_seconds must be finite, got inf"),
        ({"duration": -1}, "duration must be a positive number, got -1"),
        ({"min_seconds": 5, "max_seconds": 4}, r"max_seconds must be >= min_seconds \(5\), got 4"),
    ],
)
def test_bad_arguments_are_configuration_errors(kwargs: dict[str, float], message: str) -> None:
    arguments: dict[str, float] = {
        "clip_count": 1,
        "min_seconds": 1,
        "max_seconds": 5,
        "duration": 10,
    }
    arguments.update(kwargs)
    with pytest.raises(ConfigurationError, match=message):
        pick_windows(SPEECH, **arguments)  # type: ignore[arg-type]  # clip_count float on purpose


def test_overlapping_or_backwards_words_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="words must not overlap"):
        pick_windows([Word("a", 0, 1), Word("b", 0.5, 2)], 1, 1, 5, 10)
    with pytest.raises(ConfigurationError, match="words must have 0 <= start < end"):
        pick_windows([Word("a", 2, 1)], 1, 1, 5, 10)
    with pytest.raises(ConfigurationError, match="words must have 0 <= start < end"):
        pick_windows([Word("a", 1, 1)], 1, 1, 5, 10)


@st.composite
def speech(draw: st.DrawFn) -> tuple[list[Word], float]:
    pieces = draw(
        st.lists(
            st.tuples(
                st.floats(0, 3, allow_nan=False),  # pause before the word
                st.floats(0.01, 1.5, allow_nan=False),  # the word's length
            ),
            max_size=40,
        )
    )
    words: list[Word] = []
    now = 0.0
    for pause, length in pieces:
        start = now + pause
        words.append(Word(f"w{len(words)}", start, start + length))
        now = start + length
    duration = now + draw(st.floats(0.01, 5, allow_nan=False))
    return words, duration


@settings(max_examples=300, deadline=None)
@given(
    speech(),
    st.integers(1, 5),
    st.floats(0.1, 8, allow_nan=False),
    st.floats(0, 10, allow_nan=False),
)
def test_windows_are_bounded_disjoint_and_on_word_boundaries(
    spoken: tuple[list[Word], float], clip_count: int, shortest: float, extra: float
) -> None:
    words, duration = spoken
    longest = shortest + extra
    windows = pick_windows(words, clip_count, shortest, longest, duration)
    assert len(windows) <= clip_count
    for window in windows:
        assert 0 <= window.start < window.end <= duration
        assert shortest - 1e-6 <= window.duration <= longest + 1e-6
        inside = tuple(w for w in words if window.start <= w.start and w.end <= window.end)
        assert window.words == inside
        assert inside  # every window holds speech
        for word in words:  # no word is cut in half
            assert word.end <= window.start or word.start >= window.end or word in inside
    for before, after in itertools.pairwise(windows):
        assert before.end <= after.start
