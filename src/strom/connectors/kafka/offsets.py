"""OffsetsInitializer: where a KafkaSource starts reading each partition, and where it stops.

Mirrors Flink's ``OffsetsInitializer``. The source's enumerator asks the initializer for
the offsets of every partition it discovers (through a :class:`PartitionOffsetsRetriever`
that queries the brokers), so every split it hands out, and so every checkpoint, holds a
concrete offset.

Example::

    OffsetsInitializer.earliest()
    OffsetsInitializer.latest()
    OffsetsInitializer.committed_offsets(OffsetResetStrategy.EARLIEST)
    OffsetsInitializer.timestamp(1_700_000_000_000)        # epoch ms
    OffsetsInitializer.offsets({("orders", 0): 42, ("orders", 1): 7})
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from strom.connectors.kafka._split import TopicPartition
from strom.errors import ConfigurationError

__all__ = [
    "OffsetResetStrategy",
    "OffsetsInitializer",
    "PartitionOffsetsRetriever",
]


class OffsetResetStrategy(enum.Enum):
    """What to do when a partition has no usable offset (Kafka's ``auto.offset.reset``)."""

    EARLIEST = "earliest"
    """Start from the first retained record."""
    LATEST = "latest"
    """Start from the end (only records written from now on)."""
    NONE = "none"
    """Fail: the user must provide an offset."""


class PartitionOffsetsRetriever(abc.ABC):
    """Queries partition offsets from the brokers (Flink's ``PartitionOffsetsRetriever``).

    Implemented by the source's enumerator; every method takes and returns offsets keyed
    by ``(topic, partition)``.
    """

    @abc.abstractmethod
    def committed_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """The consumer group's committed offsets; partitions without one are left out."""

    @abc.abstractmethod
    def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """The offset after the last readable record (the last stable offset when the
        source reads ``read_committed``)."""

    @abc.abstractmethod
    def beginning_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """The offset of the first retained record."""

    @abc.abstractmethod
    def offsets_for_times(
        self, timestamps_ms: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, int | None]:
        """The first offset whose record timestamp is ``>=`` the given epoch ms, or None."""


class OffsetsInitializer(abc.ABC):
    """Computes the starting (or stopping) offset of each partition (Flink's name).

    Use the factory methods; subclass only for a custom policy. Instances are immutable
    and picklable.
    """

    @abc.abstractmethod
    def get_partition_offsets(
        self, partitions: Sequence[TopicPartition], retriever: PartitionOffsetsRetriever
    ) -> dict[TopicPartition, int]:
        """Return a concrete offset (>= 0) for every partition in ``partitions``.

        Called by the enumerator when it discovers partitions (off the task threads).

        Raises:
            ConfigurationError: the policy cannot produce an offset (e.g. no committed
                offset and reset strategy NONE).
        """

    def get_auto_offset_reset_strategy(self) -> OffsetResetStrategy:
        """The ``auto.offset.reset`` the readers use if an offset is out of range."""
        return OffsetResetStrategy.EARLIEST

    # -- factories -------------------------------------------------------------------------
    @staticmethod
    def earliest() -> OffsetsInitializer:
        """Start at the first retained record of every partition."""
        return _Earliest()

    @staticmethod
    def latest() -> OffsetsInitializer:
        """Start at the end of every partition (as of discovery); as a stopping
        initializer, read up to the end as of the job's start."""
        return _Latest()

    @staticmethod
    def committed_offsets(
        reset_strategy: OffsetResetStrategy = OffsetResetStrategy.NONE,
    ) -> OffsetsInitializer:
        """Start at the consumer group's committed offsets (needs ``set_group_id``).

        Args:
            reset_strategy: for partitions without a committed offset; NONE fails.
        """
        if not isinstance(reset_strategy, OffsetResetStrategy):
            msg = f"reset_strategy must be an OffsetResetStrategy, got {reset_strategy!r}"
            raise ConfigurationError(msg)
        return _Committed(reset_strategy)

    @staticmethod
    def timestamp(timestamp_ms: int) -> OffsetsInitializer:
        """Start at the first record whose Kafka timestamp is ``>= timestamp_ms``.

        Partitions with no such record start at their end.

        Args:
            timestamp_ms: epoch milliseconds (int >= 0).
        """
        if not isinstance(timestamp_ms, int) or isinstance(timestamp_ms, bool) or timestamp_ms < 0:
            msg = f"timestamp_ms must be an int epoch millisecond >= 0, got {timestamp_ms!r}"
            raise ConfigurationError(msg)
        return _Timestamp(timestamp_ms)

    @staticmethod
    def offsets(
        offsets: Mapping[Any, int],
        reset_strategy: OffsetResetStrategy = OffsetResetStrategy.EARLIEST,
    ) -> OffsetsInitializer:
        """Start at explicit offsets.

        Args:
            offsets: ``{(topic, partition): offset}``; keys may also be
                ``confluent_kafka.TopicPartition`` objects.
            reset_strategy: for partitions missing from ``offsets``; NONE fails.
        """
        normalized = {_to_topic_partition(tp): _check_offset(o) for tp, o in offsets.items()}
        return _Specific(tuple(sorted(normalized.items())), reset_strategy)


def _to_topic_partition(tp: Any) -> TopicPartition:
    """Normalize ``(topic, partition)`` or a ``confluent_kafka.TopicPartition``.

    Raises:
        ConfigurationError: anything else.
    """
    if isinstance(tp, tuple) and len(tp) == 2:
        topic, partition = tp
    elif hasattr(tp, "topic") and hasattr(tp, "partition"):
        topic, partition = tp.topic, tp.partition
    else:
        msg = f"a partition must be a (topic, partition) tuple, got {tp!r}"
        raise ConfigurationError(msg)
    if not isinstance(topic, str) or not topic:
        msg = f"topic must be a non-empty str, got {topic!r}"
        raise ConfigurationError(msg)
    if not isinstance(partition, int) or isinstance(partition, bool) or partition < 0:
        msg = f"partition must be an int >= 0, got {partition!r}"
        raise ConfigurationError(msg)
    return (topic, partition)


def _check_offset(offset: Any) -> int:
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        msg = f"an offset must be an int >= 0, got {offset!r}"
        raise ConfigurationError(msg)
    return offset


def _reset(
    partitions: Sequence[TopicPartition],
    strategy: OffsetResetStrategy,
    retriever: PartitionOffsetsRetriever,
    why: str,
) -> dict[TopicPartition, int]:
    if not partitions:
        return {}
    if strategy is OffsetResetStrategy.EARLIEST:
        return retriever.beginning_offsets(partitions)
    if strategy is OffsetResetStrategy.LATEST:
        return retriever.end_offsets(partitions)
    names = ", ".join(f"{t}-{p}" for t, p in partitions)
    msg = (
        f"{why} for partitions {names} and the reset strategy is NONE; pass "
        "OffsetResetStrategy.EARLIEST or LATEST to the OffsetsInitializer"
    )
    raise ConfigurationError(msg)


@dataclass(frozen=True)
class _Earliest(OffsetsInitializer):
    def get_partition_offsets(
        self, partitions: Sequence[TopicPartition], retriever: PartitionOffsetsRetriever
    ) -> dict[TopicPartition, int]:
        return retriever.beginning_offsets(partitions) if partitions else {}

    def __repr__(self) -> str:
        return "OffsetsInitializer.earliest()"


@dataclass(frozen=True)
class _Latest(OffsetsInitializer):
    def get_partition_offsets(
        self, partitions: Sequence[TopicPartition], retriever: PartitionOffsetsRetriever
    ) -> dict[TopicPartition, int]:
        return retriever.end_offsets(partitions) if partitions else {}

    def get_auto_offset_reset_strategy(self) -> OffsetResetStrategy:
        return OffsetResetStrategy.LATEST

    def __repr__(self) -> str:
        return "OffsetsInitializer.latest()"


@dataclass(frozen=True)
class _Committed(OffsetsInitializer):
    reset_strategy: OffsetResetStrategy

    def get_partition_offsets(
        self, partitions: Sequence[TopicPartition], retriever: PartitionOffsetsRetriever
    ) -> dict[TopicPartition, int]:
        found = retriever.committed_offsets(partitions) if partitions else {}
        missing = [tp for tp in partitions if tp not in found]
        found.update(_reset(missing, self.reset_strategy, retriever, "no committed offset"))
        return found

    def get_auto_offset_reset_strategy(self) -> OffsetResetStrategy:
        return self.reset_strategy

    def __repr__(self) -> str:
        return f"OffsetsInitializer.committed_offsets({self.reset_strategy})"


@dataclass(frozen=True)
class _Timestamp(OffsetsInitializer):
    timestamp_ms: int

    def get_partition_offsets(
        self, partitions: Sequence[TopicPartition], retriever: PartitionOffsetsRetriever
    ) -> dict[TopicPartition, int]:
        if not partitions:
            return {}
        found = retriever.offsets_for_times({tp: self.timestamp_ms for tp in partitions})
        out = {tp: o for tp, o in found.items() if o is not None and o >= 0}
        missing = [tp for tp in partitions if tp not in out]
        if missing:  # no record at or after the timestamp: start at the end
            out.update(retriever.end_offsets(missing))
        return out

    def get_auto_offset_reset_strategy(self) -> OffsetResetStrategy:
        return OffsetResetStrategy.LATEST

    def __repr__(self) -> str:
        return f"OffsetsInitializer.timestamp({self.timestamp_ms})"


@dataclass(frozen=True)
class _Specific(OffsetsInitializer):
    given: tuple[tuple[TopicPartition, int], ...]
    reset_strategy: OffsetResetStrategy = field(default=OffsetResetStrategy.EARLIEST)

    def get_partition_offsets(
        self, partitions: Sequence[TopicPartition], retriever: PartitionOffsetsRetriever
    ) -> dict[TopicPartition, int]:
        given = dict(self.given)
        out = {tp: given[tp] for tp in partitions if tp in given}
        missing = [tp for tp in partitions if tp not in given]
        out.update(_reset(missing, self.reset_strategy, retriever, "no offset was given"))
        return out

    def get_auto_offset_reset_strategy(self) -> OffsetResetStrategy:
        return self.reset_strategy

    def __repr__(self) -> str:
        return f"OffsetsInitializer.offsets({dict(self.given)!r})"
