"""Validated, immutable configuration shared by every rxflows component."""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._errors import ConfigurationError

__all__ = ["AsyncFlowConfig", "create_async_flow_config"]

Validator = Callable[[str, Any], None]


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(
            f"{name} must be a positive int, got {value!r}", field=name, value=value
        )


def _non_negative_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(
            f"{name} must be an int >= 0, got {value!r}", field=name, value=value
        )


def _number(name: str, value: Any, *, positive: bool, optional: bool) -> None:
    if value is None and optional:
        return
    rule = "a positive number of seconds" if positive else "a number of seconds >= 0"
    if optional:
        rule += " or None"
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and (value > 0 if positive else value >= 0)
    )
    if not ok:
        raise ConfigurationError(f"{name} must be {rule}, got {value!r}", field=name, value=value)


def _positive_seconds(name: str, value: Any) -> None:
    _number(name, value, positive=True, optional=False)


def _optional_positive_seconds(name: str, value: Any) -> None:
    _number(name, value, positive=True, optional=True)


def _non_negative_seconds(name: str, value: Any) -> None:
    _number(name, value, positive=False, optional=False)


def _boolean(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigurationError(
            f"{name} must be True or False, got {value!r}", field=name, value=value
        )


def _option(default: Any, validator: Validator, doc: str) -> Any:
    return field(default=default, metadata={"validator": validator, "doc": doc})


@dataclass(frozen=True, slots=True)
class AsyncFlowConfig:
    """Settings for flows, operators and the components built on them.

    Every field is validated when the config is built; a bad value raises
    :class:`~rxflows.ConfigurationError` naming the field, the value and the rule.
    Use :func:`create_async_flow_config` to build one from keyword options (it
    suggests the closest name for a misspelt option), and :meth:`replace` to derive
    a changed copy.
    """

    max_concurrent_tasks: int = _option(
        100, _positive_int, "most coroutines a flow or operator runs at once"
    )
    max_concurrent_connections: int = _option(
        100, _positive_int, "most connections a pool opens at once"
    )
    chunk_size: int = _option(100, _positive_int, "items per batch in batch processing")
    default_timeout: float | None = _option(
        30.0, _optional_positive_seconds, "seconds before an operation times out (None: never)"
    )
    stream_buffer_size: int = _option(
        16, _positive_int, "results a streaming flow computes ahead of its consumer"
    )
    use_uvloop: bool = _option(
        True, _boolean, "run AsyncEventLoopManager on uvloop when it is installed"
    )
    debug: bool = _option(False, _boolean, "asyncio debug mode for AsyncEventLoopManager")
    slow_callback_duration: float = _option(
        0.1, _positive_seconds, "seconds after which debug mode reports a slow callback"
    )
    enable_metrics: bool = _option(True, _boolean, "collect task metrics")
    enable_circuit_breaker: bool = _option(True, _boolean, "guard external calls with breakers")
    circuit_breaker_failure_threshold: int = _option(
        5, _positive_int, "consecutive failures that open a circuit breaker"
    )
    circuit_breaker_timeout: float = _option(
        60.0, _positive_seconds, "seconds a breaker stays open before a trial call"
    )
    retry_max_attempts: int = _option(3, _positive_int, "attempts, the first one included")
    retry_base_delay: float = _option(1.0, _non_negative_seconds, "first retry delay in seconds")
    retry_max_delay: float = _option(30.0, _non_negative_seconds, "cap of a retry delay in seconds")
    cache_max_size: int = _option(1000, _positive_int, "entries a cache holds")
    cache_ttl: float | None = _option(
        3600.0, _optional_positive_seconds, "seconds a cache entry lives (None: forever)"
    )
    event_bus_buffer_size: int = _option(
        1000, _positive_int, "events a bus subscriber's mailbox holds"
    )
    task_queue_maxsize: int = _option(0, _non_negative_int, "tasks a queue holds (0: no limit)")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            f.metadata["validator"](f.name, getattr(self, f.name))
        if self.retry_max_delay < self.retry_base_delay:
            raise ConfigurationError(
                f"retry_max_delay must be >= retry_base_delay ({self.retry_base_delay!r}), "
                f"got {self.retry_max_delay!r}",
                field="retry_max_delay",
                value=self.retry_max_delay,
            )

    def replace(self, **changes: Any) -> AsyncFlowConfig:
        """Return a copy with ``changes`` applied, validated like the original."""
        _check_names(changes)
        return dataclasses.replace(self, **changes)

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The names of every option, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))


def _check_names(options: dict[str, Any]) -> None:
    known = AsyncFlowConfig.option_names()
    for name in options:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(
                f"unknown option {name!r}{hint} (options: {', '.join(known)})",
                field=name,
                value=options[name],
            )


def create_async_flow_config(**options: Any) -> AsyncFlowConfig:
    """Build a validated :class:`AsyncFlowConfig` from keyword options.

    Example:
        >>> config = create_async_flow_config(max_concurrent_tasks=10)
        >>> config.max_concurrent_tasks
        10
    """
    _check_names(options)
    return AsyncFlowConfig(**options)


DEFAULT_CONFIG = AsyncFlowConfig()


def config_or_default(config: object) -> AsyncFlowConfig:
    """``config`` if it is an :class:`AsyncFlowConfig`, the defaults for None, else an error."""
    if config is None:
        return DEFAULT_CONFIG
    if not isinstance(config, AsyncFlowConfig):
        raise ConfigurationError(
            f"config must be an AsyncFlowConfig (build one with create_async_flow_config), "
            f"got {type(config).__name__}",
            field="config",
            value=config,
        )
    return config
