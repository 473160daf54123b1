"""DaskExecutor on a real 2-worker LocalCluster.

The tests share one cluster, started in a child process (``python -m
tests._dask_jobs``); each test connects a DaskExecutor to its address on the test's
own event loop. One test also lets a DaskExecutor start (and close) its own
LocalCluster. Dask runs on real time and real processes: every test here is
``real_time``, and waits on results and ``distributed.Event``s, never on sleeps.
"""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import distributed
import pytest
import pytest_asyncio
from aiohttp import web

from rxflows import (
    AsyncWorkflowEngine,
    ClosedResourceError,
    ConfigurationError,
    Executor,
    StepStatus,
    StreamingFlow,
    WorkflowStep,
    collect,
    create_async_flow_config,
    from_iterable,
)
from rxflows import operators as ops
from rxflows._cli import main
from rxflows._resource import AsyncResource
from rxflows.dask import DaskExecutor
from rxflows.video import STAGES, create_async_video_processor

from . import _dask_jobs as jobs
from .support import settle

pytestmark = pytest.mark.real_time

_P = ParamSpec("_P")
_R = TypeVar("_R")
ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0
TALKING = ROOT / "tests" / "data" / "talking.mp4"


@pytest.fixture(scope="module")
def dask_address() -> Iterator[str]:
    """The scheduler address of a 2-worker LocalCluster living in a child process.

    Module-scoped: the cluster's worker processes are gone before other test files
    (which count the processes they spawn) run.
    """
    child = subprocess.Popen(
        [sys.executable, "-m", "tests._dask_jobs"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(child.stdout.readline()))  # type: ignore[union-attr]  # checked above
    reader.start()
    reader.join(START_TIMEOUT)
    try:
        address = line[0].strip() if line else ""
        if not address.startswith("tcp://"):
            child.kill()
            _, err = child.communicate(timeout=10)
            pytest.fail(f"the test cluster did not start: {address!r}\n{err[-2000:]}")
        yield address
    finally:
        child.stdin.close()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=10)
        child.stdout.close()
        if child.stderr is not None:
            child.stderr.close()


