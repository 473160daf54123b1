"""The ``rxflows`` command line: ``rxflows clip`` and ``rxflows demo``.

    rxflows clip talk.mp4 https://cdn.example.com/b.mp4 --out clips --clips 2
    rxflows demo                      # a sample video end to end, into ./rxflows-demo
    python -m rxflows clip --help

Progress is shown live per video and per stage (with ``rich`` on a terminal, plain
lines otherwise), then a summary table. Exit status: 0 when every video was
processed, 1 when one failed, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from .video import AsyncVideoProcessor, VideoProgress, VideoResult

__all__ = ["main"]

#: Runs a batch of sources with live progress and prints the summary; the results.
RunBatch = Callable[[Sequence[str], dict[str, Any]], Coroutine[Any, Any, "list[VideoResult]"]]


# -- argument checks (argparse turns ArgumentTypeError into exit status 2) ---------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be positive seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be positive seconds, got {text!r}")
    return value


def _http_url(text: str) -> str:
    if not text.lower().startswith(("http://", "https://")) or len(text.split("://", 1)[1]) == 0:
        raise argparse.ArgumentTypeError(f"must be an http(s) URL, got {text!r}")
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rxflows",
        description="Turn long talking videos into short vertical clips with burned-in captions.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    clip = commands.add_parser(
        "clip",
        help="process videos (local files or http(s) URLs) into clips",
        description="Process videos into 9:16 clips with captions; exit 1 if any video failed.",
    )
    clip.set_defaults(subparser=clip)
    clip.add_argument("sources", nargs="+", metavar="SOURCE", help="a local file or http(s) URL")
    clip.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    clip.add_argument(
        "--clips", type=_positive_int, default=3, metavar="N", help="clips per video (default 3)"
    )
    clip.add_argument(
        "--clip-seconds",
        type=_positive_seconds,
        nargs=2,
        default=(15.0, 60.0),
        metavar=("MIN", "MAX"),
        help="clip length bounds in seconds (default 15 60)",
    )
    clip.add_argument("--upload-url", type=_http_url, metavar="URL", help="upload each clip here")
    clip.add_argument(
        "--upload-method", choices=("POST", "PUT"), default="POST", help="default POST"
    )
    clip.add_argument("--webhook", type=_http_url, metavar="URL", help="POST a JSON per video")
    clip.add_argument(
        "--concurrency", type=_positive_int, default=2, metavar="N", help="videos at once (2)"
    )
    clip.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run each video's whole job on this Dask scheduler's workers (tcp://host:8786); "
        "give URL sources and --upload-url (needs pip install 'rxflows[dask]')",
    )

    demo = commands.add_parser(
        "demo",
        help="run the whole pipeline on a sample video served locally",
        description=(
            "Build a sample talking video, serve it from a local HTTP server that also "
            "takes the uploads and the webhook, and turn it into two captioned clips."
        ),
    )
    demo.add_argument(
        "--out", type=Path, default=Path("rxflows-demo"), metavar="DIR", help="./rxflows-demo"
    )
    return parser


# -- progress ------------------------------------------------------------------------------------


class _Reporter:
    """Stage progress: a rich live display on a terminal, plain lines otherwise."""

    def __init__(self, sources: Sequence[str], stream: TextIO, *, fancy: bool) -> None:
        from .video import STAGES

        self._stages = STAGES
        self._stream = stream
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        if fancy:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(file=stream),
            )
            for source in sources:
                if source not in self._tasks:
                    self._tasks[source] = self._progress.add_task(
                        f"{_short(source)}: waiting", total=len(STAGES)
                    )

    def __enter__(self) -> _Reporter:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, event: VideoProgress) -> None:
        """The processor's ``on_progress`` hook: show ``event``."""
        if self._progress is not None:
            self._show(event)
        else:
            self._print(event)

    def _show(self, event: VideoProgress) -> None:
        name, stage = _short(event.source), event.stage
        task = self._tasks.get(event.source)
        if task is None:
            return
        if event.status == "started":
            self._progress.update(task, description=f"{name}: {stage}")
        elif event.status == "running" and event.fraction is not None:
            self._progress.update(task, description=f"{name}: {stage} {event.fraction:.0%}")
        elif event.status == "finished":
            self._progress.update(task, advance=1)
            if event.done:
                self._progress.update(
                    task, description=f"{name}: [green]done", completed=len(self._stages)
                )
        elif event.status in ("failed", "cancelled"):
            self._progress.update(task, description=f"{name}: [red]{stage} {event.status}")
            self._progress.stop_task(task)

    def _print(self, event: VideoProgress) -> None:
        name, stage, seconds = _short(event.source), event.stage, event.elapsed
        if event.status == "finished":
            line = f"  {name}: {stage} done in {seconds:.2f} s"
            if event.done:
                line += f"\n{name}: finished"
        elif event.status == "failed":
            line = f"  {name}: {stage} FAILED after {seconds:.2f} s\n{name}: failed at {stage}"
        elif event.status == "cancelled":
            line = f"  {name}: {stage} cancelled after {seconds:.2f} s"
        else:
            return
        print(line, file=self._stream, flush=True)


