"""CheckpointCoordinator: triggers checkpoints, collects acknowledgements, completes,
subsumes and aborts them (Flink's ``CheckpointCoordinator``).

It is driven by its JobMaster's loop: ``trigger_if_due(now)`` returns a new
:class:`PendingCheckpoint` when the interval, the minimum pause and the concurrency limit
allow one (the JobMaster then snapshots the split enumerators and injects barriers at
the sources); tasks answer with ``acknowledge`` (their state file names per operator uid)
or ``decline``; when every task acknowledged, ``_metadata`` is written atomically, the
checkpoint becomes the latest completed one, older ones beyond the retained number are
deleted, and ``on_complete`` notifies the tasks (sinks commit). Savepoints go through the
same path but are written to their own directory and never subsumed.

Incremental checkpoints: a subtask's handle may be ``{"file": <state file>, "shared":
[<shared file>, ...]}`` instead of the state file name; the :class:`SharedStateRegistry`
counts the references of the retained checkpoints, deletes a shared file when the last
checkpoint referencing it is subsumed, and deletes the files only an aborted checkpoint
uploaded. A checkpoint referencing a shared file that is gone is failed, never completed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from strom._checkpoint.failure import CheckpointFailureManager, CheckpointFailureReason
from strom._checkpoint.incremental import SharedStateRegistry, shared_files_of_handles
from strom._checkpoint.storage import CheckpointStorage

__all__ = ["CheckpointCoordinator", "CompletedCheckpoint", "OperatorInfo", "PendingCheckpoint"]

logger = logging.getLogger(__name__)

TaskKey = tuple[str, int]
"""(vertex id, subtask index)."""


@dataclass(frozen=True)
class OperatorInfo:
    """What the metadata records per operator.

    Attributes:
        uid: the operator's uid.
        parallelism: its parallelism in this job.
        max_parallelism: its number of key groups.
    """

    uid: str
    parallelism: int
    max_parallelism: int


@dataclass
class PendingCheckpoint:
    """A triggered checkpoint waiting for acknowledgements.

    Attributes:
        checkpoint_id: strictly increasing id.
        timestamp_ms: trigger time (epoch ms).
        directory: where its files go.
        is_savepoint: True for savepoints.
        waiting: tasks that have not acknowledged yet.
        handles: acknowledged state files: ``{uid: {subtask: file name}}`` (or
            ``{"file": name, "shared": [shared file, ...]}`` for incremental state).
        enumerators: split enumerator state files by source uid.
    """

    checkpoint_id: int
    timestamp_ms: int
    directory: str
    is_savepoint: bool
    waiting: set[TaskKey]
    handles: dict[str, dict[int, Any]] = field(default_factory=dict)
    enumerators: dict[str, str] = field(default_factory=dict)
    trigger_clock_ms: int = 0


@dataclass(frozen=True)
class CompletedCheckpoint:
    """A checkpoint whose ``_metadata`` was written.

    Attributes:
        checkpoint_id: its id.
        directory: its directory (holding ``_metadata``).
        metadata: the metadata written.
    """

    checkpoint_id: int
    directory: str
    metadata: dict[str, Any]


class CheckpointCoordinator:
    """Coordinates the checkpoints of one job.

    Args:
        config: ``CheckpointConfig.to_dict()`` values.
        storage: the job's checkpoint storage.
        job_id: hex job id.
        tasks: every task that must acknowledge (vertex id, subtask).
        operators: the job's operators.
        clock: monotonic ms (intervals and timeouts).
        wall_clock: epoch ms (checkpoint timestamps).
        on_complete: called with the completed checkpoint (notify tasks, commit sinks).
        on_fail_job: called with an error message when too many checkpoints failed.
        first_checkpoint_id: id of the first checkpoint (after a restore: last id + 1).
    """

    def __init__(
        self,
        config: dict[str, Any],
        storage: CheckpointStorage,
        job_id: str,
        tasks: set[TaskKey],
        operators: list[OperatorInfo],
        clock: Callable[[], int],
        wall_clock: Callable[[], int],
        on_complete: Callable[[CompletedCheckpoint], None],
        on_fail_job: Callable[[str], None],
        first_checkpoint_id: int = 1,
    ) -> None:
        self.config = config
        self.storage = storage
        self.job_id = job_id
        self.tasks = set(tasks)
        self.operators = {o.uid: o for o in operators}
        self.clock = clock
        self.wall_clock = wall_clock
        self.on_complete = on_complete
        self.on_fail_job = on_fail_job
        self.next_id = first_checkpoint_id
        self.pending: dict[int, PendingCheckpoint] = {}
        self.completed: list[CompletedCheckpoint] = []
        self.shared = SharedStateRegistry(storage)
        """Reference counts of the shared files of the retained checkpoints."""
        self.failures = CheckpointFailureManager(int(config.get("tolerable_failures", 0)))
        self.last_trigger_ms: int | None = None
        self.last_completion_ms: int | None = None
        self.periodic = int(config.get("interval_ms", -1)) > 0
        self.shutdown = False
        self.num_completed = 0
        self.num_failed = 0

    # -- triggering -----------------------------------------------------------------------
    def trigger_if_due(self) -> PendingCheckpoint | None:
        """A new periodic checkpoint if interval, min pause and concurrency allow."""
        if not self.periodic or self.shutdown:
            return None
        now = self.clock()
        interval = int(self.config["interval_ms"])
        if self.last_trigger_ms is not None and now - self.last_trigger_ms < interval:
            return None
        min_pause = int(self.config.get("min_pause_ms", 0))
        if self.last_completion_ms is not None and now - self.last_completion_ms < min_pause:
            return None
        if len(self.pending) >= int(self.config.get("max_concurrent", 1)):
            return None
        if min_pause and self.pending:
            return None  # with a min pause, checkpoints never overlap
        return self.trigger()

    def trigger(self, savepoint_dir: str | None = None) -> PendingCheckpoint:
        """Start checkpoint (or savepoint, into ``savepoint_dir``) ``next_id`` now."""
        cid = self.next_id
        self.next_id += 1
        now = self.clock()
        self.last_trigger_ms = now
        directory = (
            savepoint_dir if savepoint_dir is not None else self.storage.checkpoint_dir(cid)
        )
        p = PendingCheckpoint(
            checkpoint_id=cid,
            timestamp_ms=self.wall_clock(),
            directory=directory,
            is_savepoint=savepoint_dir is not None,
            waiting=set(self.tasks),
            trigger_clock_ms=now,
        )
        self.pending[cid] = p
        return p

    def add_enumerator_state(self, checkpoint_id: int, uid: str, data: bytes) -> None:
        """Store a split enumerator's snapshot (taken when the checkpoint is triggered)."""
        p = self.pending.get(checkpoint_id)
        if p is not None:
            p.enumerators[uid] = self.storage.write_file(p.directory, f"enumerator-{uid}", data)

    # -- acknowledgements -----------------------------------------------------------------
    def acknowledge(self, checkpoint_id: int, task: TaskKey, handles: dict[str, Any]) -> bool:
        """Record a task's state files (by operator uid: a file name, or a dict with the
        ``file`` and the ``shared`` files of incremental state); True if this completed
        it."""
        p = self.pending.get(checkpoint_id)
        if p is None or task not in p.waiting:
            return False  # late ack of an aborted/subsumed checkpoint
        p.waiting.discard(task)
        for uid, name in handles.items():
            p.handles.setdefault(uid, {})[task[1]] = name
        if p.waiting:
            return False
        self._complete(p)
        return True

    def decline(self, checkpoint_id: int, task: TaskKey, reason: CheckpointFailureReason) -> None:
        """A task could not take the checkpoint."""
        p = self.pending.get(checkpoint_id)
        if p is not None:
            self._abort(p, reason, f"declined by task {task}")

    def task_finished(self, task: TaskKey) -> None:
        """A task finished: future checkpoints do not wait for it; pending ones neither."""
        self.tasks.discard(task)
        for p in list(self.pending.values()):
            if task in p.waiting:
                p.waiting.discard(task)
                if not p.waiting:
                    self._complete(p)

    def check_timeouts(self) -> None:
        """Abort pending checkpoints older than the timeout."""
        now = self.clock()
        timeout = int(self.config.get("timeout_ms", 600_000))
        for p in list(self.pending.values()):
            if now - p.trigger_clock_ms > timeout:
                self._abort(p, CheckpointFailureReason.CHECKPOINT_EXPIRED, "timed out")

    def abort_all(self, reason: CheckpointFailureReason) -> None:
        """Abort every pending checkpoint (job failing, restarting or finishing)."""
        for p in list(self.pending.values()):
            self._abort(p, reason, reason.value)

    # -- completion -----------------------------------------------------------------------
    def _metadata(self, p: PendingCheckpoint) -> dict[str, Any]:
        ops = {}
        for uid, info in self.operators.items():
            ops[uid] = {
                "parallelism": info.parallelism,
                "max_parallelism": info.max_parallelism,
                "subtasks": {str(i): n for i, n in sorted(p.handles.get(uid, {}).items())},
            }
        return {
            "job_id": self.job_id,
            "checkpoint_id": p.checkpoint_id,
            "timestamp_ms": p.timestamp_ms,
            "kind": "savepoint" if p.is_savepoint else "checkpoint",
            "operators": ops,
            "enumerators": dict(p.enumerators),
        }

    def _complete(self, p: PendingCheckpoint) -> None:
        del self.pending[p.checkpoint_id]
        meta = self._metadata(p)
        missing = self.shared.missing(meta)
        if missing:  # deleted by an abort racing with this checkpoint's upload
            logger.warning("checkpoint %d references missing shared files %s",
                           p.checkpoint_id, missing[:5])
            self._discard_pending(p)
            self._failed(p, CheckpointFailureReason.FINALIZE_CHECKPOINT_FAILURE)
            return
        try:
            self.storage.write_metadata(p.directory, meta)
        except OSError as e:
            logger.warning("writing _metadata of checkpoint %d failed: %s", p.checkpoint_id, e)
            self._discard_pending(p)
            self._failed(p, CheckpointFailureReason.FINALIZE_CHECKPOINT_FAILURE)
            return
        if not p.is_savepoint:
            self.shared.register(meta)
        done = CompletedCheckpoint(p.checkpoint_id, p.directory, meta)
        self.failures.on_success()
        self.last_completion_ms = self.clock()
        self.num_completed += 1
        if not p.is_savepoint:
            self.completed.append(done)
            self._subsume()
        # checkpoints triggered before this one can never complete usefully any more
        for older in [q for q in self.pending.values() if q.checkpoint_id < p.checkpoint_id]:
            self._abort(older, CheckpointFailureReason.CHECKPOINT_DECLINED, "subsumed")
        self.on_complete(done)

    def _subsume(self) -> None:
        retained = int(self.config.get("num_retained", 1))
        while len(self.completed) > retained:
            old = self.completed.pop(0)
            self.storage.discard(old.directory)
            self.shared.unregister(old.metadata)

    def _abort(self, p: PendingCheckpoint, reason: CheckpointFailureReason, detail: str) -> None:
        self.pending.pop(p.checkpoint_id, None)
        logger.info("checkpoint %d aborted: %s (%s)", p.checkpoint_id, reason.name, detail)
        self._discard_pending(p)
        self._failed(p, reason)

    def _discard_pending(self, p: PendingCheckpoint) -> None:
        """Delete a checkpoint that will not complete: its directory and the shared files
        only it uploaded (those of retained or other pending checkpoints stay)."""
        if p.is_savepoint:
            return
        self.storage.discard(p.directory)
        others: set[str] = set()
        for q in self.pending.values():
            others |= shared_files_of_handles(q.handles)
        self.shared.discard_unregistered(shared_files_of_handles(p.handles), others)

    def _failed(self, p: PendingCheckpoint, reason: CheckpointFailureReason) -> None:
        self.num_failed += 1
        if self.failures.on_failure(reason):
            self.on_fail_job(
                f"checkpoint {p.checkpoint_id} failed ({reason.value}); more than "
                f"{self.failures.tolerable} consecutive checkpoint failures"
            )

    # -- queries and cleanup --------------------------------------------------------------
    def latest_completed(self) -> CompletedCheckpoint | None:
        """The newest completed checkpoint, or None."""
        return self.completed[-1] if self.completed else None

    def cleanup_orphans(self) -> list[str]:
        """Delete checkpoint directories that are neither retained nor pending."""
        keep = {c.directory for c in self.completed} | {p.directory for p in self.pending.values()}
        keep_shared = SharedStateRegistry.from_metadata(
            self.storage, [c.metadata for c in self.completed]
        ).referenced()
        for p in self.pending.values():
            keep_shared |= shared_files_of_handles(p.handles)
        return self.storage.cleanup_orphans(keep, keep_shared)

    def stop(self, retain: bool) -> None:
        """Stop triggering; abort pending; delete everything unless ``retain``."""
        self.shutdown = True
        self.abort_all(CheckpointFailureReason.CHECKPOINT_COORDINATOR_SHUTDOWN)
        if not retain:
            for c in self.completed:
                self.storage.discard(c.directory)
                self.shared.unregister(c.metadata)
            self.completed = []
