"""Job-level types: RuntimeExecutionMode, JobStatus, JobExecutionResult, JobClient."""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = ["JobClient", "JobExecutionResult", "JobStatus", "RuntimeExecutionMode"]


class RuntimeExecutionMode(enum.Enum):
    """How a job runs (Flink's ``RuntimeExecutionMode``).

    STREAMING processes records as they arrive and emits incremental results (a keyed
    reduce emits every update); BATCH needs bounded sources and emits final results only;
    AUTOMATIC picks BATCH when every source is bounded.
    """

    STREAMING = "STREAMING"
    BATCH = "BATCH"
    AUTOMATIC = "AUTOMATIC"


class JobStatus(enum.Enum):
    """A job's lifecycle state (Flink's ``JobStatus``)."""

    CREATED = "CREATED"
    RUNNING = "RUNNING"
    FAILING = "FAILING"
    FAILED = "FAILED"
    CANCELLING = "CANCELLING"
    CANCELED = "CANCELED"
    FINISHED = "FINISHED"
    RESTARTING = "RESTARTING"
    SUSPENDED = "SUSPENDED"

    @property
    def is_globally_terminal(self) -> bool:
        """True for FINISHED, FAILED and CANCELED."""
        return self in (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.CANCELED)


@dataclass
class JobExecutionResult:
    """What a finished job reports (Flink's ``JobExecutionResult``).

    Attributes:
        job_id: hex job id.
        net_runtime_ms: wall time from start to finish in ms.
        accumulators: merged accumulator values by name.
    """

    job_id: str
    net_runtime_ms: int
    accumulators: dict[str, Any] = field(default_factory=dict)

    def get_job_id(self) -> str:
        """The job's hex id."""
        return self.job_id

    def get_net_runtime(self) -> int:
        """Net runtime in milliseconds."""
        return self.net_runtime_ms

    def get_accumulator_result(self, name: str) -> Any:
        """The merged value of accumulator ``name`` (None if absent)."""
        return self.accumulators.get(name)

    def get_all_accumulator_results(self) -> dict[str, Any]:
        """All merged accumulator values."""
        return dict(self.accumulators)


class JobClient(abc.ABC):
    """Handle on a submitted job (Flink's ``JobClient``), from ``execute_async``."""

    @abc.abstractmethod
    def get_job_id(self) -> str:
        """The job's hex id."""

    @abc.abstractmethod
    def get_job_status(self) -> JobStatus:
        """The current status."""

    @abc.abstractmethod
    def cancel(self) -> None:
        """Cancel the job (returns once cancellation was requested)."""

    @abc.abstractmethod
    def get_job_execution_result(self, timeout: float | None = None) -> JobExecutionResult:
        """Wait for the job to finish and return its result.

        Args:
            timeout: seconds to wait, None for no limit.

        Raises:
            JobExecutionError: the job failed (cause chained).
            JobCancelledError: the job was cancelled.
            TimeoutError: the timeout passed first.
        """

    def trigger_savepoint(self, savepoint_directory: str, timeout: float | None = None) -> str:
        """Take a savepoint into a new directory under ``savepoint_directory`` (a path or
        fsspec URL) and return its path; the job keeps running. Needs checkpointing.

        Raises:
            ValueError: checkpointing is not enabled.
            RuntimeError: the savepoint failed.
        """
        msg = f"{type(self).__name__} does not support savepoints"
        raise NotImplementedError(msg)

    def stop_with_savepoint(self, savepoint_directory: str, timeout: float | None = None) -> str:
        """Take a savepoint, then stop the job (it ends FINISHED; sinks commit everything up
        to the savepoint and nothing after it). Returns the savepoint path."""
        msg = f"{type(self).__name__} does not support savepoints"
        raise NotImplementedError(msg)

    @abc.abstractmethod
    def get_metrics(self) -> list[dict[str, Any]]:
        """Per operator and subtask: ``{"vertex", "operator", "uid", "subtask",
        "records_in", "records_out"}``."""

    # short aliases
    def status(self) -> JobStatus:
        """Alias of :meth:`get_job_status`."""
        return self.get_job_status()

    def result(self, timeout: float | None = None) -> JobExecutionResult:
        """Alias of :meth:`get_job_execution_result`."""
        return self.get_job_execution_result(timeout)
