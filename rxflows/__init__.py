"""rxflows: reactive streams for asyncio, built on reactivex.

The public surface: the guide's names (flows, config, loop manager) and the
Rx-native bridges. Operators are in :mod:`rxflows.operators`, testing helpers in
:mod:`rxflows.testing`.
"""

from ._breaker import BreakerEvent as BreakerEvent
from ._breaker import BreakerEventKind as BreakerEventKind
from ._breaker import BreakerStatistics as BreakerStatistics
from ._breaker import CallMetrics as CallMetrics
from ._breaker import CircuitBreaker as CircuitBreaker
from ._breaker import CircuitState as CircuitState
from ._breaker import ConsecutiveFailures as ConsecutiveFailures
from ._breaker import CountWindow as CountWindow
from ._breaker import FailureRate as FailureRate
from ._breaker import SlowCallRate as SlowCallRate
from ._breaker import TimeWindow as TimeWindow
from ._breaker import TripRule as TripRule
from ._bridges import UNBOUNDED as UNBOUNDED
from ._bridges import DemandSubscription as DemandSubscription
from ._bridges import PullObservable as PullObservable
from ._bridges import collect as collect
from ._bridges import from_async as from_async
from ._bridges import from_async_iterable as from_async_iterable
from ._bridges import from_iterable as from_iterable
from ._bridges import to_async_iterator as to_async_iterator
from ._cache import AsyncCache as AsyncCache
from ._cache import CacheSerializer as CacheSerializer
from ._cache import CacheStatistics as CacheStatistics
from ._cache import JSONSerializer as JSONSerializer
from ._clock import LOOP_CLOCK as LOOP_CLOCK
from ._clock import Clock as Clock
from ._clock import as_clock as as_clock
from ._config import AsyncFlowConfig as AsyncFlowConfig
from ._config import create_async_flow_config as create_async_flow_config
from ._errors import BackpressureError as BackpressureError
from ._errors import CircuitOpenError as CircuitOpenError
from ._errors import ClosedResourceError as ClosedResourceError
from ._errors import ConfigurationError as ConfigurationError
from ._errors import LoopManagerError as LoopManagerError
from ._errors import RxFlowsError as RxFlowsError
from ._flows import AsyncFlowPattern as AsyncFlowPattern
from ._flows import FanInFlow as FanInFlow
from ._flows import FanOutFlow as FanOutFlow
from ._flows import ParallelFlow as ParallelFlow
from ._flows import PipelineFlow as PipelineFlow
from ._flows import SequentialFlow as SequentialFlow
from ._flows import StreamingFlow as StreamingFlow
from ._retry import Backoff as Backoff
from ._retry import ConstantBackoff as ConstantBackoff
from ._retry import DecorrelatedJitter as DecorrelatedJitter
from ._retry import EqualJitter as EqualJitter
from ._retry import ExponentialBackoff as ExponentialBackoff
from ._retry import FullJitter as FullJitter
from ._retry import Jitter as Jitter
from ._retry import RetryAttempt as RetryAttempt
from ._retry import RetryPolicy as RetryPolicy
from ._retry import async_retry as async_retry
from ._scheduling import AsyncEventLoopManager as AsyncEventLoopManager
from ._scheduling import LoopScheduler as LoopScheduler
from ._scheduling import loop_scheduler as loop_scheduler
from .operators._on_backpressure import BackpressurePolicy as BackpressurePolicy
from .operators._on_backpressure import BackpressureStatistics as BackpressureStatistics

__version__ = "0.1.0"

__all__ = [
    "LOOP_CLOCK",
    "UNBOUNDED",
    "AsyncCache",
    "AsyncEventLoopManager",
    "AsyncFlowConfig",
    "AsyncFlowPattern",
    "Backoff",
    "BackpressureError",
    "BackpressurePolicy",
    "BackpressureStatistics",
    "BreakerEvent",
    "BreakerEventKind",
    "BreakerStatistics",
    "CacheSerializer",
    "CacheStatistics",
    "CallMetrics",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "Clock",
    "ClosedResourceError",
    "ConfigurationError",
    "ConsecutiveFailures",
    "ConstantBackoff",
    "CountWindow",
    "DecorrelatedJitter",
    "DemandSubscription",
    "EqualJitter",
    "ExponentialBackoff",
    "FailureRate",
    "FanInFlow",
    "FanOutFlow",
    "FullJitter",
    "JSONSerializer",
    "Jitter",
    "LoopManagerError",
    "LoopScheduler",
    "ParallelFlow",
    "PipelineFlow",
    "PullObservable",
    "RetryAttempt",
    "RetryPolicy",
    "RxFlowsError",
    "SequentialFlow",
    "SlowCallRate",
    "StreamingFlow",
    "TimeWindow",
    "TripRule",
    "as_clock",
    "async_retry",
    "collect",
    "create_async_flow_config",
    "from_async",
    "from_async_iterable",
    "from_iterable",
    "loop_scheduler",
    "to_async_iterator",
]
