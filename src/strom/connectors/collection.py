"""Built-in in-memory sources: collections, number sequences and data generators.

All three split their input into index ranges (:class:`IndexRangeSplit`) whose progress is
a single int, so they checkpoint in O(1) and resume exactly. ``CollectionSource`` is
non-parallel (Flink's ``fromCollection``); ``NumberSequenceSource`` and
``DataGeneratorSource`` are parallel (Flink's ``NumberSequenceSource`` and
``DataGeneratorSource``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from strom.connectors.source import (
    Boundedness,
    InputStatus,
    ReaderOutput,
    Source,
    SourceReader,
    SourceReaderContext,
    SourceSplit,
    SplitEnumerator,
    SplitEnumeratorContext,
)
from strom.errors import ConfigurationError

__all__ = [
    "CollectionSource",
    "DataGeneratorSource",
    "IndexRangeSplit",
    "NumberSequenceSource",
    "RateLimiterStrategy",
]

DEFAULT_BATCH_SIZE = 1000
"""Records per ``poll_next``; matches the runtime's default batch size."""


@dataclass
class IndexRangeSplit(SourceSplit):
    """The indices ``[next_index, end)`` of a source's input still to emit.

    Attributes:
        id: split id.
        next_index: the next index to emit (progress).
        end: one past the last index (None = unbounded).
    """

    id: str
    next_index: int
    end: int | None

    def split_id(self) -> str:
        """The split's id."""
        return self.id


class _RangeEnumerator(SplitEnumerator[IndexRangeSplit, list[IndexRangeSplit]]):
    """Hands out index-range splits one per request; then no more splits."""

    def __init__(
        self, context: SplitEnumeratorContext[IndexRangeSplit], splits: list[IndexRangeSplit]
    ) -> None:
        self.context = context
        self.remaining = list(splits)

    def handle_split_request(self, subtask_id: int, requester_hostname: str | None) -> None:
        if self.remaining:
            self.context.assign_split(self.remaining.pop(0), subtask_id)
        else:
            self.context.signal_no_more_splits(subtask_id)

    def add_splits_back(self, splits: list[IndexRangeSplit], subtask_id: int) -> None:
        self.remaining[:0] = splits

    def add_reader(self, subtask_id: int) -> None:
        pass

    def snapshot_state(self, checkpoint_id: int) -> list[IndexRangeSplit]:
        return [IndexRangeSplit(s.id, s.next_index, s.end) for s in self.remaining]


class _RangeReader(SourceReader[Any, IndexRangeSplit]):
    """Emits the values of its splits, one batch per poll."""

    def __init__(
        self,
        context: SourceReaderContext,
        values_for: Callable[[int, int], list[Any]],
        batch_size: int,
        records_per_second: float | None = None,
    ) -> None:
        self.context = context
        self.values_for = values_for
        self.batch_size = batch_size
        self.splits: list[IndexRangeSplit] = []
        self.no_more = False
        self.requested = False
        self.rate = records_per_second
        self.emitted = 0
        self.started_at = 0.0

    def start(self) -> None:
        self.started_at = time.monotonic()
        self.context.send_split_request()
        self.requested = True

    def poll_next(self, output: ReaderOutput) -> InputStatus:
        if not self.splits:
            if self.no_more:
                return InputStatus.END_OF_INPUT
            if not self.requested:
                self.context.send_split_request()
                self.requested = True
            return InputStatus.NOTHING_AVAILABLE
        n = self.batch_size
        if self.rate is not None:
            allowed = int((time.monotonic() - self.started_at) * self.rate) - self.emitted
            if allowed <= 0:
                return InputStatus.NOTHING_AVAILABLE
            n = min(n, allowed)
        split = self.splits[0]
        start = split.next_index
        stop = start + n if split.end is None else min(split.end, start + n)
        output.collect_batch(self.values_for(start, stop))
        split.next_index = stop
        self.emitted += stop - start
        if split.end is not None and stop >= split.end:
            self.splits.pop(0)
            if not self.splits and not self.no_more:
                self.context.send_split_request()
                self.requested = True
        return InputStatus.MORE_AVAILABLE

    def add_splits(self, splits: list[IndexRangeSplit]) -> None:
        self.splits.extend(splits)
        self.requested = False

    def notify_no_more_splits(self) -> None:
        self.no_more = True

    def snapshot_state(self, checkpoint_id: int) -> list[IndexRangeSplit]:
        return [IndexRangeSplit(s.id, s.next_index, s.end) for s in self.splits]


class _RangeSource(Source[Any, IndexRangeSplit, list[IndexRangeSplit]]):
    """Base of the index-range sources."""

    batch_size = DEFAULT_BATCH_SIZE

    def _splits(self, parallelism: int) -> list[IndexRangeSplit]:
        raise NotImplementedError

    def _values_for(self, start: int, stop: int) -> list[Any]:
        raise NotImplementedError

    def _rate_per_reader(self, parallelism: int) -> float | None:
        return None

    def create_reader(self, context: SourceReaderContext) -> SourceReader[Any, IndexRangeSplit]:
        """A reader emitting ``batch_size`` records per poll."""
        return _RangeReader(
            context,
            self._values_for,
            self.batch_size,
            self._rate_per_reader(context.current_parallelism()),
        )

    def create_enumerator(
        self, context: SplitEnumeratorContext[IndexRangeSplit]
    ) -> SplitEnumerator[IndexRangeSplit, list[IndexRangeSplit]]:
        """An enumerator over this source's splits."""
        return _RangeEnumerator(context, self._splits(context.current_parallelism()))

    def restore_enumerator(
        self, context: SplitEnumeratorContext[IndexRangeSplit], checkpoint: list[IndexRangeSplit]
    ) -> SplitEnumerator[IndexRangeSplit, list[IndexRangeSplit]]:
        """An enumerator with the checkpointed unassigned splits."""
        return _RangeEnumerator(context, checkpoint)


