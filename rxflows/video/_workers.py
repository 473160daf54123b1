"""Warm speech-recognition workers shared by the jobs of one video processor.

Recognition is CPU-bound, so it runs in other processes. Starting a process per
video costs more than the recognition of a short video (a fresh interpreter,
``import rxflows``, the acoustic model: about 2 s on 2 cores), so the processor
keeps :class:`RecognizerWorkers`: ``size`` *lanes*, each a one-worker process pool
(``spawn``) whose initializer loads the recognizer's model once
(``recognizer.warm_up()`` when it has one). A job takes a free lane for its
recognition and gives it back after; with ``size`` lanes at most ``size``
recognitions run at once.

One worker per lane, rather than one pool of ``size`` workers, is what makes
cancellation exact: a cancelled job's lane is killed (the recognition stops at
once instead of running on in the background) and replaced by a fresh lane,
without touching the other jobs' workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from .._errors import ClosedResourceError
from ._captions import Recognizer, Word

__all__ = ["RecognizerWorkers"]

_log = logging.getLogger("rxflows.video")


def _warm_up(recognizer: Recognizer) -> None:
    """A lane's initializer: load the model now, so the first video does not wait for it.

    Never raises: an initializer that raises breaks the pool, and a recognizer that
    cannot warm up reports the problem on its first real call instead.
    """
    warm = getattr(recognizer, "warm_up", None)
    if callable(warm):
        with contextlib.suppress(Exception):
            warm()


def _ready() -> bool:
    return True


class RecognizerWorkers:
    """``size`` warm, killable recognition workers for ``recognizer``.

    Example:
        >>> workers = RecognizerWorkers(PocketSphinxRecognizer(FAST_POCKETSPHINX), size=2)
        >>> words = await workers.transcribe(Path("talk.wav"))
        >>> await workers.aclose()
    """

    def __init__(self, recognizer: Recognizer, size: int) -> None:
        self._recognizer = recognizer
        self._size = size
        self._free: asyncio.Queue[ProcessPoolExecutor] | None = None
        self._all: set[ProcessPoolExecutor] = set()
        self._closed = False

    @property
    def size(self) -> int:
        """How many recognitions can run at once."""
        return self._size

    def _new_lane(self) -> ProcessPoolExecutor:
        # "spawn": forking a process that runs an event loop and threads is unsafe.
        lane = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_warm_up,
            initargs=(self._recognizer,),
        )
        self._all.add(lane)
        return lane

    def _queue(self) -> asyncio.Queue[ProcessPoolExecutor]:
        if self._free is None:
            self._free = asyncio.Queue()
        return self._free

    def start(self, count: int = 1) -> None:
        """Have at least ``min(count, size)`` lanes, their processes started now (in
        the background: the model loads while the jobs do other work)."""
        free = self._queue()
        while not self._closed and len(self._all) < min(count, self._size):
            lane = self._new_lane()
            lane.submit(_ready)  # spawns the worker, which runs the initializer
            free.put_nowait(lane)

    async def transcribe(self, wav_path: Path) -> list[Word]:
        """The words of ``wav_path``, recognized in a free lane (waits for one).

        Cancelling kills the lane's process (no recognition runs on) and replaces
        the lane; so does a worker that died.
        """
        if self._closed:
            raise ClosedResourceError("transcribe(): the recognition workers are closed")
        free = self._queue()
        if free.empty() and len(self._all) < self._size:
            free.put_nowait(self._new_lane())
        lane = await free.get()
        replace = False
        try:
            future = lane.submit(self._recognizer.transcribe, wav_path)
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            replace = True
            raise
        except Exception:
            raise  # the recognizer raised: its worker is fine
        except BaseException:
            replace = True  # cancelled (or the loop is stopping): stop the recognition
            raise
        finally:
            if replace or self._closed:
                _kill(lane)
                self._all.discard(lane)
            if not self._closed:
                # A replaced lane's successor starts with the next job that needs it.
                free.put_nowait(lane if not replace else self._new_lane())

    async def aclose(self) -> None:
        """Stop every worker (a recognition in progress is killed). Idempotent."""
        if self._closed:
            return
        self._closed = True
        lanes, self._all = list(self._all), set()
        for lane in lanes:
            _kill_processes(lane)  # idle workers hold nothing worth a graceful stop
        await asyncio.shield(asyncio.to_thread(_shut_down, lanes))


def _kill(lane: ProcessPoolExecutor) -> None:
    """Kill the lane's worker now; the pool's own thread reaps it in the background."""
    _kill_processes(lane)
    lane.shutdown(wait=False, cancel_futures=True)


def _kill_processes(lane: ProcessPoolExecutor) -> None:
    processes = getattr(lane, "_processes", None) or {}  # private, but the only handle
    for process in list(processes.values()):
        with contextlib.suppress(Exception):
            process.kill()


def _shut_down(lanes: list[ProcessPoolExecutor]) -> None:
    # Only the pool reaps its workers (shutdown(wait=True) joins its thread, which
    # joins them): a second waitpid elsewhere would steal the exit status, and the
    # pool would then wait for a process it can no longer see exit.
    for lane in lanes:
        lane.shutdown(wait=True, cancel_futures=True)
