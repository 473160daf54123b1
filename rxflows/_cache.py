"""``AsyncCache``: a TTL/LRU cache for asyncio on cachetools, with single-flight loads.

The entries live in a cachetools cache whose timer is an rxflows :class:`Clock`
(the loop clock by default), so TTLs follow virtual time in tests:

* ``ttl`` set: a :class:`cachetools.TLRUCache`, cachetools' TTL cache with a
  lifetime per entry (so ``set(..., ttl=)`` and ``get_or_set(..., ttl=)`` can
  override the default) and least-recently-used eviction when full;
* ``ttl=None``: a :class:`cachetools.LRUCache`, no expiry.

cachetools frees expired entries only when it is written to, or when
``expire()`` is called. An expired entry is never returned (cachetools checks
the time on every read); rxflows also calls ``expire()`` on every miss, on
``delete``, ``len`` and ``statistics``, and ``clear_expired()`` calls it on
demand, so expired entries do not pile up in a cache that is only read.

Single-flight: concurrent :meth:`AsyncCache.get_or_set` misses for one key share
one load (a task), async-lru's rule for cancellation: the load is cancelled only
when every caller waiting on it has been cancelled.
"""

from __future__ import annotations

import asyncio
import enum
import json
import math
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Final, Protocol, runtime_checkable

from cachetools import LRUCache, TLRUCache, TTLCache
from reactivex import abc

from ._clock import Clock, as_clock
from ._errors import ConfigurationError

__all__ = ["AsyncCache", "CacheSerializer", "CacheStatistics", "JSONSerializer"]


class _Missing(enum.Enum):
    MISSING = enum.auto()


_MISSING: Final = _Missing.MISSING
"""No value: a cache miss, or a load (from ``ops.cache``) that produced nothing."""


@runtime_checkable
class CacheSerializer(Protocol):
    """Turns values into bytes for storage, and stored bytes back into values.

    Stored bytes are treated as untrusted: a ``loads`` that raises is a miss (the
    entry is deleted), never a crash. Do not use a pickle-based serializer when the
    bytes may come from somewhere you do not trust: unpickling runs code.
    """

    def dumps(self, value: Any) -> bytes:
        """The bytes to store for ``value``."""
        ...

    def loads(self, data: bytes) -> Any:
        """The value stored as ``data``; raise on malformed input."""
        ...


class JSONSerializer:
    """A :class:`CacheSerializer` storing values as UTF-8 JSON: safe with untrusted bytes.

    Each read returns a fresh copy, so callers cannot change the cached value by
    mutating what they got (JSON turns tuples into lists).

    Example:
        >>> cache = AsyncCache(max_size=100, ttl=60, serializer=JSONSerializer())
    """

    __slots__ = ()

    def dumps(self, value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)

    def __repr__(self) -> str:
        return "JSONSerializer()"


@dataclass(frozen=True, slots=True)
class CacheStatistics:
    """Counts since the cache was built, and its size now.

    Every lookup (``get``, ``get_or_set``, an ``ops.cache`` subscription; not
    ``contains`` or ``in``) is a hit or a miss; ``coalesced`` counts the misses that
    joined a load already in flight instead of starting one.
    """

    hits: int
    """Lookups answered from the cache."""
    misses: int
    """Lookups that found nothing (or an entry that failed to decode)."""
    sets: int
    """Values stored, by ``set`` or by a load."""
    evictions: int
    """Live entries dropped to make room (least recently used first)."""
    expirations: int
    """Entries removed because their TTL passed."""
    coalesced: int
    """Misses that joined a load in flight for the same key."""
    loads: int
    """Loads started (factory calls, ``ops.cache`` source subscriptions)."""
    load_failures: int
    """Loads that raised."""
    negative_hits: int
    """Misses answered with a cached failure (``negative_ttl``)."""
    decode_failures: int
    """Stored bytes the serializer could not read (each also a miss)."""
    size: int
    """Live entries now."""
    max_size: int
    """Most entries the cache holds."""


