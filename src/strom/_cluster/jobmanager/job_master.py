"""JobMaster: runs one job on a MiniCluster's TaskManagers (Flink's ``JobMaster``).

It builds the :class:`ExecutionGraph`, deploys every TaskManager's share in two phases
(deploy + open everywhere, then start), hosts the job's source coordinators (split
enumerators stay in the JobManager; requests and assignments travel as RPC messages),
drives the job's checkpoints, tracks every execution until all finished, merges
accumulators and metrics, and drives the job status state machine::

    CREATED -> RUNNING -> FINISHED
                       -> FAILING -> FAILED        (a subtask failed or a TaskManager died)
                                  -> RESTARTING -> RUNNING   (the restart strategy allows)
                       -> CANCELLING -> CANCELED   (cancel(), Ctrl-C)

**Checkpoints** use the same :class:`~strom._executors.checkpointing.JobCheckpointing` as
the in-process runtime; the JobMaster is its :class:`CheckpointTarget` and polls it on the
job loop. Triggers, completion and abort notices go to the TaskManagers as RPC messages
(on the connection that also carries split assignments, so an assignment sent before a
trigger reaches its reader before the reader's snapshot; enumerators are snapshotted at
trigger time). Each ``TriggerCheckpoint`` goes to every TaskManager of the job with the
checkpoint's directory (savepoints have their own); TaskManagers write their tasks'
snapshots there themselves (the checkpoint storage is a shared filesystem) and answer
with the file names.

**Restarts**: on a task failure or a lost TaskManager the attempt is cancelled (every
TaskManager closes the job's tasks and finishes its queued snapshot writes), pending
checkpoints are aborted and their files removed, then the restart strategy
(``job_graph.restart_strategy``; none = fail) decides. After its backoff, dead
TaskManagers are replaced by new processes and every task is deployed again with
``attempt + 1`` and the state of the latest completed checkpoint (each TaskManager gets
the :class:`RestoredState` of the operators it runs; enumerators restore in the
JobManager). Messages carry the attempt number, so late messages of a cancelled attempt
are ignored. Without restarts the client's ``execute()`` raises ``JobExecutionError``
chained to the failure (a ``TaskError`` naming operator uid and subtask, or a
:class:`TaskManagerLostError` naming the process).

:meth:`JobMaster.run` runs on the caller's thread (the job thread of the client), like
the local executor's loop; messages from TaskManager reader threads arrive through a
queue.
"""

from __future__ import annotations

import copy
import importlib.machinery
import logging
import queue
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cloudpickle

from strom._checkpoint.restart import create_restart_strategy
from strom._cluster.errors import TaskManagerLostError
from strom._cluster.failures import rebuild_exception
from strom._cluster.jobmanager.execution_graph import ExecutionGraph, ExecutionState
from strom._cluster.jobmanager.job_status import JobStatusMachine
from strom._cluster.rpc.messages import (
    AcknowledgeCheckpoint,
    AddSplits,
    CancelJob,
    DeclineCheckpoint,
    DeployJob,
    Fence,
    FenceReached,
    JobDeployed,
    JobReleased,
    NoMoreSplits,
    NotifyCheckpointAborted,
    NotifyCheckpointComplete,
    ReleaseJob,
    SourceEventToCoordinator,
    SourceEventToReader,
    SplitRequest,
    StartJob,
    TaskEndOfInput,
    TaskFailed,
    TaskFinished,
    TriggerCheckpoint,
)
from strom._executors.checkpointing import JobCheckpointing, RestorePoint
from strom._executors.source_coordinator import SourceCoordinator
from strom._graph.job_graph import JobGraph
from strom._runtime.elements import CheckpointBarrier
from strom.datastream.execution import JobExecutionResult, JobStatus
from strom.errors import JobCancelledError, JobExecutionError, StreamingError, TaskError

