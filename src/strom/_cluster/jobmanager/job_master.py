"""JobMaster: runs one job on a MiniCluster's TaskManagers (Flink's ``JobMaster``).

It builds the :class:`ExecutionGraph`, deploys every TaskManager's share in two phases
(deploy + open everywhere, then start), hosts the job's source coordinators (split
enumerators stay in the JobManager; requests and assignments travel as RPC messages),
tracks every execution until all finished, merges accumulators and metrics, and drives
the job status state machine::

    CREATED -> RUNNING -> FINISHED
                       -> FAILING -> FAILED        (a subtask failed or a TaskManager died)
                       -> CANCELLING -> CANCELED   (cancel(), Ctrl-C)

On a failure the restart strategy is asked first (:class:`NoRestartStrategy` today: the
seam where the checkpoint issue adds FAILING -> RESTARTING -> RUNNING); then every
TaskManager of the job is told to cancel, and the client's ``execute()`` raises
``JobExecutionError`` chained to the failure (a ``TaskError`` naming operator uid and
subtask, or a :class:`TaskManagerLostError` naming the process).

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
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cloudpickle

from strom._cluster.errors import TaskManagerLostError
from strom._cluster.failures import rebuild_exception
from strom._cluster.jobmanager.execution_graph import ExecutionGraph, ExecutionState
from strom._cluster.jobmanager.job_status import JobStatusMachine
from strom._cluster.jobmanager.restart import NoRestartStrategy, RestartStrategy
from strom._cluster.rpc.messages import (
    AddSplits,
    CancelJob,
    DeployJob,
    JobDeployed,
    JobReleased,
    NoMoreSplits,
    ReleaseJob,
    SourceEventToCoordinator,
    SourceEventToReader,
    SplitRequest,
    StartJob,
    TaskFailed,
    TaskFinished,
)
from strom._executors.source_coordinator import SourceCoordinator
from strom._graph.job_graph import JobGraph
from strom.datastream.execution import JobExecutionResult, JobStatus
from strom.errors import JobCancelledError, JobExecutionError, StreamingError, TaskError

if TYPE_CHECKING:
    from strom._cluster.minicluster import MiniCluster, TaskManagerHandle

__all__ = ["JobMaster", "TaskManagerLost"]

logger = logging.getLogger(__name__)

_TICK_S = 0.01  # loop period when idle: bounds enumerator call_async latency
_DEPLOY_TIMEOUT_S = 120.0  # opening operators may connect to external systems
_RELEASE_TIMEOUT_S = 5.0  # TaskManagers close their tasks; then we stop waiting
_PEER_CHECK_S = 1.0  # after a lost data connection, how long to wait for the peer's fate


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


class _Failure(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _Cancelled(Exception):
    pass


class _RemoteReaderGateway:
    """Delivers a coordinator's assignments to readers in TaskManagers."""

    def __init__(self, master: JobMaster, vertex_id: str) -> None:
        self.master = master
        self.vertex_id = vertex_id

    def _send(self, subtask: int, msg: Any) -> None:
        self.master.tm_of(self.vertex_id, subtask).send(msg)

    def assign_splits(self, subtask: int, splits: list[Any]) -> None:
        """Send ``AddSplits``."""
        self._send(subtask, AddSplits(self.master.job_id, self.vertex_id, subtask, list(splits)))

    def no_more_splits(self, subtask: int) -> None:
        """Send ``NoMoreSplits``."""
        self._send(subtask, NoMoreSplits(self.master.job_id, self.vertex_id, subtask))

    def send_event(self, subtask: int, event: Any) -> None:
        """Send ``SourceEventToReader``."""
        self._send(subtask, SourceEventToReader(self.master.job_id, self.vertex_id, subtask, event))


