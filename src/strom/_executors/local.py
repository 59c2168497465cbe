"""LocalExecutor: runs a JobGraph in this process, all subtasks on one thread.

Every parallel subtask becomes a :class:`StreamTask`; network edges become in-memory
channels; source enumerators run in :class:`SourceCoordinator` s. The loop steps each
runnable task in topological order (cooperative scheduling, Flink's mailbox model on one
thread), flushes buffers whose timeout expired, and sleeps briefly only when nothing
could progress. The multi-process MiniCluster runs the same tasks, spread over
TaskManager processes, with network channels in place of the in-memory ones.
"""

from __future__ import annotations

import copy
import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from strom._cluster.deployment import (
    DeployedTask,
    TaskBuilder,
    connected_pairs,
    job_edges,
    task_metrics,
)
from strom._graph.job_graph import JobGraph, JobVertex
from strom._runtime.io.channels import LocalInputChannel
from strom._runtime.operators.base import OperatorContext
from strom._runtime.task.stream_task import StreamTask
from strom._runtime.time.processing_time import system_clock_ms
from strom.datastream.execution import JobClient, JobExecutionResult, JobStatus
from strom.errors import JobCancelledError, JobExecutionError, TaskError

from .source_coordinator import LocalReaderGateway, SourceCoordinator

__all__ = ["JOB_LISTENERS", "JobExecutor", "LocalExecutor", "LocalJobClient"]

logger = logging.getLogger(__name__)

JOB_LISTENERS: list[Callable[[JobClient], None]] = []
"""Callbacks invoked with the JobClient of every job started in this process (the CLI's
progress display registers here)."""

_IDLE_SLEEP_MAX_S = 0.005  # longest nap when nothing can progress (bounds added latency)


