"""The media layer of the video processor: ffmpeg, captions and clip picking.

Needs the ``video`` extra (``pip install 'rxflows[video]'``: ``imageio-ffmpeg``,
whose wheel ships a static ffmpeg, and ``pocketsphinx`` with its English model).
Importing :mod:`rxflows` never imports this package; importing this package does
not import those libraries either: they load at first use.

    from rxflows.video import probe, extract_audio, transcribe, pick_windows

    info = await probe("talk.mp4", max_duration=3600)
    wav = await extract_audio("talk.mp4", "out/talk.wav")
    words = await transcribe(PocketSphinxRecognizer(), wav)
    for n, window in enumerate(pick_windows(words, 3, 15, 60, info.duration), 1):
        srt = write_srt(captions_from_words(window.words, offset=window.start), f"out/clip-{n}.srt")
        await vertical_clip("talk.mp4", f"out/clip-{n}.mp4", srt=srt,
                            start=window.start, end=window.end)
"""

from __future__ import annotations

from .._errors import MediaError as MediaError
from .._errors import UnsupportedMediaError as UnsupportedMediaError
from ._captions import FAST_POCKETSPHINX as FAST_POCKETSPHINX
from ._captions import Caption as Caption
from ._captions import PocketSphinxRecognizer as PocketSphinxRecognizer
from ._captions import Recognizer as Recognizer
from ._captions import Word as Word
from ._captions import captions_from_words as captions_from_words
from ._captions import format_srt as format_srt
from ._captions import transcribe as transcribe
from ._captions import write_srt as write_srt
from ._clips import ClipWindow as ClipWindow
from ._clips import pick_windows as pick_windows
from ._ffmpeg import MediaInfo as MediaInfo
from ._ffmpeg import ffmpeg_exe as ffmpeg_exe
from ._ffmpeg import probe as probe
from ._ffmpeg import run_ffmpeg as run_ffmpeg
from ._ffmpeg import safe_output_path as safe_output_path
from ._media import cut_clip as cut_clip
from ._media import extract_audio as extract_audio
from ._media import vertical_clip as vertical_clip
from ._processor import PIPELINE_STEPS as PIPELINE_STEPS
from ._processor import STAGES as STAGES
from ._processor import AsyncVideoProcessor as AsyncVideoProcessor
from ._processor import Clip as Clip
from ._processor import ProgressStatus as ProgressStatus
from ._processor import VideoProgress as VideoProgress
from ._processor import VideoResult as VideoResult
from ._processor import create_async_video_processor as create_async_video_processor

__all__ = [
    "FAST_POCKETSPHINX",
    "PIPELINE_STEPS",
    "STAGES",
    "AsyncVideoProcessor",
    "Caption",
    "Clip",
    "ClipWindow",
    "MediaError",
    "MediaInfo",
    "PocketSphinxRecognizer",
    "ProgressStatus",
    "Recognizer",
    "UnsupportedMediaError",
    "VideoProgress",
    "VideoResult",
    "Word",
    "captions_from_words",
    "create_async_video_processor",
    "cut_clip",
    "extract_audio",
    "ffmpeg_exe",
    "format_srt",
    "pick_windows",
    "probe",
    "run_ffmpeg",
    "safe_output_path",
    "transcribe",
    "vertical_clip",
    "write_srt",
]