class JobMaster:
    """Runs one job on a cluster.

    Args:
        cluster: the started MiniCluster.
        job_graph: the chained plan.
        job_id: hex job id.
        job_parameters: global job parameters.
        restart_strategy: what to do after a failure (no restart by default).
    """

    def __init__(
        self,
        cluster: MiniCluster,
        job_graph: JobGraph,
        job_id: str,
        job_parameters: dict[str, str],
        restart_strategy: RestartStrategy | None = None,
    ) -> None:
        self.cluster = cluster
        self.job_graph = job_graph
        self.job_id = job_id
        self.job_parameters = job_parameters
        self.restart_strategy: RestartStrategy = restart_strategy or NoRestartStrategy()
        self.status_machine = JobStatusMachine(job_id)
        self.events: queue.Queue[Any] = queue.Queue()
        self.execution_graph: ExecutionGraph | None = None
        self.tms: dict[str, TaskManagerHandle] = {}
        self.coordinators: dict[str, SourceCoordinator] = {}
        self._metric_rows: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self._accumulators: dict[str, Any] = {}
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

    # -- running --------------------------------------------------------------------------
    def run(self) -> JobExecutionResult:
        """Deploy, run and wait for the job on the calling thread.

        Raises:
            JobExecutionError: a subtask failed or a TaskManager was lost (cause chained).
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
        try:
            try:
                self._deploy_and_run(graph_bytes)
            except _Failure as f:
                self._fail(f.cause)
                self._raise_failure(name, f.cause)
            except _Cancelled:
                self._stop(JobStatus.CANCELLING, JobStatus.CANCELED)
                msg = f"{name} was cancelled"
                raise JobCancelledError(msg, self.job_id) from None
            except KeyboardInterrupt:
                self._stop(JobStatus.CANCELLING, JobStatus.CANCELED)
                raise
            except (JobExecutionError, TaskManagerLostError):
                raise
            except Exception as e:
                self._fail(e)
                msg = f"{name} failed with an internal error: {type(e).__name__}: {e}"
                raise JobExecutionError(msg, self.job_id) from e
        finally:
            self.end_time = time.monotonic()
            self._close_coordinators()
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

    def _deploy_and_run(self, graph_bytes: bytes) -> None:
        jg = self.job_graph
        handles = self.cluster.taskmanagers()
        eg = ExecutionGraph(jg, [h.tm_id for h in handles])
        self.execution_graph = eg
        self.tms = {h.tm_id: h for h in handles if h.tm_id in eg.tm_ids}
        for v in jg.vertices:
            if v.is_source:
                self.coordinators[v.id] = SourceCoordinator(
                    v.head.source, v.parallelism, _RemoteReaderGateway(self, v.id)
                )
        peers = {tm_id: h.data_address for tm_id, h in self.tms.items()}
        sys_path = [p for p in sys.path if p]
        modules = file_loaded_modules()
        self.status_machine.transition(JobStatus.RUNNING)
        for tm_id, h in self.tms.items():
            for key in eg.subtasks_of(tm_id):
                eg.vertices[key].state = ExecutionState.DEPLOYING
            sent = h.send(
                DeployJob(
                    self.job_id, graph_bytes, self.job_parameters, sys_path,
                    eg.subtasks_of(tm_id), eg.channels_of(tm_id), peers, modules,
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
                deployed.add(ev.tm_id)
            else:
                self._handle(ev)
        for coord in self.coordinators.values():
            coord.start()
        for ev_ in eg.vertices.values():
            ev_.state = ExecutionState.RUNNING
        for h in self.tms.values():
            h.send(StartJob(self.job_id))
        while not eg.all_finished():
            ev = self._next_event(None)
            if ev is not None:
                self._handle(ev)
        self._release(ReleaseJob(self.job_id))
        self.status_machine.transition(JobStatus.FINISHED)

    def _next_event(self, deadline: float | None) -> Any:
        """The next event (coordinators run between events); None at the deadline."""
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return None
            now_ms = time.monotonic_ns() // 1_000_000
            busy = False
            for coord in self.coordinators.values():
                if coord.process(now_ms):
                    busy = True
            try:
                return self.events.get(timeout=0 if busy else _TICK_S)
            except queue.Empty:
                continue

    def _handle(self, ev: Any) -> None:
        eg = self.execution_graph
        assert eg is not None
        if isinstance(ev, SplitRequest):
            self.coordinators[ev.vertex_id].request_split(ev.subtask)
        elif isinstance(ev, SourceEventToCoordinator):
            self.coordinators[ev.vertex_id].send_event(ev.subtask, ev.event)
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
        how = h.exit_description or "was lost"
        msg = f"{h.describe()} {how}"
        if running:
            msg += f"; it was running {', '.join(running)}"
        return TaskManagerLostError(msg, h.tm_id, h.pid)

    def _tm_lost(self, h: TaskManagerHandle) -> None:
        raise _Failure(self._lost_error(h))

    # -- stopping -------------------------------------------------------------------------
    def _fail(self, cause: BaseException) -> None:
        status = self.status_machine.status
        if status is JobStatus.CREATED or status is JobStatus.RUNNING:
            self.status_machine.transition(JobStatus.FAILING)
        if self.restart_strategy.can_restart(cause):  # pragma: no cover - checkpoint issue
            logger.info("restart strategy allows a restart; restarts are not implemented yet")
        self._release(CancelJob(self.job_id))
        if self.status_machine.status is JobStatus.FAILING:
            self.status_machine.transition(JobStatus.FAILED)

    def _stop(self, via: JobStatus, to: JobStatus) -> None:
        if not self.status_machine.status.is_globally_terminal:
            self.status_machine.transition(via)
            self._release(CancelJob(self.job_id))
            self.status_machine.transition(to)

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
                waiting.discard(ev.tm_id)
            elif isinstance(ev, TaskManagerLost):
                waiting.discard(ev.handle.tm_id)

    def _close_coordinators(self) -> None:
        for coord in self.coordinators.values():
            coord.close()
