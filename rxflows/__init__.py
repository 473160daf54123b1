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
from ._errors import BusClosedError as BusClosedError
from ._errors import CheckpointError as CheckpointError
from ._errors import CircuitOpenError as CircuitOpenError
from ._errors import ClosedResourceError as ClosedResourceError
from ._errors import ConfigurationError as ConfigurationError
from ._errors import LoopManagerError as LoopManagerError
from ._errors import PoolClosedError as PoolClosedError
from ._errors import PoolReleaseError as PoolReleaseError
from ._errors import PoolTimeoutError as PoolTimeoutError
from ._errors import QueueBusyError as QueueBusyError
from ._errors import QueueClosedError as QueueClosedError
from ._errors import QueueEmptyError as QueueEmptyError
from ._errors import QueueFullError as QueueFullError
from ._errors import ResponseTooLargeError as ResponseTooLargeError
from ._errors import RxFlowsError as RxFlowsError
from ._errors import StepFailedError as StepFailedError
from ._errors import StepTimeoutError as StepTimeoutError
from ._errors import TaskTimeoutError as TaskTimeoutError
from ._errors import UnsafeURLError as UnsafeURLError
from ._errors import WorkflowCycleError as WorkflowCycleError
from ._errors import WorkflowError as WorkflowError
from ._errors import WorkflowValidationError as WorkflowValidationError
from ._events import DEAD_LETTER_TOPIC as DEAD_LETTER_TOPIC
from ._events import AsyncEventBus as AsyncEventBus
from ._events import BusEvent as BusEvent
from ._events import BusState as BusState
from ._events import BusStatistics as BusStatistics
from ._events import BusSubscription as BusSubscription
from ._events import DeadLetter as DeadLetter
from ._events import SubscriberStatistics as SubscriberStatistics
from ._events import create_async_event_bus as create_async_event_bus
from ._executor import DEFAULT_EXECUTOR as DEFAULT_EXECUTOR
from ._executor import Executor as Executor
from ._executor import LocalExecutor as LocalExecutor
from ._flows import AsyncFlowPattern as AsyncFlowPattern
from ._flows import FanInFlow as FanInFlow
from ._flows import FanOutFlow as FanOutFlow
from ._flows import ParallelFlow as ParallelFlow
from ._flows import PipelineFlow as PipelineFlow
from ._flows import SequentialFlow as SequentialFlow
from ._flows import StreamingFlow as StreamingFlow
from ._http import HTTPConnectionPool as HTTPConnectionPool
from ._manager import AsyncFlowManager as AsyncFlowManager
from ._manager import ManagerState as ManagerState
from ._manager import create_async_flow_manager as create_async_flow_manager
from ._metrics import AsyncMetricsCollector as AsyncMetricsCollector
from ._metrics import MetricsServer as MetricsServer
from ._metrics import MetricsSnapshot as MetricsSnapshot
from ._metrics import TaskMetrics as TaskMetrics
from ._metrics import TaskTimer as TaskTimer
from ._metrics import create_async_metrics_collector as create_async_metrics_collector
from ._monitor import EventPublisher as EventPublisher
from ._monitor import MetricsMonitor as MetricsMonitor
from ._pools import AsyncConnectionPool as AsyncConnectionPool
from ._pools import PoolState as PoolState
from ._pools import PoolStatistics as PoolStatistics
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
from ._tasks import AsyncTask as AsyncTask
from ._tasks import PriorityStatistics as PriorityStatistics
from ._tasks import PriorityTaskQueue as PriorityTaskQueue
from ._tasks import TaskPriority as TaskPriority
from ._tasks import TaskQueueState as TaskQueueState
from ._tasks import TaskQueueStatistics as TaskQueueStatistics
from ._tasks import TaskResult as TaskResult
from ._tasks import TaskStatus as TaskStatus
from ._workflow import AsyncWorkflowEngine as AsyncWorkflowEngine
from ._workflow import WorkflowRun as WorkflowRun
from ._workflow_model import StepResult as StepResult
from ._workflow_model import StepStatus as StepStatus
from ._workflow_model import TriggerRule as TriggerRule
from ._workflow_model import WorkflowEvent as WorkflowEvent
from ._workflow_model import WorkflowResult as WorkflowResult
from ._workflow_model import WorkflowStatus as WorkflowStatus
from ._workflow_model import WorkflowStep as WorkflowStep
from ._workflow_store import CheckpointStore as CheckpointStore
from ._workflow_store import MemoryCheckpointStore as MemoryCheckpointStore
from ._workflow_store import SQLiteCheckpointStore as SQLiteCheckpointStore
from .operators._on_backpressure import BackpressurePolicy as BackpressurePolicy
from .operators._on_backpressure import BackpressureStatistics as BackpressureStatistics
from .video._processor import AsyncVideoProcessor as AsyncVideoProcessor
from .video._processor import Clip as Clip
from .video._processor import VideoProgress as VideoProgress
from .video._processor import VideoResult as VideoResult
from .video._processor import create_async_video_processor as create_async_video_processor