if TYPE_CHECKING:
    from strom._cluster.minicluster import MiniCluster, TaskManagerHandle

__all__ = ["JobMaster", "TaskManagerLost"]

logger = logging.getLogger(__name__)

_EXIT_DESCRIPTION_WAIT_S = 0.5  # how long a loss report waits for the exit status
_TICK_S = 0.01  # loop period when idle: bounds enumerator call_async latency
_DEPLOY_TIMEOUT_S = 120.0  # opening operators may connect to external systems
_RELEASE_TIMEOUT_S = 5.0  # TaskManagers close their tasks; then we stop waiting
_PEER_CHECK_S = 1.0  # after a lost data connection, how long to wait for the peer's fate


def _now_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def file_loaded_modules() -> dict[str, str]:
    """User modules of this process that a TaskManager could not import by name.

    A module loaded from a file (``importlib.util.spec_from_file_location`` +
    ``sys.modules[name] = module``) cannot be found on ``sys.path``; records and functions
    of such a module are pickled by reference, so TaskManagers load the same file under
    the same name before unpickling the job. Only plain single-file modules outside the
    interpreter's prefixes are considered.

    Returns:
        module name -> file path.
    """
    prefixes = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
    out: dict[str, str] = {}
    for name, mod in list(sys.modules.items()):
        if "." in name or name.startswith("__") or hasattr(mod, "__path__"):
            continue
        path = getattr(mod, "__file__", None)
        if not isinstance(path, str) or not path.endswith(".py") or path.startswith(prefixes):
            continue
        try:
            spec = importlib.machinery.PathFinder.find_spec(name, sys.path)
        except Exception:
            spec = None
        if spec is None:
            out[name] = path
    return out




@dataclass(frozen=True)
class TaskManagerLost:
    """Internal event: a TaskManager's connection dropped."""

    handle: TaskManagerHandle


class _Cancel:
    """Internal event: cancel() was called."""


@dataclass(frozen=True)
class _StopWithSavepoint:
    """Internal event: the savepoint of a stop-with-savepoint completed."""

    path: str


class _Failure(Exception):
    def __init__(self, cause: BaseException, internal: bool = False) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.internal = internal


class _Cancelled(Exception):
    pass


class _Stopped(Exception):
    pass


class _RemoteReaderGateway:
    """Delivers a coordinator's assignments to readers in TaskManagers.

    Args:
        master: the job's JobMaster.
        vertex_id: the source vertex.
        attempt: the job attempt the coordinator belongs to.
    """

    def __init__(self, master: JobMaster, vertex_id: str, attempt: int = 0) -> None:
        self.master = master
        self.vertex_id = vertex_id
        self.attempt = attempt

    def _send(self, subtask: int, msg: Any) -> None:
        self.master.tm_of(self.vertex_id, subtask).send(msg)

    def assign_splits(self, subtask: int, splits: list[Any]) -> None:
        """Send ``AddSplits``."""
        self._send(subtask, AddSplits(self.master.job_id, self.vertex_id, subtask, list(splits),
                                      self.attempt))

    def no_more_splits(self, subtask: int) -> None:
        """Send ``NoMoreSplits``."""
        self._send(subtask, NoMoreSplits(self.master.job_id, self.vertex_id, subtask,
                                         self.attempt))

    def send_event(self, subtask: int, event: Any) -> None:
        """Send ``SourceEventToReader``."""
        self._send(subtask, SourceEventToReader(self.master.job_id, self.vertex_id, subtask,
                                                event, self.attempt))


