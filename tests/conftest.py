"""Test-suite wiring: virtual time for every async test, and no leaked tasks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping

import pytest
import pytest_asyncio

from rxflows.testing import VirtualTimeLoop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Async tests run on a virtual-time loop unless marked ``real_time``."""
    if item.get_closest_marker("real_time") is not None:
        return {"real": asyncio.new_event_loop}
    return {"virtual": VirtualTimeLoop}


@pytest_asyncio.fixture
async def _leak_check() -> AsyncIterator[None]:
    yield
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    # Work that was cancelled at the end of the test needs a few loop turns to unwind.
    for _ in range(20):
        pending = [t for t in asyncio.all_tasks(loop) if t is not me and not t.done()]
        if not pending:
            return
        await asyncio.sleep(0)
    for task in pending:
        task.cancel()
    pytest.fail(f"the test left {len(pending)} task(s) running: {pending!r}")


@pytest.fixture(autouse=True)
def _no_leaked_tasks(request: pytest.FixtureRequest) -> None:
    """Fail an async test that leaves tasks running when it returns."""
    if request.node.get_closest_marker("asyncio") is not None:
        request.getfixturevalue("_leak_check")