class LocalExecutor:
    """Builds and runs the tasks of one job.

    Args:
        job_graph: the chained plan.
        job_id: hex job id.
        job_parameters: global job parameters for ``RuntimeContext.get_job_parameter``.
        clock: processing-time clock in epoch ms (a ManualClock in tests).
    """

    def __init__(
        self,
        job_graph: JobGraph,
        job_id: str | None = None,
        job_parameters: dict[str, str] | None = None,
        clock: Callable[[], int] = system_clock_ms,
    ) -> None:
        self.clock = clock
        self.job_graph = job_graph
        self.job_id = job_id or uuid.uuid4().hex
        self.job_parameters = dict(job_parameters or {})
        self.tasks: list[StreamTask] = []
        self.deployed: list[DeployedTask] = []
        self.coordinators: list[SourceCoordinator] = []
        self.coordinator_by_vertex: dict[str, SourceCoordinator] = {}
        self.operator_contexts: list[tuple[JobVertex, OperatorContext]] = []
        self.status = JobStatus.CREATED
        self.cancel_event = threading.Event()
        self.start_time = 0.0
        self.end_time = 0.0
        self.restart_causes = []
        self.stopped_with_savepoint: str | None = None
        self.checkpointing: Any = None
        self._closed = False

    # -- building -------------------------------------------------------------------------
    def build(self, attempt: int = 0) -> None:
        """Create channels, operators, chains and tasks for every subtask."""
        jg = self.job_graph
        capacity = int(jg.config["execution.channel-capacity"])
        # one in-memory channel per (edge, producer i, consumer j), shared by both sides
        channels: dict[tuple[int, int, int], LocalInputChannel] = {}
        for k, e in enumerate(job_edges(jg)):
            v, target = jg.vertex(e.source_vertex), jg.vertex(e.target_vertex)
            for i, j in connected_pairs(e, v.parallelism, target.parallelism):
                channels[(k, i, j)] = LocalInputChannel(
                    capacity, f"{v.name}[{i}] -> {target.name}[{j}]"
                )
        builder = TaskBuilder(
            jg,
            self.job_id,
            self.job_parameters,
            lambda vid, i: self.coordinator_by_vertex[vid].request_split(i),
            lambda vid, i, ev: self.coordinator_by_vertex[vid].send_event(i, ev),
            self.clock,
            attempt_number=attempt,
        )
        subtasks = [(v.id, i) for v in jg.vertices for i in range(v.parallelism)]
        self.coordinators = []
        self.coordinator_by_vertex = {}
        self._closed = False
        self.deployed = builder.build(subtasks, dict(channels), channels)
        self.tasks = [d.task for d in self.deployed]
        self.operator_contexts = [(d.vertex, c) for d in self.deployed for c in d.contexts]
        for v in jg.vertices:
            if v.is_source:
                readers = [d.task for d in self.deployed if d.vertex is v]
                coord = SourceCoordinator(
                    v.head.source, v.parallelism, LocalReaderGateway(readers)
                )
                self.coordinators.append(coord)
                self.coordinator_by_vertex[v.id] = coord

    # -- running --------------------------------------------------------------------------
    def run(self) -> JobExecutionResult:
        """Run the job to completion on the calling thread, restarting from the latest
        completed checkpoint after failures as the restart strategy allows.

        Raises:
            JobExecutionError: a task failed (the TaskError is chained as the cause).
            JobCancelledError: :meth:`cancel` was called.
        """
        from strom._checkpoint.restart import create_restart_strategy
        from strom._executors.checkpointing import JobCheckpointing

        self.start_time = time.monotonic()
        self.checkpointing = JobCheckpointing(self.job_graph, self.job_id, lambda m: None)
        restart = create_restart_strategy(
            self.job_graph.restart_strategy, lambda: time.monotonic_ns() // 1_000_000
        )
        attempt = 0
        try:
            restore = self.checkpointing.initial_restore_point()
            while True:
                try:
                    self._run_attempt(attempt, restore)
                    break
                except (JobCancelledError, KeyboardInterrupt):
                    raise
                except Exception as e:
                    self._close_all(e)
                    self.checkpointing.detach()
                    restart.notify_failure()
                    if not restart.can_restart():
                        raise
                    self.status = JobStatus.RESTARTING
                    logger.warning("job %s failed (attempt %d), restarting: %s",
                                   self.job_id, attempt, e)
                    self.restart_causes.append(e)
                    self._sleep_backoff(restart.backoff_ms())
                    attempt += 1
                    restore = self.checkpointing.latest_restore_point() or restore
        except BaseException as e:
            if isinstance(e, JobCancelledError) and self.stopped_with_savepoint is not None:
                return self._stopped()
            cancelled = isinstance(e, (JobCancelledError, KeyboardInterrupt))
            self.status = JobStatus.CANCELLING if cancelled else JobStatus.FAILING
            self._close_all(e)
            self.checkpointing.close(retain=not cancelled or self._retain_on_cancel())
            self.status = JobStatus.CANCELED if cancelled else JobStatus.FAILED
            self.end_time = time.monotonic()
            if isinstance(e, JobExecutionError):
                raise
            if isinstance(e, TaskError):
                msg = f"Job '{self.job_graph.job_name}' ({self.job_id}) failed: {e}"
                raise JobExecutionError(msg, self.job_id) from e
            if isinstance(e, Exception):
                msg = (
                    f"Job '{self.job_graph.job_name}' ({self.job_id}) failed with an "
                    f"internal error: {type(e).__name__}: {e}"
                )
                raise JobExecutionError(msg, self.job_id) from e
            raise
        errors = self._close_all(None)
        self.checkpointing.close(retain=True)
        self.end_time = time.monotonic()
        if errors:
            self.status = JobStatus.FAILED
            msg = f"Job '{self.job_graph.job_name}' ({self.job_id}) failed while closing"
            raise JobExecutionError(msg, self.job_id) from errors[0]
        self.status = JobStatus.FINISHED
        return JobExecutionResult(
            job_id=self.job_id,
            net_runtime_ms=int((self.end_time - self.start_time) * 1000),
            accumulators=self.accumulator_results(),
        )

    restart_causes: list[BaseException]

    def _stopped(self) -> JobExecutionResult:
        """Stop-with-savepoint ended the job: close without committing anything more."""
        self._close_all(None)
        self.checkpointing.close(retain=True)
        self.end_time = time.monotonic()
        self.status = JobStatus.FINISHED
        return JobExecutionResult(
            job_id=self.job_id,
            net_runtime_ms=int((self.end_time - self.start_time) * 1000),
            accumulators=self.accumulator_results(),
        )

    def _retain_on_cancel(self) -> bool:
        cfg = self.job_graph.checkpoint_config or {}
        return cfg.get("retention") == "RETAIN_ON_CANCELLATION"

    def _sleep_backoff(self, ms: int) -> None:
        deadline = time.monotonic() + ms / 1000
        while time.monotonic() < deadline:
            if self.cancel_event.is_set():
                msg = f"Job '{self.job_graph.job_name}' ({self.job_id}) was cancelled"
                raise JobCancelledError(msg, self.job_id)
            time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))

    def _run_attempt(self, attempt: int, restore: Any) -> None:
        if attempt > 0 or not self.tasks:
            self.build(attempt)
        self.status = JobStatus.RUNNING
        states = restore.operators if restore is not None else None
        for task in reversed(self.tasks):
            task.initialize(states)
        for coord, uid in self._source_uids():
            enum_state = restore.enumerators.get(uid) if restore is not None else None
            coord.start(enum_state)
        cp = self.checkpointing
        if cp.enabled:
            listener = _TaskListener(cp)
            for d in self.deployed:
                d.task.enable_checkpointing(listener, cp.exactly_once, (d.vertex.id, d.subtask))
            cp.attach(self)
        for task in self.tasks:
            task.start_source()
        self._loop()

    def _source_uids(self) -> list[tuple[SourceCoordinator, str]]:
        out = []
        for v in self.job_graph.vertices:
            if v.is_source:
                out.append((self.coordinator_by_vertex[v.id], v.head.uid))
        return out

    # -- CheckpointTarget -----------------------------------------------------------------
    def trigger_tasks(self, keys: list[tuple[str, int]], barrier: Any) -> None:
        """Queue a direct checkpoint trigger in each task's mailbox."""
        by_key = {(d.vertex.id, d.subtask): d.task for d in self.deployed}
        for k in keys:
            task = by_key.get(k)
            if task is not None:
                task.mailbox.append(functools.partial(task.trigger_checkpoint, barrier))

    def notify_tasks(self, checkpoint_id: int, final: bool) -> None:
        """Queue the completion notice in every task's mailbox."""
        for task in self.tasks:
            task.mailbox.append(
                functools.partial(task.notify_checkpoint_complete, checkpoint_id, final)
            )

    def abort_tasks(self, checkpoint_id: int) -> None:
        """Queue the abort notice in every task's mailbox."""
        for task in self.tasks:
            task.mailbox.append(functools.partial(task.notify_checkpoint_aborted, checkpoint_id))

    def snapshot_enumerators(self, checkpoint_id: int) -> dict[str, Any]:
        """Every source's enumerator state (taken before any barrier is injected)."""
        out = {}
        for coord, uid in self._source_uids():
            if coord.enumerator is not None:
                out[uid] = coord.enumerator.snapshot_state(checkpoint_id)
        return out

    def _loop(self) -> None:
        active = list(self.tasks)
        coordinators = self.coordinators
        cancel = self.cancel_event
        idle_sleep = 0.0
        while active:
            if cancel.is_set():
                msg = f"Job '{self.job_graph.job_name}' ({self.job_id}) was cancelled"
                raise JobCancelledError(msg, self.job_id)
            now_ms = time.monotonic_ns() // 1_000_000
            progressed = self.checkpointing.poll() if self.checkpointing.enabled else False
            for coord in coordinators:
                if coord.process(now_ms):
                    progressed = True
            any_finished = False
            for task in active:
                if task.step(now_ms):
                    progressed = True
                if task.is_finished:
                    any_finished = True
                else:
                    task.flush_if_due(now_ms)
            if any_finished:
                active = [t for t in active if not t.is_finished]
            if progressed:
                idle_sleep = 0.0
            else:
                idle_sleep = min(_IDLE_SLEEP_MAX_S, idle_sleep * 2 or 0.0001)
                time.sleep(idle_sleep)

    def _close_all(self, cause: BaseException | None) -> list[BaseException]:
        if self._closed:  # the tasks of this attempt are closed already
            return []
        self._closed = True
        errors: list[BaseException] = []
        for task in self.tasks:
            try:
                errors.extend(task.close())
            except Exception as e:
                errors.append(e)
        for coord in self.coordinators:
            coord.close()
        if cause is not None:
            for err in errors:
                logger.warning("error while closing after failure: %s", err)
            return []
        return errors

    def cancel(self) -> None:
        """Request cancellation; the loop stops at its next iteration."""
        self.cancel_event.set()

    def trigger_savepoint(self, target_dir: str, stop: bool,
                          timeout: float | None = None) -> str:
        """Take a savepoint (any thread); with ``stop`` end the job once it completed
        (Flink's stop-with-savepoint: sinks commit up to the savepoint, nothing after).

        Raises:
            ValueError: checkpointing is disabled.
            RuntimeError: the savepoint failed or the job is not running.
            TimeoutError: not done within ``timeout`` seconds.
        """
        done = threading.Event()
        result: list[Any] = []

        def on_done(path: str | None, error: BaseException | None) -> None:
            result.append((path, error))
            if stop and error is None:
                self.stopped_with_savepoint = path
                self.cancel_event.set()
            done.set()

        if self.checkpointing is None:
            msg = "the job is not running"
            raise RuntimeError(msg)
        self.checkpointing.trigger_savepoint(target_dir, on_done)
        if not done.wait(timeout):
            msg = f"savepoint not completed within {timeout} s"
            raise TimeoutError(msg)
        path, error = result[0]
        if error is not None:
            raise RuntimeError(str(error)) from error
        return str(path)

    # -- observability --------------------------------------------------------------------
    def accumulator_results(self) -> dict[str, Any]:
        """Merge accumulators of every operator and subtask by name."""
        merged: dict[str, Any] = {}
        for _v, ctx in self.operator_contexts:
            for name, acc in ctx.accumulators.items():
                if name in merged:
                    merged[name].merge(acc)
                else:
                    merged[name] = copy.deepcopy(acc)
        return {name: acc.get_local_value() for name, acc in merged.items()}

    def metrics(self) -> list[dict[str, Any]]:
        """Per operator and subtask counters (see ``task_metrics`` for the fields)."""
        now_ms = time.monotonic_ns() // 1_000_000
        return [row for d in self.deployed for row in task_metrics(d, now_ms)]


