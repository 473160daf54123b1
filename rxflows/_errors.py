"""The rxflows exception tree.

Every exception rxflows raises on its own account derives from
:class:`RxFlowsError`, so ``except RxFlowsError`` catches them all. A user's own
exception raised inside a coroutine that rxflows runs reaches the caller
unwrapped, with its original type (unless an API documents otherwise).

Misuse errors also derive from the matching built-in (``ValueError`` or
``TypeError``), so code that already catches those keeps working::

    RxFlowsError
    ├── ConfigurationError (+ ValueError)    a bad or unknown option; names the field,
    │                                         the value and the rule
    ├── BackpressureError                     a bounded buffer overflowed under the
    │                                         ``error`` policy
    ├── CircuitOpenError                      a circuit breaker rejected the call; carries
    │                                         the breaker's name and ``retry_after``
    ├── ClosedResourceError                   used after you closed it (``aclose()``,
    │                                         ``shutdown()``)
    └── LoopManagerError (+ RuntimeError)     the event-loop manager cannot do what was
                                              asked (uvloop missing, loop already running)

Later components add their branches here (circuit breaker, workflow, pools).
"""

from __future__ import annotations

__all__ = [
    "BackpressureError",
    "CircuitOpenError",
    "ClosedResourceError",
    "ConfigurationError",
    "LoopManagerError",
    "RxFlowsError",
]


class RxFlowsError(Exception):
    """Base class of every exception raised by rxflows itself."""


class ConfigurationError(RxFlowsError, ValueError):
    """A configuration value or argument is invalid.

    ``field`` names the offending option, ``value`` is what was given.
    """

    def __init__(self, message: str, *, field: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class BackpressureError(RxFlowsError):
    """A bounded buffer overflowed while its policy was ``error``."""

    def __init__(self, message: str, *, capacity: int) -> None:
        super().__init__(message)
        self.capacity = capacity


class CircuitOpenError(RxFlowsError):
    """A circuit breaker rejected the call without running it.

    ``name`` is the breaker's name; ``retry_after`` the seconds (on the breaker's
    clock) until it will let a trial call through, or None when that is not known
    (forced open, or half-open with every trial permit taken).
    """

    def __init__(self, message: str, *, name: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.name = name
        self.retry_after = retry_after


class ClosedResourceError(RxFlowsError):
    """The resource was closed by its owner and cannot be used any more."""


class LoopManagerError(RxFlowsError, RuntimeError):
    """The event-loop manager cannot run the coroutine as asked."""
