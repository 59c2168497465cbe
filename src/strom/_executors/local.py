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
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from strom._graph.job_graph import JobEdge, JobGraph, JobVertex
from strom._graph.partitioner import ForwardPartitioner, RescalePartitioner
from strom._runtime.io.channels import InputGate, LocalInputChannel
from strom._runtime.io.record_writer import RecordWriter
from strom._runtime.operators.base import OperatorContext, StreamOperator
from strom._runtime.operators.registry import create_operator
from strom._runtime.operators.source import SourceOperator, SourceReaderContextImpl
from strom._runtime.task.operator_chain import (
    ChainingTarget,
    ChainOutput,
    OperatorChain,
    RecordWriterTarget,
)
from strom._runtime.task.stream_task import StreamTask
from strom._runtime.time.processing_time import ProcessingTimeService, system_clock_ms
from strom.datastream.execution import JobClient, JobExecutionResult, JobStatus
from strom.errors import JobCancelledError, JobExecutionError, TaskError

from .source_coordinator import SourceCoordinator

__all__ = ["JOB_LISTENERS", "LocalExecutor", "LocalJobClient"]

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
        self.coordinators: list[SourceCoordinator] = []
        self.coordinator_by_vertex: dict[str, SourceCoordinator] = {}
        self.operator_contexts: list[tuple[JobVertex, OperatorContext]] = []
        self.status = JobStatus.CREATED
        self.cancel_event = threading.Event()
        self.start_time = 0.0
        self.end_time = 0.0

    # -- building -------------------------------------------------------------------------
    def build(self) -> None:
        """Create channels, operators, chains and tasks for every subtask."""
        jg = self.job_graph
        cfg = jg.config
        batch_size = int(cfg["execution.batch-size"])
        capacity = int(cfg["execution.channel-capacity"])
        timeout = int(cfg["execution.buffer-timeout"])
        # channels per edge: (producer i, consumer j) -> channel
        edge_channels: dict[int, dict[tuple[int, int], LocalInputChannel]] = {}
        for v in jg.vertices:
            for e in v.outputs:
                target = jg.vertex(e.target_vertex)
                pairs = _connected_pairs(e, v.parallelism, target.parallelism)
                edge_channels[id(e)] = {
                    (i, j): LocalInputChannel(
                        capacity, f"{v.name}[{i}] -> {target.name}[{j}]"
                    )
                    for i, j in pairs
                }
        for v in jg.vertices:
            vertex_tasks: list[StreamTask] = []
            for i in range(v.parallelism):
                gate = None
                if v.inputs:
                    chans = [
                        ch
                        for e in v.inputs
                        for (pi, cj), ch in sorted(edge_channels[id(e)].items())
                        if cj == i
                    ]
                    gate = InputGate(chans)
                writers: dict[int, RecordWriter] = {}
                for e in v.outputs:
                    chans = [
                        ch
                        for (pi, cj), ch in sorted(edge_channels[id(e)].items())
                        if pi == i
                    ]
                    target_node = jg.vertex(e.target_vertex).head
                    writers[id(e)] = RecordWriter(
                        chans, e.partitioner, batch_size, v.max_parallelism, start_channel=i,
                        target_uid=target_node.uid, target_name=target_node.name,
                        subtask_index=i,
                    )
                task = self._build_task(v, i, gate, writers)
                task.buffer_timeout_ms = timeout
                vertex_tasks.append(task)
            self.tasks.extend(vertex_tasks)
            if v.is_source:
                coord = SourceCoordinator(v.head.source, vertex_tasks)
                self.coordinators.append(coord)
                self.coordinator_by_vertex[v.id] = coord

    def _build_task(
        self,
        v: JobVertex,
        index: int,
        gate: InputGate | None,
        writers: dict[int, RecordWriter],
    ) -> StreamTask:
        jg = self.job_graph
        ops: dict[int, StreamOperator] = {}
        pts = ProcessingTimeService(self.clock)
        for node in v.nodes:
            ctx = OperatorContext(
                job_id=self.job_id,
                uid=node.uid,
                name=node.name,
                operator_id=node.operator_id,
                subtask_index=index,
                parallelism=node.parallelism,
                max_parallelism=node.max_parallelism,
                attempt_number=0,
                runtime_mode=jg.runtime_mode,
                config=jg.config,
                key_selector=node.key_selector,
                job_parameters=self.job_parameters,
                processing_time_service=pts,
            )
            op: StreamOperator
            if node.kind == "source":
                reader_ctx = SourceReaderContextImpl(
                    index,
                    node.parallelism,
                    lambda i, vid=v.id: self.coordinator_by_vertex[vid].request_split(i),
                    lambda i, ev, vid=v.id: self.coordinator_by_vertex[vid].send_event(i, ev),
                )
                op = SourceOperator(node.source, node.watermark_strategy, reader_ctx)
            else:
                assert node.operator is not None
                op = create_operator(node.operator)
            op.context = ctx
            ops[node.id] = op
            self.operator_contexts.append((v, ctx))
        chained_by_source: dict[int, list[Any]] = {}
        for e in v.chained_edges:
            chained_by_source.setdefault(e.source_id, []).append(e)
        net_by_source: dict[int, list[JobEdge]] = {}
        for je in v.outputs:
            net_by_source.setdefault(je.source_node, []).append(je)
        for node in reversed(v.nodes):
            main: list[Any] = []
            side: dict[str, list[Any]] = {}
            for e in chained_by_source.get(node.id, []):
                t = ChainingTarget(ops[e.target_id])
                (main if e.tag_id is None else side.setdefault(e.tag_id, [])).append(t)
            for je in net_by_source.get(node.id, []):
                wt = RecordWriterTarget(writers[id(je)])
                (main if je.tag_id is None else side.setdefault(je.tag_id, [])).append(wt)
            op = ops[node.id]
            op.setup(op.context, ChainOutput(main, side, op.context.metrics))
        chain = OperatorChain([ops[n.id] for n in v.nodes])
        task = StreamTask(
            f"{v.name} ({index + 1}/{v.parallelism})",
            index,
            chain,
            list(writers.values()),
            gate,
            pts,
        )
        return task

    # -- running --------------------------------------------------------------------------
    def run(self) -> JobExecutionResult:
        """Run the job to completion on the calling thread.

        Raises:
            JobExecutionError: a task failed (the TaskError is chained as the cause).
            JobCancelledError: :meth:`cancel` was called.
        """
        self.start_time = time.monotonic()
        try:
            if not self.tasks:
                self.build()
            self.status = JobStatus.RUNNING
            for task in reversed(self.tasks):
                task.initialize(None)
            for coord in self.coordinators:
                coord.start()
            for task in self.tasks:
                task.start_source()
            self._loop()
        except BaseException as e:
            cancelled = isinstance(e, (JobCancelledError, KeyboardInterrupt))
            self.status = JobStatus.CANCELLING if cancelled else JobStatus.FAILING
            self._close_all(e)
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
            progressed = False
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
        """Per operator and subtask counters."""
        return [
            {
                "vertex": v.name,
                "operator": ctx.name,
                "uid": ctx.uid,
                "subtask": ctx.subtask_index,
                "records_in": ctx.metrics.records_in,
                "records_out": ctx.metrics.records_out,
            }
            for v, ctx in self.operator_contexts
        ]


def _connected_pairs(e: JobEdge, p: int, q: int) -> list[tuple[int, int]]:
    """(producer, consumer) subtask pairs an edge connects."""
    if isinstance(e.partitioner, ForwardPartitioner):
        return [(i, i) for i in range(p)]
    if isinstance(e.partitioner, RescalePartitioner):
        if p >= q:
            return [(i, i * q // p) for i in range(p)]
        return [(i, j) for j in range(q) for i in [j * p // q]]
    return [(i, j) for i in range(p) for j in range(q)]


class LocalJobClient(JobClient):
    """JobClient of a job running on a background thread of this process.

    Args:
        executor: the job's executor (not yet running).
    """

    def __init__(self, executor: LocalExecutor) -> None:
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
        """Per operator and subtask counters."""
        return self.executor.metrics()
