"""``rxflows demo``: the video processor end to end on a sample, all on this machine.

1. A sample talking video is built from the speech recording shipped in
   ``rxflows/video/data/speech.m4a`` (English, synthesized with espeak-ng) and
   ffmpeg's generated ``testsrc2`` pattern.
2. A local aiohttp server on 127.0.0.1 (a free port) serves it, and takes the
   clip uploads (multipart POST) and the webhook (JSON POST).
3. The processor downloads it over HTTP, transcribes it, cuts two captioned 9:16
   clips, uploads them and calls the webhook; what the server received is printed.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ._ffmpeg import file_arg, run_ffmpeg

if TYPE_CHECKING:
    from ._processor import VideoResult

__all__ = ["SPEECH_SAMPLE", "build_sample_video", "run_demo"]

SPEECH_SAMPLE = "speech.m4a"
_SPEECH_SECONDS = 12.2


def _speech_path() -> Path:
    return Path(str(resources.files("rxflows.video") / "data" / SPEECH_SAMPLE))


_MARKER = ".rxflows-demo"


def _fresh(out: Path) -> None:
    """Make ``out``'s demo folders, emptied when a previous demo made them (its marker)."""
    if (out / _MARKER).is_file():
        for name in ("clips", "uploaded"):
            shutil.rmtree(out / name, ignore_errors=True)
    (out / "uploaded").mkdir(parents=True, exist_ok=True)
    (out / _MARKER).write_text("made by rxflows demo: its next run replaces clips/ and uploaded/\n")


def _prepare(dest: Path) -> Path:
    dest = dest.expanduser().resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    return dest


async def build_sample_video(dest: Path) -> Path:
    """Write a 640x360 talking video (the shipped speech over ``testsrc2``) to ``dest``."""
    dest = await asyncio.to_thread(_prepare, dest)
    await run_ffmpeg(
        [
            "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=15:duration={_SPEECH_SECONDS}",
            "-i", file_arg(_speech_path()),
            "-map", "0:v", "-map", "1:a", "-shortest",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "30", "-pix_fmt", "yuv420p",
            "-c:a", "copy", "-movflags", "+faststart",
            file_arg(dest),
        ]
    )  # fmt: skip
    return dest


async def run_demo(
    out: Path,
    run_batch: Callable[[Sequence[str], dict[str, Any]], Awaitable[list[VideoResult]]],
    stream: TextIO,
) -> int:
    """Run the demo into ``out`` (absolute); 0 when the clips were made, uploaded, notified."""
    from aiohttp import web

    def say(text: str = "") -> None:
        print(text, file=stream, flush=True)

    received = out / "uploaded"
    await asyncio.to_thread(_fresh, out)
    uploads: list[dict[str, Any]] = []
    webhooks: list[dict[str, Any]] = []

    say(f"rxflows demo: writing into {out}")
    say("1. building a sample talking video (shipped speech + ffmpeg testsrc2) ...")
    video = await build_sample_video(out / "source" / "talk.mp4")
    say(f"   {video} ({video.stat().st_size // 1024} KiB)")

    async def serve_video(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(video)

    async def upload(request: web.Request) -> web.Response:
        form = await request.post()
        clip, captions = form.get("file"), form.get("captions")
        if not isinstance(clip, web.FileField) or not isinstance(captions, web.FileField):
            return web.Response(status=400, text="expected the file and captions fields")
        name = Path(clip.filename).name
        body = clip.file.read()
        (received / name).write_bytes(body)
        (received / Path(captions.filename).name).write_bytes(captions.file.read())
        uploads.append({"name": name, "bytes": len(body), "metadata": str(form.get("metadata"))})
        return web.json_response({"url": f"{base}/uploaded/{name}"})

    async def webhook(request: web.Request) -> web.Response:
        webhooks.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/media/talk.mp4", serve_video)
    app.router.add_post("/upload", upload)
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        source = f"{base}/media/talk.mp4"
        say(f"2. serving it at {source} (uploads: {base}/upload, webhook: {base}/webhook)")
        say("3. processing: download, probe, audio, speech-to-text, clips, 9:16 + captions, ...")
        options: dict[str, Any] = {
            "output_dir": out / "clips",
            "clip_count": 2,
            "clip_seconds": (3.0, 6.0),
            "upload_url": f"{base}/upload",
            "webhook_url": f"{base}/webhook",
        }
        (result,) = await run_batch([source], options)
    finally:
        await runner.cleanup()

    say()
    if not result.succeeded:
        say(f"demo failed: {result.error}")
        return 1
    say(f"Clips in {out / 'clips'}:")
    for clip in result.clips:
        say(
            f"  {clip.path.name}  {clip.start:.2f}-{clip.end:.2f} s  captions: {clip.srt_path.name}"
        )
        say(f"    heard: {clip.text!r}")
    if result.manifest_path is not None:
        say(f"  manifest: {result.manifest_path}")
    say(f"The upload endpoint received {len(uploads)} clip(s), saved in {received}:")
    for item in uploads:
        say(f"  {item['name']} ({item['bytes'] // 1024} KiB)")
    say(f"The webhook received {len(webhooks)} call(s):")
    for hook in webhooks:
        clips = hook.get("clips", [])
        say(f"  {json.dumps({'event': hook.get('event'), 'clips': len(clips)})}")
    ok = len(uploads) == len(result.clips) and len(webhooks) == 1
    say("Demo complete." if ok else "demo incomplete: uploads or webhook missing")
    return 0 if ok else 1
