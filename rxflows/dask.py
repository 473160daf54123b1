"""Scale out on a Dask cluster: :class:`DaskExecutor` (``pip install 'rxflows[dask]'``).

Importing this module imports ``distributed``; importing :mod:`rxflows` never does.

A :class:`DaskExecutor` is an :class:`rxflows.Executor`: ``await executor.submit(fn,
*args)`` runs the sync function ``fn`` on a worker of a Dask cluster (through an
asynchronous ``distributed.Client``) and returns its result, or raises its
exception with the original type. Give it to ``ops.map_async(fn, max_concurrent,
executor=...)``, :class:`~rxflows.StreamingFlow`, :class:`~rxflows.WorkflowStep`
or ``AsyncVideoProcessor.process_video_batch(..., executor=...)``; the
``max_concurrent`` bounds still hold (at most that many tasks are submitted at
once).

Example:
    >>> from rxflows.dask import DaskExecutor
    >>> async with DaskExecutor("tcp://scheduler:8786") as executor:
    ...     results = await rxflows.collect(
    ...         rxflows.from_iterable(videos).pipe(
    ...             ops.map_async(fingerprint, max_concurrent=32, executor=executor)
    ...         )
    ...     )
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import uuid
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, Self, TypeVar

import dask
import distributed
from dask.base import tokenize
from dask.utils import funcname

from ._clock import LOOP_CLOCK
from ._errors import ClosedResourceError, ConfigurationError
from ._resource import AsyncResource

__all__ = ["SCHEMES", "DaskExecutor"]

_P = ParamSpec("_P")
_R = TypeVar("_R")

# Without a dashboard the scheduler still serves /health and /metrics, by default on
# port 8787: a second cluster on the machine would then warn that the port is taken.
_QUIET_SCHEDULER: dict[str, Any] = {"dashboard_address": "127.0.0.1:0"}

# How long a cancel waits for the scheduler to know a just-submitted task: about 5 s
# in all (a busy scheduler can take seconds to deserialize a graph update).
_CANCEL_WAITS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 1.0, 1.0, 1.0)

SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")
"""The address schemes ``distributed`` speaks (``tcp://host:8786`` is the usual one)."""


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"{name} must be a positive int, got {value!r}", field=name, value=value
        )
    return value


def _address(value: object) -> str | None:
    if value is None:
        return None
    scheme = value.split("://", 1)[0] if isinstance(value, str) and "://" in value else None
    if scheme not in SCHEMES or not isinstance(value, str) or not value.split("://", 1)[1]:
        raise ConfigurationError(
            "address must be a Dask scheduler address such as 'tcp://10.0.0.5:8786' "
            f"(schemes: {', '.join(SCHEMES)}), or None to start a LocalCluster, got {value!r}",
            field="address",
            value=value,
        )
    return value


def _resources(value: object) -> dict[str, float] | None:
    if value is None:
        return None
    ok = isinstance(value, Mapping) and all(
        isinstance(k, str)
        and k
        and not isinstance(v, bool)
        and isinstance(v, int | float)
        and 0 < v < float("inf")
        for k, v in value.items()
    )
    if not ok:
        raise ConfigurationError(
            "resources must map resource names to positive amounts (e.g. {'GPU': 1}) or be "
            f"None, got {value!r}",
            field="resources",
            value=value,
        )
    assert isinstance(value, Mapping)  # checked above
    return {str(k): float(v) for k, v in value.items()}


async def _cancel(client: distributed.Client, future: distributed.Future[Any]) -> None:
    """Cancel ``future``'s task on the scheduler.

    The scheduler deserializes a new task off its event loop, so a cancel sent right
    after the submit can arrive first and be ignored (the task would then run, and
    its result stay on a worker). So wait until the scheduler knows the key (about
    5 s at most; usually a few milliseconds), then cancel.
    """
    key, scheduler = future.key, client.scheduler
    if scheduler is not None:
        for delay in _CANCEL_WAITS:
            if delay:
                await LOOP_CLOCK.sleep(delay)
            states = await scheduler.get_task_status(keys=[key])
            if states.get(key) is not None:
                break
    await client.cancel(  # type: ignore[no-untyped-call]  # distributed leaves cancel() untyped
        [future], reason="rxflows: the awaiting coroutine was cancelled"
    )


