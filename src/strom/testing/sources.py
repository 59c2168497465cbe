"""TestingSource and TestingSink.

Both work on every runtime: a TestingSink shipped to a TaskManager process sends what
its writers receive back to the original object in the client (keyed by a sink id), so
``sink.results`` is complete once ``execute()`` returns, whatever the parallelism.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from strom.connectors.sink import Sink, SinkWriter, SinkWriterContext
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
from strom.datastream.watermark import Watermark

__all__ = ["TestingAbortError", "TestingSink", "TestingSource"]


class TestingAbortError(RuntimeError):
    """Raised by a TestingSource at its ``ABORT`` marker (simulated failure)."""

    __test__ = False  # not a pytest test class


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"TestingSource.{self.name}"


@dataclass
class _TestingSplit(SourceSplit):
    position: int
    aborted: bool = False

    def split_id(self) -> str:
        return "testing-0"


class _TestingEnumerator(SplitEnumerator[_TestingSplit, list[_TestingSplit]]):
    def __init__(
        self, context: SplitEnumeratorContext[_TestingSplit], splits: list[_TestingSplit]
    ) -> None:
        self.context = context
        self.splits = splits

    def handle_split_request(self, subtask_id: int, requester_hostname: str | None) -> None:
        if self.splits:
            self.context.assign_split(self.splits.pop(), subtask_id)
        else:
            self.context.signal_no_more_splits(subtask_id)

    def add_splits_back(self, splits: list[_TestingSplit], subtask_id: int) -> None:
        self.splits.extend(splits)

    def add_reader(self, subtask_id: int) -> None:
        pass

    def snapshot_state(self, checkpoint_id: int) -> list[_TestingSplit]:
        return list(self.splits)


class _TestingReader(SourceReader[Any, _TestingSplit]):
    def __init__(self, source: TestingSource, context: SourceReaderContext) -> None:
        self.source = source
        self.context = context
        self.split: _TestingSplit | None = None
        self.no_more = False

    def start(self) -> None:
        self.context.send_split_request()

    def poll_next(self, output: ReaderOutput) -> InputStatus:
        split = self.split
        if split is None:
            return InputStatus.END_OF_INPUT if self.no_more else InputStatus.NOTHING_AVAILABLE
        items = self.source.items
        batch: list[Any] = []
        limit = self.source.batch_size
        while split.position < len(items) and len(batch) < limit:
            item = items[split.position]
            if isinstance(item, Watermark):
                if batch:
                    break  # emit the records before the watermark first
                split.position += 1
                output.emit_watermark(item)
                return InputStatus.MORE_AVAILABLE
            if item is TestingSource.EOF:
                split.position = len(items)
                break
            if item is TestingSource.ABORT:
                if batch:
                    break
                split.position += 1
                if not split.aborted:
                    split.aborted = True
                    msg = f"TestingSource.ABORT at position {split.position - 1}"
                    raise TestingAbortError(msg)
                continue
            batch.append(item)
            split.position += 1
        if batch:
            output.collect_batch(batch)
        if split.position >= len(items):
            self.split = None
            self.context.send_split_request()
        return InputStatus.MORE_AVAILABLE

    def add_splits(self, splits: list[_TestingSplit]) -> None:
        self.split = splits[0]

    def notify_no_more_splits(self) -> None:
        self.no_more = True

    def snapshot_state(self, checkpoint_id: int) -> list[_TestingSplit]:
        s = self.split
        return [] if s is None else [_TestingSplit(s.position, s.aborted)]


class TestingSource(Source[Any, _TestingSplit, list[_TestingSplit]]):
    """A bounded, non-parallel source over ``items`` for tests.

    Items are emitted in order; a ``Watermark`` item is emitted as a watermark in place,
    :attr:`EOF` ends the input early and :attr:`ABORT` raises :class:`TestingAbortError`
    the first time it is reached (after a restore from a checkpoint taken after it, it is
    skipped).

    Args:
        items: the records and markers.
        batch_size: records per poll (1 gives record-at-a-time interleaving).
    """

    __test__ = False  # not a pytest test class
    EOF: ClassVar[_Marker] = _Marker("EOF")
    ABORT: ClassVar[_Marker] = _Marker("ABORT")

    def __init__(self, items: Iterable[Any], batch_size: int = 1000) -> None:
        self.items = list(items)
        self.batch_size = batch_size

    def get_boundedness(self) -> Boundedness:
        """Always BOUNDED."""
        return Boundedness.BOUNDED

    def get_max_parallelism(self) -> int:
        """1: items are read in order by one reader."""
        return 1

    def create_reader(self, context: SourceReaderContext) -> SourceReader[Any, _TestingSplit]:
        """The single reader."""
        return _TestingReader(self, context)

    def create_enumerator(
        self, context: SplitEnumeratorContext[_TestingSplit]
    ) -> SplitEnumerator[_TestingSplit, list[_TestingSplit]]:
        """One split at position 0."""
        return _TestingEnumerator(context, [_TestingSplit(0)])

    def restore_enumerator(
        self, context: SplitEnumeratorContext[_TestingSplit], checkpoint: list[_TestingSplit]
    ) -> SplitEnumerator[_TestingSplit, list[_TestingSplit]]:
        """Restore the unassigned split, if any."""
        return _TestingEnumerator(context, list(checkpoint))


class _TestingWriter(SinkWriter[Any, None]):
    def __init__(self, sink: TestingSink) -> None:
        self.sink = sink

    def write(self, value: Any, timestamp_ms: int | None) -> None:
        self.write_batch([value], None if timestamp_ms is None else [timestamp_ms])

    def write_batch(self, values: list[Any], timestamps_ms: list[int] | None) -> None:
        sink = self.sink
        if sink._remote:  # in a TaskManager: the results belong to the client's sink
            from strom._executors import client_link

            client_link.deliver(sink._sink_id, list(values), timestamps_ms)  # type: ignore[arg-type]
        else:
            sink.receive(values, timestamps_ms)  # type: ignore[arg-type]


class TestingSink(Sink[Any, None]):
    """Collects every record (and its timestamp) in memory.

    Args:
        results: an optional list to append to (a new one by default).

    Attributes:
        results: the collected records, in arrival order.
        timestamps: their event timestamps (int epoch ms or None).
    """

    __test__ = False  # not a pytest test class

    def __init__(self, results: list[Any] | None = None) -> None:
        self.results: list[Any] = results if results is not None else []
        self.timestamps: list[int | None] = []
        self._lock = threading.Lock()
        self._sink_id = uuid.uuid4().hex
        self._remote = False
        from strom._executors import client_link

        client_link.register(self._sink_id, self)

    def __getstate__(self) -> dict[str, Any]:
        # shipped to a TaskManager: only the id travels; records come back by id
        return {"_sink_id": self._sink_id}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.results = []
        self.timestamps = []
        self._lock = threading.Lock()
        self._remote = True

    def receive(self, values: list[Any], timestamps_ms: list[int | None] | None) -> None:
        """Append a batch of records (from a local writer, or shipped back by a remote one)."""
        with self._lock:
            self.results.extend(values)
            self.timestamps.extend(
                timestamps_ms if timestamps_ms is not None else [None] * len(values)
            )

    def create_writer(self, context: SinkWriterContext) -> SinkWriter[Any, None]:
        """A writer appending to :attr:`results`."""
        return _TestingWriter(self)
