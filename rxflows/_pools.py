"""A generic async connection pool: bounded, fair, cancellation-safe, health-checked.

:class:`AsyncConnectionPool` hands out connections made by an ``async`` factory
(override :meth:`~AsyncConnectionPool._create_connection`, or pass ``factory=``)
and disposes of them with :meth:`~AsyncConnectionPool._release_connection` (or
``dispose=``). The guide's subclass works as written::

    class DatabaseConnectionPool(AsyncConnectionPool):
        def __init__(self, connection_string, max_connections=20):
            super().__init__(max_connections)
            self.connection_string = connection_string

        async def _create_connection(self):
            return await create_db_connection(self.connection_string)

        async def _release_connection(self, connection):
            await connection.close()       # dispose: the pool is done with it

Rules the pool keeps:

* never more than ``max_connections`` exist at once (being created, idle, in use
  or being disposed of all count);
* idle connections are reused last-in first-out (the warmest first; the coldest
  ones age out);
* acquirers that have to wait are served first-come first-served, and one that is
  cancelled or times out never takes a slot or a connection with it (a connection
  handed to it at the last moment goes to the next waiter);
* a connection whose ``async with`` block raised a connection-level error (by
  default ``OSError``, which includes ``ConnectionError`` and ``TimeoutError``, or
  a cancellation) is disposed of, not reused;
* time (acquire timeout, idle time, lifetime) is read from a
  :class:`~rxflows.Clock`, so it all runs in virtual time in tests.

The pool starts no background task: idle and lifetime limits are enforced when a
connection is taken or returned, and idle connections past ``max_idle_time`` are
pruned (oldest first) on every acquire and release.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import random as _random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from random import Random
from types import TracebackType
from typing import Any, Final, Generic, TypeVar

from reactivex import abc

from ._clock import Clock, LoopClock, as_clock
from ._errors import ConfigurationError, PoolClosedError, PoolReleaseError, PoolTimeoutError
from ._resource import AsyncResource

__all__ = [
    "AsyncConnectionPool",
    "ConnectionLease",
    "PoolState",
    "PoolStatistics",
]

_C = TypeVar("_C")

_log = logging.getLogger("rxflows.pools")


class PoolState(enum.Enum):
    """Where a pool stands in its life."""

    OPEN = "open"
    """Connections are handed out."""
    CLOSING = "closing"
    """``close()`` is running: no new acquires; in-use connections are awaited."""
    CLOSED = "closed"
    """Every connection is disposed of; acquires raise :class:`~rxflows.PoolClosedError`."""


@dataclass(frozen=True, slots=True)
class PoolStatistics:
    """A snapshot of a pool, from :meth:`AsyncConnectionPool.statistics`.

    ``size`` counts every connection that exists or is being created or disposed
    of (it never exceeds ``max_connections``); ``idle + in_use <= size``. Wait-time
    percentiles (seconds, on the pool's clock) are over the last 1,024 acquires,
    None before the first one.
    """

    state: PoolState
    max_connections: int
    min_size: int
    size: int
    idle: int
    in_use: int
    waiters: int
    created: int
    """Connections created since the pool was made."""
    closed: int
    """Connections disposed of (expired, failed, invalid, or at close)."""
    acquired: int
    """Successful acquires."""
    timeouts: int
    """Acquires that gave up after the acquire timeout."""
    cancelled: int
    """Acquires cancelled while waiting."""
    discarded: int
    """Connections disposed of because their block raised, or validation failed."""
    wait_time_p50: float | None
    wait_time_p95: float | None
    wait_time_p99: float | None
    wait_time_max: float | None


class _Entry(Generic[_C]):
    __slots__ = ("connection", "created", "expires", "last_used")

    def __init__(self, connection: _C, created: float, expires: float) -> None:
        self.connection = connection
        self.created = created
        self.expires = expires
        self.last_used = created


class _Signal(enum.Enum):
    SLOT = "slot"  # a waiter may create a connection: a slot was reserved for it
    TIMEOUT = "timeout"
    CLOSED = "closed"


_SLOT: Final = _Signal.SLOT
_TIMEOUT: Final = _Signal.TIMEOUT
_CLOSED_SIGNAL: Final = _Signal.CLOSED


class _Default(enum.Enum):
    TOKEN = 0


_DEFAULT: Final = _Default.TOKEN
_WAIT_SAMPLES = 1024

ExceptionPredicate = Callable[[BaseException], bool]
"""Decides whether an exception raised in a connection's block condemns the connection."""


def _default_discard(error: BaseException) -> bool:
    return isinstance(error, OSError | asyncio.CancelledError)


class ConnectionLease(Generic[_C]):
    """``async with pool.get_connection() as conn``: acquires on enter, returns on exit.

    On exit the connection goes back to the pool, or is disposed of when the block
    raised an exception the pool's ``discard_on`` accepts.
    """

    __slots__ = ("_connection", "_pool", "_timeout")

    def __init__(self, pool: AsyncConnectionPool[_C], timeout: float | _Default | None) -> None:
        self._pool = pool
        self._timeout = timeout
        self._connection: _C | None = None

    async def __aenter__(self) -> _C:
        connection = await self._pool.acquire(timeout=self._timeout)
        self._connection = connection
        return connection

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection = self._connection
        self._connection = None
        if connection is None:  # pragma: no cover - __aenter__ failed: nothing held
            return
        discard = exc is not None and self._pool._discard_on(exc)
        self._pool.release(connection, discard=discard)


class AsyncConnectionPool(AsyncResource, Generic[_C]):
    """A bounded pool of reusable async connections.

    Args:
        max_connections: The most connections that may exist at once (a positive int).
        min_size: Connections :meth:`open` creates up front (and the floor below
            which idle pruning does not go); ``0 <= min_size <= max_connections``.
        acquire_timeout: Seconds an acquire may wait for a connection before
            raising :class:`~rxflows.PoolTimeoutError` (None: wait forever). This is
            the wait for a slot only, separate from any I/O timeout.
        max_idle_time: Seconds a connection may sit idle before it is disposed of
            (None: forever).
        max_lifetime: Seconds after its creation a connection is retired, at its
            next return or take (None: forever). Each connection's lifetime is
            shortened by up to ``lifetime_jitter`` of it at random, so connections
            made together do not all expire together.
        lifetime_jitter: Fraction in ``[0, 1)`` of ``max_lifetime`` drawn off at random.
        discard_on: Which exceptions raised inside ``get_connection()``'s block
            condemn the connection: a type, a tuple of types or a predicate.
            Default: ``OSError`` (``ConnectionError``, ``TimeoutError``, ...) and
            ``asyncio.CancelledError`` (a cancelled query may leave it mid-protocol).
        factory: An ``async`` callable creating a connection, instead of
            overriding :meth:`_create_connection`.
        dispose: An ``async`` callable closing a connection, instead of
            overriding :meth:`_release_connection`.
        validate: An ``async`` callable ``(conn) -> bool`` run before a reused
            connection is handed out, instead of overriding :meth:`_validate_connection`.
        close_timeout: Default seconds :meth:`close` waits for connections in use.
        clock: Where time is read and waited on (default: the running loop's clock).
        random: The lifetime jitter's source: a ``random.Random`` or a callable
            returning floats in [0, 1).
        name: Shown in errors and ``repr``.

    Subclass hooks (all optional when the matching argument is given):

    * ``async _create_connection() -> conn``: make a new connection.
    * ``async _release_connection(conn)``: **dispose of** a connection the pool is
      done with (expired, failed, invalid, or at close). It is *not* called when a
      healthy connection returns to the pool after use. Errors it raises are logged
      and swallowed: the connection is gone either way.
    * ``async _validate_connection(conn) -> bool``: a health check before reuse
      (false or an exception: the connection is disposed of and another one tried).

    Example:
        >>> pool = AsyncConnectionPool(10, factory=open_connection, dispose=close_it)
        >>> async with pool.get_connection() as conn:
        ...     await conn.execute("SELECT 1")
        >>> await pool.close()
    """

    def __init__(
        self,
        max_connections: int = 10,
        *,
        min_size: int = 0,
        acquire_timeout: float | None = None,
        max_idle_time: float | None = None,
        max_lifetime: float | None = None,
        lifetime_jitter: float = 0.1,
        discard_on: type[BaseException]
        | tuple[type[BaseException], ...]
        | ExceptionPredicate
        | None = None,
        factory: Callable[[], Awaitable[_C]] | None = None,
        dispose: Callable[[_C], Awaitable[object]] | None = None,
        validate: Callable[[_C], Awaitable[bool]] | None = None,
        close_timeout: float | None = 30.0,
        clock: Clock | abc.SchedulerBase | None = None,
        random: Random | Callable[[], float] | None = None,
        name: str | None = None,
    ) -> None:
        if (
            isinstance(max_connections, bool)
            or not isinstance(max_connections, int)
            or max_connections < 1
        ):
            raise ConfigurationError(
                f"max_connections must be a positive int, got {max_connections!r}",
                field="max_connections",
                value=max_connections,
            )
        if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 0:
            raise ConfigurationError(
                f"min_size must be an int >= 0, got {min_size!r}", field="min_size", value=min_size
            )
        if min_size > max_connections:
            raise ConfigurationError(
                f"min_size must be <= max_connections ({max_connections}), got {min_size!r}",
                field="min_size",
                value=min_size,
            )
        _check_seconds("acquire_timeout", acquire_timeout)
        _check_seconds("max_idle_time", max_idle_time)
        _check_seconds("max_lifetime", max_lifetime)
        _check_seconds("close_timeout", close_timeout)
        if (
            isinstance(lifetime_jitter, bool)
            or not isinstance(lifetime_jitter, int | float)
            or not 0 <= lifetime_jitter < 1
        ):
            raise ConfigurationError(
                f"lifetime_jitter must be a number in [0, 1), got {lifetime_jitter!r}",
                field="lifetime_jitter",
                value=lifetime_jitter,
            )
        for hook_name, hook in (("factory", factory), ("dispose", dispose), ("validate", validate)):
            if hook is not None and not callable(hook):
                raise TypeError(f"{hook_name} must be an async callable or None, got {hook!r}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigurationError(
                f"name must be a non-empty str or None, got {name!r}", field="name", value=name
            )

        self._max = max_connections
        self._min = min_size
        self._acquire_timeout = acquire_timeout
        self._max_idle = math.inf if max_idle_time is None else float(max_idle_time)
        self._max_lifetime = math.inf if max_lifetime is None else float(max_lifetime)
        self._jitter = float(lifetime_jitter)
        self._discard_on = _discard_predicate(discard_on)
        self._factory = factory
        self._dispose = dispose
        self._validate = validate
        self._validates = (
            validate is not None
            or type(self)._validate_connection is not AsyncConnectionPool._validate_connection
        )
        self._close_timeout = close_timeout
        self._clock = as_clock(clock)
        self._now = self._clock.now
        self._random = _random_source(random)
        self._name = name or f"{type(self).__name__}-{id(self):x}"

        self._state = PoolState.OPEN
        self._size = 0  # connections existing, being created, or being disposed of
        self._idle: deque[_Entry[_C]] = deque()  # LIFO at the right end
        self._in_use: dict[int, _Entry[_C]] = {}
        self._waiters: deque[asyncio.Future[_Entry[_C] | _Signal]] = deque()
        self._disposals: set[asyncio.Task[None]] = set()
        self._drained: asyncio.Event | None = None  # set when size reaches 0 while closing
        self._returned: asyncio.Event | None = None  # set when in_use empties while closing
        self._closed_event: asyncio.Event | None = None
        self._opened = False
        self._forced: set[int] = set()

        self._created = 0
        self._closed = 0
        self._acquired = 0
        self._timeouts = 0
        self._cancelled = 0
        self._discarded = 0
        self._waits: deque[float] = deque(maxlen=_WAIT_SAMPLES)

    # -- hooks ---------------------------------------------------------------------------

    async def _create_connection(self) -> _C:
        """Create a new connection (override it, or pass ``factory=``)."""
        if self._factory is None:
            raise NotImplementedError(
                f"{type(self).__name__} needs a factory: override async _create_connection() "
                "or pass factory= to AsyncConnectionPool"
            )
        return await self._factory()

    async def _release_connection(self, connection: _C) -> None:
        """Dispose of a connection the pool is done with (override it, or pass ``dispose=``).

        Called once per connection, when it is retired (expired, failed, invalid) or
        at :meth:`close`, never when a healthy connection returns after use. The
        default calls ``dispose`` if given, else does nothing.
        """
        if self._dispose is not None:
            await self._dispose(connection)

    async def _validate_connection(self, connection: _C) -> bool:
        """Whether an idle connection is still usable (override it, or pass ``validate=``)."""
        if self._validate is not None:
            return bool(await self._validate(connection))
        return True

    # -- properties ------------------------------------------------------------------------

    @property
    def max_connections(self) -> int:
        """The most connections that may exist at once."""
        return self._max

    @property
    def state(self) -> PoolState:
        """OPEN, CLOSING or CLOSED."""
        return self._state

    @property
    def clock(self) -> Clock:
        """The clock the pool reads."""
        return self._clock

    # -- acquiring ---------------------------------------------------------------------------

    def get_connection(self, *, timeout: float | _Default | None = _DEFAULT) -> ConnectionLease[_C]:
        """``async with pool.get_connection() as conn:`` a connection for the block.

        ``timeout`` overrides the pool's ``acquire_timeout`` for this acquire.

        Example:
            >>> async with pool.get_connection() as conn:
            ...     rows = await conn.execute("SELECT * FROM videos")
        """
        return ConnectionLease(self, timeout)

    async def open(self) -> None:
        """Create ``min_size`` connections up front (the first acquire does it too)."""
        self._check_open()
        self._opened = True
        missing = self._min - self._size
        if missing <= 0:
            return
        self._size += missing
        results = await asyncio.gather(
            *(self._create_entry() for _ in range(missing)), return_exceptions=True
        )
        error: BaseException | None = None
        for result in results:
            if isinstance(result, _Entry):
                self._put_back(result)
            else:
                self._free_slot()
                error = error or result
        if error is not None:
            raise error

    async def __aenter__(self) -> AsyncConnectionPool[_C]:
        await self.open()
        return self

    async def aclose(self) -> None:
        """``close()`` with its default timeout (what leaving ``async with`` does)."""
        await self.close()

    async def acquire(
        self,
        *,
        timeout: float | _Default | None = _DEFAULT,  # noqa: ASYNC109 - the slot wait, by design
    ) -> _C:
        """Take a connection: an idle one (the most recently used), a new one if
        there is room, or wait in line for one.

        Raises:
            PoolClosedError: The pool is closing or closed.
            PoolTimeoutError: None came within ``timeout`` (default ``acquire_timeout``).
            Exception: Whatever creating a connection raised (the slot is freed).
        """
        self._check_open()
        if not self._opened and self._min:
            await self.open()
        if timeout is _DEFAULT:
            timeout = self._acquire_timeout
        else:
            _check_seconds("timeout", timeout)
        started: float | None = None
        front = False
        while True:
            got: _Entry[_C] | _Signal
            if self._waiters:
                started = self._now() if started is None else started
                got = await self._wait(started, timeout, front)
            elif self._idle:
                got = self._idle.pop()
            elif self._size < self._max:
                self._size += 1
                started = self._now() if started is None else started  # creation counts
                got = _SLOT
            else:
                started = self._now() if started is None else started
                got = await self._wait(started, timeout, front)
            if got is _SLOT:
                try:
                    entry = await self._create_entry()
                except BaseException:
                    self._free_slot()
                    raise
                if self._state is not PoolState.OPEN:
                    self._discard(entry)
                    raise PoolClosedError(f"pool {self._name} closed while connecting")
            else:
                assert isinstance(got, _Entry)
                entry = got
                now = self._now()
                if now >= entry.expires or now - entry.last_used >= self._max_idle:
                    self._discard(entry)
                    front = True
                    continue
                if self._validates:
                    try:
                        ok = await self._validate_connection(entry.connection)
                    except BaseException as error:
                        self._discard(entry, counted=True)
                        if not isinstance(error, Exception):
                            raise
                        _log.debug("pool %s: validation raised %r", self._name, error)
                        front = True
                        continue
                    if not ok:
                        self._discard(entry, counted=True)
                        front = True
                        continue
            self._in_use[id(entry.connection)] = entry
            self._acquired += 1
            self._waits.append(0.0 if started is None else self._now() - started)
            if self._idle and self._max_idle != math.inf:
                self._prune()
            return entry.connection

    def acquire_nowait(self) -> _C:
        """Take an idle connection now, without waiting or creating one.

        It skips :meth:`_validate_connection` (a check is async); expired idle
        connections are disposed of and skipped.

        Raises:
            PoolClosedError: The pool is closing or closed.
            PoolTimeoutError: No idle connection is ready (``timeout`` 0), or
                others are already waiting in line.
        """
        self._check_open()
        if not self._waiters:
            now = self._now()
            while self._idle:
                entry = self._idle.pop()
                if now >= entry.expires or now - entry.last_used >= self._max_idle:
                    self._discard(entry)
                    continue
                self._in_use[id(entry.connection)] = entry
                self._acquired += 1
                self._waits.append(0.0)
                return entry.connection
        raise PoolTimeoutError(
            f"pool {self._name}: no idle connection ready ({len(self._in_use)} in use, "
            f"{len(self._waiters)} waiting)",
            timeout=0.0,
        )

    def release(self, connection: _C, *, discard: bool = False) -> None:
        """Return a connection taken with :meth:`acquire`; ``discard=True`` disposes of it.

        Raises:
            PoolReleaseError: The connection is not checked out from this pool
                (released twice, or it belongs to another pool).
        """
        entry = self._in_use.pop(id(connection), None)
        if entry is None and id(connection) in self._forced:
            self._forced.discard(id(connection))  # closed by close() after its timeout
            return
        if entry is None or entry.connection is not connection:
            if entry is not None:  # pragma: no cover - an id reused by another object
                self._in_use[id(connection)] = entry
            idle = any(e.connection is connection for e in self._idle)
            reason = "it was already released" if idle else "it is not checked out from this pool"
            raise PoolReleaseError(
                f"pool {self._name}: cannot release {connection!r}: {reason} "
                "(released twice, or acquired from another pool)"
            )
        if self._returned is not None and not self._in_use:
            self._returned.set()
        if discard:
            self._discard(entry, counted=True)
            return
        if self._state is not PoolState.OPEN:
            self._discard(entry)
            return
        now = self._now()
        if now >= entry.expires:
            self._discard(entry)
            return
        entry.last_used = now
        self._put_back(entry)
        if self._idle and self._max_idle != math.inf:
            self._prune()

    # -- closing -------------------------------------------------------------------------------

    async def close(
        self,
        timeout: float | _Default | None = _DEFAULT,  # noqa: ASYNC109 - wait for in-use ones
    ) -> None:
        """Stop handing out connections and dispose of all of them. Idempotent.

        Waiting acquirers get :class:`~rxflows.PoolClosedError`. Connections in use
        are waited for up to ``timeout`` seconds (default ``close_timeout``; None:
        forever); those still out then are disposed of anyway, and their later
        ``release`` is ignored. A second call waits for the first to finish.
        """
        if timeout is _DEFAULT:
            timeout = self._close_timeout
        else:
            _check_seconds("timeout", timeout)
        if self._state is not PoolState.OPEN:
            if self._closed_event is not None:
                await self._closed_event.wait()
            return
        self._state = PoolState.CLOSING
        self._closed_event = asyncio.Event()
        try:
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_result(_CLOSED_SIGNAL)
            while self._idle:
                self._discard(self._idle.pop())
            if self._in_use:
                self._returned = asyncio.Event()
                if not await self._wait_event(self._returned, timeout):
                    forced = list(self._in_use.values())
                    self._in_use.clear()
                    _log.warning(
                        "pool %s: %d connection(s) still in use after %ss; closing them",
                        self._name,
                        len(forced),
                        timeout,
                    )
                    for entry in forced:
                        self._forced.add(id(entry.connection))
                        self._discard(entry)
            if self._size:
                self._drained = asyncio.Event()
                await self._drained.wait()
        finally:
            self._state = PoolState.CLOSED
            self._closed_event.set()

    # -- statistics ----------------------------------------------------------------------------

    def statistics(self) -> PoolStatistics:
        """A snapshot of the pool's counters.

        Example:
            >>> stats = pool.statistics()
            >>> stats.size, stats.idle, stats.in_use, stats.waiters
            (3, 1, 2, 0)
        """
        waits = sorted(self._waits)
        return PoolStatistics(
            state=self._state,
            max_connections=self._max,
            min_size=self._min,
            size=self._size,
            idle=len(self._idle),
            in_use=len(self._in_use),
            waiters=sum(1 for w in self._waiters if not w.done()),
            created=self._created,
            closed=self._closed,
            acquired=self._acquired,
            timeouts=self._timeouts,
            cancelled=self._cancelled,
            discarded=self._discarded,
            wait_time_p50=_percentile(waits, 0.50),
            wait_time_p95=_percentile(waits, 0.95),
            wait_time_p99=_percentile(waits, 0.99),
            wait_time_max=waits[-1] if waits else None,
        )

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self._name} {self._state.value} size={self._size}/"
            f"{self._max} idle={len(self._idle)} in_use={len(self._in_use)}>"
        )

    # -- internals -------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._state is not PoolState.OPEN:
            raise PoolClosedError(f"pool {self._name} is {self._state.value}")

    async def _create_entry(self) -> _Entry[_C]:
        connection = await self._create_connection()
        self._created += 1
        now = self._now()
        lifetime = self._max_lifetime
        if lifetime != math.inf and self._jitter:
            lifetime -= lifetime * self._jitter * self._random()
        return _Entry(connection, now, now + lifetime)

    async def _wait(self, started: float, limit: float | None, front: bool) -> _Entry[_C] | _Signal:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[_Entry[_C] | _Signal] = loop.create_future()
        if front:
            self._waiters.appendleft(waiter)
        else:
            self._waiters.append(waiter)
        cancel_timer: Callable[[], object] | None = None
        if limit is not None:
            remaining = max(0.0, started + limit - self._now())

            def expire() -> None:
                if not waiter.done():
                    waiter.set_result(_TIMEOUT)

            cancel_timer = self._arm(loop, remaining, expire)
        try:
            got = await waiter
        except asyncio.CancelledError:
            self._cancelled += 1
            if waiter.done() and not waiter.cancelled():
                self._hand_back(waiter.result())  # handed over as we were cancelled
            raise
        finally:
            if cancel_timer is not None:
                cancel_timer()
            if not waiter.done() or waiter.cancelled():
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
        if got is _TIMEOUT:
            self._timeouts += 1
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            raise PoolTimeoutError(
                f"pool {self._name}: no connection within {limit}s "
                f"({len(self._in_use)} in use of max_connections={self._max}, "
                f"{len(self._waiters)} still waiting)",
                timeout=limit if limit is not None else math.inf,
            )
        if got is _CLOSED_SIGNAL:
            raise PoolClosedError(f"pool {self._name} closed while waiting for a connection")
        return got

    def _arm(
        self, loop: asyncio.AbstractEventLoop, delay: float, callback: Callable[[], None]
    ) -> Callable[[], object]:
        if isinstance(self._clock, LoopClock):
            return loop.call_later(delay, callback).cancel

        async def sleeper() -> None:
            await self._clock.sleep(delay)
            callback()

        return loop.create_task(sleeper()).cancel

    def _hand_back(self, got: _Entry[_C] | _Signal) -> None:
        if isinstance(got, _Entry):
            self._put_back(got)
        elif got is _SLOT:
            self._free_slot()

    def _next_waiter(self) -> asyncio.Future[_Entry[_C] | _Signal] | None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                return waiter
        return None

    def _put_back(self, entry: _Entry[_C]) -> None:
        waiter = self._next_waiter()
        if waiter is not None:
            waiter.set_result(entry)
        elif self._state is PoolState.OPEN:
            self._idle.append(entry)
        else:
            self._discard(entry)

    def _free_slot(self) -> None:
        waiter = self._next_waiter() if self._state is PoolState.OPEN else None
        if waiter is not None:
            waiter.set_result(_SLOT)  # the slot passes on: size unchanged
            return
        self._size -= 1
        if self._drained is not None and self._size == 0:
            self._drained.set()

    def _discard(self, entry: _Entry[_C], *, counted: bool = False) -> None:
        if counted:
            self._discarded += 1
        task = asyncio.get_running_loop().create_task(self._dispose_entry(entry))
        self._disposals.add(task)
        task.add_done_callback(self._disposals.discard)

    async def _dispose_entry(self, entry: _Entry[_C]) -> None:
        try:
            await self._release_connection(entry.connection)
        except Exception:
            _log.warning("pool %s: disposing of a connection failed", self._name, exc_info=True)
        finally:
            self._closed += 1
            self._free_slot()

    def _prune(self) -> None:
        idle = self._idle
        now = self._now()
        while idle and len(idle) + len(self._in_use) > self._min:
            oldest = idle[0]
            if now - oldest.last_used < self._max_idle and now < oldest.expires:
                break
            idle.popleft()
            self._discard(oldest)

    async def _wait_event(self, event: asyncio.Event, limit: float | None) -> bool:
        if limit is None:
            await event.wait()
            return True
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()

        def expire() -> None:
            if not done.done():
                done.set_result(False)

        def finished(_: object) -> None:
            if not done.done():
                done.set_result(True)

        cancel_timer = self._arm(loop, limit, expire)
        waiting = loop.create_task(event.wait())
        waiting.add_done_callback(finished)
        try:
            return await done
        finally:
            cancel_timer()
            waiting.cancel()