class DaskExecutor(AsyncResource):
    """Runs sync functions on a Dask cluster, awaited from asyncio.

    With an ``address`` it connects to a running scheduler (``dask scheduler``, with
    ``dask worker tcp://...`` processes on other machines). Without one it starts a
    ``distributed.LocalCluster`` of ``n_workers`` worker processes on this machine
    (useful to use every core for pure-Python CPU work, and in tests), and closes it
    in :meth:`aclose`. The client (and cluster) start at the first :meth:`submit`, or
    at :meth:`start` / ``async with``; they belong to the event loop they started
    on, so use one executor per loop.

    What runs on the workers is pickled (with cloudpickle): ``fn`` must be importable
    there (a module-level function of a module installed on the workers), and its
    arguments and result picklable. Exceptions come back with their original type.

    **Lost workers.** A task whose worker dies (killed, out of memory, machine lost)
    is rescheduled by Dask on another worker; after
    ``distributed.scheduler.allowed-failures`` (3) such deaths it fails with
    ``distributed.KilledWorker``. ``retries`` is different: it re-runs a task that
    *raised*, so leave it at 0 to keep local semantics (each call runs once).

    **Cancellation.** Cancelling an awaiting :meth:`submit` cancels the Dask future: a
    task still waiting on the scheduler never runs. A task already running is **not**
    stopped (Dask cannot interrupt a running task, distributed#2617): it runs to the
    end on its worker and its result is dropped; so may a task the scheduler had
    just handed to a busy worker. Timeouts (``WorkflowStep(timeout=)``) are
    cancellations too.

    Args:
        address: The scheduler's address (``"tcp://host:8786"``; also ``tls://``,
            ``inproc://``, ``ucx://``, ``ws://``, ``wss://``), or None to start a
            LocalCluster.
        n_workers: LocalCluster only: worker processes (default 2).
        threads_per_worker: LocalCluster only: threads per worker (default 1, so
            pure-Python work is not serialised by one worker's GIL).
        processes: LocalCluster only: workers in processes (default) or threads of
            this process (starts in milliseconds; no parallel pure-Python work).
        client: An asynchronous ``distributed.Client`` to use instead (not closed by
            :meth:`aclose`); excludes ``address``.
        retries: Times Dask re-runs a task that raised (default 0).
        resources: Worker resources every task needs, e.g. ``{"GPU": 1}``.
        pure: True lets Dask run identical calls (same function, same arguments)
            once and share the result; default False: every call runs.
        cluster_options: More keyword arguments for ``LocalCluster``
            (``memory_limit``, ``silence_logs``, ...).

    Raises:
        ConfigurationError: an option is invalid (named, with the value and the rule).

    Example:
        >>> async with DaskExecutor(n_workers=2) as executor:   # a LocalCluster
        ...     assert await executor.submit(pow, 2, 10) == 1024
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        n_workers: int = 2,
        threads_per_worker: int = 1,
        processes: bool = True,
        client: distributed.Client | None = None,
        retries: int = 0,
        resources: Mapping[str, float] | None = None,
        pure: bool = False,
        cluster_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._address = _address(address)
        self._n_workers = _positive_int("n_workers", n_workers)
        self._threads_per_worker = _positive_int("threads_per_worker", threads_per_worker)
        self._processes = bool(processes)
        if client is not None:
            if not isinstance(client, distributed.Client):
                raise TypeError(f"client must be a distributed.Client or None, got {client!r}")
            if not client.asynchronous:
                raise ConfigurationError(
                    "client must be asynchronous: create it with "
                    "await distributed.Client(address, asynchronous=True)",
                    field="client",
                    value=client,
                )
            if address is not None:
                raise ConfigurationError(
                    f"give address or client, not both (got address={address!r} and a client)",
                    field="address",
                    value=address,
                )
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigurationError(
                f"retries must be an int >= 0, got {retries!r}", field="retries", value=retries
            )
        self._retries = retries
        self._resources = _resources(resources)
        self._pure = bool(pure)
        if cluster_options is not None and not isinstance(cluster_options, Mapping):
            raise ConfigurationError(
                f"cluster_options must be a mapping of LocalCluster options or None, "
                f"got {cluster_options!r}",
                field="cluster_options",
                value=cluster_options,
            )
        self._cluster_options = dict(cluster_options or {})
        self._given_client = client
        self._client: distributed.Client | None = client
        self._cluster: distributed.LocalCluster | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._starting: asyncio.Lock | None = None
        self._closed = False

    # -- properties ------------------------------------------------------------------

    @property
    def client(self) -> distributed.Client | None:
        """The ``distributed.Client`` (None before the executor started)."""
        return self._client

    @property
    def cluster(self) -> distributed.LocalCluster | None:
        """The LocalCluster this executor started (None with an address or a client)."""
        return self._cluster

    @property
    def scheduler_address(self) -> str | None:
        """The address of the scheduler tasks go to (None before the executor started)."""
        client = self._client
        if client is None:
            return self._address
        info = client.scheduler_info() if client.scheduler is not None else {}
        address = info.get("address") if isinstance(info, dict) else None
        return address if isinstance(address, str) else self._address

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` was called."""
        return self._closed

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> Self:
        """Connect to the scheduler (or start the LocalCluster) now; idempotent.

        Raises:
            ClosedResourceError: the executor is closed.
            OSError: the scheduler cannot be reached (``distributed``'s connect
                timeout, 30 s by default).
        """
        if self._closed:
            raise ClosedResourceError("DaskExecutor.start(): the executor is closed")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(
                "DaskExecutor is bound to the event loop it started on; create one "
                "executor per event loop"
            )
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._client is not None and self._client.status in ("running", "connecting"):
                return self
            if self._given_client is not None:
                await self._given_client  # a client still connecting finishes here
                return self
            if self._closed:
                raise ClosedResourceError("DaskExecutor.start(): the executor was closed")
            cluster: distributed.LocalCluster | None = None
            try:
                if self._address is None:
                    options: dict[str, Any] = {
                        "n_workers": self._n_workers,
                        "threads_per_worker": self._threads_per_worker,
                        "processes": self._processes,
                        "dashboard_address": None,
                        **self._cluster_options,
                    }
                    if "dashboard_address" not in self._cluster_options:
                        options["scheduler_kwargs"] = {
                            **_QUIET_SCHEDULER,
                            **options.get("scheduler_kwargs", {}),
                        }
                    # Saturation 1.0: the tasks of large batches ("root-ish") wait on
                    # the scheduler until a worker thread is free, where a cancel always
                    # stops them (a task queued on a worker can race its cancel).
                    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
                        cluster = await distributed.LocalCluster(asynchronous=True, **options)  # type: ignore[no-untyped-call]  # distributed leaves LocalCluster untyped
                    self._cluster = cluster
                    target: Any = cluster
                else:
                    target = self._address
                self._client = await distributed.Client(  # type: ignore[no-untyped-call]  # distributed leaves Client() untyped
                    target, asynchronous=True, set_as_default=False
                )
            except BaseException:
                self._cluster = None
                if cluster is not None:
                    await cluster.close()  # type: ignore[misc]  # untyped: a coroutine when asynchronous
                raise
        return self

    async def __aenter__(self) -> Self:
        return await self.start()

    async def aclose(self) -> None:
        """Close the client and the LocalCluster this executor started; idempotent.

        Calls still waiting for a result fail with ClosedResourceError. A client
        passed in is left open.
        """
        if self._closed:
            return
        self._closed = True
        client, self._client = self._client, None
        cluster, self._cluster = self._cluster, None
        if client is not None and client is not self._given_client:
            await client.close()  # type: ignore[no-untyped-call]  # distributed leaves close() untyped
        if cluster is not None:
            await cluster.close()  # type: ignore[misc]  # untyped: a coroutine when asynchronous

    # -- work ------------------------------------------------------------------------------

    async def submit(self, fn: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """``fn(*args, **kwargs)`` on a worker: its result, or its exception unwrapped.

        Starts the executor first if needed. Cancelling the await cancels the task
        (a running task is not stopped, only abandoned).

        Raises:
            ClosedResourceError: the executor is closed, or was closed while the
                call waited.
            distributed.KilledWorker: the task's workers died more than
                ``allowed-failures`` times.

        Example:
            >>> checksum = await executor.submit(zlib.crc32, b"frame")
        """
        self._check_open("submit")
        client = self._client
        if client is None or self._loop is not asyncio.get_running_loop():
            await self.start()
            client = self._client
            assert client is not None  # start() succeeded
        call: Callable[..., _R] = functools.partial(fn, **kwargs) if kwargs else fn
        name = funcname(fn)
        key = f"{name}-{tokenize(fn, args, kwargs) if self._pure else uuid.uuid4().hex}"
        future = client.submit(
            call,
            *args,
            key=key,
            pure=self._pure,
            retries=self._retries or None,
            resources=self._resources,
        )
        try:
            result: _R = await future
        except asyncio.CancelledError:
            # Our caller gave up: a pending task must not run (a running one cannot be
            # stopped). Cancel even if we are cancelled again meanwhile.
            with contextlib.suppress(Exception):
                await asyncio.shield(_cancel(client, future))
            raise
        except concurrent.futures.CancelledError as cancelled:
            if self._closed:
                raise ClosedResourceError(
                    "DaskExecutor.submit(): the executor was closed before the call finished"
                ) from cancelled
            raise
        finally:
            future.release()  # type: ignore[no-untyped-call]  # distributed leaves release() untyped
        return result

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise ClosedResourceError(f"DaskExecutor.{what}(): the executor is closed")

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("started" if self._client is not None else "new")
        where = self._address or (
            f"LocalCluster(n_workers={self._n_workers}, processes={self._processes})"
        )
        return f"<DaskExecutor {state} {where}>"
