"""Stateless one-input operators: map, flat_map, filter and the non-keyed process operator.

Each hot loop runs over a whole batch: ``map`` is ``list(map(f, values))``, ``filter``
builds a mask and compresses values and timestamps with it.
"""

from __future__ import annotations

from itertools import compress
from typing import Any

from strom._runtime.operators.base import UdfStreamOperator
from strom.datastream.functions import ProcessFunction, TimerService
from strom.datastream.output_tag import OutputTag

__all__ = [
    "ProcessContext",
    "ProcessOperator",
    "StreamFilter",
    "StreamFlatMap",
    "StreamMap",
]


class StreamMap(UdfStreamOperator):
    """Applies a ``MapFunction``/callable to every record (Flink's ``StreamMap``)."""

    method = "map"

    def process_batch(self, values: list[Any], timestamps: list[int] | None) -> None:
        """Map a batch; timestamps pass through unchanged."""
        self.output.emit_batch(list(map(self.fn, values)), timestamps)


class StreamFlatMap(UdfStreamOperator):
    """Applies a ``FlatMapFunction``/callable; each output keeps its input's timestamp."""

    method = "flat_map"

    def process_batch(self, values: list[Any], timestamps: list[int] | None) -> None:
        """Flat-map a batch; None results produce nothing."""
        fn = self.fn
        out: list[Any] = []
        if timestamps is None:
            extend = out.extend
            for v in values:
                r = fn(v)
                if r is not None:
                    extend(r)
            self.output.emit_batch(out, None)
            return
        out_ts: list[int] = []
        for v, t in zip(values, timestamps):
            r = fn(v)
            if r is not None:
                n = len(out)
                out.extend(r)
                out_ts.extend([t] * (len(out) - n))
        self.output.emit_batch(out, out_ts)


class StreamFilter(UdfStreamOperator):
    """Keeps the records for which a ``FilterFunction``/callable is true."""

    method = "filter"

    def process_batch(self, values: list[Any], timestamps: list[int] | None) -> None:
        """Filter a batch with one mask for values and timestamps."""
        mask = list(map(self.fn, values))
        out = list(compress(values, mask))
        if not out:
            return
        self.output.emit_batch(
            out, None if timestamps is None else list(compress(timestamps, mask))
        )


class _NoTimersService(TimerService):
    """Time queries for non-keyed operators; timers need a keyed stream."""

    def __init__(self, op: ProcessOperator) -> None:
        self._op = op

    def current_processing_time(self) -> int:
        return self._op.context.processing_time_ms()

    def current_watermark(self) -> int:
        return self._op.current_watermark

    def _no_timers(self) -> None:
        msg = (
            f"timers need a keyed stream, but operator '{self._op.context.name}' is not "
            "keyed: call key_by(...) and use a KeyedProcessFunction"
        )
        raise TypeError(msg)

    def register_event_time_timer(self, timestamp_ms: int) -> None:
        self._no_timers()

    def register_processing_time_timer(self, timestamp_ms: int) -> None:
        self._no_timers()

    def delete_event_time_timer(self, timestamp_ms: int) -> None:
        self._no_timers()

    def delete_processing_time_timer(self, timestamp_ms: int) -> None:
        self._no_timers()


class ProcessContext(ProcessFunction.Context):
    """The reusable per-record context of process functions (valid during the call)."""

    __slots__ = ("_op", "_timer_service", "ts")

    def __init__(self, op: Any, timer_service: TimerService) -> None:
        self._op = op
        self._timer_service = timer_service
        self.ts: int | None = None

    def timestamp(self) -> int | None:
        """The current record's timestamp (epoch ms) or None."""
        return self.ts

    def timer_service(self) -> TimerService:
        """Time queries (and timers on keyed streams)."""
        return self._timer_service

    def output(self, output_tag: OutputTag, value: Any) -> None:
        """Emit ``value`` to a side output, with the current record's timestamp."""
        ts = self.ts
        self._op.output.emit_side(output_tag.tag_id, [value], None if ts is None else [ts])


class ProcessOperator(UdfStreamOperator):
    """Runs a ``ProcessFunction`` (Flink's ``ProcessOperator``)."""

    method = "process_element"
    current_watermark = -(2**63)

    def open(self) -> None:
        """Create the context, then open the function."""
        self.ctx = ProcessContext(self, _NoTimersService(self))
        super().open()

    def process_batch(self, values: list[Any], timestamps: list[int] | None) -> None:
        """Call ``process_element(value, ctx)`` per record and emit what it yields."""
        fn, ctx = self.fn, self.ctx
        out: list[Any] = []
        if timestamps is None:
            for v in values:
                r = fn(v, ctx)
                if r is not None:
                    out.extend(r)
            if out:
                self.output.emit_batch(out, None)
            return
        out_ts: list[int] = []
        for v, t in zip(values, timestamps):
            ctx.ts = t
            r = fn(v, ctx)
            if r is not None:
                n = len(out)
                out.extend(r)
                out_ts.extend([t] * (len(out) - n))
        ctx.ts = None
        if out:
            self.output.emit_batch(out, out_ts)

    def process_watermark(self, watermark: Any) -> None:
        """Track the watermark for ``ctx.timer_service().current_watermark()``; forward."""
        self.current_watermark = watermark.timestamp_ms
        self.output.emit_watermark(watermark)
