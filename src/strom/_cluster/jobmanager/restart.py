"""Restart strategies: whether and when a failed job restarts (the checkpoint issue's seam).

The JobMaster asks its strategy on every failure; :class:`NoRestartStrategy` (today's only
implementation) always says no, so the job goes FAILING -> FAILED. Fixed-delay,
exponential-backoff and failure-rate strategies (Flink's) plug in here once jobs can be
restored from a checkpoint: FAILING -> RESTARTING -> RUNNING.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["NoRestartStrategy", "RestartStrategy"]


class RestartStrategy(Protocol):
    """Decides about restarts after a failure."""

    def can_restart(self, failure: BaseException) -> bool:
        """True if the job should restart after ``failure``."""

    def backoff_ms(self) -> int:
        """Milliseconds to wait before the restart."""


class NoRestartStrategy:
    """Never restart: every failure fails the job."""

    def can_restart(self, failure: BaseException) -> bool:
        """Always False."""
        return False

    def backoff_ms(self) -> int:
        """Unused."""
        return 0
