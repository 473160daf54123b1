"""Regenerate the committed test media (run by hand; tests never need espeak-ng).

``talking.mp4`` is a small talking video: English speech synthesized with
espeak-ng (Debian package ``espeak-ng``) over ffmpeg's generated ``testsrc2``
pattern, encoded small (320x240, 15 fps, H.264 + mono AAC, ~10 s)::

    apt-get install -y espeak-ng
    python tests/data/make_media.py

The ffmpeg used is the one bundled with ``imageio-ffmpeg``, as in the library.
The broken inputs the tests need (a text file, a truncated MP4) are made from
this file inside the tests, so they are not committed.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import imageio_ffmpeg

HERE = Path(__file__).resolve().parent

SPEECH = (
    "Welcome to the reactive flows demo. "
    "Today we turn long videos into short clips. "
    "Each clip gets its own captions. "
    "Then we pick the best windows of speech."
)


def main() -> None:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise SystemExit("espeak-ng is needed to regenerate the test media")
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        # 160 words a minute with a 10 ms gap between words: clear enough for pocketsphinx.
        voice = ["-v", "en-us", "-s", "160", "-g", "1"]
        subprocess.run([espeak, *voice, "-w", str(wav), SPEECH], check=True)
        with wave.open(str(wav)) as w:
            total = w.getnframes() / w.getframerate() + 0.5  # half a second of silence after
        out = HERE / "talking.mp4"
        subprocess.run(
            [
                ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
                "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=15:duration={total:.2f}",
                "-i", str(wav),
                "-filter_complex", "[1:a]apad[a]",
                "-map", "0:v", "-map", "[a]", "-t", f"{total:.2f}",
                "-c:v", "libx264", "-preset", "veryslow", "-crf", "36", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-b:a", "32k", "-ac", "1", "-ar", "22050",
                "-movflags", "+faststart",
                str(out),
            ],
            check=True,
        )  # fmt: skip
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
