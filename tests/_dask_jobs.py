"""Jobs the Dask tests run on cluster workers, and the test cluster itself.

Workers unpickle functions by reference, so the jobs live in this importable module
(``tests._dask_jobs``), not in the test file. ``python -m tests._dask_jobs`` starts a
2-worker ``LocalCluster`` (worker processes under nannies, so a killed worker is
restarted), prints its scheduler address on one line, and closes the cluster when
its standard input closes: the test session shares one cluster this way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

import dask
import distributed

WAIT = 30.0
_Event: Any = distributed.Event  # untyped in distributed
_LocalCluster: Any = (
    distributed.LocalCluster
)  # untyped in distributed  # seconds a job waits on a distributed.Event before giving up


class JobError(Exception):
    """A user's own exception type: it must come back from a worker unchanged."""

    def __init__(self, item: int, reason: str) -> None:
        super().__init__(item, reason)
        self.item = item
        self.reason = reason


def square(x: int) -> int:
    return x * x


def square_or_fail(x: int) -> int:
    if x < 0:
        raise JobError(x, "negative input")
    return x * x


def burn(n: int) -> int:
    """Pure-Python CPU work: the GIL serialises it in threads."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def noop(x: int) -> int:
    return x


def worker_pid(_: object = None) -> int:
    return os.getpid()


def thread_id(_: object = None) -> int:
    return threading.get_ident()


def hold(name: str) -> str:
    """Set ``started-<name>``, block a worker thread until the ``release-<name>`` event,
    then set ``finished-<name>``."""
    _Event(f"started-{name}").set()
    if not _Event(f"release-{name}").wait(WAIT):
        raise TimeoutError(f"hold({name!r}) was never released")
    _Event(f"finished-{name}").set()
    return name


def touch(path: str) -> str:
    """Leave a trace that the job ran."""
    Path(path).write_text("ran")
    return path


def knows(key: str, dask_worker: Any = None) -> bool:
    """Whether this worker still holds ``key`` in its state (for ``client.run``)."""
    return dask_worker is not None and key in dask_worker.state.tasks


def square_killing_worker_once(x: int, marker_dir: str, victim: int = 0) -> int:
    """``x * x``; the first run for ``victim`` kills its own worker process first."""
    if x == victim:
        try:
            fd = os.open(os.path.join(marker_dir, "killed"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass  # the rerun on another (or the restarted) worker
        else:
            os.close(fd)
            os._exit(1)  # the worker dies mid-job, like an OOM kill
    return x * x


async def _serve() -> None:
    # as DaskExecutor's own LocalCluster: waiting tasks stay on the scheduler, where a
    # cancel always stops them
    dask.config.set({"distributed.scheduler.worker-saturation": 1.0})
    async with _LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.CRITICAL,
        asynchronous=True,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # not the default port 8787
    ) as cluster:
        print(cluster.scheduler_address, flush=True)
        await asyncio.to_thread(sys.stdin.read)  # until the test session closes our stdin


if __name__ == "__main__":
    asyncio.run(_serve())
