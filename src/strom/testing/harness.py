"""Operator test harnesses (Flink's ``KeyedOneInputStreamOperatorTestHarness``).

Build a pipeline with the DataStream API, then drive its last operator directly:
push elements and watermarks, move processing time with a :class:`ManualClock`, read
the output, ``snapshot()`` and ``restore`` into a fresh harness, possibly at another
parallelism. No tasks, channels or threads are involved, so the operator's own logic
(windows, timers, state) is tested in isolation.

Example::

    stream = env.from_collection([]).key_by(lambda e: e[0]) \\
        .window(TumblingEventTimeWindows.of(10)).reduce(lambda a, b: a)
    h = OneInputOperatorTestHarness.for_stream(stream)
    h.process_element(("a", 1), 1)
    h.process_watermark(9)
    assert h.extract_output_values() == [("a", 1)]
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

from strom._runtime.operators.base import (
    OperatorContext,
    Output,
    RestoredState,
    StreamOperator,
)
from strom._runtime.operators.registry import create_operator
from strom._runtime.time.processing_time import ProcessingTimeService
from strom.datastream.watermark import Watermark
from strom.testing.clock import ManualClock

__all__ = ["OneInputOperatorTestHarness"]


class _CollectingOutput(Output):
    def __init__(self) -> None:
        self.elements: list[Any] = []
        self.side: dict[str, list[tuple[Any, int | None]]] = {}

    def emit_batch(self, values: list[Any], timestamps: list[int] | None) -> None:
        ts = timestamps if timestamps is not None else [None] * len(values)
        self.elements.extend(zip(values, ts))

    def emit_side(self, tag_id: str, values: list[Any], timestamps: list[int] | None) -> None:
        ts = timestamps if timestamps is not None else [None] * len(values)
        self.side.setdefault(tag_id, []).extend(zip(values, ts))

    def emit_watermark(self, watermark: Watermark) -> None:
        self.elements.append(watermark)

    def emit_watermark_status(self, status: Any) -> None:
        self.elements.append(status)


class OneInputOperatorTestHarness:
    """Drives one operator (keyed or not) of a pipeline.

    Args:
        operator_spec: the operator's description (from :meth:`for_stream`).
        key_selector: the input's key selector (keyed operators) or None.
        parallelism: the operator's parallelism (for key-group ranges).
        subtask_index: which subtask this harness plays.
        max_parallelism: number of key groups.
        clock: processing-time clock (a new ManualClock at 0 by default).
        runtime_mode: ``"STREAMING"`` or ``"BATCH"``.
        config: extra configuration values (e.g. ``{"state.backend": "rocksdb"}``).
    """

    def __init__(
        self,
        operator_spec: Any,
        key_selector: Any = None,
        parallelism: int = 1,
        subtask_index: int = 0,
        max_parallelism: int = 128,
        clock: ManualClock | None = None,
        runtime_mode: str = "STREAMING",
        config: dict[str, Any] | None = None,
        uid: str = "op",
    ) -> None:
        from strom.config import Configuration

        self.spec = operator_spec
        self.key_selector = key_selector
        self.parallelism = parallelism
        self.subtask_index = subtask_index
        self.max_parallelism = max_parallelism
        self.clock = clock or ManualClock()
        self.pts = ProcessingTimeService(self.clock)
        cfg = dict(Configuration())
        cfg.update(config or {})
        self.output = _CollectingOutput()
        self.operator: StreamOperator = create_operator(copy.copy(operator_spec))
        self.operator.context = OperatorContext(
            job_id="harness",
            uid=uid,
            name=uid,
            operator_id=uid,
            subtask_index=subtask_index,
            parallelism=parallelism,
            max_parallelism=max_parallelism,
            attempt_number=0,
            runtime_mode=runtime_mode,
            config=cfg,
            key_selector=key_selector,
            processing_time_service=self.pts,
        )
        self.operator.setup(self.operator.context, self.output)
        self._opened = False

    @classmethod
    def for_stream(cls, stream: Any, **kwargs: Any) -> OneInputOperatorTestHarness:
        """A harness for the operator that produced ``stream`` (a DataStream)."""
        t = stream._t
        spec = getattr(t, "operator", None)
        if spec is None:
            msg = f"'{t.name}' is not an operator (sources and key_by cannot be harnessed)"
            raise TypeError(msg)
        return cls(spec, getattr(t, "key_selector", None), **kwargs)

    # -- lifecycle ------------------------------------------------------------------------
    def initialize_state(self, restored: RestoredState | None = None) -> None:
        """Restore (or not) and open the operator; called automatically on first use."""
        self.operator.initialize_state(restored)
        self.operator.open()
        self._opened = True

    def open(self) -> None:
        """Open without restored state."""
        if not self._opened:
            self.initialize_state(None)

    def close(self) -> None:
        """End input and close the operator."""
        self.open()
        self.operator.end_input()
        self.operator.finish()
        self.operator.close()

    # -- input ----------------------------------------------------------------------------
    def process_element(self, value: Any, timestamp: int | None = None) -> None:
        """Push one record."""
        self.open()
        self.operator.process_batch([value], None if timestamp is None else [timestamp])

    def process_elements(self, values: list[Any], timestamps: list[int] | None = None) -> None:
        """Push a batch."""
        self.open()
        self.operator.process_batch(values, timestamps)

    def process_watermark(self, timestamp_ms: int) -> None:
        """Advance event time."""
        self.open()
        self.operator.process_watermark(Watermark(timestamp_ms))

    def set_processing_time(self, ms: int) -> None:
        """Move processing time and fire due processing-time timers."""
        self.open()
        self.clock.set(ms)
        self.pts.fire_due()

    # -- output ---------------------------------------------------------------------------
    def get_output(self) -> list[Any]:
        """Everything emitted: ``(value, timestamp)`` pairs and watermarks, in order."""
        return list(self.output.elements)

    def extract_output_values(self) -> list[Any]:
        """Only the emitted records' values."""
        return [e[0] for e in self.output.elements if isinstance(e, tuple)]

    def extract_output_with_timestamps(self) -> list[tuple[Any, int | None]]:
        """Only the emitted records, with timestamps."""
        return [e for e in self.output.elements if isinstance(e, tuple)]

    def get_side_output(self, tag: Any) -> list[tuple[Any, int | None]]:
        """Records emitted to a side output (an OutputTag or its name)."""
        return list(self.output.side.get(getattr(tag, "tag_id", tag), []))

    def clear_output(self) -> None:
        """Forget collected output."""
        self.output.elements.clear()
        self.output.side.clear()

    # -- snapshots ------------------------------------------------------------------------
    def snapshot(self, checkpoint_id: int = 1) -> dict[str, Any]:
        """The operator's snapshot, round-tripped through pickle (as a checkpoint would)."""
        self.open()
        self.operator.prepare_snapshot_pre_barrier(checkpoint_id)
        snap = self.operator.snapshot_state(checkpoint_id)
        result: dict[str, Any] = pickle.loads(pickle.dumps(snap))
        return result

    @staticmethod
    def repartition(
        snapshots: dict[int, dict[str, Any]], old_parallelism: int
    ) -> RestoredState:
        """Bundle snapshots of subtasks ``{index: snapshot}`` for ``initialize_state``."""
        return RestoredState(subtask_states=dict(snapshots), old_parallelism=old_parallelism)
