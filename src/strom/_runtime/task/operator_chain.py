"""OperatorChain: the operators of one task wired by direct calls.

Each operator's :class:`ChainOutput` fans out to its main targets (chained operators or
record writers) and to per-tag side-output targets. A :class:`ChainingTarget` calls the
next operator and turns an exception of user code into a ``UserFunctionError`` that names
that operator, so the innermost failing operator is the one reported.
"""

from __future__ import annotations

from typing import Any

from strom._runtime.io.record_writer import RecordWriter
from strom._runtime.operators.base import (
    OperatorMetrics,
    Output,
    RestoredState,
    StreamOperator,
)
from strom.errors import TaskError

__all__ = ["ChainOutput", "ChainingTarget", "OperatorChain", "RecordWriterTarget"]


class ChainingTarget:
    """Hands elements to a chained operator.

    Args:
        operator: the downstream operator.
    """

    __slots__ = ("metrics", "operator")

    def __init__(self, operator: StreamOperator) -> None:
        self.operator = operator
        self.metrics: OperatorMetrics = operator.context.metrics

    def push(self, values: list[Any], timestamps: list[int] | None) -> None:
        """Deliver a batch; wrap user-code exceptions with the operator's context."""
        self.metrics.records_in += len(values)
        try:
            self.operator.process_batch(values, timestamps)
        except TaskError:
            raise
        except Exception as e:
            raise self.operator.user_error(e) from e

    def push_watermark(self, watermark: Any) -> None:
        """Deliver a watermark."""
        try:
            self.operator.process_watermark(watermark)
        except TaskError:
            raise
        except Exception as e:
            raise self.operator.user_error(e) from e

    def push_status(self, status: Any) -> None:
        """Deliver a watermark status."""
        self.operator.process_watermark_status(status)


class RecordWriterTarget:
    """Hands elements to a network edge.

    Args:
        writer: the edge's record writer.
    """

    __slots__ = ("writer",)

    def __init__(self, writer: RecordWriter) -> None:
        self.writer = writer

    def push(self, values: list[Any], timestamps: list[int] | None) -> None:
        """Route a batch."""
        self.writer.emit(values, timestamps)

    def push_watermark(self, watermark: Any) -> None:
        """Broadcast a watermark to every channel."""
        self.writer.broadcast_event(watermark)

    def push_status(self, status: Any) -> None:
        """Broadcast a watermark status to every channel."""
        self.writer.broadcast_event(status)


Target = ChainingTarget | RecordWriterTarget


class ChainOutput(Output):
    """An operator's output: main targets plus side-output targets by tag.

    Args:
        main: targets of the main output.
        side: targets per side-output tag name.
        metrics: the emitting operator's counters.
    """

    def __init__(
        self, main: list[Target], side: dict[str, list[Target]], metrics: OperatorMetrics
    ) -> None:
        self.main = main
        self.side = side
        self.metrics = metrics
        self.all_targets = main + [t for ts in side.values() for t in ts]

    def emit_batch(self, values: list[Any], timestamps: list[int] | None) -> None:
        """Send a batch to every main target."""
        self.metrics.records_out += len(values)
        for t in self.main:
            t.push(values, timestamps)

    def emit_side(self, tag_id: str, values: list[Any], timestamps: list[int] | None) -> None:
        """Send a batch to the targets of side output ``tag_id``."""
        targets = self.side.get(tag_id)
        if targets:
            for t in targets:
                t.push(values, timestamps)

    def emit_watermark(self, watermark: Any) -> None:
        """Send a watermark to every target, side outputs included."""
        for t in self.all_targets:
            t.push_watermark(watermark)

    def emit_watermark_status(self, status: Any) -> None:
        """Send a watermark status to every target."""
        for t in self.all_targets:
            t.push_status(status)


class OperatorChain:
    """The operators of one task, head first, in topological order.

    Args:
        operators: the operators (already set up with their outputs).
    """

    def __init__(self, operators: list[StreamOperator]) -> None:
        self.operators = operators
        self.head = operators[0]
        self.head_target = ChainingTarget(self.head)

    def initialize_state(self, states: dict[str, RestoredState] | None) -> None:
        """Give each operator its restored snapshots (by uid) or None."""
        for op in self.operators:
            op.initialize_state(None if states is None else states.get(op.context.uid))

    def open(self) -> None:
        """Open operators tail first, so a head never emits into an unopened operator."""
        for op in reversed(self.operators):
            op.open()

    def end_input(self) -> None:
        """End input and finish operators head first (each may emit final results)."""
        for op in self.operators:
            try:
                op.end_input()
                op.finish()
            except TaskError:
                raise
            except Exception as e:
                raise op.user_error(e, "end of input handling") from e

    def prepare_snapshot_pre_barrier(self, checkpoint_id: int) -> None:
        """Let every operator emit what must precede the barrier."""
        for op in self.operators:
            op.prepare_snapshot_pre_barrier(checkpoint_id)

    def snapshot_state(self, checkpoint_id: int) -> dict[str, dict[str, Any]]:
        """Snapshot every operator, by uid."""
        return {op.context.uid: op.snapshot_state(checkpoint_id) for op in self.operators}

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        """Forward the completion notice to every operator."""
        for op in self.operators:
            op.notify_checkpoint_complete(checkpoint_id)

    def close(self) -> list[BaseException]:
        """Close every operator; return the errors instead of stopping at the first."""
        errors: list[BaseException] = []
        for op in self.operators:
            try:
                op.close()
            except Exception as e:  # close everything, report later
                errors.append(e)
        return errors
