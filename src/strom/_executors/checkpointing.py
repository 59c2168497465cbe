"""JobCheckpointing: the JobMaster side of checkpoints, shared by every executor.

It owns the :class:`CheckpointCoordinator` and the job's :class:`CheckpointStorage`,
triggers checkpoints (snapshotting split enumerators first, then asking the executor to
trigger source tasks and finished tasks; running tasks receive barriers in-band),
collects the tasks' snapshots (written to storage on a background thread), completes
checkpoints and has the executor notify the tasks, runs the *final* checkpoint once every
task reached the end of its input (so two-phase-commit sinks commit their last data only
when it is durable), and loads the restore point after a failure or from a savepoint.

Executors implement :class:`CheckpointTarget` (how to reach tasks) and call
:meth:`JobCheckpointing.poll` from their loop thread.
"""

from __future__ import annotations

import logging
import pickle
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from strom._checkpoint.coordinator import (
    CheckpointCoordinator,
    CompletedCheckpoint,
    OperatorInfo,
    PendingCheckpoint,
)
from strom._checkpoint.failure import CheckpointFailureReason
from strom._checkpoint.snapshots import (
    AsyncSnapshotWriter,
    discard_encoded,
    load_restored_states,
)
from strom._checkpoint.storage import CheckpointStorage
from strom._graph.job_graph import JobGraph
from strom._runtime.elements import CheckpointBarrier
from strom._runtime.operators.base import RestoredState

__all__ = ["CheckpointTarget", "JobCheckpointing", "RestorePoint"]

logger = logging.getLogger(__name__)

TaskKey = tuple[str, int]


class CheckpointTarget(Protocol):
    """How the checkpointing reaches the tasks of the current attempt."""

    def trigger_tasks(self, keys: list[TaskKey], barrier: CheckpointBarrier) -> None:
        """Have the given tasks snapshot now (sources and finished tasks)."""

    def notify_tasks(self, checkpoint_id: int, final: bool) -> None:
        """Tell every task that ``checkpoint_id`` completed (``final``: then finish)."""

    def abort_tasks(self, checkpoint_id: int) -> None:
        """Tell every task that ``checkpoint_id`` was aborted."""

    def snapshot_enumerators(self, checkpoint_id: int) -> dict[str, Any]:
        """Source uid -> its split enumerator's state for ``checkpoint_id``."""


class RestorePoint:
    """State to start an attempt from.

    Attributes:
        operators: uid -> RestoredState.
        enumerators: source uid -> enumerator state.
        checkpoint_id: the checkpoint it came from.
    """

    def __init__(self, operators: dict[str, RestoredState], enumerators: dict[str, Any],
                 checkpoint_id: int) -> None:
        self.operators = operators
        self.enumerators = enumerators
        self.checkpoint_id = checkpoint_id


