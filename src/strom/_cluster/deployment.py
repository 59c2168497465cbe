"""Turning a JobGraph into runnable StreamTasks for a set of subtasks.

Shared by the in-process :class:`~strom._executors.local.LocalExecutor` (every subtask,
every channel in memory) and the TaskManager (its slots' subtasks; channels to other
processes are network channels). The caller decides what each channel is; this module
creates operators, chains, record writers and tasks, and reads their metrics.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strom._graph.job_graph import JobEdge, JobGraph, JobVertex
from strom._graph.partitioner import ForwardPartitioner, RescalePartitioner
from strom._runtime.io.channels import InputGate, LocalInputChannel
from strom._runtime.io.network import RemoteInputChannel, RemoteOutputChannel
from strom._runtime.io.record_writer import RecordWriter
from strom._runtime.key_selectors import inline_key_selector
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

__all__ = [
    "DeployedTask",
    "TaskBuilder",
    "connected_pairs",
    "job_edges",
    "task_metrics",
]

ChannelKey = tuple[int, int, int]
"""``(edge index, producer subtask, consumer subtask)``."""


def job_edges(jg: JobGraph) -> list[JobEdge]:
    """Every network edge, numbered by vertex order then output order (stable across
    processes: every process numbers the same unpickled graph the same way)."""
    return [e for v in jg.vertices for e in v.outputs]


def connected_pairs(e: JobEdge, p: int, q: int) -> list[tuple[int, int]]:
    """(producer, consumer) subtask pairs an edge connects.

    Args:
        e: the edge.
        p: producer parallelism.
        q: consumer parallelism.
    """
    if isinstance(e.partitioner, ForwardPartitioner):
        return [(i, i) for i in range(p)]
    if isinstance(e.partitioner, RescalePartitioner):
        if p >= q:
            return [(i, i * q // p) for i in range(p)]
        return [(i, j) for j in range(q) for i in [j * p // q]]
    return [(i, j) for i in range(p) for j in range(q)]


@dataclass
class DeployedTask:
    """A built subtask and what its executor needs to know about it.

    Attributes:
        vertex: the job vertex.
        subtask: the subtask index.
        task: the StreamTask.
        contexts: its operators' contexts (metrics, accumulators), chain order.
    """

    vertex: JobVertex
    subtask: int
    task: StreamTask
    contexts: list[OperatorContext]


class TaskBuilder:
    """Creates the StreamTasks of one job.

    Args:
        job_graph: the chained plan.
        job_id: hex job id.
        job_parameters: global job parameters.
        split_request: ``(vertex id, subtask)`` -> asks the vertex's enumerator for a split.
        source_event: ``(vertex id, subtask, event)`` -> sends an event to the enumerator.
        clock: processing-time clock in epoch ms.
        attempt_number: the job attempt (0, +1 per restart).
    """

    def __init__(
        self,
        job_graph: JobGraph,
        job_id: str,
        job_parameters: dict[str, str],
        split_request: Callable[[str, int], None],
        source_event: Callable[[str, int, Any], None],
        clock: Callable[[], int] = system_clock_ms,
        attempt_number: int = 0,
    ) -> None:
        self.job_graph = job_graph
        self.job_id = job_id
        self.job_parameters = job_parameters
        self.split_request = split_request
        self.source_event = source_event
        self.clock = clock
        self.attempt_number = attempt_number

    def build(
        self,
        subtasks: list[tuple[str, int]],
        producer_side: dict[ChannelKey, Any],
        consumer_side: dict[ChannelKey, LocalInputChannel],
    ) -> list[DeployedTask]:
        """Build the given subtasks in topological order.

        Args:
            subtasks: ``(vertex id, subtask index)`` to build.
            producer_side: channel object each producer writes to, per channel key (a
                ``LocalInputChannel`` shared with a local consumer, or a
                ``RemoteOutputChannel``).
            consumer_side: channel each consumer reads, per channel key.

        Returns:
            The tasks, vertices in topological order.
        """
        jg = self.job_graph
        cfg = jg.config
        batch_size = int(cfg["execution.batch-size"])
        timeout = int(cfg["execution.buffer-timeout"])
        edge_index = {id(e): k for k, e in enumerate(job_edges(jg))}
        wanted = set(subtasks)
        out: list[DeployedTask] = []
        for v in jg.vertices:
            for i in range(v.parallelism):
                if (v.id, i) not in wanted:
                    continue
                gate = None
                if v.inputs:
                    chans: list[LocalInputChannel] = []
                    for e in v.inputs:
                        k = edge_index[id(e)]
                        src = jg.vertex(e.source_vertex)
                        for pi, cj in connected_pairs(e, src.parallelism, v.parallelism):
                            if cj == i:
                                chans.append(consumer_side[(k, pi, cj)])
                    gate = InputGate(chans)
                writers: dict[int, RecordWriter] = {}
                for e in v.outputs:
                    k = edge_index[id(e)]
                    target = jg.vertex(e.target_vertex)
                    outs = [
                        producer_side[(k, pi, cj)]
                        for pi, cj in connected_pairs(e, v.parallelism, target.parallelism)
                        if pi == i
                    ]
                    target_node = target.head
                    writers[id(e)] = RecordWriter(
                        outs, e.partitioner, batch_size, v.max_parallelism, start_channel=i,
                        target_uid=target_node.uid, target_name=target_node.name,
                        subtask_index=i,
                    )
                deployed = self._build_task(v, i, gate, writers)
                deployed.task.buffer_timeout_ms = timeout
                out.append(deployed)
        return out

    def _build_task(
        self,
        v: JobVertex,
        index: int,
        gate: InputGate | None,
        writers: dict[int, RecordWriter],
    ) -> DeployedTask:
        jg = self.job_graph
        ops: dict[int, StreamOperator] = {}
        contexts: list[OperatorContext] = []
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
                attempt_number=self.attempt_number,
                runtime_mode=jg.runtime_mode,
                config=jg.config,
                key_selector=inline_key_selector(node.key_selector),
                job_parameters=self.job_parameters,
                processing_time_service=pts,
            )
            op: StreamOperator
            if node.kind == "source":
                reader_ctx = SourceReaderContextImpl(
                    index,
                    node.parallelism,
                    functools.partial(self.split_request, v.id),
                    functools.partial(self.source_event, v.id),
                )
                op = SourceOperator(node.source, node.watermark_strategy, reader_ctx)
            else:
                assert node.operator is not None
                op = create_operator(node.operator)
            op.context = ctx
            ops[node.id] = op
            contexts.append(ctx)
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
        return DeployedTask(v, index, task, contexts)


_MIN_WATERMARK = -(2**63)


def task_metrics(
    deployed: DeployedTask, now_ms: int, location: str = "local"
) -> list[dict[str, Any]]:
    """Metric rows of one subtask, one per chained operator.

    Every row has the operator's ``records_in``/``records_out`` and the task-level figures
    (the same in each row of the task): ``bytes_in``/``bytes_out`` (network bytes, frame
    headers included), ``watermark_ms`` (current input watermark, the source's output
    watermark for source tasks, None before the first), ``backpressured_ms`` (time the
    task could not run because an output channel was full), ``input_queue`` (elements
    waiting in its input channels), ``output_queue`` (elements waiting in its output
    channels), ``status`` and ``taskmanager``.

    Args:
        deployed: the subtask.
        now_ms: monotonic now (ms), to include a back-pressure period in progress.
        location: where it runs (TaskManager id, or ``"local"``).
    """
    task = deployed.task
    bytes_in = bytes_out = 0
    in_q = out_q = 0
    if task.input_gate is not None:
        for ch in task.input_gate.channels:
            in_q += len(ch.queue)
            if isinstance(ch, RemoteInputChannel):
                bytes_in += ch.bytes_in
    for w in task.writers:
        for och in w.channels:
            out_q += len(och.queue)
            if isinstance(och, RemoteOutputChannel):
                bytes_out += och.bytes_out
    if task.source is not None:
        wm: int | None = task.source.current_watermark
    elif task.valve is not None:
        wm = task.valve.last_output
    else:  # pragma: no cover - every task is a source or has inputs
        wm = None
    if wm is not None and wm <= _MIN_WATERMARK:
        wm = None
    common = {
        "bytes_in": bytes_in,
        "bytes_out": bytes_out,
        "watermark_ms": wm,
        "backpressured_ms": task.backpressured_time_ms(now_ms),
        "input_queue": in_q,
        "output_queue": out_q,
        "status": task.state.value,
        "taskmanager": location,
    }
    v = deployed.vertex
    return [
        {
            "vertex": v.name,
            "operator": ctx.name,
            "uid": ctx.uid,
            "subtask": ctx.subtask_index,
            "records_in": ctx.metrics.records_in,
            "records_out": ctx.metrics.records_out,
            **common,
        }
        for ctx in deployed.contexts
    ]
