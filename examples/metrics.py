"""Metrics: time tasks, measure an observable, serve Prometheus, and a threshold monitor.

``python examples/metrics.py``. ``collector.time(name)`` records a duration and an
outcome per block; ``ops.measure`` records each subscription of an observable;
the collector serves the Prometheus text format over HTTP (scraped here once over
loopback); a ``MetricsMonitor`` publishes ``slow_processing`` on a bus when the
mean time goes over a threshold.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp

import rxflows
from rxflows import (
    AsyncEventLoopManager,
    MetricsMonitor,
    create_async_event_bus,
    create_async_flow_config,
    create_async_metrics_collector,
)
from rxflows import operators as ops


async def transcode(seconds: float) -> None:
    await asyncio.sleep(seconds)
    if seconds > 0.04:
        raise TimeoutError("transcoder too slow")


async def main() -> None:
    metrics = create_async_metrics_collector()
    bus = create_async_event_bus()
    alarms: list[str] = []
    await bus.subscribe("slow_processing", lambda data: alarms.append("slow_processing"))

    async with MetricsMonitor(metrics, bus, interval=0.05, avg_time_threshold=0.03):
        for seconds in (0.01, 0.02, 0.05, 0.06):
            with contextlib.suppress(TimeoutError):
                async with metrics.time("transcode"):
                    await transcode(seconds)
        manifest = rxflows.from_async(asyncio.sleep, 0.01, "manifest").pipe(
            ops.measure(metrics, "fetch_manifest")
        )
        await rxflows.collect(manifest)
        await asyncio.sleep(0.06)  # one more check by the monitor
    await bus.drain()

    snapshot = metrics.snapshot()
    transcodes = snapshot.tasks["transcode"]
    print(
        f"transcode: {transcodes.total_tasks} runs, {transcodes.failed_tasks} failed, "
        f"mean {transcodes.avg_execution_time * 1000:.0f} ms, "
        f"p95 {transcodes.p95_execution_time * 1000:.0f} ms"
    )
    print(f"fetch_manifest: {snapshot.tasks['fetch_manifest'].total_tasks} run")
    print(f"monitor alarms: {sorted(set(alarms))}")

    async with (
        await metrics.serve(port=0) as server,
        aiohttp.ClientSession() as session,
        session.get(server.url) as response,
    ):
        text = await response.text()
    print("scraped over HTTP:")
    for line in text.splitlines():
        if line.startswith("rxflows_tasks_total") and 'task="transcode"' in line:
            print(f"  {line}")
    await bus.aclose()


if __name__ == "__main__":
    AsyncEventLoopManager(create_async_flow_config()).run(main())
