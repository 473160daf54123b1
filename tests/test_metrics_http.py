"""The metrics HTTP endpoint, scraped for real over a socket on 127.0.0.1.

These tests run on a real-clock loop (``real_time``): real sockets and a virtual
clock do not mix. They never sleep; every await is socket I/O.
"""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from rxflows import AsyncMetricsCollector, ClosedResourceError, ConfigurationError, MetricsServer

pytestmark = pytest.mark.real_time


def running(server: MetricsServer) -> bool:
    # a function, so that mypy does not keep `server.running` narrowed across aclose()
    return server.running


def filled_collector() -> AsyncMetricsCollector:
    collector = AsyncMetricsCollector(buckets=[1.0, 10.0])
    collector.record("download", 0.5, True)
    collector.record("download", 4.0, False)
    collector.record("upload", 20.0, True)
    return collector


async def test_scrape_over_http_parses_back() -> None:
    collector = filled_collector()
    server = await collector.serve(host="127.0.0.1", port=0)
    try:
        assert running(server)
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        async with (
            aiohttp.ClientSession() as session,
            session.get(server.url) as response,
        ):
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            body = await response.text()
    finally:
        await server.aclose()
    assert not running(server)

    families = {family.name: family for family in text_string_to_metric_families(body)}
    histogram = families["rxflows_task_duration_seconds"]
    buckets = {
        (s.labels["task"], s.labels["le"]): s.value
        for s in histogram.samples
        if s.name.endswith("_bucket")
    }
    assert buckets == {
        ("download", "1.0"): 1.0,
        ("download", "10.0"): 2.0,
        ("download", "+Inf"): 2.0,
        ("upload", "1.0"): 0.0,
        ("upload", "10.0"): 0.0,
        ("upload", "+Inf"): 1.0,
    }
    sums = {s.labels["task"]: s.value for s in histogram.samples if s.name.endswith("_sum")}
    assert sums == {"download": 4.5, "upload": 20.0}
    outcomes = {
        (s.labels["task"], s.labels["outcome"]): s.value for s in families["rxflows_tasks"].samples
    }
    assert outcomes[("download", "failure")] == 1.0
    assert outcomes[("upload", "success")] == 1.0
    # the same text as exposition(): the server adds nothing of its own
    assert body.encode() == collector.exposition()


async def test_openmetrics_is_served_when_asked_for() -> None:
    collector = filled_collector()
    async with (
        MetricsServer(collector) as server,
        aiohttp.ClientSession() as session,
        session.get(
            server.url, headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        ) as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        body = await response.text()
    parsed = openmetrics_families(body)  # type: ignore[no-untyped-call]  # unannotated upstream
    families = {family.name: family for family in parsed}
    assert families["rxflows_tasks"].type == "counter"
    assert body.rstrip().endswith("# EOF")


async def test_other_paths_are_not_found_and_a_custom_path_works() -> None:
    collector = filled_collector()
    async with (
        await collector.serve(path="/internal/metrics") as server,
        aiohttp.ClientSession() as session,
    ):
        assert server.url.endswith("/internal/metrics")
        async with session.get(server.url) as found:
            assert found.status == 200
        async with session.get(server.url.replace("/internal/metrics", "/metrics")) as missing:
            assert missing.status == 404


async def test_close_is_idempotent_and_final() -> None:
    server = MetricsServer(filled_collector())
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.port
    port = await server.start()
    assert await server.start() == port  # idempotent while running
    url = server.url
    await server.aclose()
    await server.aclose()
    with pytest.raises(ClosedResourceError, match="was closed"):
        await server.start()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(url):
                pass


async def test_bad_server_arguments() -> None:
    collector = AsyncMetricsCollector()
    with pytest.raises(TypeError, match="needs an AsyncMetricsCollector"):
        MetricsServer(object())  # type: ignore[arg-type]  # wrong type on purpose
    with pytest.raises(ConfigurationError, match="port must be an int from 0 to 65535"):
        MetricsServer(collector, port=70000)
    with pytest.raises(ConfigurationError, match="path must be a str starting with '/'"):
        MetricsServer(collector, path="metrics")
    with pytest.raises(ConfigurationError, match="host must be a non-empty str"):
        MetricsServer(collector, host="")
