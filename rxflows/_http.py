"""An HTTP connection pool: one aiohttp ``ClientSession`` over a bounded ``TCPConnector``.

:class:`HTTPConnectionPool` owns one session and its connector (``limit`` =
``max_connections``, ``limit_per_host``), created lazily inside the running loop at
first use, so the pool can be built at import time as the guide does::

    http_pool = HTTPConnectionPool("https://api.example.com", max_connections=50)

    async def download_video(url):
        async with http_pool.get_connection() as session:
            async with session.get(url) as response:      # relative to base_url
                ...

On top of the session it adds what video work needs: :meth:`fetch_bytes` with a
size cap, :meth:`download` streaming atomically to disk, URL safety (http(s)
only, optionally never leaving ``base_url``'s origin, redirects included), and
optional per-host retry and circuit breaking. All of it is an aiohttp client
middleware, so it applies to requests made on the yielded session too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import aiohttp
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse
from yarl import URL

from ._breaker import CircuitBreaker
from ._errors import (
    ConfigurationError,
    PoolClosedError,
    ResponseTooLargeError,
    UnsafeURLError,
)
from ._pools import PoolState
from ._resource import AsyncResource
from ._retry import RetryAttempt, RetryPolicy

__all__ = ["DEFAULT_TIMEOUT", "HTTPConnectionPool"]

DEFAULT_TIMEOUT: Final = aiohttp.ClientTimeout(total=300, connect=30, sock_connect=10, sock_read=60)
"""Five minutes per request in all, 30 s to get a connection (10 s to connect a
socket), and 60 s of silence while reading: bounded, yet long enough for a video."""

DEFAULT_MAX_BYTES: Final = 64 * 1024 * 1024
"""``fetch_bytes``' default cap: 64 MiB in memory."""

_SCHEMES: Final = frozenset({"http", "https"})
_IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_WRITE_BUFFER: Final = 1024 * 1024

ProgressCallback = Callable[[int, int | None], object]
"""``progress(received_bytes, total_bytes_or_None)``, called after every chunk."""


class _ServerError(Exception):
    """A retryable status: carries the response (still open) through retry/breaker."""

    def __init__(self, response: ClientResponse) -> None:
        super().__init__(f"HTTP {response.status} from {response.url}")
        self.response = response


def _checked_request_class(check: Callable[[URL], None]) -> type[ClientRequest]:
    """A ``ClientRequest`` that runs ``check`` on every request's URL, redirects included.

    The same check as a middleware, without aiohttp building a middleware chain
    per request: ``ClientRequest.__init__`` calls ``update_host(url)`` with the
    final URL of each request it makes. The tests that send a request (and a
    redirect) to another origin guard this hook against aiohttp changing it.
    """

    class CheckedRequest(ClientRequest):
        def update_host(self, url: URL) -> None:
            check(url)
            super().update_host(url)

    return CheckedRequest


class _SessionLease:
    """What ``get_connection()`` returns: enter for the session, exit to count it out.

    A plain class rather than ``contextlib.asynccontextmanager``, and its
    ``__aenter__``/``__aexit__`` return already-completed futures instead of being
    coroutines: with no I/O to wait for, that saves a generator, a wrapper and two
    coroutines per request (about as much as aiohttp's own URL handling).
    """

    __slots__ = ("_pool",)

    def __init__(self, pool: HTTPConnectionPool) -> None:
        self._pool = pool

    def __aenter__(self) -> asyncio.Future[aiohttp.ClientSession]:
        pool = self._pool
        pool._open_session()  # raises PoolClosedError once close() has begun
        pool._active += 1
        entered = pool._entered
        assert entered is not None  # made with the session
        return entered

    def __aexit__(self, *exc_info: object) -> asyncio.Future[None]:
        pool = self._pool
        pool._active -= 1
        if pool._idle_event is not None and pool._active == 0:
            pool._idle_event.set()
        exited = pool._exited
        assert exited is not None
        return exited


