"""AsyncConnectionPool: bounds, LIFO reuse, FIFO fairness, cancellation safety,
health checks, idle/lifetime expiry and close, all in virtual time."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxflows import (
    AsyncConnectionPool,
    ClosedResourceError,
    ConfigurationError,
    PoolClosedError,
    PoolReleaseError,
    PoolState,
    PoolTimeoutError,
)
from tests.support import run_virtual, settle

_ids = itertools.count(1)


class FakeConnection:
    """A connection that records what happened to it."""

    def __init__(self, log: list[str] | None = None) -> None:
        self.id = next(_ids)
        self.closed = False
        self.log = log if log is not None else []

    async def execute(self, query: str) -> str:
        if self.closed:
            raise ConnectionError("closed")
        await asyncio.sleep(0.01)
        return f"{self.id}:{query}"

    async def close(self) -> None:
        await asyncio.sleep(0.001)
        self.closed = True
        self.log.append(f"close {self.id}")

    def __repr__(self) -> str:
        return f"<FakeConnection {self.id}>"


class Factory:
    """Counts creations; each takes ``delay`` seconds; can be told to fail."""

    def __init__(self, delay: float = 0.1) -> None:
        self.delay = delay
        self.made: list[FakeConnection] = []
        self.fail_next = 0

    async def __call__(self) -> FakeConnection:
        await asyncio.sleep(self.delay)
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionRefusedError("db down")
        connection = FakeConnection()
        self.made.append(connection)
        return connection


async def dispose(connection: FakeConnection) -> None:
    await connection.close()


def make_pool(
    max_connections: int = 2, factory: Factory | None = None, **options: Any
) -> tuple[AsyncConnectionPool[FakeConnection], Factory]:
    factory = factory or Factory()
    pool: AsyncConnectionPool[FakeConnection] = AsyncConnectionPool(
        max_connections, factory=factory, dispose=dispose, **options
    )
    return pool, factory


# -- the guide's subclass ------------------------------------------------------------------


async def create_db_connection(connection_string: str) -> FakeConnection:
    await asyncio.sleep(0.05)
    connection = FakeConnection()
    connection.log.append(connection_string)
    return connection


class DatabaseConnectionPool(AsyncConnectionPool[Any]):
    def __init__(self, connection_string: str, max_connections: int = 20) -> None:
        super().__init__(max_connections)
        self.connection_string = connection_string

    async def _create_connection(self) -> Any:
        return await create_db_connection(self.connection_string)

    async def _release_connection(self, connection: Any) -> None:
        await connection.close()


async def test_guide_database_pool_works_as_written() -> None:
    db_pool = DatabaseConnectionPool("postgresql://localhost/db")
    async with db_pool.get_connection() as conn:
        result = await conn.execute("SELECT * FROM videos")
    assert result == f"{conn.id}:SELECT * FROM videos"
    assert conn.log == ["postgresql://localhost/db"]
    assert db_pool.max_connections == 20
    # returned to the pool, not closed: _release_connection disposes only
    assert not conn.closed
    async with db_pool.get_connection() as again:
        assert again is conn
    await db_pool.close()
    assert conn.closed
    assert db_pool.state is PoolState.CLOSED


async def test_pool_without_factory_explains() -> None:
    pool: AsyncConnectionPool[object] = AsyncConnectionPool(1)
    with pytest.raises(NotImplementedError, match="_create_connection"):
        await pool.acquire()
    assert pool.statistics().size == 0  # the slot was freed
    await pool.close()


# -- bounds and reuse -------------------------------------------------------------------------


async def test_never_more_than_max_connections_and_lifo_reuse() -> None:
    pool, factory = make_pool(3)
    peak = 0
    active = 0

    async def work() -> None:
        nonlocal peak, active
        async with pool.get_connection() as conn:
            active += 1
            peak = max(peak, active, pool.statistics().size)
            await conn.execute("q")
            active -= 1

    await asyncio.gather(*(work() for _ in range(20)))
    assert peak == 3
    assert len(factory.made) == 3
    stats = pool.statistics()
    assert (stats.size, stats.idle, stats.in_use, stats.acquired) == (3, 3, 0, 20)
    # LIFO: the most recently returned connection comes out first
    a = await pool.acquire()
    b = await pool.acquire()
    pool.release(b)
    pool.release(a)
    assert await pool.acquire() is a
    pool.release(a)
    await pool.close()


async def test_waiters_are_served_fifo() -> None:
    pool, _ = make_pool(1)
    held = await pool.acquire()
    order: list[int] = []

    async def waiter(n: int) -> None:
        async with pool.get_connection():
            order.append(n)
            await asyncio.sleep(0.01)

    tasks = []
    for n in range(5):
        tasks.append(asyncio.create_task(waiter(n)))
        await settle()
    assert pool.statistics().waiters == 5
    # a newcomer arriving while others wait queues behind them (no barging)
    late = asyncio.create_task(waiter(99))
    await settle()
    pool.release(held)
    await asyncio.gather(*tasks, late)
    assert order == [0, 1, 2, 3, 4, 99]
    await pool.close()


async def test_acquire_timeout_in_virtual_time_and_separate_setting() -> None:
    pool, _ = make_pool(1, acquire_timeout=5)
    held = await pool.acquire()
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(PoolTimeoutError, match="within 5") as info:
        await pool.acquire()
    assert loop.time() - start == pytest.approx(5.0)
    assert info.value.timeout == 5
    assert isinstance(info.value, TimeoutError)
    # per-call override
    start = loop.time()
    with pytest.raises(PoolTimeoutError):
        await pool.acquire(timeout=0.5)
    assert loop.time() - start == pytest.approx(0.5)
    stats = pool.statistics()
    assert (stats.timeouts, stats.waiters, stats.size) == (2, 0, 1)
    pool.release(held)
    assert await pool.acquire() is held  # nothing leaked: the slot is still usable
    pool.release(held)
    await pool.close()


async def test_cancelled_waiter_never_leaks_a_slot() -> None:
    pool, _ = make_pool(1)
    held = await pool.acquire()
    victim = asyncio.create_task(pool.acquire())
    await settle()
    # the release hands the connection to the victim, and the victim is cancelled
    # before it runs again (asyncpg #467): the connection must go to the next one
    pool.release(held)
    victim.cancel()
    with pytest.raises(asyncio.CancelledError):
        await victim
    stats = pool.statistics()
    assert (stats.idle, stats.in_use, stats.size, stats.cancelled) == (1, 0, 1, 1)
    assert await pool.acquire(timeout=0) is held
    pool.release(held)
    await pool.close()


async def test_cancelled_waiter_holding_a_new_slot_frees_it() -> None:
    factory = Factory()
    pool, _ = make_pool(1, factory)
    held = await pool.acquire()
    victim = asyncio.create_task(pool.acquire())
    await settle()
    pool.release(held, discard=True)  # disposal frees the slot -> passed to the victim
    await asyncio.sleep(0.001)  # the disposal finishes
    victim.cancel()
    with pytest.raises(asyncio.CancelledError):
        await victim
    assert pool.statistics().size == 0
    fresh = await pool.acquire()
    assert fresh is not held
    assert len(factory.made) == 2
    pool.release(fresh)
    await pool.close()


async def test_timed_out_waiter_then_handover_goes_to_next_waiter() -> None:
    pool, _ = make_pool(1)
    held = await pool.acquire()
    short = asyncio.create_task(pool.acquire(timeout=1))
    await settle()
    patient = asyncio.create_task(pool.acquire())
    await asyncio.sleep(2)
    with pytest.raises(PoolTimeoutError):
        await short
    pool.release(held)
    assert await patient is held
    pool.release(held)
    await pool.close()


async def test_failed_creation_frees_the_slot_and_raises() -> None:
    factory = Factory()
    factory.fail_next = 1
    pool, _ = make_pool(1, factory)
    with pytest.raises(ConnectionRefusedError):
        await pool.acquire()
    assert pool.statistics().size == 0
    conn = await pool.acquire()
    assert conn is factory.made[0]
    pool.release(conn)
    await pool.close()


async def test_acquire_nowait() -> None:
    pool, _ = make_pool(1)
    with pytest.raises(PoolTimeoutError) as info:
        pool.acquire_nowait()  # nothing idle: it never creates
    assert info.value.timeout == 0
    conn = await pool.acquire()
    pool.release(conn)
    assert pool.acquire_nowait() is conn
    pool.release(conn)
    await pool.close()


# -- health -------------------------------------------------------------------------------------


async def test_connection_level_error_discards_the_connection() -> None:
    pool, _factory = make_pool(1)
    with pytest.raises(ConnectionResetError):
        async with pool.get_connection() as conn:
            raise ConnectionResetError("peer reset")
    await settle()
    await asyncio.sleep(0.01)
    assert conn.closed
    stats = pool.statistics()
    assert (stats.size, stats.discarded, stats.closed) == (0, 1, 1)
    # an application error keeps the connection
    with pytest.raises(KeyError):
        async with pool.get_connection() as other:
            raise KeyError("not found")
    assert other is not conn
    assert not other.closed
    assert pool.statistics().idle == 1
    await pool.close()


async def test_custom_discard_predicate() -> None:
    pool, _ = make_pool(1, discard_on=lambda e: isinstance(e, KeyError))
    with pytest.raises(KeyError):
        async with pool.get_connection() as conn:
            raise KeyError("x")
    await asyncio.sleep(0.01)
    assert conn.closed
    await pool.close()


async def test_validation_before_reuse() -> None:
    checks: list[int] = []

    async def validate(connection: FakeConnection) -> bool:
        checks.append(connection.id)
        return connection.id % 2 == 0

    factory = Factory()
    pool, _ = make_pool(1, factory, validate=validate)
    first = await pool.acquire()
    assert checks == []  # a new connection is not validated
    pool.release(first)
    second = await pool.acquire()
    if first.id % 2 == 0:
        assert second is first
    else:
        assert second is not first
        await asyncio.sleep(0.01)
        assert first.closed
    assert checks == [first.id]
    pool.release(second)
    await pool.close()


async def test_validation_hook_by_subclass_and_raising() -> None:
    class Checked(AsyncConnectionPool[FakeConnection]):
        async def _create_connection(self) -> FakeConnection:
            return FakeConnection()

        async def _validate_connection(self, connection: FakeConnection) -> bool:
            raise OSError("ping failed")

    pool = Checked(1)
    first = await pool.acquire()
    pool.release(first)
    second = await pool.acquire()
    assert second is not first
    assert pool.statistics().discarded == 1
    pool.release(second)
    await pool.close()


async def test_idle_expiry_in_virtual_time() -> None:
    pool, _factory = make_pool(2, max_idle_time=30)
    a = await pool.acquire()
    pool.release(a)
    await asyncio.sleep(29)
    assert await pool.acquire() is a  # 29 s idle: still fresh
    pool.release(a)
    await asyncio.sleep(30)
    b = await pool.acquire()
    assert b is not a
    await asyncio.sleep(0.01)
    assert a.closed
    pool.release(b)
    await pool.close()


async def test_idle_pruning_keeps_min_size() -> None:
    pool, _factory = make_pool(3, min_size=1, max_idle_time=10)
    await pool.open()
    assert pool.statistics().idle == 1
    conns = [await pool.acquire() for _ in range(3)]
    for conn in conns:
        pool.release(conn)
    await asyncio.sleep(11)
    extra = await pool.acquire()  # takes one (expired ones discarded), prunes
    pool.release(extra)
    await asyncio.sleep(0.01)
    stats = pool.statistics()
    assert stats.size == 1
    await pool.close()


async def test_lifetime_with_injected_jitter() -> None:
    pool, _factory = make_pool(1, max_lifetime=100, lifetime_jitter=0.5, random=lambda: 0.5)
    conn = await pool.acquire()
    created = asyncio.get_running_loop().time()
    pool.release(conn)
    # lifetime = 100 - 100 * 0.5 * 0.5 = 75 s
    await asyncio.sleep(74 - (asyncio.get_running_loop().time() - created))
    same = await pool.acquire()
    assert same is conn
    await asyncio.sleep(1.5)
    pool.release(same)  # past its lifetime: retired at return
    await asyncio.sleep(0.01)
    assert conn.closed
    assert pool.statistics().size == 0
    await pool.close()


# -- release errors, close ------------------------------------------------------------------------


async def test_release_twice_or_to_wrong_pool() -> None:
    pool, _ = make_pool(1)
    other, _ = make_pool(1)
    conn = await pool.acquire()
    with pytest.raises(PoolReleaseError, match="not checked out from this pool"):
        other.release(conn)
    pool.release(conn)
    with pytest.raises(PoolReleaseError, match="already released"):
        pool.release(conn)
    assert isinstance(PoolReleaseError("x"), ValueError)
    await pool.close()
    await other.close()


async def test_close_waits_for_in_use_fails_waiters_and_is_idempotent() -> None:
    log: list[str] = []
    pool, _factory = make_pool(1)
    held = await pool.acquire()
    held.log = log
    waiter = asyncio.create_task(pool.acquire())
    await settle()
    closing = asyncio.create_task(pool.close())
    await settle()
    assert pool.state is PoolState.CLOSING
    with pytest.raises(PoolClosedError):
        await waiter
    with pytest.raises(PoolClosedError):
        await pool.acquire()
    assert not closing.done()
    await asyncio.sleep(5)
    pool.release(held)
    second_close = asyncio.create_task(pool.close())
    await closing
    await second_close
    assert log == [f"close {held.id}"]
    assert pool.statistics().state is PoolState.CLOSED
    await pool.close()  # idempotent
    assert isinstance(PoolClosedError("x"), ClosedResourceError)


async def test_close_timeout_disposes_connections_still_out() -> None:
    pool, _ = make_pool(1, close_timeout=2)
    held = await pool.acquire()
    loop = asyncio.get_running_loop()
    start = loop.time()
    await pool.close()
    assert loop.time() - start == pytest.approx(2.001)
    assert held.closed
    pool.release(held)  # ignored: close() already disposed of it
    assert pool.statistics().size == 0


async def test_statistics_wait_percentiles() -> None:
    pool, _ = make_pool(1)
    assert pool.statistics().wait_time_p50 is None
    held = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await asyncio.sleep(4)
    pool.release(held)
    conn = await waiter
    pool.release(conn)
    stats = pool.statistics()
    assert stats.wait_time_max == pytest.approx(4.0)
    assert stats.wait_time_p50 == pytest.approx(0.1)  # the first acquire waited for creation
    assert stats.created == 1
    assert stats.acquired == 2
    await pool.close()


async def test_pool_as_async_context_manager_opens_min_size() -> None:
    factory = Factory()
    async with AsyncConnectionPool(2, min_size=2, factory=factory) as pool:
        assert pool.statistics().idle == 2
    assert pool.state is PoolState.CLOSED


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_connections": 0}, "max_connections must be a positive int, got 0"),
        ({"max_connections": True}, "max_connections must be a positive int"),
        ({"min_size": 3}, r"min_size must be <= max_connections \(2\), got 3"),
        ({"min_size": -1}, "min_size must be an int >= 0, got -1"),
        ({"acquire_timeout": -1}, "acquire_timeout must be a number of seconds >= 0"),
        ({"max_idle_time": -0.5}, "max_idle_time must be"),
        ({"max_lifetime": float("nan")}, "max_lifetime must be"),
        ({"lifetime_jitter": 1}, r"lifetime_jitter must be a number in \[0, 1\), got 1"),
        ({"name": ""}, "name must be a non-empty str"),
    ],
)
def test_bad_configuration(options: dict[str, Any], message: str) -> None:
    options = {"max_connections": 2, **options}
    with pytest.raises(ConfigurationError, match=message):
        AsyncConnectionPool(**options)


def test_bad_callables() -> None:
    with pytest.raises(TypeError, match="factory must be an async callable"):
        AsyncConnectionPool(1, factory=3)  # type: ignore[arg-type]  # the error under test
    with pytest.raises(TypeError, match="discard_on must be"):
        AsyncConnectionPool(1, discard_on=3)  # type: ignore[arg-type]  # the error under test


async def test_negative_acquire_timeout_argument() -> None:
    pool, _ = make_pool(1)
    with pytest.raises(ConfigurationError, match="timeout must be"):
        await pool.acquire(timeout=-1)
    await pool.close()


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=1, max_value=4),
    st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=2),  # start delay
            st.floats(min_value=0, max_value=2),  # hold time
            st.sampled_from(["ok", "cancel", "timeout", "error"]),
        ),
        min_size=1,
        max_size=15,
    ),
)
def test_property_bounds_and_no_leaks(
    max_connections: int, plan: list[tuple[float, float, str]]
) -> None:
    async def main() -> None:
        pool, factory = make_pool(max_connections, acquire_timeout=None)
        peak = 0

        async def user(delay: float, hold: float, kind: str) -> None:
            nonlocal peak
            await asyncio.sleep(delay)
            timeout = 0.5 if kind == "timeout" else None
            try:
                async with pool.get_connection(timeout=timeout) as conn:
                    peak = max(peak, pool.statistics().size)
                    await asyncio.sleep(hold)
                    if kind == "error":
                        raise ConnectionResetError
                    assert not conn.closed
            except (PoolTimeoutError, ConnectionResetError):
                pass

        tasks = [asyncio.create_task(user(*step)) for step in plan]
        for task, (_, _, kind) in zip(tasks, plan, strict=True):
            if kind == "cancel":
                asyncio.get_running_loop().call_later(1.0, task.cancel)
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0.1)
        stats = pool.statistics()
        assert peak <= max_connections
        assert stats.in_use == 0
        assert stats.waiters == 0
        assert stats.size == stats.idle <= max_connections
        # every slot is usable again
        conns = [await pool.acquire(timeout=10) for _ in range(max_connections)]
        for conn in conns:
            pool.release(conn)
        await pool.close()
        assert all(c.closed for c in factory.made)

    run_virtual(main)
