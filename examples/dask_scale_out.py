"""Scale a CPU-heavy step out on Dask: the same pipeline, locally and on a cluster.

Run it with ``python examples/dask_scale_out.py`` (it starts a 2-worker
LocalCluster on this machine), or give it a running scheduler::

    dask scheduler --port 8786 &
    dask worker tcp://127.0.0.1:8786 --nworkers 2 --nthreads 1 &
    python examples/dask_scale_out.py tcp://127.0.0.1:8786

Needs the ``dask`` extra: ``pip install 'rxflows[dask]'``.
"""

from __future__ import annotations

import asyncio
import sys
import time

import rxflows
from rxflows import AsyncWorkflowEngine, LocalExecutor, WorkflowStep
from rxflows import operators as ops
from rxflows.dask import DaskExecutor


def fingerprint(frame: int) -> str:
    """Pure-Python CPU work (it holds the GIL) standing in for a frame's perceptual hash."""
    value = frame + 1
    for i in range(100_000):
        value = (value * 31 + i) % 1_000_000_007
    return f"frame-{frame}:{value:09d}"


def summarize(fingerprints: list[str]) -> str:
    return f"{len(fingerprints)} frames, first {fingerprints[0]}"


class BadFrameError(Exception):
    """A user's own exception: it comes back from the worker with its type."""


def check(frame: int) -> int:
    if frame < 0:
        raise BadFrameError(f"frame {frame} is corrupt")
    return frame


async def run_pipeline(executor: rxflows.Executor, frames: list[int]) -> list[str]:
    """The same operator chain, whatever the executor: at most 4 jobs submitted at once."""
    return await rxflows.collect(
        rxflows.from_iterable(frames).pipe(
            ops.map_async(check, 4, ordered=True, executor=executor),
            ops.map_async(fingerprint, 4, ordered=True, executor=executor),
        )
    )


async def main(address: str | None = None) -> None:
    frames = list(range(16))
    async with LocalExecutor("thread", max_workers=2) as threads:
        start = time.perf_counter()
        local = await run_pipeline(threads, frames)
        print(f"threads: {len(local)} fingerprints in {time.perf_counter() - start:.2f} s")

    # No address: a LocalCluster of 2 worker processes, closed on leaving the block.
    async with DaskExecutor(address, n_workers=2, cluster_options={"silence_logs": 50}) as dask:
        print(f"cluster: {dask.scheduler_address}")
        start = time.perf_counter()
        remote = await run_pipeline(dask, frames)
        print(f"dask:    {len(remote)} fingerprints in {time.perf_counter() - start:.2f} s")
        print(f"same results: {remote == local}")

        try:
            await run_pipeline(dask, [1, 2, -3, 4])
        except BadFrameError as error:  # the original type, raised on a worker
            print(f"error kept its type: {type(error).__name__}: {error}")

        engine = AsyncWorkflowEngine(name="fingerprints")
        engine.add_step(WorkflowStep("hash", fingerprint, executor=dask, retry=2, timeout=60))
        engine.add_step(WorkflowStep("report", summarize_one, ["hash"]))
        result = await engine.run(7)
        await engine.aclose()
        print(f"workflow: {result.status.value}: {result.outputs['report']}")


async def summarize_one(fingerprint_text: str) -> str:
    return summarize([fingerprint_text])


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))
