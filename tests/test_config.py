"""AsyncFlowConfig: defaults, validation of every field, unknown options."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from rxflows import AsyncFlowConfig, ConfigurationError, RxFlowsError, create_async_flow_config

POSITIVE_INTS = [
    "max_concurrent_tasks",
    "max_concurrent_connections",
    "chunk_size",
    "stream_buffer_size",
    "circuit_breaker_failure_threshold",
    "retry_max_attempts",
    "cache_max_size",
    "event_bus_buffer_size",
]
BOOLS = ["use_uvloop", "debug", "enable_metrics", "enable_circuit_breaker"]
POSITIVE_SECONDS = ["slow_callback_duration", "circuit_breaker_timeout"]
OPTIONAL_POSITIVE_SECONDS = ["default_timeout", "cache_ttl"]
NON_NEGATIVE_SECONDS = ["retry_base_delay", "retry_max_delay"]
NON_NEGATIVE_INTS = ["task_queue_maxsize"]


def test_every_option_is_covered_by_these_tests() -> None:
    covered = set(
        POSITIVE_INTS
        + BOOLS
        + POSITIVE_SECONDS
        + OPTIONAL_POSITIVE_SECONDS
        + NON_NEGATIVE_SECONDS
        + NON_NEGATIVE_INTS
    )
    assert covered == set(AsyncFlowConfig.option_names())


def test_guide_options_are_accepted() -> None:
    config = create_async_flow_config(
        max_concurrent_tasks=100, chunk_size=50, use_uvloop=True, enable_circuit_breaker=True
    )
    assert config.max_concurrent_tasks == 100
    assert config.chunk_size == 50
    assert config.use_uvloop is True


def test_config_is_frozen() -> None:
    config = create_async_flow_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.max_concurrent_tasks = 3  # type: ignore[misc]  # the assignment under test


@pytest.mark.parametrize("name", POSITIVE_INTS)
@pytest.mark.parametrize("bad", [0, -1, 1.5, "3", True, None])
def test_positive_int_options_reject(name: str, bad: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        create_async_flow_config(**{name: bad})
    assert str(info.value) == f"{name} must be a positive int, got {bad!r}"
    assert info.value.field == name
    assert info.value.value is bad


def test_the_issue_example_message() -> None:
    with pytest.raises(
        ConfigurationError, match=r"^max_concurrent_tasks must be a positive int, got 0$"
    ):
        create_async_flow_config(max_concurrent_tasks=0)


@pytest.mark.parametrize("name", BOOLS)
@pytest.mark.parametrize("bad", [1, 0, "yes", None])
def test_bool_options_reject(name: str, bad: Any) -> None:
    with pytest.raises(ConfigurationError, match=rf"^{name} must be True or False, got {bad!r}$"):
        create_async_flow_config(**{name: bad})


@pytest.mark.parametrize("name", POSITIVE_SECONDS + OPTIONAL_POSITIVE_SECONDS)
@pytest.mark.parametrize("bad", [0, -0.5, math.nan, math.inf, "1", True])
def test_positive_seconds_reject(name: str, bad: Any) -> None:
    with pytest.raises(ConfigurationError, match=rf"^{name} must be a positive number of seconds"):
        create_async_flow_config(**{name: bad})


@pytest.mark.parametrize("name", POSITIVE_SECONDS)
def test_required_seconds_reject_none(name: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"^{name} must be a positive number"):
        create_async_flow_config(**{name: None})


@pytest.mark.parametrize("name", OPTIONAL_POSITIVE_SECONDS)
def test_optional_seconds_accept_none(name: str) -> None:
    assert getattr(create_async_flow_config(**{name: None}), name) is None


@pytest.mark.parametrize("name", NON_NEGATIVE_SECONDS)
@pytest.mark.parametrize("bad", [-0.001, math.nan, None, "0"])
def test_non_negative_seconds_reject(name: str, bad: Any) -> None:
    with pytest.raises(ConfigurationError, match=rf"^{name} must be a number of seconds >= 0"):
        create_async_flow_config(**{name: bad})


@pytest.mark.parametrize("bad", [-1, 0.5, False])
def test_non_negative_int_rejects(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"^task_queue_maxsize must be an int >= 0"):
        create_async_flow_config(task_queue_maxsize=bad)


def test_retry_delays_must_be_ordered() -> None:
    with pytest.raises(ConfigurationError, match="retry_max_delay must be >= retry_base_delay"):
        create_async_flow_config(retry_base_delay=5.0, retry_max_delay=1.0)


def test_unknown_option_suggests_the_closest_name() -> None:
    with pytest.raises(ConfigurationError) as info:
        create_async_flow_config(max_concurent_tasks=3)
    message = str(info.value)
    assert "unknown option 'max_concurent_tasks'" in message
    assert "did you mean 'max_concurrent_tasks'?" in message
    assert info.value.field == "max_concurent_tasks"


def test_unknown_option_without_a_close_match_lists_the_options() -> None:
    with pytest.raises(ConfigurationError) as info:
        create_async_flow_config(zzz=1)
    assert "did you mean" not in str(info.value)
    assert "chunk_size" in str(info.value)


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ConfigurationError, match="chunk_size must be a positive int, got -5"):
        AsyncFlowConfig(chunk_size=-5)


def test_replace_validates_and_keeps_the_original() -> None:
    config = create_async_flow_config(max_concurrent_tasks=7)
    changed = config.replace(chunk_size=9)
    assert (changed.max_concurrent_tasks, changed.chunk_size) == (7, 9)
    assert config.chunk_size == 100
    with pytest.raises(ConfigurationError, match="did you mean 'chunk_size'"):
        config.replace(chunk_sise=1)
    with pytest.raises(ConfigurationError, match="chunk_size must be a positive int"):
        config.replace(chunk_size=0)


def test_configuration_error_is_a_value_error_and_an_rxflows_error() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        create_async_flow_config(chunk_size=0)
    assert issubclass(ConfigurationError, RxFlowsError)