__version__ = "0.1.0"

__all__ = [
    "DEAD_LETTER_TOPIC",
    "DEFAULT_EXECUTOR",
    "LOOP_CLOCK",
    "UNBOUNDED",
    "AsyncCache",
    "AsyncConnectionPool",
    "AsyncEventBus",
    "AsyncEventLoopManager",
    "AsyncFlowConfig",
    "AsyncFlowManager",
    "AsyncFlowPattern",
    "AsyncMetricsCollector",
    "AsyncTask",
    "AsyncVideoProcessor",
    "AsyncWorkflowEngine",
    "Backoff",
    "BackpressureError",
    "BackpressurePolicy",
    "BackpressureStatistics",
    "BreakerEvent",
    "BreakerEventKind",
    "BreakerStatistics",
    "BusClosedError",
    "BusEvent",
    "BusState",
    "BusStatistics",
    "BusSubscription",
    "CacheSerializer",
    "CacheStatistics",
    "CallMetrics",
    "CheckpointError",
    "CheckpointStore",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "Clip",
    "Clock",
    "ClosedResourceError",
    "ConfigurationError",
    "ConsecutiveFailures",
    "ConstantBackoff",
    "CountWindow",
    "DeadLetter",
    "DecorrelatedJitter",
    "DemandSubscription",
    "EqualJitter",
    "EventPublisher",
    "Executor",
    "ExponentialBackoff",
    "FailureRate",
    "FanInFlow",
    "FanOutFlow",
    "FullJitter",
    "HTTPConnectionPool",
    "JSONSerializer",
    "Jitter",
    "LocalExecutor",
    "LoopManagerError",
    "LoopScheduler",
    "ManagerState",
    "MemoryCheckpointStore",
    "MetricsMonitor",
    "MetricsServer",
    "MetricsSnapshot",
    "ParallelFlow",
    "PipelineFlow",
    "PoolClosedError",
    "PoolReleaseError",
    "PoolState",
    "PoolStatistics",
    "PoolTimeoutError",
    "PriorityStatistics",
    "PriorityTaskQueue",
    "PullObservable",
    "QueueBusyError",
    "QueueClosedError",
    "QueueEmptyError",
    "QueueFullError",
    "ResponseTooLargeError",
    "RetryAttempt",
    "RetryPolicy",
    "RxFlowsError",
    "SQLiteCheckpointStore",
    "SequentialFlow",
    "SlowCallRate",
    "StepFailedError",
    "StepResult",
    "StepStatus",
    "StepTimeoutError",
    "StreamingFlow",
    "SubscriberStatistics",
    "TaskMetrics",
    "TaskPriority",
    "TaskQueueState",
    "TaskQueueStatistics",
    "TaskResult",
    "TaskStatus",
    "TaskTimeoutError",
    "TaskTimer",
    "TimeWindow",
    "TriggerRule",
    "TripRule",
    "UnsafeURLError",
    "VideoProgress",
    "VideoResult",
    "WorkflowCycleError",
    "WorkflowError",
    "WorkflowEvent",
    "WorkflowResult",
    "WorkflowRun",
    "WorkflowStatus",
    "WorkflowStep",
    "WorkflowValidationError",
    "as_clock",
    "async_retry",
    "collect",
    "create_async_event_bus",
    "create_async_flow_config",
    "create_async_flow_manager",
    "create_async_metrics_collector",
    "create_async_video_processor",
    "from_async",
    "from_async_iterable",
    "from_iterable",
    "loop_scheduler",
    "to_async_iterator",
]
