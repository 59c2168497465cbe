"""The job status state machine (Flink's ``JobStatus`` transitions).

::

    CREATED ──> RUNNING ──> FINISHED
       │           │
       │           ├──> FAILING ──> FAILED
       │           │       │  └───> RESTARTING ──> RUNNING   (restart strategy allows it)
       │           │       └──────> CANCELLING
       │           └──> CANCELLING ──> CANCELED
       └──> FAILING / CANCELLING

:class:`JobStatusMachine` guards every change with the table :data:`TRANSITIONS`; an
illegal transition is a bug in the JobMaster and raises
:class:`IllegalJobStatusTransitionError`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from strom.datastream.execution import JobStatus
from strom.errors import StreamingError

__all__ = ["TRANSITIONS", "IllegalJobStatusTransitionError", "JobStatusMachine"]

TRANSITIONS: Mapping[JobStatus, frozenset[JobStatus]] = {
    JobStatus.CREATED: frozenset({JobStatus.RUNNING, JobStatus.FAILING, JobStatus.CANCELLING}),
    JobStatus.RUNNING: frozenset(
        {JobStatus.FINISHED, JobStatus.FAILING, JobStatus.CANCELLING, JobStatus.SUSPENDED}
    ),
    JobStatus.FAILING: frozenset({JobStatus.FAILED, JobStatus.RESTARTING, JobStatus.CANCELLING}),
    JobStatus.RESTARTING: frozenset({JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLING}),
    JobStatus.CANCELLING: frozenset({JobStatus.CANCELED, JobStatus.FAILED}),
    JobStatus.SUSPENDED: frozenset({JobStatus.RUNNING}),
    JobStatus.FINISHED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELED: frozenset(),
}
"""Allowed successors of each status."""


class IllegalJobStatusTransitionError(StreamingError):
    """The JobMaster tried a transition the state machine forbids (an internal bug)."""


class JobStatusMachine:
    """A job's current status with guarded transitions and their history.

    Args:
        job_id: for error messages.
    """

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self._status = JobStatus.CREATED
        self._lock = threading.Lock()
        self.history: list[tuple[JobStatus, float]] = [(JobStatus.CREATED, time.time())]
        """Each status entered, with its wall-clock time in epoch seconds."""

    @property
    def status(self) -> JobStatus:
        """The current status."""
        return self._status

    def transition(self, to: JobStatus) -> None:
        """Move to ``to``.

        Raises:
            IllegalJobStatusTransitionError: ``to`` is not a successor of the current status.
        """
        with self._lock:
            if to not in TRANSITIONS[self._status]:
                msg = (
                    f"job {self.job_id}: illegal status transition "
                    f"{self._status.value} -> {to.value}"
                )
                raise IllegalJobStatusTransitionError(msg)
            self._status = to
            self.history.append((to, time.time()))