class JobMaster:
    """Runs one job on a cluster, restarting it from checkpoints as its strategy allows.

    Args:
        cluster: the started MiniCluster.
        job_graph: the chained plan (its ``restart_strategy`` and ``checkpoint_config``
            apply).
        job_id: hex job id.
        job_parameters: global job parameters.
    """

    def __init__(
        self,
        cluster: MiniCluster,
        job_graph: JobGraph,
        job_id: str,
        job_parameters: dict[str, str],
    ) -> None:
        self.cluster = cluster
        self.job_graph = job_graph
        self.job_id = job_id
        self.job_parameters = job_parameters
        self.status_machine = JobStatusMachine(job_id)
        self.events: queue.Queue[Any] = queue.Queue()
        self.execution_graph: ExecutionGraph | None = None
        self.tms: dict[str, TaskManagerHandle] = {}
        self.coordinators: dict[str, SourceCoordinator] = {}
        self.checkpointing: JobCheckpointing | None = None
        self.attempt = 0
        self.restart_causes: list[BaseException] = []
        """The failure behind each restart, oldest first."""
        self.stopped_with_savepoint: str | None = None
        self._metric_rows: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self._accumulators: dict[str, Any] = {}
        self._cancel_requested = threading.Event()
        self.start_time = 0.0
        self.end_time = 0.0

    # -- client-facing --------------------------------------------------------------------
    @property
    def status(self) -> JobStatus:
        """The job's current status."""
        return self.status_machine.status

    def post(self, event: Any) -> None:
        """Queue an event for the job loop (any thread)."""
        self.events.put(event)

    def cancel(self) -> None:
        """Request cancellation (any thread)."""
        self._cancel_requested.set()
        self.post(_Cancel())

    def tm_of(self, vertex_id: str, subtask: int) -> TaskManagerHandle:
        """The TaskManager running a subtask."""
        assert self.execution_graph is not None
        return self.tms[self.execution_graph.vertices[(vertex_id, subtask)].tm_id]

    def update_metrics(self, rows: list[tuple[str, int, list[dict[str, Any]]]]) -> None:
        """Store the latest metric rows of some subtasks (heartbeat thread)."""
        for vertex_id, subtask, subtask_rows in rows:
            self._metric_rows[(vertex_id, subtask)] = subtask_rows

    def metrics(self) -> list[dict[str, Any]]:
        """Per operator and subtask rows (zeros until a TaskManager reported)."""
        rows: list[dict[str, Any]] = []
        eg = self.execution_graph
        for v in self.job_graph.vertices:
            for i in range(v.parallelism):
                got = self._metric_rows.get((v.id, i))
                if got is not None:
                    rows.extend(got)
                    continue
                where = eg.vertices[(v.id, i)].tm_id if eg is not None else ""
                rows.extend(
                    {
                        "vertex": v.name, "operator": n.name, "uid": n.uid, "subtask": i,
                        "records_in": 0, "records_out": 0, "bytes_in": 0, "bytes_out": 0,
                        "watermark_ms": None, "backpressured_ms": 0, "input_queue": 0,
                        "output_queue": 0, "status": "CREATED", "taskmanager": where,
                    }
                    for n in v.nodes
                )
        return rows

    def trigger_savepoint(self, target_dir: str, stop: bool,
                          timeout: float | None = None) -> str:
        """Take a savepoint (any thread); with ``stop`` end the job once it completed
        (Flink's stop-with-savepoint: sinks commit up to the savepoint, nothing after).

        Args:
            target_dir: directory URL under which the savepoint directory is created.
            stop: stop the job after the savepoint.
            timeout: seconds to wait (None: no limit).

        Returns:
            The savepoint's directory.

        Raises:
            ValueError: checkpointing is disabled.
            RuntimeError: the savepoint failed or the job is not running.
            TimeoutError: not done within ``timeout`` seconds.
        """
        cp = self.checkpointing
        if cp is None:
            msg = "the job is not running"
            raise RuntimeError(msg)
        done = threading.Event()
        result: list[tuple[str | None, BaseException | None]] = []

        def on_done(path: str | None, error: BaseException | None) -> None:
            result.append((path, error))
            if stop and error is None and path is not None:
                self.stopped_with_savepoint = path  # a failure from now on stops the job too
                self.post(_StopWithSavepoint(path))
            done.set()

        cp.trigger_savepoint(target_dir, on_done)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done.wait(0.05):
            if self.status.is_globally_terminal:
                msg = f"the job ended ({self.status.name}) before the savepoint completed"
                raise RuntimeError(msg)
            if deadline is not None and time.monotonic() > deadline:
                msg = f"savepoint not completed within {timeout} s"
                raise TimeoutError(msg)
        path, error = result[0]
        if error is not None:
            raise RuntimeError(str(error)) from error
        return str(path)

    # -- running --------------------------------------------------------------------------
    def run(self) -> JobExecutionResult:
        """Deploy, run and wait for the job on the calling thread, restarting it from the
        latest completed checkpoint after failures as the restart strategy allows.

        Raises:
            JobExecutionError: a subtask failed or a TaskManager was lost and no restart
                was left (cause chained).
            JobCancelledError: :meth:`cancel` was called.
            KeyboardInterrupt: Ctrl-C (the job is cancelled first).
        """
        self.start_time = time.monotonic()
        jg = self.job_graph
        name = f"Job '{jg.job_name}' ({self.job_id})"
        try:
            graph_bytes = cloudpickle.dumps(jg, 5)
        except Exception as e:
            self.status_machine.transition(JobStatus.FAILING)
            self.status_machine.transition(JobStatus.FAILED)
            msg = (
                f"{name} cannot run on TaskManager processes: its functions, sources or "
                f"sinks cannot be serialised with cloudpickle ({type(e).__name__}: {e}); "
                "run it at parallelism 1 or avoid capturing locks, files or sockets"
            )
            raise JobExecutionError(msg, self.job_id) from e
        self.cluster.add_job(self)
        retain = True
        try:
            try:
                self._run_attempts(graph_bytes)
            except _Failure as f:
                self._fail()
                if f.internal:
                    msg = (f"{name} failed with an internal error: "
                           f"{type(f.cause).__name__}: {f.cause}")
                    raise JobExecutionError(msg, self.job_id) from f.cause
                self._raise_failure(name, f.cause)
            except _Stopped:
                # every TaskManager committed the savepoint's data before any of them
                # closes its tasks (and with them the data connections of the others)
                self._fence()
                self._release(CancelJob(self.job_id, self.attempt))
                self.status_machine.transition(JobStatus.FINISHED)
            except _Cancelled:
                retain = self._retain_on_cancel()
                self._stop(JobStatus.CANCELLING, JobStatus.CANCELED)
                msg = f"{name} was cancelled"
                raise JobCancelledError(msg, self.job_id) from None
            except KeyboardInterrupt:
                retain = self._retain_on_cancel()
                self._stop(JobStatus.CANCELLING, JobStatus.CANCELED)
                raise
            except Exception as e:
                self._release(CancelJob(self.job_id, self.attempt))
                self._fail()
                msg = f"{name} failed with an internal error: {type(e).__name__}: {e}"
                raise JobExecutionError(msg, self.job_id) from e
        finally:
            self.end_time = time.monotonic()
            self._close_coordinators()
            self._close_checkpointing(retain)
            self.cluster.remove_job(self.job_id)
        return JobExecutionResult(
            job_id=self.job_id,
            net_runtime_ms=int((self.end_time - self.start_time) * 1000),
            accumulators={n: acc.get_local_value() for n, acc in self._accumulators.items()},
        )

    def _raise_failure(self, name: str, cause: BaseException) -> None:
        if isinstance(cause, TaskError | StreamingError):
            msg = f"{name} failed: {cause}"
        else:
            msg = f"{name} failed: {type(cause).__name__}: {cause}"
        raise JobExecutionError(msg, self.job_id) from cause

    def _run_attempts(self, graph_bytes: bytes) -> None:
        """Run attempts until one finishes or the restart strategy gives up (then raise
        the last failure as ``_Failure``)."""
        jg = self.job_graph
        cp = JobCheckpointing(jg, self.job_id, lambda message: None)
        self.checkpointing = cp
        strategy = create_restart_strategy(jg.restart_strategy, _now_ms)
        restore = cp.initial_restore_point()
        while True:
            try:
                self._run_attempt(graph_bytes, restore)
                return
            except (_Cancelled, _Stopped):
                raise
            except _Failure as f:
                failure = f
            except Exception as e:
                failure = _Failure(e, internal=True)
            if self.stopped_with_savepoint is not None:
                raise _Stopped from None  # stop-with-savepoint completed: no restart
            self._cancel_attempt()
            strategy.notify_failure()
            if not strategy.can_restart():
                raise failure
            if self.status is JobStatus.FAILING:
                self.status_machine.transition(JobStatus.RESTARTING)
            self.restart_causes.append(failure.cause)
            logger.warning("job %s failed (attempt %d), restarting: %s", self.job_id,
                           self.attempt, failure.cause)
            self._wait_backoff(strategy.backoff_ms())
            self.attempt += 1
            restore = cp.latest_restore_point() or restore

    def _run_attempt(self, graph_bytes: bytes, restore: RestorePoint | None) -> None:
        jg = self.job_graph
        cp = self.checkpointing
        assert cp is not None
        if self._cancel_requested.is_set():
            raise _Cancelled
        if self.attempt > 0:
            self._replace_lost_taskmanagers()
        handles = self.cluster.taskmanagers()
        eg = ExecutionGraph(jg, [h.tm_id for h in handles])
        for ev_ in eg.vertices.values():
            ev_.attempt = self.attempt
        self.execution_graph = eg
        self.tms = {h.tm_id: h for h in handles if h.tm_id in eg.tm_ids}
        self._metric_rows = {}
        self._accumulators = {}
        self.coordinators = {}
        for v in jg.vertices:
            if v.is_source:
                self.coordinators[v.id] = SourceCoordinator(
                    v.head.source, v.parallelism, _RemoteReaderGateway(self, v.id, self.attempt)
                )
        peers = {tm_id: h.data_address for tm_id, h in self.tms.items()}
        sys_path = [p for p in sys.path if p]
        modules = file_loaded_modules()
        storage_url = cp.storage.base_url if cp.enabled and cp.storage is not None else None
        self.status_machine.transition(JobStatus.RUNNING)
        for tm_id, h in self.tms.items():
            for key in eg.subtasks_of(tm_id):
                eg.vertices[key].state = ExecutionState.DEPLOYING
            sent = h.send(
                DeployJob(
                    self.job_id, graph_bytes, self.job_parameters, sys_path,
                    eg.subtasks_of(tm_id), eg.channels_of(tm_id), peers, modules,
                    self.attempt, self._restored_for(tm_id, restore), storage_url,
                )
            )
            if not sent:
                self._tm_lost(h)
        deployed: set[str] = set()
        deadline = time.monotonic() + _DEPLOY_TIMEOUT_S
        while len(deployed) < len(self.tms):
            ev = self._next_event(deadline)
            if ev is None:
                msg = f"TaskManagers {sorted(set(self.tms) - deployed)} did not deploy in time"
                raise _Failure(TimeoutError(msg))
            if isinstance(ev, JobDeployed):
                if ev.attempt == self.attempt:
                    deployed.add(ev.tm_id)
            else:
                self._handle(ev)
        for v in jg.vertices:
            if v.is_source:
                state = restore.enumerators.get(v.head.uid) if restore is not None else None
                self.coordinators[v.id].start(state)
        for ev_ in eg.vertices.values():
            ev_.state = ExecutionState.RUNNING
        for h in self.tms.values():
            h.send(StartJob(self.job_id, self.attempt))
        if cp.enabled:
            cp.attach(self)
        while not eg.all_finished():
            ev = self._next_event(None)
            if ev is not None:
                self._handle(ev)
        self._release(ReleaseJob(self.job_id, self.attempt))
        self.status_machine.transition(JobStatus.FINISHED)

    def _restored_for(self, tm_id: str, restore: RestorePoint | None) -> dict[str, Any] | None:
        """The restored state of the operators a TaskManager runs (every old subtask's
        state of each uid: the new subtasks pick their key groups, splits, ...)."""
        if restore is None:
            return None
        assert self.execution_graph is not None
        uids = {
            n.uid
            for vertex_id, _i in self.execution_graph.subtasks_of(tm_id)
            for n in self.job_graph.vertex(vertex_id).nodes
        }
        return {uid: st for uid, st in restore.operators.items() if uid in uids}

    def _replace_lost_taskmanagers(self) -> None:
        """Start new TaskManager processes for dead ones (the job's slots need them)."""
        needed = max(v.parallelism for v in self.job_graph.vertices)
        try:
            self.cluster.ensure_taskmanagers(min(self.cluster.num_taskmanagers, needed))
        except RuntimeError as e:
            raise _Failure(e) from None

    def _cancel_attempt(self) -> None:
        """Stop the failed attempt everywhere; abort its checkpoints and remove their files."""
        if self.status in (JobStatus.CREATED, JobStatus.RUNNING):
            self.status_machine.transition(JobStatus.FAILING)
        self._release(CancelJob(self.job_id, self.attempt))
        self._close_coordinators()
        cp = self.checkpointing
        if cp is not None:
            cp.detach()
            cp.cleanup_orphans()  # every TaskManager finished its writes (or is dead)

    def _wait_backoff(self, ms: int) -> None:
        """Sleep the restart backoff; a cancel ends it."""
        deadline = time.monotonic() + ms / 1000
        while True:
            if self._cancel_requested.is_set():
                raise _Cancelled
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                ev = self.events.get(timeout=min(left, 0.05))
            except queue.Empty:
                continue
            if isinstance(ev, _Cancel):
                raise _Cancelled

    def _next_event(self, deadline: float | None) -> Any:
        """The next event (coordinators and checkpoints run between events); None at the
        deadline."""
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return None
            now_ms = _now_ms()
            busy = False
            for coord in self.coordinators.values():
                if coord.process(now_ms):
                    busy = True
            cp = self.checkpointing
            if cp is not None and cp.target is not None:
                try:
                    if cp.poll():
                        busy = True
                except TaskError as e:  # too many consecutive checkpoint failures
                    raise _Failure(e) from None
                cp.retry_final_if_aborted()
            try:
                return self.events.get(timeout=0 if busy else _TICK_S)
            except queue.Empty:
                continue

    def _handle(self, ev: Any) -> None:
        eg = self.execution_graph
        assert eg is not None
        if getattr(ev, "attempt", self.attempt) != self.attempt:
            return  # a late message of a cancelled attempt
        cp = self.checkpointing
        if isinstance(ev, SplitRequest):
            self.coordinators[ev.vertex_id].request_split(ev.subtask)
        elif isinstance(ev, SourceEventToCoordinator):
            self.coordinators[ev.vertex_id].send_event(ev.subtask, ev.event)
        elif isinstance(ev, AcknowledgeCheckpoint):
            if cp is not None:
                cp.snapshot_written(ev.checkpoint_id, (ev.vertex_id, ev.subtask), ev.handles)
        elif isinstance(ev, DeclineCheckpoint):
            if cp is not None:
                key = (ev.vertex_id, ev.subtask)
                if ev.io_error:
                    cp.snapshot_written(ev.checkpoint_id, key, None, OSError(ev.reason))
                else:
                    cp.declined(key, ev.checkpoint_id, ev.reason)
        elif isinstance(ev, TaskEndOfInput):
            if cp is not None:
                cp.task_finished((ev.vertex_id, ev.subtask))
        elif isinstance(ev, TaskFinished):
            eg.vertices[(ev.vertex_id, ev.subtask)].state = ExecutionState.FINISHED
            self._metric_rows[(ev.vertex_id, ev.subtask)] = ev.metrics
            for name, acc in cloudpickle.loads(ev.accumulators):
                if name in self._accumulators:
                    self._accumulators[name].merge(acc)
                else:
                    self._accumulators[name] = copy.deepcopy(acc)
        elif isinstance(ev, TaskFailed):
            raise _Failure(self._failure_of(ev))
        elif isinstance(ev, TaskManagerLost):
            if ev.handle.tm_id in self.tms:
                self._tm_lost(ev.handle)
        elif isinstance(ev, _StopWithSavepoint):
            raise _Stopped
        elif isinstance(ev, _Cancel):
            raise _Cancelled
        # JobReleased / late messages of other phases are ignored here

    def _failure_of(self, ev: TaskFailed) -> BaseException:
        h = self.tms.get(ev.tm_id)
        origin = h.describe() if h is not None else f"TaskManager {ev.tm_id}"
        if ev.network_peer is not None:
            peer = self.tms.get(ev.network_peer)
            if peer is not None:
                deadline = time.monotonic() + _PEER_CHECK_S
                while peer.alive and time.monotonic() < deadline:
                    time.sleep(0.01)
                if not peer.alive:
                    return self._lost_error(peer)
        cause = rebuild_exception(ev.failure, origin)
        if ev.vertex_id is not None and ev.subtask is not None and isinstance(cause, TaskError):
            if cause.job_id is None:
                cause.job_id = self.job_id
        return cause

    def _lost_error(self, h: TaskManagerHandle) -> TaskManagerLostError:
        eg = self.execution_graph
        running = []
        if eg is not None:
            running = [
                f"{ev.vertex.name} ({ev.subtask + 1}/{ev.vertex.parallelism})"
                for ev in eg.vertices.values()
                if ev.tm_id == h.tm_id and ev.state is not ExecutionState.FINISHED
            ]
        # the connection's reader marks the handle dead before it learns the exit status
        # from the launcher (milliseconds later): wait briefly, so the message says how
        deadline = time.monotonic() + _EXIT_DESCRIPTION_WAIT_S
        while h.exit_description is None and time.monotonic() < deadline:
            time.sleep(0.005)
        how = h.exit_description or "was lost"
        msg = f"{h.describe()} {how}"
        if running:
            msg += f"; it was running {', '.join(running)}"
        return TaskManagerLostError(msg, h.tm_id, h.pid)

    def _tm_lost(self, h: TaskManagerHandle) -> None:
        raise _Failure(self._lost_error(h))

    # -- CheckpointTarget ------------------------------------------------------------------
    def trigger_tasks(self, keys: list[tuple[str, int]], barrier: CheckpointBarrier) -> None:
        """Send ``TriggerCheckpoint`` with the checkpoint's directory to every TaskManager
        of the job, naming the subtasks each must trigger directly."""
        cp = self.checkpointing
        eg = self.execution_graph
        if cp is None or cp.coordinator is None or eg is None:
            return
        p = cp.coordinator.pending.get(barrier.checkpoint_id)
        if p is None:
            return
        by_tm: dict[str, list[tuple[str, int]]] = {tm_id: [] for tm_id in self.tms}
        for key in keys:
            by_tm[eg.vertices[key].tm_id].append(key)
        for tm_id, h in self.tms.items():
            h.send(TriggerCheckpoint(
                self.job_id, barrier.checkpoint_id, barrier.timestamp_ms,
                barrier.is_savepoint, p.directory, by_tm[tm_id], self.attempt,
            ))

    def notify_tasks(self, checkpoint_id: int, final: bool) -> None:
        """Send ``NotifyCheckpointComplete`` to every TaskManager of the job."""
        for h in self.tms.values():
            h.send(NotifyCheckpointComplete(self.job_id, checkpoint_id, final, self.attempt))

    def abort_tasks(self, checkpoint_id: int) -> None:
        """Send ``NotifyCheckpointAborted`` to every TaskManager of the job."""
        for h in self.tms.values():
            h.send(NotifyCheckpointAborted(self.job_id, checkpoint_id, self.attempt))

    def snapshot_enumerators(self, checkpoint_id: int) -> dict[str, Any]:
        """Every source's enumerator state (taken before any barrier is injected)."""
        out: dict[str, Any] = {}
        for v in self.job_graph.vertices:
            coord = self.coordinators.get(v.id)
            if v.is_source and coord is not None and coord.enumerator is not None:
                out[v.head.uid] = coord.enumerator.snapshot_state(checkpoint_id)
        return out

    # -- stopping -------------------------------------------------------------------------
    def _fail(self) -> None:
        """Final failure (the attempt was cancelled already): FAILING/RESTARTING -> FAILED."""
        if self.status in (JobStatus.CREATED, JobStatus.RUNNING):
            self.status_machine.transition(JobStatus.FAILING)
        if self.status in (JobStatus.FAILING, JobStatus.RESTARTING):
            self.status_machine.transition(JobStatus.FAILED)

    def _stop(self, via: JobStatus, to: JobStatus) -> None:
        if not self.status_machine.status.is_globally_terminal:
            if self.status_machine.status is not via:
                self.status_machine.transition(via)
            self._release(CancelJob(self.job_id, self.attempt))
            self.status_machine.transition(to)

    def _retain_on_cancel(self) -> bool:
        cfg = self.job_graph.checkpoint_config or {}
        return cfg.get("retention") == "RETAIN_ON_CANCELLATION"

    def _fence(self) -> None:
        """Wait until every live TaskManager of the job handled the messages sent so far."""
        token = time.monotonic_ns()
        waiting = {tm_id for tm_id, h in self.tms.items() if h.send(Fence(self.job_id, token))}
        deadline = time.monotonic() + _RELEASE_TIMEOUT_S
        while waiting and time.monotonic() < deadline:
            try:
                ev = self.events.get(timeout=0.1)
            except queue.Empty:
                waiting = {t for t in waiting if self.tms[t].alive}
                continue
            if isinstance(ev, FenceReached) and ev.token == token:
                waiting.discard(ev.tm_id)
            elif isinstance(ev, TaskManagerLost):
                waiting.discard(ev.handle.tm_id)
            elif isinstance(ev, _Cancel):
                return

    def _release(self, msg: CancelJob | ReleaseJob) -> None:
        """Send ``msg`` to every live TaskManager of the job; wait for their release."""
        waiting = {tm_id for tm_id, h in self.tms.items() if h.send(msg)}
        deadline = time.monotonic() + _RELEASE_TIMEOUT_S
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                logger.warning("TaskManagers %s did not release job %s", sorted(waiting),
                               self.job_id)
                return
            try:
                ev = self.events.get(timeout=min(left, 0.1))
            except queue.Empty:
                waiting = {t for t in waiting if self.tms[t].alive}
                continue
            if isinstance(ev, JobReleased):
                if ev.attempt == self.attempt:
                    waiting.discard(ev.tm_id)
            elif isinstance(ev, TaskManagerLost):
                waiting.discard(ev.handle.tm_id)

    def _close_coordinators(self) -> None:
        for coord in self.coordinators.values():
            coord.close()
        self.coordinators = {}

    def _close_checkpointing(self, retain: bool) -> None:
        """Abort what is pending (failing waiting savepoints), keep the retained
        checkpoints unless ``retain`` is False, and remove every other checkpoint file."""
        cp = self.checkpointing
        if cp is None:
            return
        cp.detach()
        cp.close(retain)
        cp.cleanup_orphans()
