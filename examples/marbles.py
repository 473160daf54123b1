"""Marble testing in virtual time, and marble diagrams as pictures.

``python examples/marbles.py``. Three marble tests of rxflows operators run on a
virtual-time loop (no real waiting: ``map_async``'s coroutines sleep in virtual
frames); then the diagram of the first one is drawn as an SVG picture, and a
deliberately wrong expectation shows the failure message, with a picture of
expected vs actual when ``RXFLOWS_MARBLE_SVG_DIR`` is set.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from rxflows import CircuitBreaker, CircuitOpenError
from rxflows import operators as ops
from rxflows.testing import marble_svg, marbles

WORK = {"a": 4, "b": 1, "c": 1}  # frames of work per item (1 frame = 1 ms)


async def f(item: str) -> str:
    await asyncio.sleep(WORK[item] / 1000)
    return {"a": "x", "b": "y", "c": "z"}[item]


def test_map_async_bounds_concurrency() -> None:
    with marbles() as m:
        source = m.cold("-a-b-c|")
        m.expect(source.pipe(ops.map_async(f, max_concurrent=2))).to_be("----yx(z|)")
        m.expect_subscriptions(source.subscriptions).to_be("^-----!")


def test_retry_backs_off() -> None:
    with marbles() as m:
        source = m.cold("-a-#")
        retried = source.pipe(ops.retry(max_attempts=3, delay=0.002, backoff=1))
        m.expect(retried).to_be("-a----a----a-#")


def test_breaker_rejects_when_open() -> None:
    breaker = CircuitBreaker(failure_threshold=1, timeout=0.005)
    with marbles() as m:
        guard = ops.circuit_breaker(breaker)
        m.expect(m.cold("-#").pipe(guard)).to_be("-#")
        m.expect(m.cold("-a|").pipe(guard), "---^").to_be("---#", error=CircuitOpenError)


def main() -> None:
    for test in (
        test_map_async_bounds_concurrency,
        test_retry_backs_off,
        test_breaker_rejects_when_open,
    ):
        test()
        print(f"passed: {test.__name__}")

    with tempfile.TemporaryDirectory() as directory:
        picture = Path(directory) / "map_async.svg"
        picture.write_text(
            marble_svg(
                {
                    "source": "-a-b-c|",
                    "": "[ map_async(f, max_concurrent=2) ]",
                    "result": "----yx(z|)",
                },
                title="ops.map_async",
            )
        )
        print(f"drew {picture.name}: {picture.stat().st_size} bytes of SVG")

        os.environ["RXFLOWS_MARBLE_SVG_DIR"] = directory
        try:
            with marbles() as m:
                m.expect(m.cold("-a-b-c|").pipe(ops.map_async(f, max_concurrent=1))).to_be(
                    "----yx(z|)"
                )
        except AssertionError as failure:
            message = str(failure)
            print(message.splitlines()[1])  # expected: ...
            print(message.splitlines()[2])  # actual:   ...
            print(f"and a picture: {Path(message.rsplit(': ', 1)[1]).name}")
        finally:
            del os.environ["RXFLOWS_MARBLE_SVG_DIR"]


if __name__ == "__main__":
    main()