class HTTPConnectionPool(AsyncResource):
    """A pooled aiohttp session for one API (or many hosts), with safe helpers.

    Args:
        base_url: Relative URLs resolve against it (an http(s) URL; a missing
            trailing ``/`` is added, so ``"https://cdn/v1"`` + ``"a.mp4"`` is
            ``https://cdn/v1/a.mp4``). None: absolute URLs only.
        max_connections: The connector's total connection limit (a positive int).
        limit_per_host: Connections per host (0: only the total limit).
        timeout: An ``aiohttp.ClientTimeout``, or a number of seconds for the total
            with the other defaults of :data:`DEFAULT_TIMEOUT`.
        headers: Default headers of every request.
        allow_other_hosts: With a ``base_url``, whether a request (or a redirect)
            may go to another origin; False refuses it with
            :class:`~rxflows.UnsafeURLError`. Default False when ``base_url`` is set.
        max_bytes: Default cap of :meth:`fetch_bytes` and :meth:`download`.
        retry: A :class:`~rxflows.RetryPolicy` whose timing (attempts, delays,
            jitter, deadline) is used to retry connection errors and
            ``retry_statuses`` responses of idempotent requests. None: no retry.
        retry_statuses: The statuses retried (and counted as breaker failures).
        breaker: ``breaker(host) -> CircuitBreaker``, called once per
            ``host:port``; the breaker guards every request to that host.
        close_timeout: Seconds :meth:`close` waits for blocks in progress.
        session_options: More ``aiohttp.ClientSession`` keyword arguments.

    Example:
        >>> pool = HTTPConnectionPool("https://api.example.com", max_connections=50)
        >>> data = await pool.fetch_bytes("thumbs/1.jpg", max_bytes=1_000_000)
        >>> await pool.download("videos/1.mp4", "/data/1.mp4")
        >>> await pool.close()
    """

    def __init__(
        self,
        base_url: str | URL | None = None,
        max_connections: int = 100,
        *,
        limit_per_host: int = 0,
        timeout: aiohttp.ClientTimeout | float = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        allow_other_hosts: bool | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        retry: RetryPolicy | None = None,
        retry_statuses: frozenset[int] | tuple[int, ...] = (500, 502, 503, 504),
        breaker: Callable[[str], CircuitBreaker] | None = None,
        close_timeout: float = 5.0,
        session_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._base_url = None if base_url is None else _check_base_url(base_url)
        _check_positive_int("max_connections", max_connections)
        if (
            isinstance(limit_per_host, bool)
            or not isinstance(limit_per_host, int)
            or limit_per_host < 0
        ):
            raise ConfigurationError(
                f"limit_per_host must be an int >= 0 (0: no limit), got {limit_per_host!r}",
                field="limit_per_host",
                value=limit_per_host,
            )
        self._timeout = _check_timeout(timeout)
        _check_positive_int("max_bytes", max_bytes)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy or None, got {retry!r}")
        if breaker is not None and not callable(breaker):
            raise TypeError(f"breaker must be a callable host -> CircuitBreaker, got {breaker!r}")
        if not isinstance(close_timeout, int | float) or close_timeout < 0:
            raise ConfigurationError(
                f"close_timeout must be a number of seconds >= 0, got {close_timeout!r}",
                field="close_timeout",
                value=close_timeout,
            )
        self._max_connections = max_connections
        self._limit_per_host = limit_per_host
        self._headers = dict(headers or {})
        self._allow_other_hosts = (
            self._base_url is None if allow_other_hosts is None else bool(allow_other_hosts)
        )
        self._max_bytes = max_bytes
        self._retry_statuses = frozenset(retry_statuses)
        self._retry = None if retry is None else self._wrap_policy(retry)
        self._breaker_factory = breaker
        self._breakers: dict[str, CircuitBreaker] = {}
        self._close_timeout = float(close_timeout)
        self._session_options = dict(session_options or {})
        self._session: aiohttp.ClientSession | None = None
        self._entered: asyncio.Future[aiohttp.ClientSession] | None = None
        self._exited: asyncio.Future[None] | None = None
        self._state = PoolState.OPEN
        self._active = 0
        self._idle_event: asyncio.Event | None = None
        self._closed_event: asyncio.Event | None = None
        self._has_breakers = breaker is not None
        base = self._base_url
        self._origin = None if base is None else (base.scheme, base.host, base.port)
        self._needs_middleware = (
            self._retry is not None or self._has_breakers or not self._allow_other_hosts
        )

    # -- properties ------------------------------------------------------------------------

    @property
    def base_url(self) -> URL | None:
        """The URL relative ones resolve against (with its trailing ``/``)."""
        return self._base_url

    @property
    def state(self) -> PoolState:
        """OPEN, CLOSING or CLOSED."""
        return self._state

    @property
    def in_flight(self) -> int:
        """``get_connection()`` blocks and helper calls in progress."""
        return self._active

    @property
    def breakers(self) -> Mapping[str, CircuitBreaker]:
        """The per-host breakers made so far, by ``host:port``."""
        return dict(self._breakers)

    # -- the session ----------------------------------------------------------------------------

    def get_connection(self) -> _SessionLease:
        """``async with pool.get_connection() as session:`` the pool's shared session.

        The connector bounds concurrent connections; the block counts as in flight
        for :meth:`close`.

        Raises:
            PoolClosedError: :meth:`close` has begun (on entering the block).
        """
        return _SessionLease(self)

    def resolve(self, url: str | URL) -> URL:
        """The absolute URL a request for ``url`` goes to, checked like a request.

        Raises:
            UnsafeURLError: Not http(s), relative without a ``base_url``, or outside
                ``base_url``'s origin when other hosts are not allowed.
        """
        target = URL(url) if isinstance(url, str) else url
        if not target.absolute:
            if self._base_url is None:
                raise UnsafeURLError(
                    f"{str(url)!r} is relative and the pool has no base_url", url=str(url)
                )
            target = self._base_url.join(target)
        self._check_url(target)
        return target

    # -- helpers ----------------------------------------------------------------------------------

    async def fetch_bytes(
        self,
        url: str | URL,
        *,
        max_bytes: int | None = None,
        method: str = "GET",
        **request_options: Any,
    ) -> bytes:
        """The body of a successful response, at most ``max_bytes`` long.

        Raises:
            aiohttp.ClientResponseError: The status was 400 or above.
            ResponseTooLargeError: The announced or actual body exceeds the cap
                (reading stops there; the connection is not reused).
            UnsafeURLError: See :meth:`resolve`.

        Example:
            >>> thumbnail = await pool.fetch_bytes("thumbs/1.jpg", max_bytes=2_000_000)
        """
        limit = self._limit(max_bytes)
        target = self.resolve(url)
        async with (
            self.get_connection() as session,
            session.request(method, target, **request_options) as response,
        ):
            response.raise_for_status()
            _check_announced(response, limit)
            body = bytearray()
            async for chunk in response.content.iter_chunked(65536):
                body += chunk
                if len(body) > limit:
                    raise _too_large(response, limit, len(body))
            return bytes(body)

    async def download(
        self,
        url: str | URL,
        dest: str | os.PathLike[str],
        *,
        max_bytes: int | None = None,
        progress: ProgressCallback | None = None,
        chunk_size: int = 256 * 1024,
        fsync: bool = False,
        **request_options: Any,
    ) -> int:
        """Stream ``url`` to the file ``dest`` atomically; returns the bytes written.

        The body goes to a hidden temporary file in ``dest``'s directory
        (``.<name>.<random>.part``) that is renamed over ``dest`` (``os.replace``)
        only once the whole body has arrived: a failed, oversized, truncated or
        cancelled download removes the temporary file and leaves ``dest`` as it was.
        Writes run in the default executor in batches of up to 1 MiB, so a slow
        disk never stalls the event loop and the thread hop costs at most one per
        MiB. ``fsync=True`` flushes the file to disk before the rename.

        Raises:
            aiohttp.ClientResponseError: The status was 400 or above.
            aiohttp.ClientPayloadError: The connection dropped mid-body.
            ResponseTooLargeError: The body exceeds ``max_bytes`` (default: the pool's).

        Example:
            >>> size = await pool.download("videos/1.mp4", "/data/1.mp4",
            ...                            progress=lambda got, total: print(got, total))
        """
        limit = self._limit(max_bytes)
        _check_positive_int("chunk_size", chunk_size)
        if progress is not None and not callable(progress):
            raise TypeError(f"progress must be callable or None, got {progress!r}")
        destination = Path(dest)
        target = self.resolve(url)
        loop = asyncio.get_running_loop()
        async with (
            self.get_connection() as session,
            session.get(target, **request_options) as response,
        ):
            response.raise_for_status()
            _check_announced(response, limit)
            total = response.content_length
            temporary = destination.with_name(f".{destination.name}.{secrets.token_hex(4)}.part")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            file = os.fdopen(fd, "wb", buffering=0)
            pending: asyncio.Future[Any] | None = None
            received = 0
            try:
                buffer = bytearray()
                async for chunk in response.content.iter_chunked(chunk_size):
                    received += len(chunk)
                    if received > limit:
                        raise _too_large(response, limit, received)
                    buffer += chunk
                    if len(buffer) >= _WRITE_BUFFER:
                        data, buffer = bytes(buffer), bytearray()
                        pending = loop.run_in_executor(None, file.write, data)
                        await asyncio.shield(pending)
                        pending = None
                    if progress is not None:
                        progress(received, total)
                pending = loop.run_in_executor(None, _finish, file, bytes(buffer), fsync)
                await asyncio.shield(pending)
                pending = None
                os.replace(temporary, destination)
            except BaseException:
                if pending is not None and not pending.done():
                    # let the write in its thread end before closing the file under it
                    await asyncio.wait([pending])
                file.close()
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
                raise
            return received

    # -- closing ----------------------------------------------------------------------------------

    async def close(self) -> None:
        """Refuse new work, wait up to ``close_timeout`` for blocks in progress,
        then close the session and its connector. Idempotent.

        Requests still running after the wait fail with an aiohttp connection error.
        """
        if self._state is not PoolState.OPEN:
            if self._closed_event is not None:
                await self._closed_event.wait()
            return
        self._state = PoolState.CLOSING
        self._closed_event = asyncio.Event()
        try:
            if self._active:
                self._idle_event = asyncio.Event()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._close_timeout):
                        await self._idle_event.wait()
            if self._session is not None:
                await self._session.close()
        finally:
            self._state = PoolState.CLOSED
            self._closed_event.set()

    async def aclose(self) -> None:
        """Same as :meth:`close` (what leaving ``async with`` does)."""
        await self.close()

    def __repr__(self) -> str:
        return (
            f"<HTTPConnectionPool {self._base_url or '(no base_url)'} {self._state.value} "
            f"max_connections={self._max_connections} in_flight={self._active}>"
        )

    # -- internals -----------------------------------------------------------------------

    def _open_session(self) -> aiohttp.ClientSession:
        if self._state is not PoolState.OPEN:
            raise PoolClosedError(f"HTTP pool {self._base_url or ''} is {self._state.value}")
        session = self._session
        if session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, limit_per_host=self._limit_per_host
            )
            options: dict[str, Any] = {
                "base_url": self._base_url,
                "timeout": self._timeout,
                "headers": self._headers,
                "connector": connector,
                **self._session_options,
            }
            if self._retry is not None or self._has_breakers:
                options["middlewares"] = (self._middleware,)
            elif self._needs_middleware:
                if "request_class" in options:  # the caller's own: check in a middleware
                    options["middlewares"] = (self._check_middleware,)
                else:  # only the URL check: the lean path, no middleware chain
                    options["request_class"] = _checked_request_class(self._check_url)
            session = self._session = aiohttp.ClientSession(**options)
            loop = asyncio.get_running_loop()
            # what get_connection()'s block awaits on entry and exit (see _SessionLease)
            self._entered = loop.create_future()
            self._entered.set_result(session)
            self._exited = loop.create_future()
            self._exited.set_result(None)
        return session

    def _limit(self, max_bytes: int | None) -> int:
        if max_bytes is None:
            return self._max_bytes
        _check_positive_int("max_bytes", max_bytes)
        return max_bytes

    def _check_url(self, url: URL) -> None:
        if url.scheme not in _SCHEMES:
            raise UnsafeURLError(
                f"only http and https URLs are allowed, got {str(url)!r}", url=str(url)
            )
        base = self._base_url
        if (
            not self._allow_other_hosts
            and base is not None
            and (url.scheme, url.host, url.port) != self._origin
        ):
            raise UnsafeURLError(
                f"{str(url)!r} leaves the pool's origin {str(base.origin())!r} "
                "(allow_other_hosts=False)",
                url=str(url),
            )

    def _breaker(self, url: URL) -> CircuitBreaker | None:
        factory = self._breaker_factory
        if factory is None:
            return None
        host = f"{url.host}:{url.port}"
        breaker = self._breakers.get(host)
        if breaker is None:
            breaker = factory(host)
            if not isinstance(breaker, CircuitBreaker):
                raise TypeError(f"breaker({host!r}) must return a CircuitBreaker, got {breaker!r}")
            self._breakers[host] = breaker
        return breaker

    def _wrap_policy(self, policy: RetryPolicy) -> RetryPolicy:
        user_on_retry = policy.on_retry

        def on_retry(attempt: RetryAttempt) -> None:
            if isinstance(attempt.error, _ServerError):
                attempt.error.response.release()  # drop the failed answer before retrying
            if user_on_retry is not None:
                user_on_retry(attempt)

        return policy.replace(
            retry_on=(aiohttp.ClientConnectionError, _ServerError),
            give_up_on=(),
            retry_if=None,
            on_retry=on_retry,
        )

    async def _check_middleware(
        self, request: ClientRequest, handler: ClientHandlerType
    ) -> ClientResponse:
        self._check_url(request.url)
        return await handler(request)

    async def _middleware(
        self, request: ClientRequest, handler: ClientHandlerType
    ) -> ClientResponse:
        self._check_url(request.url)
        breaker = self._breaker(request.url)
        statuses = self._retry_statuses

        async def once() -> ClientResponse:
            response = await handler(request)
            if response.status in statuses:
                raise _ServerError(response)
            return response

        async def attempt() -> ClientResponse:
            if breaker is None:
                return await once()
            return await breaker.call(once)

        try:
            if self._retry is not None and request.method in _IDEMPOTENT:
                return await self._retry.call(attempt)
            return await attempt()
        except _ServerError as error:
            return error.response  # the last answer is the caller's to read