def _short(source: str, width: int = 48) -> str:
    return source if len(source) <= width else "..." + source[-(width - 3) :]


def _fancy(stream: TextIO) -> bool:
    if os.environ.get("TERM") == "dumb" or not stream.isatty():
        return False
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def _summary(results: Sequence[VideoResult], stream: TextIO, *, fancy: bool) -> None:
    rows: list[tuple[str, ...]] = []
    for r in results:
        durations = ", ".join(f"{clip.duration:.1f}" for clip in r.clips) or "-"
        rows.append(
            (_short(r.source), r.status, str(len(r.clips)), durations, f"{r.total_time:.1f} s")
        )
    headers = ("source", "status", "clips", "clip seconds", "total time")
    if fancy:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="rxflows clip")
        for header in headers:
            table.add_column(header)
        for row, r in zip(rows, results, strict=True):
            style = "green" if r.succeeded else "red"
            table.add_row(*row, style=style)
        Console(file=stream).print(table)
    else:
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
        for row in (headers, *rows):
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)), file=stream)
    for r in results:
        if not r.succeeded:
            print(f"error: {r.source}: {r.error}", file=stream)
    ok = sum(r.succeeded for r in results)
    print(f"{ok} of {len(results)} video(s) processed", file=stream, flush=True)


async def _run_batch(
    sources: Sequence[str],
    options: dict[str, Any],
    *,
    concurrency: int,
    stream: TextIO,
    dask: str | None = None,
) -> list[VideoResult]:
    from . import create_async_flow_config
    from .video import AsyncVideoProcessor

    fancy = _fancy(stream)
    reporter = _Reporter(sources, stream, fancy=fancy)
    config = create_async_flow_config(max_concurrent_tasks=concurrency)
    with reporter:
        async with AsyncVideoProcessor(config, **options, on_progress=reporter) as processor:
            if dask is None:
                results = await processor.process_video_batch(list(sources))
            else:
                results = await _run_on_dask(processor, sources, dask)
    _summary(results, stream, fancy=fancy)
    return results


async def _run_on_dask(
    processor: AsyncVideoProcessor, sources: Sequence[str], address: str
) -> list[VideoResult]:
    """Each video's whole job on a worker of the Dask scheduler at ``address``."""
    from ._errors import ConfigurationError

    try:
        from .dask import DaskExecutor
    except ImportError as exc:
        raise ConfigurationError(
            "--dask needs the dask extra: pip install 'rxflows[dask]'", field="dask", value=address
        ) from exc
    executor = DaskExecutor(address)  # a bad address: ConfigurationError, a usage error
    try:
        await executor.start()
    except OSError as exc:
        await executor.aclose()
        raise ConfigurationError(
            f"--dask: cannot reach the Dask scheduler at {address}: {exc}",
            field="dask",
            value=address,
        ) from exc
    async with executor:
        return await processor.process_video_batch(list(sources), executor=executor)


def _batch_runner(concurrency: int, stream: TextIO, dask: str | None = None) -> RunBatch:
    async def run(sources: Sequence[str], options: dict[str, Any]) -> list[VideoResult]:
        return await _run_batch(sources, options, concurrency=concurrency, stream=stream, dask=dask)

    return run


# -- entry point ---------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status (argparse exits with 2 on a usage error).

    Example:
        >>> main(["clip", "talk.mp4", "--out", "clips", "--clips", "2"])
        0
    """
    from . import AsyncEventLoopManager, ConfigurationError

    parser = _parser()
    args = parser.parse_args(argv)
    stream = sys.stdout
    manager = AsyncEventLoopManager()
    if args.command == "demo":
        from .video._demo import run_demo

        out = Path(args.out).expanduser().resolve()
        return manager.run(run_demo(out, _batch_runner(1, stream), stream))

    low, high = args.clip_seconds
    if low > high:
        args.subparser.error(f"--clip-seconds: MIN ({low:g}) must not exceed MAX ({high:g})")
    options: dict[str, Any] = {
        "output_dir": args.out,
        "clip_count": args.clips,
        "clip_seconds": (low, high),
        "upload_url": args.upload_url,
        "upload_method": args.upload_method,
        "webhook_url": args.webhook,
    }
    try:
        runner = _batch_runner(args.concurrency, stream, args.dask)
        results = manager.run(runner(args.sources, options))
    except ConfigurationError as exc:  # an option the processor refuses
        args.subparser.error(str(exc))
    return 0 if all(r.succeeded for r in results) else 1