class JobExecutor(Protocol):
    """What a :class:`LocalJobClient` drives: the LocalExecutor or a ClusterExecutor."""

    job_id: str
    job_graph: JobGraph
    start_time: float
    end_time: float

    @property
    def status(self) -> JobStatus:
        """The job's status."""

    def run(self) -> JobExecutionResult:
        """Run the job to completion on the calling thread."""

    def cancel(self) -> None:
        """Request cancellation."""

    def metrics(self) -> list[dict[str, Any]]:
        """Per operator and subtask metric rows."""


class LocalJobClient(JobClient):
    """JobClient of a job driven from this process (in-process or on a MiniCluster).

    The job runs on a background thread (``execute_async``) or on the calling thread
    (``execute``).

    Args:
        executor: the job's executor (not yet running).
    """

    def __init__(self, executor: JobExecutor) -> None:
        self.executor = executor
        self._result: JobExecutionResult | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"strom-job-{executor.job_id[:8]}", daemon=True
        )

    def start(self) -> LocalJobClient:
        """Start the job thread."""
        self._thread.start()
        return self

    def run_in_foreground(self) -> None:
        """Run the job on the calling thread (``execute()``); Ctrl-C cancels it."""
        self._run(reraise_interrupt=True)

    def _run(self, reraise_interrupt: bool = False) -> None:
        try:
            self._result = self.executor.run()
        except BaseException as e:
            self._error = e
            if reraise_interrupt and not isinstance(e, Exception):
                self._done.set()
                raise
        finally:
            self._done.set()

    def get_job_id(self) -> str:
        """The job's hex id."""
        return self.executor.job_id

    def get_job_status(self) -> JobStatus:
        """The current status."""
        return self.executor.status

    def cancel(self) -> None:
        """Request cancellation."""
        self.executor.cancel()

    def trigger_savepoint(self, savepoint_directory: str, timeout: float | None = None) -> str:
        """Take a savepoint; return its directory (see ``JobClient``)."""
        return self._savepoint(savepoint_directory, False, timeout)

    def stop_with_savepoint(self, savepoint_directory: str, timeout: float | None = None) -> str:
        """Take a savepoint, then stop the job; return the savepoint directory."""
        path = self._savepoint(savepoint_directory, True, timeout)
        self._done.wait(timeout)
        return path

    def _savepoint(self, directory: str, stop: bool, timeout: float | None) -> str:
        trigger = getattr(self.executor, "trigger_savepoint", None)
        if trigger is None:
            msg = f"{type(self.executor).__name__} does not support savepoints yet"
            raise NotImplementedError(msg)
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.executor.status is not JobStatus.RUNNING:  # wait for the job to start
            if self._done.is_set() or (deadline is not None and time.monotonic() > deadline):
                msg = f"job {self.get_job_id()} is not running ({self.executor.status.name})"
                raise RuntimeError(msg)
            time.sleep(0.01)
        return str(trigger(directory, stop, timeout))

    def get_job_execution_result(self, timeout: float | None = None) -> JobExecutionResult:
        """Wait for the job; raise its failure."""
        if not self._done.wait(timeout):
            msg = f"job {self.get_job_id()} did not finish within {timeout} s"
            raise TimeoutError(msg)
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def is_done(self) -> bool:
        """True once the job reached a terminal state."""
        return self._done.is_set()

    def get_metrics(self) -> list[dict[str, Any]]:
        """Per operator and subtask rows: ``vertex``, ``operator``, ``uid``, ``subtask``,
        ``records_in``, ``records_out``, plus the task-level ``bytes_in``, ``bytes_out``,
        ``watermark_ms``, ``backpressured_ms``, ``input_queue``, ``output_queue``,
        ``status`` and ``taskmanager`` (see ``strom._cluster.deployment.task_metrics``)."""
        return self.executor.metrics()


class _TaskListener:
    """Forwards a task's checkpoint events to the job's checkpointing."""

    def __init__(self, checkpointing: Any) -> None:
        self.cp = checkpointing

    def on_snapshot(self, task: StreamTask, checkpoint_id: int, states: dict[str, bytes]) -> None:
        self.cp.snapshot_taken(task.task_key, checkpoint_id, states)

    def on_declined(self, task: StreamTask, checkpoint_id: int, reason: str) -> None:
        self.cp.declined(task.task_key, checkpoint_id, reason)

    def on_finished(self, task: StreamTask) -> None:
        self.cp.task_finished(task.task_key)