def _finish(file: Any, data: bytes, fsync: bool) -> None:
    try:
        if data:
            file.write(data)
        if fsync:
            os.fsync(file.fileno())
    finally:
        file.close()


def _check_announced(response: ClientResponse, limit: int) -> None:
    length = response.content_length
    if length is not None and length > limit:
        raise _too_large(response, limit, length)


def _too_large(response: ClientResponse, limit: int, received: int) -> ResponseTooLargeError:
    return ResponseTooLargeError(
        f"the response from {response.url} is larger than max_bytes={limit} "
        f"({received} bytes announced or read); it was cut off",
        url=str(response.url),
        limit=limit,
        received=received,
    )


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"{name} must be a positive int, got {value!r}", field=name, value=value
        )


def _check_base_url(value: object) -> URL:
    if not isinstance(value, str | URL):
        raise TypeError(f"base_url must be a str, a yarl.URL or None, got {value!r}")
    url = URL(value)
    if url.scheme not in _SCHEMES or not url.host:
        raise ConfigurationError(
            f"base_url must be an absolute http or https URL, got {str(value)!r}",
            field="base_url",
            value=value,
        )
    if url.query_string or url.fragment:
        raise ConfigurationError(
            f"base_url must not have a query or fragment, got {str(value)!r}",
            field="base_url",
            value=value,
        )
    if not url.path.endswith("/"):
        url = url.with_path(url.path + "/")
    return url


def _check_timeout(value: object) -> aiohttp.ClientTimeout:
    if isinstance(value, aiohttp.ClientTimeout):
        for name in ("total", "connect", "sock_read", "sock_connect"):
            seconds = getattr(value, name)
            if seconds is not None and seconds < 0:
                raise ConfigurationError(
                    f"timeout.{name} must be >= 0 or None, got {seconds!r}",
                    field="timeout",
                    value=value,
                )
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(
            f"timeout must be an aiohttp.ClientTimeout or a positive number of seconds, "
            f"got {value!r}",
            field="timeout",
            value=value,
        )
    return aiohttp.ClientTimeout(
        total=float(value),
        connect=DEFAULT_TIMEOUT.connect,
        sock_connect=DEFAULT_TIMEOUT.sock_connect,
        sock_read=DEFAULT_TIMEOUT.sock_read,
    )