class _TTLStore(TLRUCache[Hashable, Any, float]):
    """A TLRUCache with a per-entry TTL passed by :meth:`put`, counting what it drops."""

    def __init__(self, max_size: int, ttl: float, timer: Callable[[], float]) -> None:
        self.default_ttl = ttl
        self.next_ttl = ttl
        self.evictions = 0
        self.expirations = 0
        super().__init__(max_size, self._expires_at, timer)

    def _expires_at(self, key: Hashable, value: Any, now: float) -> float:
        return now + self.next_ttl

    def put(self, key: Hashable, value: Any, ttl: float | None) -> None:
        self.next_ttl = self.default_ttl if ttl is None else ttl
        self[key] = value

    def expire(self, time: float | None = None) -> list[tuple[Hashable, Any]]:
        expired = super().expire(time)
        if expired:
            self.expirations += len(expired)
        return expired

    def popitem(self) -> tuple[Hashable, Any]:
        # TLRUCache.popitem first drops what has expired (counted by expire), then
        # the least recently used live entry: that one is an eviction.
        item = super().popitem()
        self.evictions += 1
        return item

    def expire_now(self) -> int:
        return len(self.expire())


class _LRUStore(LRUCache[Hashable, Any]):
    """An LRUCache (no expiry) with the same interface as :class:`_TTLStore`."""

    def __init__(self, max_size: int) -> None:
        super().__init__(max_size)
        self.evictions = 0
        self.expirations = 0

    def put(self, key: Hashable, value: Any, ttl: float | None) -> None:
        self[key] = value

    def popitem(self) -> tuple[Hashable, Any]:
        item = super().popitem()
        self.evictions += 1
        return item

    def expire_now(self) -> int:
        return 0


class _Load:
    """One load in flight: the task running the factory and who waits on it."""

    __slots__ = ("key", "store", "storing", "task", "waiters")

    def __init__(self, key: Hashable) -> None:
        self.key = key
        self.task: asyncio.Task[Any] | None = None
        self.waiters = 0
        # False once set/delete/clear touched the key during the load: a newer write
        # (or a deliberate removal) wins over the load's older result.
        self.store = True
        self.storing = False


def _seconds(name: str, value: Any, *, optional: bool) -> float | None:
    if value is None and optional:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or value <= 0
    ):
        rule = "a positive number of seconds" + (" or None" if optional else "")
        raise ConfigurationError(f"{name} must be {rule}, got {value!r}", field=name, value=value)
    return float(value)


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _check_hashable(key: Any) -> None:
    try:
        hash(key)
    except TypeError:
        raise TypeError(f"cache keys must be hashable, got {type(key).__name__}: {key!r}") from None


