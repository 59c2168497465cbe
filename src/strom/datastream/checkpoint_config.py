"""Checkpointing and restart configuration (Flink's ``CheckpointConfig``,
``CheckpointingMode``, ``ExternalizedCheckpointRetention`` and ``RestartStrategies``).

Enable with ``env.enable_checkpointing(timedelta(seconds=1))`` and tune through
``env.get_checkpoint_config()``; choose a restart strategy with
``env.set_restart_strategy(RestartStrategies.fixed_delay_restart(3, timedelta(seconds=1)))``.
Times accept ``timedelta`` or int milliseconds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from strom._utils.time import to_millis
from strom.errors import ConfigurationError

__all__ = [
    "CheckpointConfig",
    "CheckpointingMode",
    "ExternalizedCheckpointRetention",
    "RestartStrategies",
    "RestartStrategyConfiguration",
]


class CheckpointingMode(enum.Enum):
    """Consistency of checkpoints (Flink's ``CheckpointingMode``).

    EXACTLY_ONCE aligns barriers at tasks with several inputs (each record is reflected
    once in the state); AT_LEAST_ONCE does not wait (lower latency; after a failure some
    records may be reflected twice).
    """

    EXACTLY_ONCE = "EXACTLY_ONCE"
    AT_LEAST_ONCE = "AT_LEAST_ONCE"


class ExternalizedCheckpointRetention(enum.Enum):
    """What happens to retained checkpoints when a job is cancelled."""

    DELETE_ON_CANCELLATION = "DELETE_ON_CANCELLATION"
    RETAIN_ON_CANCELLATION = "RETAIN_ON_CANCELLATION"
    NO_EXTERNALIZED_CHECKPOINTS = "NO_EXTERNALIZED_CHECKPOINTS"


def _positive_ms(value: timedelta | int, name: str, allow_zero: bool = True) -> int:
    ms = to_millis(value, name=name)
    if not allow_zero and ms <= 0:
        msg = f"{name} must be > 0 ms, got {ms}"
        raise ConfigurationError(msg)
    return ms


def _count(value: int, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        msg = f"{name} must be an int >= {minimum}, got {value!r}"
        raise ConfigurationError(msg)
    return value


class CheckpointConfig:
    """How and where a job checkpoints (Flink's ``CheckpointConfig``).

    Defaults: disabled (interval -1), EXACTLY_ONCE, no minimum pause, 10 min timeout, one
    concurrent checkpoint, no tolerated failures, checkpoints deleted on cancellation,
    one retained checkpoint, storage in a temporary directory.
    """

    def __init__(self) -> None:
        self.interval_ms = -1
        self.mode = CheckpointingMode.EXACTLY_ONCE
        self.min_pause_ms = 0
        self.timeout_ms = 600_000
        self.max_concurrent = 1
        self.tolerable_failures = 0
        self.retention = ExternalizedCheckpointRetention.DELETE_ON_CANCELLATION
        self.num_retained = 1
        self.storage: str | None = None

    def is_checkpointing_enabled(self) -> bool:
        """True once an interval > 0 is set."""
        return self.interval_ms > 0

    def set_checkpoint_interval(self, interval: timedelta | int) -> CheckpointConfig:
        """Time between checkpoint triggers (> 0)."""
        self.interval_ms = _positive_ms(interval, "checkpoint interval", allow_zero=False)
        return self

    def get_checkpoint_interval(self) -> int:
        """Interval in ms (-1 when disabled)."""
        return self.interval_ms

    def set_checkpointing_mode(self, mode: CheckpointingMode) -> CheckpointConfig:
        """EXACTLY_ONCE or AT_LEAST_ONCE."""
        if not isinstance(mode, CheckpointingMode):
            msg = f"checkpointing mode must be a CheckpointingMode, got {mode!r}"
            raise ConfigurationError(msg)
        self.mode = mode
        return self

    def get_checkpointing_mode(self) -> CheckpointingMode:
        """The mode."""
        return self.mode

    def set_min_pause_between_checkpoints(self, min_pause: timedelta | int) -> CheckpointConfig:
        """Minimum time between the end of one checkpoint and the start of the next."""
        self.min_pause_ms = _positive_ms(min_pause, "min pause between checkpoints")
        return self

    def get_min_pause_between_checkpoints(self) -> int:
        """Minimum pause in ms."""
        return self.min_pause_ms

    def set_checkpoint_timeout(self, timeout: timedelta | int) -> CheckpointConfig:
        """A checkpoint not complete after this time is aborted (> 0)."""
        self.timeout_ms = _positive_ms(timeout, "checkpoint timeout", allow_zero=False)
        return self

    def get_checkpoint_timeout(self) -> int:
        """Timeout in ms."""
        return self.timeout_ms

    def set_max_concurrent_checkpoints(self, max_concurrent: int) -> CheckpointConfig:
        """How many checkpoints may be in progress at once (>= 1)."""
        self.max_concurrent = _count(max_concurrent, "max concurrent checkpoints", 1)
        return self

    def get_max_concurrent_checkpoints(self) -> int:
        """Max concurrent checkpoints."""
        return self.max_concurrent

    def set_tolerable_checkpoint_failure_number(self, number: int) -> CheckpointConfig:
        """Consecutive checkpoint failures tolerated before the job fails (>= 0)."""
        self.tolerable_failures = _count(number, "tolerable checkpoint failures", 0)
        return self

    def get_tolerable_checkpoint_failure_number(self) -> int:
        """Tolerated consecutive failures."""
        return self.tolerable_failures

    def set_externalized_checkpoint_retention(
        self, retention: ExternalizedCheckpointRetention
    ) -> CheckpointConfig:
        """Keep or delete retained checkpoints when the job is cancelled."""
        if not isinstance(retention, ExternalizedCheckpointRetention):
            msg = f"retention must be an ExternalizedCheckpointRetention, got {retention!r}"
            raise ConfigurationError(msg)
        self.retention = retention
        return self

    def get_externalized_checkpoint_retention(self) -> ExternalizedCheckpointRetention:
        """The retention policy."""
        return self.retention

    def set_num_retained_checkpoints(self, number: int) -> CheckpointConfig:
        """Completed checkpoints to keep (older ones are deleted when subsumed; >= 1)."""
        self.num_retained = _count(number, "retained checkpoints", 1)
        return self

    def get_num_retained_checkpoints(self) -> int:
        """Retained checkpoints."""
        return self.num_retained

    def set_checkpoint_storage(self, storage: str) -> CheckpointConfig:
        """Directory URL for checkpoints (``file:///path``, a plain path, or any fsspec
        URL such as ``s3://bucket/prefix`` when its fsspec package is installed)."""
        if not isinstance(storage, str) or not storage:
            msg = f"checkpoint storage must be a directory URL string, got {storage!r}"
            raise ConfigurationError(msg)
        self.storage = storage
        return self

    def get_checkpoint_storage(self) -> str | None:
        """The storage URL (None = a temporary directory)."""
        return self.storage

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of the settings (shipped with the job graph)."""
        return {
            "interval_ms": self.interval_ms,
            "mode": self.mode.value,
            "min_pause_ms": self.min_pause_ms,
            "timeout_ms": self.timeout_ms,
            "max_concurrent": self.max_concurrent,
            "tolerable_failures": self.tolerable_failures,
            "retention": self.retention.value,
            "num_retained": self.num_retained,
            "storage": self.storage,
        }


@dataclass(frozen=True)
class RestartStrategyConfiguration:
    """A restart strategy descriptor (see :class:`RestartStrategies`).

    Attributes:
        kind: ``"no_restart"``, ``"fixed_delay"``, ``"exponential_delay"``,
            ``"failure_rate"``.
        options: its parameters (times in ms).
    """

    kind: str
    options: tuple[tuple[str, Any], ...] = ()

    def get(self, name: str, default: Any = None) -> Any:
        """One option."""
        return dict(self.options).get(name, default)


class RestartStrategies:
    """Factories of restart strategies (Flink's ``RestartStrategies``)."""

    @staticmethod
    def no_restart() -> RestartStrategyConfiguration:
        """Fail the job on the first failure (the default)."""
        return RestartStrategyConfiguration("no_restart")

    @staticmethod
    def fixed_delay_restart(
        restart_attempts: int, delay_between_attempts: timedelta | int
    ) -> RestartStrategyConfiguration:
        """Restart up to ``restart_attempts`` times, waiting ``delay`` each time."""
        return RestartStrategyConfiguration(
            "fixed_delay",
            (
                ("attempts", _count(restart_attempts, "restart attempts", 0)),
                ("delay_ms", _positive_ms(delay_between_attempts, "restart delay")),
            ),
        )

    @staticmethod
    def exponential_delay_restart(
        initial_backoff: timedelta | int,
        max_backoff: timedelta | int,
        backoff_multiplier: float = 2.0,
        reset_backoff_threshold: timedelta | int = 3_600_000,
        jitter_factor: float = 0.1,
        attempts: int | None = None,
    ) -> RestartStrategyConfiguration:
        """Restart with a backoff growing by ``backoff_multiplier`` up to ``max_backoff``;
        the backoff resets after ``reset_backoff_threshold`` without failure."""
        if backoff_multiplier < 1.0 or not 0.0 <= jitter_factor <= 1.0:
            msg = "backoff_multiplier must be >= 1 and jitter_factor in [0, 1]"
            raise ConfigurationError(msg)
        return RestartStrategyConfiguration(
            "exponential_delay",
            (
                ("initial_ms", _positive_ms(initial_backoff, "initial backoff")),
                ("max_ms", _positive_ms(max_backoff, "max backoff")),
                ("multiplier", float(backoff_multiplier)),
                ("reset_ms", _positive_ms(reset_backoff_threshold, "reset threshold")),
                ("jitter", float(jitter_factor)),
                ("attempts", attempts),
            ),
        )

    @staticmethod
    def failure_rate_restart(
        failure_rate: int, failure_interval: timedelta | int, delay_interval: timedelta | int
    ) -> RestartStrategyConfiguration:
        """Restart unless more than ``failure_rate`` failures happen within
        ``failure_interval``; wait ``delay_interval`` before each restart."""
        return RestartStrategyConfiguration(
            "failure_rate",
            (
                ("max_failures", _count(failure_rate, "failure rate", 1)),
                ("interval_ms", _positive_ms(failure_interval, "failure interval", False)),
                ("delay_ms", _positive_ms(delay_interval, "restart delay")),
            ),
        )
