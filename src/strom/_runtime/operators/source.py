"""SourceOperator: drives a ``SourceReader`` and generates timestamps and watermarks.

Mirrors Flink's ``SourceOperator``: the task polls :meth:`SourceOperator.emit_next` in its
mailbox loop; every batch the reader hands over gets timestamps from the
``WatermarkStrategy``'s assigner and is shown to its ``WatermarkGenerator``; watermarks
are emitted on periodic emit (``pipeline.auto-watermark-interval``) and are monotonic.
At the end of bounded input in STREAMING mode the source emits the max watermark, so
every event-time timer and window fires before the job finishes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from strom._runtime.elements import WatermarkStatus
from strom._runtime.operators.base import Output, StreamOperator
from strom.connectors.source import (
    InputStatus,
    ReaderOutput,
    SourceReader,
    SourceReaderContext,
)
from strom.datastream.watermark import MIN_WATERMARK_MS, Watermark, WatermarkOutput
from strom.errors import ConnectorError, TaskError

if TYPE_CHECKING:
    from strom.datastream.watermark import WatermarkStrategy

__all__ = ["SourceOperator", "SourceReaderContextImpl"]


class SourceReaderContextImpl(SourceReaderContext):
    """The reader's view of its subtask; split requests go to the source coordinator.

    Args:
        subtask_index: this reader's subtask.
        parallelism: number of readers.
        send_request: callback ``(subtask_index) -> None`` that asks the enumerator.
        send_event: callback ``(subtask_index, event) -> None``.
    """

    def __init__(
        self,
        subtask_index: int,
        parallelism: int,
        send_request: Callable[[int], None],
        send_event: Callable[[int, Any], None],
    ) -> None:
        self._index = subtask_index
        self._parallelism = parallelism
        self._send_request = send_request
        self._send_event = send_event

    def index_of_subtask(self) -> int:
        """0-based subtask index."""
        return self._index

    def current_parallelism(self) -> int:
        """Number of readers."""
        return self._parallelism

    def send_split_request(self) -> None:
        """Ask the enumerator for a split."""
        self._send_request(self._index)

    def send_source_event(self, event: Any) -> None:
        """Send a custom event to the enumerator."""
        self._send_event(self._index, event)


class _SourceOutput(ReaderOutput, WatermarkOutput):
    """A reader output: assigns timestamps, feeds its own watermark generator, emits.

    The operator has one main output and, for readers that call
    ``create_output_for_split``, one output per split with its own generator; the
    source's watermark is the minimum over the non-idle outputs (Flink's per-split
    watermarks), so a quiet split marked idle never holds back event time.

    Args:
        op: the source operator.
        generator: this output's watermark generator (None in BATCH mode).
        is_main: True for the reader's main output.
    """

    def __init__(self, op: SourceOperator, generator: Any, is_main: bool) -> None:
        self.op = op
        self.generator = generator
        self.is_main = is_main
        self.watermark = MIN_WATERMARK_MS
        self.idle = False
        self.used = not is_main  # a split output always counts; the main one once used
        self.pending: list[Any] = []
        self.pending_ts: list[int | None] = []
        self.has_pending_ts = False
        self.generator_output = _GeneratorOutput(self)

    def collect(self, value: Any, timestamp_ms: int | None = None) -> None:
        self.pending.append(value)
        self.pending_ts.append(timestamp_ms)
        if timestamp_ms is not None:
            self.has_pending_ts = True

    def flush_pending(self) -> None:
        if self.pending:
            values, ts = self.pending, self.pending_ts
            self.pending, self.pending_ts = [], []
            has_ts = self.has_pending_ts
            self.has_pending_ts = False
            self.collect_batch(values, ts if has_ts else None)  # type: ignore[arg-type]

    def collect_batch(self, values: list[Any], timestamps_ms: list[int] | None = None) -> None:
        op = self.op
        if not values:
            return
        if self.pending:
            self.flush_pending()
        self.used = True
        try:
            ts_fn = op.ts_fn
            if ts_fn is not None:
                timestamps_ms = list(map(ts_fn, values))
            elif op.assigner is not None:
                extract = op.assigner.extract_timestamp
                if timestamps_ms is None:
                    timestamps_ms = [extract(v, None) for v in values]
                else:
                    timestamps_ms = [extract(v, t) for v, t in zip(values, timestamps_ms)]
        except Exception as e:
            raise op.user_error(e, "timestamp assigner") from e
        # records first, then the watermarks they imply (Flink's SourceOutputWithWatermarks
        # order): a watermark never overtakes the records it was derived from
        op.output.emit_batch(values, timestamps_ms)
        if self.generator is not None and timestamps_ms is not None:
            try:
                self.generator.on_events(values, timestamps_ms, self.generator_output)
            except Exception as e:
                raise op.user_error(e, "watermark generator") from e

    def create_output_for_split(self, split_id: str) -> ReaderOutput:
        return self.op.split_output(split_id)

    def release_output_for_split(self, split_id: str) -> None:
        self.op.release_split_output(split_id)

    # WatermarkOutput / ReaderOutput watermark methods (a reader's explicit watermarks)
    def emit_watermark(self, watermark: Any) -> None:
        self.used = True
        self.advance(watermark.timestamp_ms)

    def advance(self, timestamp_ms: int) -> None:
        """Raise this output's watermark and recombine the source's watermark."""
        self.idle = False
        if timestamp_ms > self.watermark:
            self.watermark = timestamp_ms
        self.op.combine_watermarks()

    def mark_idle(self) -> None:
        if not self.idle:
            self.idle = True
            self.op.combine_watermarks()

    def mark_active(self) -> None:
        if self.idle:
            self.idle = False
            self.op.combine_watermarks()


class _GeneratorOutput(WatermarkOutput):
    """What a watermark generator writes to: its output's watermark and idleness. Unlike
    a reader's explicit watermark it does not make an unused output count (the main
    output of a reader that only uses per-split outputs never holds back time)."""

    __slots__ = ("out",)

    def __init__(self, out: _SourceOutput) -> None:
        self.out = out

    def emit_watermark(self, watermark: Any) -> None:
        self.out.advance(watermark.timestamp_ms)

    def mark_idle(self) -> None:
        self.out.mark_idle()

    def mark_active(self) -> None:
        self.out.mark_active()


class SourceOperator(StreamOperator):
    """Hosts one ``SourceReader`` (Flink's ``SourceOperator``).

    Args:
        source: the ``Source``.
        watermark_strategy: the ``WatermarkStrategy`` or None (no timestamps/watermarks).
        reader_context: the reader's context.
    """

    def __init__(
        self,
        source: Any,
        watermark_strategy: WatermarkStrategy | None,
        reader_context: SourceReaderContext,
    ) -> None:
        super().__init__(None)
        self.source = source
        self.strategy = watermark_strategy
        self.reader_context = reader_context
        self.reader: SourceReader[Any, Any] | None = None
        self.current_watermark = MIN_WATERMARK_MS
        self.idle = False
        self.finished = False
        self.ts_fn: Callable[[Any], int] | None = None
        self.assigner: Any = None
        self.periodic_interval_ms = 0
        self.next_periodic_ms = 0

    def setup(self, context: Any, output: Output) -> None:
        """Bind the operator to its subtask."""
        super().setup(context, output)
        self.split_outputs: dict[str, _SourceOutput] = {}

    def split_output(self, split_id: str) -> _SourceOutput:
        """The output of one split, with its own watermark generator."""
        out = self.split_outputs.get(split_id)
        if out is None:
            out = self.split_outputs[split_id] = _SourceOutput(
                self, self._new_generator(), is_main=False
            )
        return out

    def release_split_output(self, split_id: str) -> None:
        """A split finished: its last watermark counts, then it no longer holds back time."""
        out = self.split_outputs.get(split_id)
        if out is None:
            return
        if out.generator is not None:
            out.generator.on_periodic_emit(out.generator_output)  # its final watermark
        del self.split_outputs[split_id]
        self.combine_watermarks()

    def _new_generator(self) -> Any:
        if self.strategy is None or self.context.runtime_mode == "BATCH":
            return None
        return self.strategy.create_watermark_generator(
            clock=self.context.processing_time_service.get_current_processing_time
        )

    def combine_watermarks(self) -> None:
        """Emit the min watermark over the active outputs; mark the source idle when all
        outputs are idle."""
        outs = [o for o in (self.source_output, *self.split_outputs.values()) if o.used]
        if not outs:
            return
        active = [o for o in outs if not o.idle]
        if not active:
            if not self.idle:
                self.idle = True
                self.output.emit_watermark_status(WatermarkStatus.IDLE)  # type: ignore[attr-defined]
            return
        if self.idle:
            self.idle = False
            self.output.emit_watermark_status(WatermarkStatus.ACTIVE)  # type: ignore[attr-defined]
        wm = min(o.watermark for o in active)
        if wm > self.current_watermark:
            self.current_watermark = wm
            self.output.emit_watermark(Watermark(wm))

    def open(self) -> None:
        """Create the reader, the timestamp assigner and the watermark generator."""
        try:
            self.reader = self.source.create_reader(self.reader_context)
        except TaskError:
            raise
        except Exception as e:
            raise self._connector_error(e, "create the source reader") from e
        batch = self.context.runtime_mode == "BATCH"
        if self.strategy is not None:
            self.ts_fn = self.strategy.timestamp_function()
            if self.ts_fn is None:
                self.assigner = self.strategy.create_timestamp_assigner()
            if not batch:
                self.periodic_interval_ms = int(
                    self.context.config.get("pipeline.auto-watermark-interval", 200)
                )
        self.source_output = _SourceOutput(self, self._new_generator(), is_main=True)

    def start(self) -> None:
        """Hand restored splits to the reader, then start it."""
        assert self.reader is not None
        if self.restored is not None:
            c = self.context
            splits = [
                sp
                for st in self.restored.mine(c.subtask_index, c.parallelism)
                for sp in st.get("splits", [])
            ]
            if splits:
                self.reader.add_splits(splits)
        self.reader.start()

    def emit_next(self, now_ms: int) -> InputStatus:
        """Poll the reader once; emit periodic watermarks when due.

        Args:
            now_ms: current monotonic time in ms (for periodic watermark emission).
        """
        assert self.reader is not None
        try:
            status = self.reader.poll_next(self.source_output)
            self.source_output.flush_pending()
        except TaskError:
            raise
        except Exception as e:
            raise self._connector_error(e, "read from the source") from e
        if self.periodic_interval_ms > 0 and now_ms >= self.next_periodic_ms:
            self.next_periodic_ms = now_ms + self.periodic_interval_ms
            for out in (self.source_output, *self.split_outputs.values()):
                if out.generator is not None:
                    out.generator.on_periodic_emit(out.generator_output)
        return status

    def emit_end_of_input_watermark(self) -> None:
        """At the end of bounded input the max watermark fires all event time (in BATCH
        mode it is the only watermark, so windows and timers fire once, at the end)."""
        if self.idle:
            self.idle = False
            self.output.emit_watermark_status(WatermarkStatus.ACTIVE)  # type: ignore[attr-defined]
        max_wm = Watermark.MAX_WATERMARK
        if max_wm.timestamp_ms > self.current_watermark:
            self.current_watermark = max_wm.timestamp_ms
            self.output.emit_watermark(max_wm)

    def add_splits(self, splits: list[Any]) -> None:
        """Splits assigned by the enumerator."""
        assert self.reader is not None
        self.reader.add_splits(splits)

    def notify_no_more_splits(self) -> None:
        """The enumerator has no more splits for this reader."""
        assert self.reader is not None
        self.reader.notify_no_more_splits()

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        """The reader's splits with their progress."""
        assert self.reader is not None
        return {"splits": self.reader.snapshot_state(checkpoint_id)}

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        """Tell the reader (e.g. to commit offsets for monitoring)."""
        if self.reader is not None:
            self.reader.notify_checkpoint_complete(checkpoint_id)

    def close(self) -> None:
        """Close the reader."""
        if self.reader is not None:
            self.reader.close()

    def _connector_error(self, exc: Exception, what: str) -> ConnectorError:
        c = self.context
        msg = f"failed to {what}: {type(exc).__name__}: {exc}"
        return ConnectorError(
            msg,
            job_id=c.job_id,
            operator_uid=c.uid,
            operator_name=c.name,
            subtask_index=c.subtask_index,
        )