class JobCheckpointing:
    """Checkpoints of one job across all its attempts.

    Args:
        job_graph: the job (its ``checkpoint_config`` decides whether this is enabled).
        job_id: hex job id.
        on_fail_job: called (loop thread) when too many checkpoints failed.
    """

    def __init__(self, job_graph: JobGraph, job_id: str,
                 on_fail_job: Callable[[str], None]) -> None:
        self.job_graph = job_graph
        self.job_id = job_id
        cfg = job_graph.checkpoint_config or {}
        self.config = cfg
        self.enabled = int(cfg.get("interval_ms", -1)) > 0
        self.exactly_once = cfg.get("mode", "EXACTLY_ONCE") == "EXACTLY_ONCE"
        self.on_fail_job = on_fail_job
        self.all_tasks: set[TaskKey] = {
            (v.id, i) for v in job_graph.vertices for i in range(v.parallelism)
        }
        self.source_tasks: set[TaskKey] = {
            (v.id, i) for v in job_graph.vertices if v.is_source for i in range(v.parallelism)
        }
        self.operators = {
            n.uid: n.max_parallelism for v in job_graph.vertices for n in v.nodes
        }
        self._events: deque[Callable[[], Any]] = deque()
        self._lock = threading.Lock()
        self.finished: set[TaskKey] = set()
        self.final_checkpoint_id: int | None = None
        self.target: CheckpointTarget | None = None
        self.writer: AsyncSnapshotWriter | None = None
        self.storage: CheckpointStorage | None = None
        self.coordinator: CheckpointCoordinator | None = None
        self._job_failure: str | None = None
        self._savepoint_callbacks: dict[int, Callable[[str | None, BaseException | None],
                                                      None]] = {}
        if self.enabled:
            self.storage = CheckpointStorage(cfg.get("storage"), job_id)
            infos = [
                OperatorInfo(n.uid, n.parallelism, n.max_parallelism)
                for v in job_graph.vertices for n in v.nodes
            ]
            self.coordinator = CheckpointCoordinator(
                cfg, self.storage, job_id, set(self.all_tasks), infos,
                clock=lambda: time.monotonic_ns() // 1_000_000,
                wall_clock=lambda: time.time_ns() // 1_000_000,
                on_complete=self._completed, on_fail_job=self._fail,
            )
            self.writer = AsyncSnapshotWriter(self._written)
            self.coordinator.cleanup_orphans()  # leftovers of a crashed earlier run

    # -- restore points -------------------------------------------------------------------
    def initial_restore_point(self) -> RestorePoint | None:
        """The savepoint/checkpoint the job was asked to start from, if any."""
        sp = self.job_graph.savepoint_restore
        if sp is None:
            return None
        path, allow = sp
        ops, enums, cid = load_restored_states(path, self.operators, allow)
        if self.coordinator is not None:
            self.coordinator.next_id = max(self.coordinator.next_id, cid + 1)
        return RestorePoint(ops, enums, cid)

    def latest_restore_point(self) -> RestorePoint | None:
        """The latest completed checkpoint of this job, or None."""
        if self.coordinator is None:
            return None
        latest = self.coordinator.latest_completed()
        if latest is None:
            return None
        ops, enums, cid = load_restored_states(latest.directory, self.operators, True)
        return RestorePoint(ops, enums, cid)

    # -- attempts -------------------------------------------------------------------------
    def attach(self, target: CheckpointTarget) -> None:
        """A new attempt's tasks are running: reset per-attempt state."""
        self.target = target
        self.finished = set()
        self.final_checkpoint_id = None

    def detach(self) -> None:
        """The attempt failed or ended: abort pending checkpoints (and savepoints)."""
        self.target = None
        if self.coordinator is not None:
            self.coordinator.abort_all(CheckpointFailureReason.JOB_FAILOVER_REGION)
            self._aborted_savepoints()
        self._drop_attempt_events()
        if self.writer is not None and self.writer.flush():
            # the attempt's tasks are closed and their uploads done: remove what the
            # aborted checkpoints left (directories, shared files nobody references)
            self.cleanup_orphans()
            self._drop_attempt_events()  # acknowledgements of the aborted checkpoints

    def _drop_attempt_events(self) -> None:
        """Forget queued events of the ended attempt (acknowledgements, declines), but keep
        savepoint requests: they run against the next attempt, or answer that the job is
        not running, so no caller waits forever."""
        self._clear_events(requeue_savepoint_requests=True)

    def _clear_events(self, requeue_savepoint_requests: bool) -> list[Callable[[], Any]]:
        """Empty the event queue, keeping (``requeue_savepoint_requests``) or returning its
        savepoint requests."""
        with self._lock:
            requests = [e for e in self._events if getattr(e, "survives_failover", False)]
            self._events.clear()
            if requeue_savepoint_requests:
                self._events.extend(requests)
                return []
        return requests

    # -- task callbacks (any thread) ------------------------------------------------------
    def snapshot_taken(self, task_key: TaskKey, checkpoint_id: int,
                       states: dict[str, bytes]) -> None:
        """A task encoded its snapshot: write it off the task thread, then acknowledge."""
        if self.coordinator is None or self.writer is None:
            return
        p = self.coordinator.pending.get(checkpoint_id)
        if p is None:
            discard_encoded(states)
            return
        latest = self.coordinator.completed[-1:]  # read from a task thread: never torn
        self.writer.submit_encoded(self.coordinator.storage, p.directory, checkpoint_id,
                                   task_key, states,
                                   last_completed=latest[0].checkpoint_id if latest else -1)

    def declined(self, task_key: TaskKey, checkpoint_id: int, reason: str) -> None:
        """A task could not take ``checkpoint_id``."""
        self._post(lambda: self.coordinator.decline(  # type: ignore[union-attr]
            checkpoint_id, task_key, CheckpointFailureReason.CHECKPOINT_DECLINED))

    def task_finished(self, task_key: TaskKey) -> None:
        """A task reached the end of its input and waits for the final checkpoint."""
        self._post(lambda: self._on_finished(task_key))

    def snapshot_written(self, checkpoint_id: int, task_key: TaskKey,
                         handles: dict[str, str] | None,
                         error: BaseException | None = None) -> None:
        """A task's snapshot was written by someone else (a TaskManager writes its tasks'
        snapshots itself): acknowledge it, or decline the checkpoint if writing failed."""
        self._written(checkpoint_id, task_key, handles, error)

    def cleanup_orphans(self) -> list[str]:
        """Delete checkpoint directories that are neither retained nor pending (call once
        no task writes any more, e.g. after an attempt was cancelled or at the end)."""
        if self.coordinator is None:
            return []
        return self.coordinator.cleanup_orphans()

    def _written(self, cid: int, task_key: Any, handles: dict[str, str] | None,
                 error: BaseException | None) -> None:
        if error is not None:
            logger.warning("writing the snapshot of %s for checkpoint %d failed: %s",
                           task_key, cid, error)
            self._post(lambda: self.coordinator.decline(  # type: ignore[union-attr]
                cid, task_key, CheckpointFailureReason.IO_EXCEPTION))
        else:
            self._post(lambda: self.coordinator.acknowledge(  # type: ignore[union-attr]
                cid, task_key, handles or {}))

    def _post(self, action: Callable[[], Any]) -> None:
        with self._lock:
            self._events.append(action)

    # -- loop thread ----------------------------------------------------------------------
    def poll(self) -> bool:
        """Process acknowledgements, trigger due checkpoints, expire old ones; True if
        anything happened. Raises the job failure if checkpoints failed too often."""
        if self.coordinator is None or self.target is None:
            return False
        progressed = False
        while True:
            with self._lock:
                if not self._events:
                    break
                action = self._events.popleft()
            action()
            progressed = True
        if self._job_failure is not None:
            from strom.errors import TaskError

            msg, self._job_failure = self._job_failure, None
            raise TaskError(msg)
        self.coordinator.check_timeouts()
        self.retry_final_if_aborted()  # an aborted final checkpoint must run again
        if self._savepoint_callbacks:
            self._aborted_savepoints()
        if self.final_checkpoint_id is None and self.finished >= self.all_tasks:
            if not self.coordinator.pending:
                p = self.coordinator.trigger()
                self.final_checkpoint_id = p.checkpoint_id
                self._start(p)
                return True
        elif self.final_checkpoint_id is None:
            due = self.coordinator.trigger_if_due()
            if due is not None:
                self._start(due)
                progressed = True
        return progressed

    def _start(self, p: PendingCheckpoint) -> None:
        assert self.target is not None and self.coordinator is not None
        for uid, state in self.target.snapshot_enumerators(p.checkpoint_id).items():
            self.coordinator.add_enumerator_state(p.checkpoint_id, uid, pickle.dumps(state))
        barrier = CheckpointBarrier(p.checkpoint_id, p.timestamp_ms, p.is_savepoint)
        direct = sorted((self.source_tasks | self.finished) & p.waiting)
        self.target.trigger_tasks(direct, barrier)

    def _on_finished(self, task_key: TaskKey) -> None:
        self.finished.add(task_key)
        if self.coordinator is None or self.target is None:
            return
        # a checkpoint in flight can no longer reach this task through barriers
        for p in list(self.coordinator.pending.values()):
            if task_key in p.waiting and task_key not in self.source_tasks:
                barrier = CheckpointBarrier(p.checkpoint_id, p.timestamp_ms, p.is_savepoint)
                self.target.trigger_tasks([task_key], barrier)

    # -- savepoints ------------------------------------------------------------------------
    def trigger_savepoint(
        self, target_dir: str, on_done: Callable[[str | None, BaseException | None], None]
    ) -> None:
        """Take a savepoint into a new directory under ``target_dir`` (any thread);
        ``on_done(path, error)`` is called on the loop thread when it completed or failed.

        Raises:
            ValueError: checkpointing is not enabled for this job.
        """
        if self.coordinator is None:
            msg = (
                "savepoints need checkpointing: call env.enable_checkpointing(interval) "
                "(the interval may be long) before execute()"
            )
            raise ValueError(msg)

        def start() -> None:
            assert self.coordinator is not None
            if self.target is None:
                on_done(None, RuntimeError("the job is not running"))
                return
            directory = self.coordinator.storage.savepoint_dir(target_dir, self.job_id)
            p = self.coordinator.trigger(savepoint_dir=directory)
            self._savepoint_callbacks[p.checkpoint_id] = on_done
            self._start(p)

        start.survives_failover = True  # type: ignore[attr-defined]
        self._post(start)

    def _completed(self, done: CompletedCheckpoint) -> None:
        if self.target is not None:
            final = done.checkpoint_id == self.final_checkpoint_id
            self.target.notify_tasks(done.checkpoint_id, final)
        cb = self._savepoint_callbacks.pop(done.checkpoint_id, None)
        if cb is not None:
            cb(done.directory, None)

    def _aborted_savepoints(self) -> None:
        if self.coordinator is None:
            return
        for cid in list(self._savepoint_callbacks):
            if cid not in self.coordinator.pending:
                cb = self._savepoint_callbacks.pop(cid)
                cb(None, RuntimeError(f"savepoint {cid} was aborted"))

    def _fail(self, message: str) -> None:
        self._job_failure = message

    def retry_final_if_aborted(self) -> None:
        """If the final checkpoint was aborted, trigger it again on the next poll."""
        if (
            self.coordinator is not None
            and self.final_checkpoint_id is not None
            and self.final_checkpoint_id not in self.coordinator.pending
            and (self.coordinator.latest_completed() is None
                 or self.coordinator.latest_completed().checkpoint_id  # type: ignore[union-attr]
                 != self.final_checkpoint_id)
        ):
            self.final_checkpoint_id = None

    def close(self, retain: bool) -> None:
        """Stop: abort pending; keep the retained checkpoints unless ``retain`` is False.
        Savepoint requests still queued are answered with an error."""
        self.target = None
        for start in self._clear_events(requeue_savepoint_requests=False):
            start()  # with no target: on_done(None, "the job is not running")
        if self.coordinator is not None:
            self.coordinator.stop(retain)
        if self.writer is not None:
            self.writer.close()
            self.cleanup_orphans()  # files of checkpoints aborted by the stop
