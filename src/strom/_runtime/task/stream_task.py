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
from typing import Any

from strom._runtime.elements import EndOfInput, RecordBatch, WatermarkStatus
from strom._runtime.io.channels import InputGate
from strom._runtime.io.record_writer import RecordWriter
from strom._runtime.operators.source import SourceOperator
from strom._runtime.task.operator_chain import OperatorChain
from strom._runtime.time.processing_time import ProcessingTimeService
from strom._runtime.time.watermark_valve import StatusWatermarkValve
from strom.connectors.source import InputStatus
from strom.datastream.watermark import Watermark

__all__ = ["StreamTask", "TaskState"]

# Input elements processed per step: enough to amortise the step, few enough that sources
# and other tasks on the same thread get their turn.
_ELEMENTS_PER_STEP = 16


class TaskState(enum.Enum):
    """Task lifecycle (Flink's ``ExecutionState``, reduced)."""

    CREATED = "CREATED"
    RUNNING = "RUNNING"
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

    @property
    def is_finished(self) -> bool:
        """True once the task processed its end of input."""
        return self.state is TaskState.FINISHED

    # -- lifecycle ------------------------------------------------------------------------
    def initialize(self, states: dict[str, dict[str, Any]] | None) -> None:
        """Restore operator state (or start fresh) and open the chain."""
        self.chain.initialize_state(states)
        self.chain.open()
        self.state = TaskState.RUNNING

    def start_source(self, restored_splits: list[Any] | None = None) -> None:
        """Start the source reader (after restoring its splits)."""
        if self.source is not None:
            if restored_splits:
                self.source.restore_splits(restored_splits)
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
            elif isinstance(element, EndOfInput):
                wm = self.valve.channel_ended(channel)
                if wm is not None:
                    head.push_watermark(Watermark(wm))
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