class AsyncCache:
    """An asyncio cache with a TTL, least-recently-used eviction and single-flight loads.

    Values are stored as given (no copy, no pickling): a mutable value is shared by
    everyone who reads it. Pass ``serializer=`` to store bytes instead.

    Example:
        >>> cache = AsyncCache(max_size=1000, ttl=3600)
        >>> await cache.set("https://v/1", {"title": "Intro"})
        >>> await cache.get("https://v/1")
        {'title': 'Intro'}
        >>> await cache.get_or_set("https://v/2", fetch_video_metadata, "https://v/2")

    Subclasses may override :meth:`get` and :meth:`set` (calling ``super()``), as the
    guide's ``CompressedCache`` does: :meth:`get_or_set` and ``ops.cache`` then read
    through ``self.get(key)`` (``None`` meaning a miss) and store through
    ``self.set(key, value)``, so the subclass's transformation applies to every
    entry. Other methods work on the stored entries directly.

    Args:
        max_size: Most entries held (a positive int); the least recently used entry
            is evicted to make room.
        ttl: Seconds an entry lives (a positive number; ``math.inf`` for no default
            expiry that still allows a per-call ``ttl=``), or None for no expiry at
            all (LRU only).
        negative_ttl: Seconds a failed load is remembered by :meth:`get_or_set`
            (re-raised without calling the factory); None (the default) caches no
            failure.
        serializer: A :class:`CacheSerializer` turning values into bytes and back;
            None (the default) stores values as they are.
        clock: Where time comes from: an rxflows Clock, an Rx scheduler or None (the
            running loop's clock).
    """

    _plain_get: ClassVar[bool] = True
    _plain_set: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._plain_get = cls.get is AsyncCache.get
        cls._plain_set = cls.set is AsyncCache.set

    def __init__(
        self,
        max_size: int = 1000,
        ttl: float | None = 3600.0,
        *,
        negative_ttl: float | None = None,
        serializer: CacheSerializer | None = None,
        clock: Clock | abc.SchedulerBase | None = None,
    ) -> None:
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size <= 0:
            raise ConfigurationError(
                f"max_size must be a positive int, got {max_size!r}",
                field="max_size",
                value=max_size,
            )
        self._ttl = _seconds("ttl", ttl, optional=True)
        self._negative_ttl = _seconds("negative_ttl", negative_ttl, optional=True)
        if serializer is not None and not (
            callable(getattr(serializer, "dumps", None))
            and callable(getattr(serializer, "loads", None))
        ):
            raise TypeError(
                "serializer must have dumps(value) -> bytes and loads(bytes) -> value, "
                f"got {serializer!r}"
            )
        self._serializer = serializer
        self._clock = as_clock(clock)
        self._max_size = max_size
        timer = self._clock.now
        self._store: _TTLStore | _LRUStore = (
            _LRUStore(max_size) if self._ttl is None else _TTLStore(max_size, self._ttl, timer)
        )
        self._failures: TTLCache[Hashable, tuple[Exception, TracebackType | None], float] | None = (
            None
            if self._negative_ttl is None
            else TTLCache(max_size, self._negative_ttl, timer=timer)
        )
        self._inflight: dict[Hashable, _Load] = {}
        self._hits = 0
        self._misses = 0
        self._sets = 0
        self._coalesced = 0
        self._loads = 0
        self._load_failures = 0
        self._negative_hits = 0
        self._decode_failures = 0

    # -- properties -------------------------------------------------------------------
    @property
    def max_size(self) -> int:
        """Most entries the cache holds."""
        return self._max_size

    @property
    def ttl(self) -> float | None:
        """Default seconds an entry lives; None: no expiry."""
        return self._ttl

    @property
    def negative_ttl(self) -> float | None:
        """Seconds a failed load is remembered; None: failures are not cached."""
        return self._negative_ttl

    @property
    def clock(self) -> Clock:
        """The clock TTLs are measured on."""
        return self._clock

    # -- the awaitable API ---------------------------------------------------------
    async def get(self, key: Hashable, default: Any = None) -> Any:
        """The value cached for ``key``, or ``default`` (None) when absent or expired.

        Example:
            >>> await cache.get("missing")
            >>> await cache.get("missing", "fallback")
            'fallback'
        """
        if self._serializer is None:
            # The hit path, inlined: one lookup, one counter.
            try:
                value = self._store[key]
            except (KeyError, TypeError):
                pass  # a miss, or an unhashable key: _lookup counts it or says why
            else:
                self._hits += 1
                return value
        value = self._lookup(key)
        return default if value is _MISSING else value

    async def set(self, key: Hashable, value: Any, *, ttl: float | None = None) -> None:
        """Store ``value`` for ``key``, replacing any entry, for ``ttl`` seconds.

        ``ttl`` (default: the cache's) needs a cache built with a ``ttl``. A load in
        flight for ``key`` still answers its callers, but its result is not stored
        over this newer value.
        """
        if ttl is not None:
            self._check_call_ttl(ttl)
        self._put(key, value, ttl)
        if self._inflight:
            load = self._inflight.get(key)
            if load is not None and not load.storing:
                load.store = False

    async def delete(self, key: Hashable) -> bool:
        """Remove ``key``; True if it held a live entry.

        A cached failure for ``key`` is forgotten too, and a load in flight for it
        will not store its result.
        """
        store = self._store
        try:
            store.expire_now()
            del store[key]
        except KeyError:
            found = False
        except TypeError:
            _check_hashable(key)
            raise
        else:
            found = True
        if self._failures is not None:
            self._failures.pop(key, None)
        load = self._inflight.get(key)
        if load is not None:
            load.store = False
        return found

    async def clear(self) -> None:
        """Remove every entry and cached failure; loads in flight will not store."""
        self._store.clear()
        if self._failures is not None:
            self._failures.clear()
        for load in self._inflight.values():
            load.store = False

    async def clear_expired(self) -> int:
        """Free the entries whose TTL has passed now; returns how many.

        Example:
            >>> async def cache_maintenance():
            ...     while True:
            ...         await asyncio.sleep(3600)
            ...         await cache.clear_expired()
        """
        if self._failures is not None:
            self._failures.expire()
        return self._store.expire_now()

    async def contains(self, key: Hashable) -> bool:
        """Whether ``key`` holds a live entry (not counted as a hit or a miss)."""
        return key in self

    async def get_or_set(
        self,
        key: Hashable,
        factory: Callable[..., Awaitable[Any]],
        *args: Any,
        ttl: float | None = None,
    ) -> Any:
        """The cached value for ``key``, else ``await factory(*args)``, stored and returned.

        Single-flight: concurrent misses for one key run ``factory`` once and all
        get its result. A failure is not stored (unless ``negative_ttl`` is set: then
        it is re-raised for that long without calling the factory) and reaches every
        caller waiting on the load, unwrapped. Cancelling one caller does not stop a
        load others wait on; cancelling every caller cancels the load.

        Args:
            key: A hashable key.
            factory: An async callable; called as ``factory(*args)`` on a miss.
            *args: Passed to ``factory``.
            ttl: Seconds the loaded value lives (default: the cache's ``ttl``).

        Example:
            >>> meta = await cache.get_or_set(url, fetch_video_metadata, url)
        """
        if not callable(factory):
            raise TypeError(f"get_or_set needs an async callable as factory, got {factory!r}")
        if ttl is not None:
            self._check_call_ttl(ttl)
        if self._plain_get:
            if self._serializer is None:
                try:  # the hit path, inlined as in get()
                    value = self._store[key]
                except (KeyError, TypeError):
                    pass
                else:
                    self._hits += 1
                    return value
            value = self._lookup(key)
            if value is not _MISSING:
                return value
        else:
            value = await self.get(key)
            if value is not None:
                return value
        loop = asyncio.get_running_loop()
        while True:
            value = await self._wait(self._join_or_start(key, factory, args, ttl, loop))
            # _MISSING: we joined an ops.cache load whose source completed empty
            if value is not _MISSING:
                return value

    # -- sync helpers ------------------------------------------------------------------
    def __contains__(self, key: object) -> bool:
        """``key in cache``: a live entry exists (expired entries do not count)."""
        try:
            return key in self._store
        except TypeError:
            _check_hashable(key)
            raise

    def __len__(self) -> int:
        """Live entries (expired ones are freed first)."""
        self._store.expire_now()
        return len(self._store)

    def statistics(self) -> CacheStatistics:
        """A snapshot of the counters and the current size.

        Example:
            >>> stats = cache.statistics()
            >>> stats.hits / max(1, stats.hits + stats.misses)   # hit ratio
        """
        size = len(self)
        return CacheStatistics(
            hits=self._hits,
            misses=self._misses,
            sets=self._sets,
            evictions=self._store.evictions,
            expirations=self._store.expirations,
            coalesced=self._coalesced,
            loads=self._loads,
            load_failures=self._load_failures,
            negative_hits=self._negative_hits,
            decode_failures=self._decode_failures,
            size=size,
            max_size=self._max_size,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(max_size={self._max_size!r}, ttl={self._ttl!r}, "
            f"size={len(self._store)})"
        )

    # -- machinery ------------------------------------------------------------------------
    def _lookup(self, key: Hashable) -> Any:
        """The live value for ``key`` or ``_MISSING``; counts the hit or the miss."""
        try:
            value = self._store[key]
        except KeyError:
            self._misses += 1
            self._store.expire_now()
            return _MISSING
        except TypeError:
            _check_hashable(key)
            raise
        serializer = self._serializer
        if serializer is not None:
            try:
                value = serializer.loads(value)
            except Exception:
                # Stored bytes are untrusted: bytes we cannot read are a miss.
                self._misses += 1
                self._decode_failures += 1
                self._store.pop(key, None)
                return _MISSING
        self._hits += 1
        return value

    def _put(self, key: Hashable, value: Any, ttl: float | None) -> None:
        serializer = self._serializer
        if serializer is not None:
            value = serializer.dumps(value)
            if not isinstance(value, bytes | bytearray):
                raise TypeError(
                    f"serializer.dumps must return bytes, got {type(value).__name__} "
                    f"from {serializer!r}"
                )
        try:
            self._store.put(key, value, ttl)
        except TypeError:
            _check_hashable(key)
            raise
        self._sets += 1
        failures = self._failures
        if failures is not None and failures:
            failures.pop(key, None)

    def _check_call_ttl(self, ttl: float) -> None:
        _seconds("ttl", ttl, optional=False)
        if self._ttl is None:
            raise ConfigurationError(
                f"ttl={ttl!r} per call needs a cache with expiry, but this cache was built "
                "with ttl=None; build it with a ttl (math.inf: no default expiry)",
                field="ttl",
                value=ttl,
            )

    def _join_or_start(
        self,
        key: Hashable,
        factory: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        ttl: float | None,
        loop: asyncio.AbstractEventLoop,
    ) -> _Load:
        """The load in flight for ``key`` (joined), else a new one (started).

        Raises the cached failure when ``negative_ttl`` remembers one. The caller
        must count itself in ``load.waiters`` at once.
        """
        load = self._inflight.get(key)
        if load is not None:
            self._coalesced += 1
            return load
        failures = self._failures
        if failures is not None:
            failure = failures.get(key)
            if failure is not None:
                self._negative_hits += 1
                error, traceback = failure
                # the stored traceback, so repeated raises do not grow it
                raise error.with_traceback(traceback)
        load = _Load(key)
        self._loads += 1
        load.task = task = loop.create_task(self._run_load(load, factory, args, ttl))
        # Every waiter may be gone by the time it fails: mark the failure as seen.
        task.add_done_callback(_retrieve)
        self._inflight[key] = load
        return load

    async def _wait(self, load: _Load) -> Any:
        """Wait for ``load`` as one of its callers (cancelling only this caller)."""
        task = load.task
        assert task is not None
        load.waiters += 1
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            self._leave(load)
            raise

    def _leave(self, load: _Load) -> None:
        """A waiter gave up; the last one to leave cancels the load."""
        load.waiters -= 1
        task = load.task
        if load.waiters == 0 and task is not None and not task.done():
            self._forget(load)
            task.cancel()

    def _forget(self, load: _Load) -> None:
        if self._inflight.get(load.key) is load:
            del self._inflight[load.key]

    async def _run_load(
        self,
        load: _Load,
        factory: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        ttl: float | None,
    ) -> Any:
        key = load.key
        try:
            awaitable = factory(*args)
            if not hasattr(awaitable, "__await__"):
                raise TypeError(
                    f"get_or_set: factory {factory!r} returned {type(awaitable).__name__}, "
                    "not an awaitable; pass an async def function"
                )
            value = await awaitable
            if load.store and value is not _MISSING:
                if self._plain_set:
                    self._put(key, value, ttl)
                else:
                    load.storing = True
                    if ttl is None:
                        await self.set(key, value)
                    else:
                        await self.set(key, value, ttl=ttl)
        except Exception as error:
            self._load_failures += 1
            failures = self._failures
            if failures is not None and load.store and self._inflight.get(key) is load:
                failures[key] = (error, error.__traceback__)
            raise
        finally:
            self._forget(load)
        return value
