"""ClusterExecutor: runs a job on an embedded MiniCluster of TaskManager processes.

:func:`create_executor` is how ``env.execute()`` picks a runtime: a job whose every
vertex has parallelism 1 runs in this process on the
:class:`~strom._executors.local.LocalExecutor` (fast start); any parallelism > 1 runs on
a MiniCluster with ``min(cpu count, max parallelism)`` TaskManagers, started for the job
and shut down when it ends, unless a session cluster is installed with
:func:`use_session_cluster` (the test suite keeps one warm cluster for all its jobs).

``ClusterExecutor`` has the LocalExecutor's interface (``run``, ``cancel``, ``metrics``,
``status``, ``trigger_savepoint``, ``job_graph``, ``start_time``/``end_time``), so the same
:class:`~strom._executors.local.LocalJobClient` drives both and ``strom run``'s progress
display works unchanged.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Any

from strom._cluster.jobmanager.job_master import JobMaster
from strom._cluster.minicluster import MiniCluster
from strom._graph.job_graph import JobGraph
from strom.datastream.execution import JobClient, JobExecutionResult, JobStatus
from strom.errors import JobCancelledError

from .local import JOB_LISTENERS, LocalExecutor, LocalJobClient

__all__ = [
    "ClusterExecutor",
    "create_executor",
    "get_session_cluster",
    "start_job",
    "use_session_cluster",
]

_session_cluster: MiniCluster | None = None
_session_lock = threading.Lock()


def use_session_cluster(cluster: MiniCluster | None) -> None:
    """Run every multi-process job of this process on ``cluster`` (None: one per job)."""
    global _session_cluster
    with _session_lock:
        _session_cluster = cluster


def get_session_cluster() -> MiniCluster | None:
    """The installed session cluster, if any."""
    return _session_cluster


def max_parallelism_of(job_graph: JobGraph) -> int:
    """The largest vertex parallelism (= slots the job needs)."""
    return max((v.parallelism for v in job_graph.vertices), default=1)


def create_executor(
    job_graph: JobGraph, job_id: str | None, job_parameters: dict[str, str]
) -> LocalExecutor | ClusterExecutor:
    """The executor for a job: in-process at parallelism 1, a MiniCluster otherwise."""
    job_id = job_id or uuid.uuid4().hex
    if max_parallelism_of(job_graph) <= 1:
        executor = LocalExecutor(job_graph, job_id, job_parameters)
        executor.build()
        return executor
    return ClusterExecutor(job_graph, job_id, job_parameters)


def start_job(
    job_graph: JobGraph, job_id: str, job_parameters: dict[str, str], background: bool
) -> JobClient:
    """Run a job: on a background thread (``execute_async``) or on this thread.

    Every callback in ``JOB_LISTENERS`` sees the client before the job starts.

    Raises:
        JobExecutionError: (foreground) the job failed.
        KeyboardInterrupt: (foreground) Ctrl-C; the job was cancelled first.
    """
    client = LocalJobClient(create_executor(job_graph, job_id, job_parameters))
    for listener in JOB_LISTENERS:
        listener(client)
    if background:
        return client.start()
    client.run_in_foreground()
    return client


class ClusterExecutor:
    """Runs one job on a MiniCluster (the session cluster or one of its own).

    Args:
        job_graph: the chained plan.
        job_id: hex job id.
        job_parameters: global job parameters.
        cluster: the cluster to use (default: the session cluster, else a new one).
    """

    def __init__(
        self,
        job_graph: JobGraph,
        job_id: str,
        job_parameters: dict[str, str] | None = None,
        cluster: MiniCluster | None = None,
    ) -> None:
        self.job_graph = job_graph
        self.job_id = job_id
        self.job_parameters = dict(job_parameters or {})
        self.cluster = cluster
        self.job_master: JobMaster | None = None
        self.start_time = 0.0
        self.end_time = 0.0
        self._cancelled = threading.Event()
        self._status = JobStatus.CREATED

    def build(self) -> None:
        """Nothing to build in the client: TaskManagers build their tasks."""

    @property
    def status(self) -> JobStatus:
        """The job's status."""
        jm = self.job_master
        return jm.status if jm is not None else self._status

    def run(self) -> JobExecutionResult:
        """Start (or reuse) a cluster, run the job, stop the cluster if it was the job's.

        Raises:
            JobExecutionError: the job failed (cause chained).
            JobCancelledError: the job was cancelled.
        """
        self.start_time = time.monotonic()
        cluster = self.cluster or get_session_cluster()
        own = cluster is None
        needed = max_parallelism_of(self.job_graph)
        try:
            if self._cancelled.is_set():
                raise self._cancelled_error()
            if cluster is None:
                cluster = MiniCluster(min(os.cpu_count() or 1, needed)).start()
            else:
                cluster.start()
                cluster.ensure_taskmanagers(min(cluster.num_taskmanagers, needed))
            jm = JobMaster(cluster, self.job_graph, self.job_id, self.job_parameters)
            self.job_master = jm
            if self._cancelled.is_set():
                jm.cancel()
            return jm.run()
        except BaseException:
            if self.job_master is None:
                self._status = (
                    JobStatus.CANCELED if self._cancelled.is_set() else JobStatus.FAILED
                )
            raise
        finally:
            if own and cluster is not None:
                cluster.shutdown()
            self.end_time = time.monotonic()

    def _cancelled_error(self) -> JobCancelledError:
        msg = f"Job '{self.job_graph.job_name}' ({self.job_id}) was cancelled"
        return JobCancelledError(msg, self.job_id)

    def cancel(self) -> None:
        """Request cancellation."""
        self._cancelled.set()
        jm = self.job_master
        if jm is not None:
            jm.cancel()

    def trigger_savepoint(self, target_dir: str, stop: bool,
                          timeout: float | None = None) -> str:
        """Take a savepoint; with ``stop`` end the job once it completed (the
        ``LocalExecutor.trigger_savepoint`` semantics; see ``JobMaster.trigger_savepoint``).

        Raises:
            ValueError: checkpointing is disabled.
            RuntimeError: the savepoint failed or the job is not running.
            TimeoutError: not done within ``timeout`` seconds.
        """
        jm = self.job_master
        if jm is None:
            msg = "the job is not running"
            raise RuntimeError(msg)
        return jm.trigger_savepoint(target_dir, stop, timeout)

    def metrics(self) -> list[dict[str, Any]]:
        """Per operator and subtask metric rows (see ``task_metrics``)."""
        jm = self.job_master
        if jm is not None:
            return jm.metrics()
        return [
            {
                "vertex": v.name, "operator": n.name, "uid": n.uid, "subtask": i,
                "records_in": 0, "records_out": 0,
            }
            for v in self.job_graph.vertices
            for i in range(v.parallelism)
            for n in v.nodes
        ]
