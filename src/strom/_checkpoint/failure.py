"""Why a checkpoint failed (Flink's ``CheckpointFailureReason``) and how many failures
a job tolerates (``CheckpointFailureManager``)."""

from __future__ import annotations

import enum

__all__ = ["CheckpointFailureManager", "CheckpointFailureReason"]


class CheckpointFailureReason(enum.Enum):
    """The cause of an aborted checkpoint."""

    CHECKPOINT_EXPIRED = "Checkpoint expired before completing."
    CHECKPOINT_DECLINED = "Checkpoint was declined by a task."
    CHECKPOINT_DECLINED_TASK_NOT_READY = "Checkpoint was declined (tasks not ready)."
    CHECKPOINT_DECLINED_TASK_CLOSING = "Checkpoint was declined (task is closing)."
    TOO_MANY_CONCURRENT_CHECKPOINTS = "The maximum number of concurrent checkpoints is exceeded."
    MINIMUM_TIME_BETWEEN_CHECKPOINTS = "The minimum time between checkpoints is still pending."
    CHECKPOINT_COORDINATOR_SHUTDOWN = "CheckpointCoordinator shutdown."
    JOB_FAILOVER_REGION = "Job is restarting after a failure."
    EXCEPTION = "An exception occurred while taking the checkpoint."
    IO_EXCEPTION = "An I/O error occurred while writing the checkpoint."
    FINALIZE_CHECKPOINT_FAILURE = "Failure to finalize checkpoint (writing _metadata)."

    @property
    def counts_as_failure(self) -> bool:
        """Whether it counts towards ``tolerable_checkpoint_failure_number``."""
        return self not in (
            CheckpointFailureReason.TOO_MANY_CONCURRENT_CHECKPOINTS,
            CheckpointFailureReason.MINIMUM_TIME_BETWEEN_CHECKPOINTS,
            CheckpointFailureReason.CHECKPOINT_COORDINATOR_SHUTDOWN,
            CheckpointFailureReason.JOB_FAILOVER_REGION,
            CheckpointFailureReason.CHECKPOINT_DECLINED_TASK_NOT_READY,
            CheckpointFailureReason.CHECKPOINT_DECLINED_TASK_CLOSING,
        )


class CheckpointFailureManager:
    """Counts consecutive checkpoint failures; the job fails past the tolerated number.

    Args:
        tolerable: consecutive failures tolerated (0 = the first failure fails the job).
    """

    def __init__(self, tolerable: int) -> None:
        self.tolerable = tolerable
        self.consecutive = 0

    def on_failure(self, reason: CheckpointFailureReason) -> bool:
        """Record a failure; True if the job must fail now."""
        if not reason.counts_as_failure:
            return False
        self.consecutive += 1
        return self.consecutive > self.tolerable

    def on_success(self) -> None:
        """A checkpoint completed: reset the count."""
        self.consecutive = 0