def _even_ranges(start: int, end: int, parts: int) -> list[IndexRangeSplit]:
    """``[start, end)`` cut into ``parts`` contiguous, nearly equal splits."""
    total = end - start
    parts = max(1, min(parts, total)) if total > 0 else 1
    out = []
    for i in range(parts):
        a = start + total * i // parts
        b = start + total * (i + 1) // parts
        out.append(IndexRangeSplit(str(i), a, b))
    return out


class CollectionSource(_RangeSource):
    """A bounded, non-parallel source over an in-memory sequence (``from_collection``).

    Args:
        data: the records, in order.
        batch_size: records per poll.
    """

    def __init__(self, data: Sequence[Any], batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.data = data
        self.batch_size = batch_size

    def get_boundedness(self) -> Boundedness:
        """Always BOUNDED."""
        return Boundedness.BOUNDED

    def get_max_parallelism(self) -> int:
        """1: a collection is read by one subtask, in order."""
        return 1

    def _splits(self, parallelism: int) -> list[IndexRangeSplit]:
        return [IndexRangeSplit("0", 0, len(self.data))]

    def _values_for(self, start: int, stop: int) -> list[Any]:
        chunk = self.data[start:stop]
        return chunk if type(chunk) is list else list(chunk)


class NumberSequenceSource(_RangeSource):
    """A parallel, bounded source of the ints ``start..end`` (both inclusive).

    Mirrors Flink's ``NumberSequenceSource``; split evenly over the readers.

    Args:
        start: first number.
        end: last number (inclusive).

    Raises:
        ConfigurationError: ``end < start - 1`` or non-int bounds.
    """

    def __init__(self, start: int, end: int) -> None:
        if not isinstance(start, int) or not isinstance(end, int) or end < start - 1:
            msg = f"NumberSequenceSource needs ints start <= end + 1, got {start!r}, {end!r}"
            raise ConfigurationError(msg)
        self.start = start
        self.end = end

    def get_boundedness(self) -> Boundedness:
        """Always BOUNDED."""
        return Boundedness.BOUNDED

    def _splits(self, parallelism: int) -> list[IndexRangeSplit]:
        return _even_ranges(self.start, self.end + 1, parallelism)

    def _values_for(self, start: int, stop: int) -> list[Any]:
        return list(range(start, stop))


@dataclass(frozen=True)
class RateLimiterStrategy:
    """How fast a ``DataGeneratorSource`` emits (Flink's ``RateLimiterStrategy``).

    Attributes:
        records_per_second: total rate over all readers (None = unlimited).
    """

    records_per_second: float | None = None

    @staticmethod
    def per_second(records_per_second: float) -> RateLimiterStrategy:
        """Limit the total rate to ``records_per_second``.

        Raises:
            ConfigurationError: not a positive number.
        """
        if not isinstance(records_per_second, (int, float)) or records_per_second <= 0:
            msg = f"rate must be a positive number of records/s, got {records_per_second!r}"
            raise ConfigurationError(msg)
        return RateLimiterStrategy(float(records_per_second))

    @staticmethod
    def no_op() -> RateLimiterStrategy:
        """No limit."""
        return RateLimiterStrategy(None)


class DataGeneratorSource(_RangeSource):
    """A parallel source of ``generator_function(index)`` for index ``0..count-1``.

    Mirrors Flink's ``DataGeneratorSource``.

    Args:
        generator_function: ``index -> record``.
        count: number of records; None for an unbounded source.
        rate_limiter: a ``RateLimiterStrategy`` or a number of records/s (total over
            all readers); None for unlimited.
        output_type: accepted for PyFlink compatibility; unused.

    Raises:
        ConfigurationError: a negative count or a non-callable generator.
    """

    def __init__(
        self,
        generator_function: Callable[[int], Any],
        count: int | None,
        rate_limiter: RateLimiterStrategy | float | None = None,
        output_type: Any = None,
    ) -> None:
        if not callable(generator_function):
            msg = "DataGeneratorSource needs a callable generator_function(index) -> record"
            raise ConfigurationError(msg)
        if count is not None and (not isinstance(count, int) or count < 0):
            msg = f"DataGeneratorSource count must be an int >= 0 or None, got {count!r}"
            raise ConfigurationError(msg)
        if rate_limiter is not None and not isinstance(rate_limiter, RateLimiterStrategy):
            rate_limiter = RateLimiterStrategy.per_second(rate_limiter)
        self.generator_function = generator_function
        self.count = count
        self.rate_limiter = rate_limiter or RateLimiterStrategy.no_op()

    def get_boundedness(self) -> Boundedness:
        """BOUNDED with a count, else CONTINUOUS_UNBOUNDED."""
        return Boundedness.BOUNDED if self.count is not None else Boundedness.CONTINUOUS_UNBOUNDED

    def _splits(self, parallelism: int) -> list[IndexRangeSplit]:
        if self.count is None:
            # unbounded: reader i emits indices i, i+p, ... is not contiguous; instead each
            # reader owns an open-ended range starting at a large stride
            stride = 1 << 40
            return [IndexRangeSplit(str(i), i * stride, None) for i in range(parallelism)]
        return _even_ranges(0, self.count, parallelism)

    def _values_for(self, start: int, stop: int) -> list[Any]:
        fn = self.generator_function
        return [fn(i) for i in range(start, stop)]

    def _rate_per_reader(self, parallelism: int) -> float | None:
        r = self.rate_limiter.records_per_second
        return None if r is None else r / parallelism
