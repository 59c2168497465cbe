"""Test harness for the file connectors: drives enumerator, readers, writers and committer.

The classes here implement the connector SPI's runtime side (contexts, reader output) in the
simplest faithful way; they are plumbing, not mocks of the code under test.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

from strom.connectors.file import FileSource, FileSourceSplit, PendingSplitsCheckpoint
from strom.connectors.sink import CommitRequest, Committer, SinkWriterContext
from strom.connectors.source import (
    InputStatus,
    ReaderOutput,
    SourceReader,
    SourceReaderContext,
    SplitEnumerator,
    SplitEnumeratorContext,
)


class CollectingOutput(ReaderOutput):
    """Collects emitted records; counts collect_batch calls and released splits."""

    def __init__(self) -> None:
        self.records: list[Any] = []
        self.batch_sizes: list[int] = []
        self.split_outputs: list[str] = []
        self.released: list[str] = []

    def collect(self, value: Any, timestamp_ms: int | None = None) -> None:
        self.records.append(value)
        self.batch_sizes.append(1)

    def collect_batch(self, values: list[Any], timestamps_ms: list[int] | None = None) -> None:
        self.records.extend(values)
        self.batch_sizes.append(len(values))

    def create_output_for_split(self, split_id: str) -> ReaderOutput:
        if split_id not in self.split_outputs:
            self.split_outputs.append(split_id)
        return self

    def release_output_for_split(self, split_id: str) -> None:
        self.released.append(split_id)


class ReaderContext(SourceReaderContext):
    """A reader context whose split requests are queued for the harness to deliver."""

    def __init__(
        self,
        subtask: int = 0,
        parallelism: int = 1,
        on_request: Callable[[int], None] | None = None,
    ) -> None:
        self.subtask = subtask
        self.parallelism = parallelism
        self.split_requests = 0
        self._on_request = on_request

    def index_of_subtask(self) -> int:
        return self.subtask

    def current_parallelism(self) -> int:
        return self.parallelism

    def send_split_request(self) -> None:
        self.split_requests += 1
        if self._on_request is not None:
            self._on_request(self.subtask)


class EnumeratorContext(SplitEnumeratorContext[FileSourceSplit]):
    """Records assignments and async calls; ``run_async`` runs scheduled calls once."""

    def __init__(self, parallelism: int = 1) -> None:
        self.parallelism = parallelism
        self.readers: list[int] = []
        self.assignments: dict[int, list[FileSourceSplit]] = collections.defaultdict(list)
        self.no_more_splits: set[int] = set()
        self.async_calls: list[
            tuple[Callable[[], Any], Callable[[Any, BaseException | None], None], int, int]
        ] = []
        self.events: collections.deque[tuple[str, int, Any]] = collections.deque()

    def current_parallelism(self) -> int:
        return self.parallelism

    def registered_readers(self) -> list[int]:
        return list(self.readers)

    def assign_split(self, split: FileSourceSplit, subtask_id: int) -> None:
        self.assignments[subtask_id].append(split)
        self.events.append(("assign", subtask_id, split))

    def signal_no_more_splits(self, subtask_id: int) -> None:
        self.no_more_splits.add(subtask_id)
        self.events.append(("no_more", subtask_id, None))

    def call_async(
        self,
        callable_: Callable[[], Any],
        handler: Callable[[Any, BaseException | None], None],
        initial_delay_ms: int = 0,
        period_ms: int = 0,
    ) -> None:
        self.async_calls.append((callable_, handler, initial_delay_ms, period_ms))

    def run_async(self) -> None:
        """Run every scheduled call once (one period of periodic calls)."""
        for callable_, handler, _, _ in list(self.async_calls):
            try:
                result, error = callable_(), None
            except Exception as exc:
                result, error = None, exc
            handler(result, error)


class SourceHarness:
    """Runs a FileSource's enumerator and readers in-process, delivering events between polls."""

    def __init__(
        self,
        source: FileSource,
        parallelism: int = 1,
        enumerator_state: PendingSplitsCheckpoint | None = None,
        reader_states: dict[int, list[FileSourceSplit]] | None = None,
    ) -> None:
        self.source = source
        self.enum_context = EnumeratorContext(parallelism)
        self.requests: collections.deque[int] = collections.deque()
        self.enumerator: SplitEnumerator[FileSourceSplit, PendingSplitsCheckpoint] = (
            source.restore_enumerator(self.enum_context, enumerator_state)
            if enumerator_state is not None
            else source.create_enumerator(self.enum_context)
        )
        self.enumerator.start()
        self.outputs = [CollectingOutput() for _ in range(parallelism)]
        self.readers: list[SourceReader[Any, FileSourceSplit]] = []
        self.statuses: list[InputStatus | None] = [None] * parallelism
        for i in range(parallelism):
            reader = source.create_reader(ReaderContext(i, parallelism, self.requests.append))
            if reader_states and reader_states.get(i):
                reader.add_splits(reader_states[i])
            self.enum_context.readers.append(i)
            self.enumerator.add_reader(i)
            reader.start()
            self.readers.append(reader)

    def pump(self) -> int:
        """Deliver queued split requests to the enumerator and its answers to the readers.

        Returns the number of answers delivered to readers.
        """
        delivered = 0
        while self.requests or self.enum_context.events:
            while self.requests:
                self.enumerator.handle_split_request(self.requests.popleft(), None)
            while self.enum_context.events:
                kind, subtask, split = self.enum_context.events.popleft()
                delivered += 1
                if kind == "assign":
                    self.readers[subtask].add_splits([split])
                else:
                    self.readers[subtask].notify_no_more_splits()
        return delivered

    def poll(self, subtask: int = 0) -> InputStatus:
        self.pump()
        status = self.readers[subtask].poll_next(self.outputs[subtask])
        self.statuses[subtask] = status
        return status

    def run_until_idle(self, max_polls: int = 10_000) -> None:
        """Poll all readers until each is at END_OF_INPUT or waits with nothing to deliver."""
        for _ in range(max_polls):
            progressed = self.pump() > 0
            for i in range(len(self.readers)):
                if self.statuses[i] is InputStatus.END_OF_INPUT:
                    continue
                if self.poll(i) is InputStatus.MORE_AVAILABLE:
                    progressed = True
            if not progressed and self.pump() == 0:
                return
        raise AssertionError("source did not become idle")

    def records(self) -> list[Any]:
        return [r for out in self.outputs for r in out.records]

    def close(self) -> None:
        for reader in self.readers:
            reader.close()
        self.enumerator.close()


def read_all(source: FileSource, parallelism: int = 1) -> list[Any]:
    """Run a bounded source to END_OF_INPUT and return all records (reader 0 first)."""
    harness = SourceHarness(source, parallelism)
    try:
        harness.run_until_idle()
        assert all(s is InputStatus.END_OF_INPUT for s in harness.statuses), harness.statuses
        return harness.records()
    finally:
        harness.close()


def writer_context(subtask: int = 0, parallelism: int = 1, attempt: int = 0) -> SinkWriterContext:
    return SinkWriterContext(subtask_index=subtask, parallelism=parallelism, attempt_number=attempt)


def commit_all(committer: Committer[Any], committables: list[Any]) -> None:
    committer.commit([CommitRequest(c) for c in committables])
