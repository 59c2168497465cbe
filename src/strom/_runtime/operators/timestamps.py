"""TimestampsAndWatermarksOperator: ``assign_timestamps_and_watermarks`` in a pipeline.

Mirrors Flink's operator of the same name: it assigns each record a timestamp with the
strategy's ``TimestampAssigner`` and feeds its ``WatermarkGenerator``; periodic emission
runs on the task's processing-time service. Watermarks arriving from upstream are
dropped (this operator defines event time from here on) except the final max watermark
at the end of input. Prefer watermark strategies on ``from_source``: they track each
split separately.
"""

from __future__ import annotations

from typing import Any

from strom._runtime.elements import WatermarkStatus
from strom._runtime.operators.base import StreamOperator
from strom.datastream.watermark import MAX_WATERMARK_MS, MIN_WATERMARK_MS, WatermarkOutput

__all__ = ["TimestampsAndWatermarksOperator"]


class TimestampsAndWatermarksOperator(StreamOperator, WatermarkOutput):
    """Assigns timestamps and generates watermarks mid-pipeline."""

    def open(self) -> None:
        """Create assigner and generator; schedule periodic emission."""
        assert self.spec is not None
        strategy = self.spec.params["strategy"]
        self.ts_fn = strategy.timestamp_function()
        self.assigner = strategy.create_timestamp_assigner() if self.ts_fn is None else None
        self.batch = self.context.runtime_mode == "BATCH"
        pts = self.context.processing_time_service
        self.generator = strategy.create_watermark_generator(clock=pts.get_current_processing_time)
        self.interval = int(self.context.config.get("pipeline.auto-watermark-interval", 200))
        self.current = MIN_WATERMARK_MS
        self.idle = False
        if self.interval > 0 and not self.batch:
            pts.register_timer(pts.get_current_processing_time() + self.interval, self._periodic)

    def _periodic(self, ts: int) -> None:
        if self.current >= MAX_WATERMARK_MS:
            return
        self.generator.on_periodic_emit(self)
        pts = self.context.processing_time_service
        pts.register_timer(pts.get_current_processing_time() + self.interval, self._periodic)

    def process_batch(self, values: list[Any], timestamps: list[int] | None) -> None:
        """Assign timestamps, show them to the generator, emit the batch."""
        try:
            if self.ts_fn is not None:
                ts = list(map(self.ts_fn, values))
            else:
                assert self.assigner is not None
                extract = self.assigner.extract_timestamp
                if timestamps is None:
                    ts = [extract(v, None) for v in values]
                else:
                    ts = [extract(v, t) for v, t in zip(values, timestamps)]
        except Exception as e:
            raise self.user_error(e, "timestamp assigner") from e
        self.output.emit_batch(values, ts)  # records before the watermarks they imply
        if not self.batch:
            try:
                self.generator.on_events(values, ts, self)
            except Exception as e:
                raise self.user_error(e, "watermark generator") from e

    def process_watermark(self, watermark: Any) -> None:
        """Drop upstream watermarks except the final one."""
        if watermark.timestamp_ms >= MAX_WATERMARK_MS:
            self.emit_watermark(watermark)

    def process_watermark_status(self, status: Any) -> None:
        """Upstream idleness does not matter here: this operator defines event time."""

    # WatermarkOutput
    def emit_watermark(self, watermark: Any) -> None:
        """Emit a watermark if it advances event time."""
        if self.idle:
            self.mark_active()
        if watermark.timestamp_ms > self.current:
            self.current = watermark.timestamp_ms
            self.output.emit_watermark(watermark)

    def mark_idle(self) -> None:
        """Declare this stream idle."""
        if not self.idle:
            self.idle = True
            self.output.emit_watermark_status(WatermarkStatus.IDLE)  # type: ignore[attr-defined]

    def mark_active(self) -> None:
        """Declare this stream active."""
        if self.idle:
            self.idle = False
            self.output.emit_watermark_status(WatermarkStatus.ACTIVE)  # type: ignore[attr-defined]