class CountingExecutor(AsyncResource):
    """Wraps an executor and records how many submissions were in flight at most."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self.in_flight = 0
        self.peak = 0

    async def submit(self, fn: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await self.inner.submit(fn, *args, **kwargs)
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()


# -- construction -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"address": "localhost:8786"}, r"address must be a Dask scheduler address such as"),
        ({"address": "http://x:8786"}, r"\(schemes: tcp, tls, inproc, ucx, ws, wss\).*'http://"),
        ({"address": "tcp://"}, r"got 'tcp://'"),
        ({"n_workers": 0}, r"n_workers must be a positive int, got 0"),
        ({"threads_per_worker": -1}, r"threads_per_worker must be a positive int, got -1"),
        ({"retries": -1}, r"retries must be an int >= 0, got -1"),
        ({"resources": {"GPU": 0}}, r"resources must map resource names to positive amounts"),
        ({"cluster_options": 3}, r"cluster_options must be a mapping"),
    ],
)
def test_bad_options_raise_configuration_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        DaskExecutor(**kwargs)
    assert info.value.field == next(iter(kwargs))


def test_bad_client_is_refused() -> None:
    with pytest.raises(TypeError, match=r"client must be a distributed\.Client or None"):
        DaskExecutor(client="tcp://x:1")  # type: ignore[arg-type]  # the misuse tested


def test_dask_executor_is_an_executor() -> None:
    executor = DaskExecutor("tcp://127.0.0.1:8786")
    assert isinstance(executor, Executor)
    assert repr(executor) == "<DaskExecutor new tcp://127.0.0.1:8786>"
    assert executor.client is None
    assert repr(DaskExecutor()) == ("<DaskExecutor new LocalCluster(n_workers=2, processes=True)>")


async def test_an_executor_without_address_owns_a_local_cluster() -> None:
    # Workers in threads of this process: starts fast (examples/dask_scale_out.py, run
    # below, starts the default: worker processes).
    options = {"silence_logs": 50}
    async with DaskExecutor(n_workers=2, processes=False, cluster_options=options) as dask:
        cluster = dask.cluster
        assert cluster is not None
        assert len(cluster.workers) == 2
        assert str(dask.scheduler_address).startswith("inproc://")
        threads = await collect(
            from_iterable(range(4)).pipe(ops.map_async(jobs.thread_id, 2, executor=dask))
        )
        assert threading.get_ident() not in threads  # not on the event loop's thread
        # a client passed in is used, and left open by aclose()
        make_client: Any = distributed.Client  # untyped in distributed
        client = await make_client(cluster, asynchronous=True, set_as_default=False)
        borrowed = DaskExecutor(client=client)
        assert await borrowed.submit(jobs.square, 7) == 49
        await borrowed.aclose()
        assert client.status == "running"
        await client.close()
    assert cluster.status.name == "closed"
    assert dask.cluster is None


# -- on the shared cluster ---------------------------------------------------------------------


async def test_map_async_on_the_cluster_matches_local_results(dask_address: str) -> None:
    async with DaskExecutor(dask_address) as dask:
        assert dask.scheduler_address == dask_address
        counting = CountingExecutor(dask)
        items = list(range(12))
        remote = from_iterable(items).pipe(
            ops.map_async(jobs.square, 3, ordered=True, executor=counting)
        )
        assert await collect(remote) == [jobs.square(x) for x in items]
        assert counting.peak == 3  # the bound holds: never more than 3 tasks submitted
        assert await dask.submit(jobs.worker_pid) != os.getpid()
        assert await dask.submit(pow, 2, 10) == 1024
        assert await dask.submit(int, "ff", base=16) == 255  # keyword arguments go through
        client = dask.client
        assert client is not None
        await settle()
        assert client.futures == {}  # every future was released
    assert dask.closed
    assert client.status == "closed"
    with pytest.raises(ClosedResourceError, match=r"DaskExecutor\.submit\(\): .* closed"):
        await dask.submit(jobs.square, 2)


async def test_errors_keep_their_original_type(dask_address: str) -> None:
    async with DaskExecutor(dask_address) as dask:
        with pytest.raises(jobs.JobError) as info:
            await dask.submit(jobs.square_or_fail, -3)
        assert type(info.value) is jobs.JobError
        assert (info.value.item, info.value.reason) == (-3, "negative input")

        failing = from_iterable([1, 2, -4, 5]).pipe(
            ops.map_async(jobs.square_or_fail, 2, executor=dask)
        )
        with pytest.raises(jobs.JobError, match="negative input"):
            await collect(failing)


async def test_streaming_flow_and_workflow_on_the_cluster(dask_address: str) -> None:
    async with DaskExecutor(dask_address) as dask:
        flow = StreamingFlow()
        results = [
            r async for r in flow.execute(range(6), jobs.square, max_concurrent=2, executor=dask)
        ]
        assert sorted(results) == [x * x for x in range(6)]

        engine = AsyncWorkflowEngine()
        engine.add_step(WorkflowStep("square", jobs.square, executor=dask))
        engine.add_step(WorkflowStep("burn", jobs.burn, ["square"], executor=dask, retry=2))
        engine.add_step(WorkflowStep("where", jobs.worker_pid, ["burn"], executor=dask))
        result = await engine.run(30)
        await engine.aclose()
        assert result["square"].output == 900
        assert result["burn"].output == jobs.burn(900)
        assert result["where"].output != os.getpid()

        checking = AsyncWorkflowEngine()
        checking.add_step(WorkflowStep("check", jobs.square_or_fail, executor=dask))
        failed = await checking.run(-2)
        await checking.aclose()
        assert failed["check"].status is StepStatus.FAILED
        assert type(failed["check"].error) is jobs.JobError


async def test_cancelling_cancels_a_pending_task_and_abandons_a_running_one(
    dask_address: str, tmp_path: Path
) -> None:
    async with DaskExecutor(dask_address) as dask:
        client = dask.client
        assert client is not None
        names = ["a", "b"]
        # both workers (one thread each) busy until released
        holding = [asyncio.create_task(dask.submit(jobs.hold, n)) for n in names]
        for n in names:
            assert await _event(client, f"started-{n}").wait(jobs.WAIT)
        trace = tmp_path / "pending-ran"
        pending = asyncio.create_task(dask.submit(jobs.touch, str(trace)))
        await asyncio.sleep(0)  # submit() runs up to its await: the task is on the scheduler
        assert len(client.futures) == 3
        assert sorted(await _processing(client)) == sorted(
            key for key in client.futures if key.startswith("hold-")
        )
        (pending_key,) = [key for key in client.futures if key.startswith("touch-")]
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        # A task Dask has already handed to a busy worker is dropped there only when
        # the scheduler's free-keys message reaches that worker (the documented best
        # effort); wait for that before freeing the workers, so the test checks the
        # guarantee and not the race.
        for _ in range(250):  # real time: at most ~5 s
            if not any((await client.run(jobs.knows, pending_key)).values()):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError(f"a worker still holds the cancelled task {pending_key}")
        # Then a running one: it cannot be stopped, only abandoned. (Cancelled first,
        # it would free its worker's slot on the scheduler, which could hand the
        # pending task to that worker's thread queue before its own cancel arrived.)
        holding[0].cancel()
        with pytest.raises(asyncio.CancelledError):
            await holding[0]
        for n in names:
            await _event(client, f"release-{n}").set()
        assert await holding[1] == "b"
        # the abandoned task still ran to its end on its worker
        assert await _event(client, "finished-a").wait(jobs.WAIT)
        # the cancelled pending task never ran: both workers are free now, and run more work
        assert await collect(
            from_iterable(range(4)).pipe(ops.map_async(jobs.square, 4, executor=dask))
        )
        assert not trace.exists()
        await settle()
        assert client.futures == {}


def _event(client: distributed.Client, name: str) -> Any:
    """A ``distributed.Event`` for the test's asynchronous client (its methods are
    coroutines then; distributed leaves them untyped)."""
    event: Any = distributed.Event
    return event(name, client=client)


async def _processing(client: distributed.Client) -> list[str]:
    """The keys the workers are running now."""
    processing: dict[str, list[str]] = await client.processing()  # type: ignore[no-untyped-call]  # distributed leaves processing() untyped
    return [key for keys in processing.values() for key in keys]


async def test_a_worker_killed_mid_job_loses_nothing(dask_address: str, tmp_path: Path) -> None:
    async with DaskExecutor(dask_address) as dask:
        client = dask.client
        assert client is not None
        before = set(client.scheduler_info()["workers"])
        items = list(range(10))
        kill_once = functools.partial(jobs.square_killing_worker_once, marker_dir=str(tmp_path))
        results = await collect(
            from_iterable(items).pipe(ops.map_async(kill_once, 4, ordered=True, executor=dask))
        )
        assert results == [x * x for x in items]
        assert (tmp_path / "killed").exists()  # a worker did die mid-job
        wait_for_workers: Any = client.wait_for_workers  # typed as sync; a coroutine here
        await wait_for_workers(2, timeout=jobs.WAIT)  # the nanny restarted the killed worker
        assert set(client.scheduler_info()["workers"]) != before


def test_the_scale_out_example_runs() -> None:
    example = ROOT / "examples" / "dask_scale_out.py"
    out = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=50, check=True
    ).stdout
    assert "threads: 16 fingerprints" in out
    assert "dask:    16 fingerprints" in out
    assert "same results: True" in out
    assert "error kept its type: BadFrameError: frame -3 is corrupt" in out
    assert "workflow: succeeded: 1 frames, first frame-7:" in out


# -- the video processor on the cluster ---------------------------------------------------------


@dataclass
class MediaServer:
    base: str
    uploads: list[dict[str, Any]] = field(default_factory=list)
    webhooks: list[dict[str, Any]] = field(default_factory=list)


@pytest_asyncio.fixture
async def media_server() -> AsyncIterator[MediaServer]:
    """Serves tests/data/talking.mp4, takes uploads (multipart POST) and webhooks."""
    state = MediaServer(base="")

    async def video(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(TALKING)

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500, text="boom")

    async def upload(request: web.Request) -> web.Response:
        form = await request.post()
        clip = form["file"]
        assert isinstance(clip, web.FileField)
        state.uploads.append({"name": clip.filename, "body": clip.file.read()})
        return web.json_response({"url": f"https://media.example/{clip.filename}"})

    async def webhook(request: web.Request) -> web.Response:
        state.webhooks.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/media/talk.mp4", video)
    app.router.add_get("/media/broken.mp4", broken)
    app.router.add_post("/upload", upload)
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield state
    finally:
        await runner.cleanup()


async def test_video_batch_runs_each_job_on_a_worker(
    dask_address: str, media_server: MediaServer, tmp_path: Path
) -> None:
    base = media_server.base
    config = create_async_flow_config(retry_base_delay=0.01, retry_max_delay=0.05)
    seen: list[tuple[str, Any]] = []

    def record(event: str, data: Any) -> None:
        seen.append((event, data))

    async with (
        create_async_video_processor(
            config,
            output_dir=tmp_path / "out",
            clip_count=1,
            clip_seconds=(3, 5),
            upload_url=f"{base}/upload",
            webhook_url=f"{base}/webhook",
        ) as processor,
        DaskExecutor(dask_address) as dask,
    ):
        for topic in ("video_processed", "video_failed"):
            await processor.event_bus.subscribe(topic, record, pass_event=True)
        sources = [f"{base}/media/talk.mp4", f"{base}/media/broken.mp4"]
        results = await processor.process_video_batch(sources, executor=dask)

    good, bad = results
    assert [r.source for r in results] == sources
    assert good.status == "completed", good.error
    (clip,) = good.clips
    assert clip.url == "https://media.example/talk-clip-1.mp4"
    assert clip.duration == pytest.approx(4.0, abs=1.0 + 1e-6)
    assert set(good.timings) == set(STAGES)
    (upload,) = media_server.uploads
    assert upload["name"] == "talk-clip-1.mp4"
    assert upload["body"] == clip.path.read_bytes()  # a local cluster: the worker's disk is ours
    assert bad.status == "failed"
    assert bad.stage == "download"
    assert "500" in str(bad.error)
    # the worker called the webhook; the events were published here
    assert sorted(hook["event"] for hook in media_server.webhooks) == [
        "video_failed",
        "video_processed",
    ]
    assert sorted(event for event, _ in seen) == ["video_failed", "video_processed"]


def test_cli_clip_runs_on_the_cluster(
    dask_address: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "clips"
    argv = ["clip", str(TALKING), "--out", str(out), "--clips", "1", "--clip-seconds", "3", "5"]
    assert main([*argv, "--dask", dask_address]) == 0
    printed = capsys.readouterr().out
    assert "1 of 1 video(s) processed" in printed
    # a local cluster shares our disk: the worker wrote the clip where we asked
    assert sorted(p.name for p in out.iterdir()) == [
        "talking-clip-1.mp4",
        "talking-clip-1.srt",
        "talking.json",
    ]


def test_cli_refuses_a_bad_dask_address(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["clip", str(TALKING), "--out", str(tmp_path), "--dask", "localhost:8786"])
    assert info.value.code == 2
    assert "address must be a Dask scheduler address" in capsys.readouterr().err