def _check_seconds(name: str, value: object) -> None:
    if value is None:
        return
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and value >= 0
        and not math.isnan(value)
    )
    if not ok:
        raise ConfigurationError(
            f"{name} must be a number of seconds >= 0 or None, got {value!r}",
            field=name,
            value=value,
        )


def _discard_predicate(value: object) -> ExceptionPredicate:
    if value is None:
        return _default_discard
    if isinstance(value, type) and issubclass(value, BaseException):
        kinds: tuple[type[BaseException], ...] = (value,)
    elif isinstance(value, tuple) and all(
        isinstance(k, type) and issubclass(k, BaseException) for k in value
    ):
        kinds = value
    elif callable(value):
        predicate: Callable[[BaseException], Any] = value
        return lambda error: bool(predicate(error))
    else:
        raise TypeError(
            f"discard_on must be an exception type, a tuple of them, a predicate or None, "
            f"got {value!r}"
        )
    return lambda error: isinstance(error, kinds)


def _random_source(value: Random | Callable[[], float] | None) -> Callable[[], float]:
    if value is None:
        return _random.random
    if isinstance(value, Random):
        return value.random
    if callable(value):
        return value
    raise TypeError(
        f"random must be a random.Random, a callable returning floats in [0, 1) or None, "
        f"got {value!r}"
    )


def _percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]
