"""StreamTask: one parallel subtask of a job vertex, driven by a mailbox loop.

A task owns its :class:`OperatorChain`, its input gate (unless it is a source task) and
its record writers. The executor calls :meth:`StreamTask.step` repeatedly; a step first
runs queued mailbox actions (split assignments, checkpoint triggers, ...), then either
polls the source reader once or processes a few input elements. A task whose output
channels are full is not stepped (back-pressure). All calls happen on one thread, so
operators never need locks.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from strom._runtime.elements import CheckpointBarrier, EndOfInput, RecordBatch, WatermarkStatus
from strom._runtime.io.barrier_handler import CheckpointBarrierHandler
from strom._runtime.io.channels import InputGate
from strom._runtime.io.record_writer import RecordWriter
from strom._runtime.operators.source import SourceOperator
from strom._runtime.task.operator_chain import OperatorChain
from strom._runtime.time.processing_time import ProcessingTimeService
from strom._runtime.time.watermark_valve import StatusWatermarkValve
from strom.connectors.source import InputStatus
from strom.datastream.watermark import Watermark

__all__ = ["CheckpointListener", "StreamTask", "TaskState"]

# Input elements processed per step: enough to amortise the step, few enough that sources
# and other tasks on the same thread get their turn.
_ELEMENTS_PER_STEP = 16


class CheckpointListener(Protocol):
    """Receives a task's checkpoint events (implemented by the executor).

    ``on_snapshot`` gets the task's encoded operator states (uid -> bytes, pickled on the
    task thread so later mutations cannot leak in); writing them to storage and
    acknowledging happens off the task thread.
    """

    def on_snapshot(self, task: StreamTask, checkpoint_id: int,
                    states: dict[str, bytes]) -> None: ...

    def on_declined(self, task: StreamTask, checkpoint_id: int, reason: str) -> None: ...

    def on_finished(self, task: StreamTask) -> None: ...


class TaskState(enum.Enum):
    """Task lifecycle (Flink's ``ExecutionState``, reduced)."""

    CREATED = "CREATED"
    RUNNING = "RUNNING"
    WAITING_FOR_FINAL_CHECKPOINT = "WAITING_FOR_FINAL_CHECKPOINT"
    """Input ended; the task stays alive to take part in the final checkpoint, so that
    two-phase-commit sinks commit their last data only once it is durable."""
    FINISHED = "FINISHED"
    CANCELED = "CANCELED"
    FAILED = "FAILED"


class StreamTask:
    """One subtask: chain + inputs + outputs.

    Args:
        name: ``"vertex name (i/p)"`` for logs and errors.
        subtask_index: 0-based subtask index.
        chain: the operator chain.
        writers: record writers of the chain's network outputs.
        input_gate: the input gate, or None for a source task.
        processing_time_service: the task's processing-time timers (shared by its operators).
    """

    def __init__(
        self,
        name: str,
        subtask_index: int,
        chain: OperatorChain,
        writers: list[RecordWriter],
        input_gate: InputGate | None,
        processing_time_service: ProcessingTimeService | None = None,
    ) -> None:
        self.processing_time_service = processing_time_service or ProcessingTimeService()
        self.name = name
        self.subtask_index = subtask_index
        self.chain = chain
        self.writers = writers
        self.input_gate = input_gate
        self.mailbox: deque[Callable[[], None]] = deque()
        self.state = TaskState.CREATED
        head = chain.head
        self.source: SourceOperator | None = head if isinstance(head, SourceOperator) else None
        self.valve = (
            StatusWatermarkValve(len(input_gate.channels)) if input_gate is not None else None
        )
        self.buffer_timeout_ms = 100
        self.stop_requested = False
        """Set (from any thread) to end the current step after the element in hand, so a
        cancel does not wait for a step full of slow records."""
        self.backpressured_ms = 0
        """Total time (monotonic ms) the task could not run because an output was full."""
        self._backpressured_since_ms: int | None = None
        self.task_key: tuple[str, int] = ("", subtask_index)
        self.checkpoint_listener: CheckpointListener | None = None
        self.last_checkpoint_id = -1
        """The newest checkpoint this task snapshotted (each is taken at most once)."""
        self.barrier_handler = (
            CheckpointBarrierHandler(len(input_gate.channels)) if input_gate is not None else None
        )

    def enable_checkpointing(self, listener: CheckpointListener, exactly_once: bool,
                             task_key: tuple[str, int]) -> None:
        """Take part in checkpoints: align (``exactly_once``) or track barriers, report
        snapshots to ``listener``, and wait for the final checkpoint at end of input."""
        self.checkpoint_listener = listener
        self.task_key = task_key
        if self.input_gate is not None:
            self.barrier_handler = CheckpointBarrierHandler(
                len(self.input_gate.channels), exactly_once
            )

    @property
    def is_finished(self) -> bool:
        """True once the task processed its end of input (and, with checkpointing, its
        final checkpoint completed)."""
        return self.state is TaskState.FINISHED

    # -- checkpoints ----------------------------------------------------------------------
    def trigger_checkpoint(self, barrier: CheckpointBarrier) -> None:
        """Snapshot now (sources, and tasks whose input ended): mailbox action."""
        if self.state in (TaskState.RUNNING, TaskState.WAITING_FOR_FINAL_CHECKPOINT):
            self._perform_checkpoint(barrier)

    def _perform_checkpoint(self, barrier: CheckpointBarrier) -> None:
        """Flink's order: pre-barrier hook, forward the barrier, snapshot (synchronous
        part: encode on this thread), hand the bytes to the listener."""
        cid = barrier.checkpoint_id
        if cid <= self.last_checkpoint_id:
            # taken already: a direct trigger sent because the task reached its end of
            # input while its acknowledgement was still on the way must not overwrite it
            return
        self.last_checkpoint_id = cid
        running = self.state is TaskState.RUNNING
        self.chain.prepare_snapshot_pre_barrier(cid)
        if running:
            for w in self.writers:
                w.broadcast_event(barrier)
        from strom._checkpoint.snapshots import encode_snapshot, snapshot_scope

        with snapshot_scope(barrier.is_savepoint):  # incremental RocksDB: native checkpoints
            snapshots = self.chain.snapshot_state(cid)
        states = {
            uid: encode_snapshot(uid, self.subtask_index, st)
            for uid, st in snapshots.items()
            if st
        }
        if self.checkpoint_listener is not None:
            self.checkpoint_listener.on_snapshot(self, cid, states)

    def notify_checkpoint_complete(self, checkpoint_id: int, final: bool = False) -> None:
        """A checkpoint completed on every task (mailbox action); after the final one the
        task is finished."""
        self.chain.notify_checkpoint_complete(checkpoint_id)
        if final and self.state is TaskState.WAITING_FOR_FINAL_CHECKPOINT:
            self.state = TaskState.FINISHED

    def notify_checkpoint_aborted(self, checkpoint_id: int) -> None:
        """A checkpoint was aborted (mailbox action)."""
        for op in self.chain.operators:
            op.notify_checkpoint_aborted(checkpoint_id)

    def _on_barrier(self, channel: int, barrier: CheckpointBarrier) -> None:
        handler = self.barrier_handler
        assert handler is not None and self.input_gate is not None
        cid = handler.on_barrier(channel, barrier.checkpoint_id)
        self.input_gate.blocked = handler.blocked
        for aborted in handler.take_aborted():
            if self.checkpoint_listener is not None:
                self.checkpoint_listener.on_declined(self, aborted, "alignment abandoned")
        if cid is not None:
            self._perform_checkpoint(barrier)
            self._pending_barrier = None
        else:
            self._pending_barrier = barrier

    # -- lifecycle ------------------------------------------------------------------------
    def initialize(self, states: dict[str, Any] | None) -> None:
        """Restore operator state (or start fresh) and open the chain."""
        self.chain.initialize_state(states)
        self.chain.open()
        self.state = TaskState.RUNNING

    def start_source(self) -> None:
        """Start the source reader (restored splits come with its ``RestoredState``)."""
        if self.source is not None:
            self.source.start()

    def writers_available(self) -> bool:
        """False if any output channel is full (the task is back-pressured)."""
        for w in self.writers:
            if not w.is_available():
                return False
        return True

    def backpressured_time_ms(self, now_ms: int) -> int:
        """Back-pressured time so far, including a period still in progress."""
        since = self._backpressured_since_ms
        return self.backpressured_ms + (now_ms - since if since is not None else 0)

    # -- the mailbox loop's step ----------------------------------------------------------
    def step(self, now_ms: int) -> bool:
        """Run mailbox actions, then do one unit of work; return True if anything happened."""
        progressed = False
        mailbox = self.mailbox
        while mailbox:
            mailbox.popleft()()
            progressed = True
        if self.state is not TaskState.RUNNING:
            return progressed
        if self.processing_time_service.fire_due():
            progressed = True
            return progressed
        if not self.writers_available():
            if self._backpressured_since_ms is None:
                self._backpressured_since_ms = now_ms
            return progressed
        if self._backpressured_since_ms is not None:
            self.backpressured_ms += now_ms - self._backpressured_since_ms
            self._backpressured_since_ms = None
        if self.source is not None:
            status = self.source.emit_next(now_ms)
            if status is InputStatus.END_OF_INPUT:
                self.source.emit_end_of_input_watermark()
                self._finish()
                return True
            if status is InputStatus.NOTHING_AVAILABLE:
                self.flush_all()
                return progressed
            return True
        return self._process_input() or progressed

    def _process_input(self) -> bool:
        gate = self.input_gate
        assert gate is not None and self.valve is not None
        head = self.chain.head_target
        progressed = False
        for _ in range(_ELEMENTS_PER_STEP):
            if self.stop_requested:
                return True
            item = gate.poll()
            if item is None:
                if progressed:
                    return True
                self.flush_all()
                return False
            progressed = True
            channel, element = item
            if type(element) is RecordBatch:
                head.push(element.values, element.timestamps)
            elif isinstance(element, Watermark):
                wm = self.valve.input_watermark(channel, element.timestamp_ms)
                if wm is not None:
                    head.push_watermark(element if wm == element.timestamp_ms else Watermark(wm))
            elif isinstance(element, WatermarkStatus):
                change, wm = self.valve.input_status(channel, element.idle)
                if wm is not None:
                    head.push_watermark(Watermark(wm))
                if change is not None:
                    head.push_status(WatermarkStatus.IDLE if change else WatermarkStatus.ACTIVE)  # type: ignore[attr-defined]
            elif isinstance(element, CheckpointBarrier):
                self._on_barrier(channel, element)
            elif isinstance(element, EndOfInput):
                wm = self.valve.channel_ended(channel)
                if wm is not None:
                    head.push_watermark(Watermark(wm))
                handler = self.barrier_handler
                if handler is not None:
                    cid = handler.on_end_of_input(channel)
                    gate.blocked = handler.blocked
                    pending = getattr(self, "_pending_barrier", None)
                    if cid is not None and pending is not None:
                        self._perform_checkpoint(pending)
                        self._pending_barrier = None
                if gate.mark_ended(channel):
                    self._finish()
                    return True
            else:
                msg = f"unexpected element {element!r} on channel {channel} of task {self.name}"
                raise TypeError(msg)
        return True

    def _finish(self) -> None:
        self.chain.end_input()
        for w in self.writers:
            w.broadcast_event(EndOfInput())
        if self.checkpoint_listener is not None:
            self.state = TaskState.WAITING_FOR_FINAL_CHECKPOINT
            self.checkpoint_listener.on_finished(self)
        else:
            self.state = TaskState.FINISHED

    # -- buffers --------------------------------------------------------------------------
    def flush_all(self) -> None:
        """Flush every partly filled output buffer."""
        for w in self.writers:
            if w.buffered:
                w.flush()

    def flush_if_due(self, now_ms: int) -> None:
        """Flush buffers older than the buffer timeout."""
        timeout = self.buffer_timeout_ms
        if timeout < 0:
            return
        for w in self.writers:
            since = w.dirty_since_ms
            if since is not None and now_ms - since >= timeout:
                w.flush()

    def close(self) -> list[BaseException]:
        """Close the chain; return close errors."""
        return self.chain.close()
