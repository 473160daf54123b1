"""The public surface: the guide's names, and nothing private leaking out."""

from __future__ import annotations

import rxflows
import rxflows.operators
import rxflows.testing

# The names of this part of the guide; later components add theirs.
GUIDE_NAMES = {
    "create_async_flow_config",
    "AsyncFlowConfig",
    "AsyncEventLoopManager",
    "SequentialFlow",
    "ParallelFlow",
    "StreamingFlow",
    "PipelineFlow",
    "FanOutFlow",
    "FanInFlow",
    "AsyncCache",
    "CircuitBreaker",
    "async_retry",
    "create_async_event_bus",
    "AsyncEventBus",
    "create_async_metrics_collector",
    "AsyncMetricsCollector",
    "PriorityTaskQueue",
    "AsyncTask",
    "TaskPriority",
    "AsyncWorkflowEngine",
    "WorkflowStep",
    "create_async_flow_manager",
    "AsyncFlowManager",
}


def test_guide_names_are_exported() -> None:
    assert set(rxflows.__all__) >= GUIDE_NAMES
    for name in GUIDE_NAMES:
        assert getattr(rxflows, name) is not None


def test_all_has_no_duplicates_and_every_name_exists() -> None:
    for module in (rxflows, rxflows.operators, rxflows.testing):
        names = module.__all__
        assert len(set(names)) == len(names), module.__name__
        for name in names:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_exported_members_live_in_the_package() -> None:
    for name in rxflows.__all__:
        member = getattr(rxflows, name)
        module = getattr(member, "__module__", "rxflows")
        assert module.startswith("rxflows"), f"{name} comes from {module}"


def test_operators_facade() -> None:
    assert set(rxflows.operators.__all__) >= {
        "cache",
        "circuit_breaker",
        "map_async",
        "measure",
        "on_backpressure",
        "retry",
    }
