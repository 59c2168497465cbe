"""The sink SPI (Flink's Sink V2): Sink, SinkWriter, Committer, two-phase commit.

A :class:`Sink` creates one :class:`SinkWriter` per parallel subtask. A plain sink only
writes. A two-phase-committing sink also returns committables from
:meth:`SinkWriter.prepare_commit` (called before every checkpoint barrier and at end of
input) and a :class:`Committer` that makes them visible once the checkpoint that contains
them completed (or at end of a bounded job). Committing must be idempotent: after a failure
the same committable may be committed again.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = [
    "CommitRequest",
    "Committer",
    "Sink",
    "SinkWriter",
    "SinkWriterContext",
]

T = TypeVar("T")
"""The type of records a sink consumes."""
CommT = TypeVar("CommT")
"""The committable type of a two-phase-committing sink."""


@dataclass(frozen=True)
class SinkWriterContext:
    """What a writer knows about its subtask (Flink's ``WriterInitContext``).

    Attributes:
        subtask_index: 0-based index of this writer.
        parallelism: number of parallel writers.
        attempt_number: 0 on first run, incremented on every restart.
        job_id: hex id of the job.
        operator_uid: the sink's ``uid``.
    """

    subtask_index: int
    parallelism: int
    attempt_number: int = 0
    job_id: str = ""
    operator_uid: str = ""


class SinkWriter(abc.ABC, Generic[T, CommT]):
    """Writes the records of one subtask (Flink's ``SinkWriter``).

    Call order: (``write_batch`` | ``flush`` | ``prepare_commit`` | ``snapshot_state``)* ->
    ``flush(end_of_input=True)`` -> ``prepare_commit`` -> ``close``.
    """

    @abc.abstractmethod
    def write(self, value: T, timestamp_ms: int | None) -> None:
        """Write one record (timestamp in int epoch ms or None)."""

    def write_batch(self, values: list[T], timestamps_ms: list[int] | None) -> None:
        """Write a batch; override for speed. The default calls :meth:`write` per record."""
        if timestamps_ms is None:
            for v in values:
                self.write(v, None)
        else:
            for v, t in zip(values, timestamps_ms):
                self.write(v, t)

    def flush(self, end_of_input: bool) -> None:
        """Flush buffered data (before a checkpoint, and with True at end of input)."""

    def prepare_commit(self) -> list[CommT]:
        """Return committables for everything written since the last call (2PC pre-commit)."""
        return []

    def snapshot_state(self, checkpoint_id: int) -> list[Any]:
        """Return the writer's state to restore after failure (e.g. in-progress files)."""
        return []

    def close(self) -> None:
        """Release resources; called once, also after failures."""


@dataclass
class CommitRequest(Generic[CommT]):
    """One committable handed to :meth:`Committer.commit` (Flink's ``CommitRequest``).

    Attributes:
        committable: what the writer's ``prepare_commit`` returned.
        retries: how often this request was retried.
    """

    committable: CommT
    retries: int = 0


class Committer(abc.ABC, Generic[CommT]):
    """Makes pre-committed data visible (Flink's ``Committer``); must be idempotent."""

    @abc.abstractmethod
    def commit(self, requests: list[CommitRequest[CommT]]) -> None:
        """Commit all requests; raise to fail the job on a non-retryable error."""

    def close(self) -> None:
        """Release resources."""


class Sink(abc.ABC, Generic[T, CommT]):
    """A declarative, picklable sink factory (Flink's ``Sink``); use with ``sink_to``."""

    @abc.abstractmethod
    def create_writer(self, context: SinkWriterContext) -> SinkWriter[T, CommT]:
        """Create the writer of one subtask."""

    def restore_writer(
        self, context: SinkWriterContext, recovered_state: list[Any]
    ) -> SinkWriter[T, CommT]:
        """Create a writer from the state its predecessor snapshotted; default ignores it."""
        return self.create_writer(context)

    def create_committer(self) -> Committer[CommT] | None:
        """Return a committer for a two-phase-committing sink, or None for a plain sink."""
        return None
