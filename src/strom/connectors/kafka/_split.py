"""KafkaPartitionSplit: one topic partition and the reader's progress in it.

Mirrors Flink's ``KafkaPartitionSplit``: the split *is* the checkpointed state of a
partition. ``starting_offset`` is the offset of the next record to read (after a
snapshot: the reader's current position), ``stopping_offset`` the exclusive end of a
bounded read.
"""

from __future__ import annotations

from dataclasses import dataclass

from strom.connectors.source import SourceSplit

__all__ = [
    "COMMITTED_OFFSET",
    "EARLIEST_OFFSET",
    "LATEST_OFFSET",
    "KafkaPartitionSplit",
    "TopicPartition",
]

TopicPartition = tuple[str, int]
"""A Kafka partition as ``(topic, partition)``."""

LATEST_OFFSET = -1
"""Starting offset sentinel: the partition's end when the reader assigns it."""
EARLIEST_OFFSET = -2
"""Starting offset sentinel: the partition's first retained record."""
COMMITTED_OFFSET = -3
"""Starting offset sentinel: the consumer group's committed offset."""


@dataclass(frozen=True, slots=True)
class KafkaPartitionSplit(SourceSplit):
    """A Kafka topic partition to read, with the position to (re)start from.

    Attributes:
        topic: the topic.
        partition: the partition number.
        starting_offset: the offset of the next record to read (>= 0), or one of the
            sentinels :data:`EARLIEST_OFFSET`, :data:`LATEST_OFFSET`,
            :data:`COMMITTED_OFFSET`. The enumerator resolves sentinels to concrete
            offsets, so checkpointed splits hold concrete offsets.
        stopping_offset: the exclusive offset at which a bounded read of this partition
            ends, or None to read forever.
    """

    topic: str
    partition: int
    starting_offset: int
    stopping_offset: int | None = None

    def split_id(self) -> str:
        """``"{topic}-{partition}"``, as in Flink."""
        return f"{self.topic}-{self.partition}"

    @property
    def topic_partition(self) -> TopicPartition:
        """The ``(topic, partition)`` pair."""
        return (self.topic, self.partition)

    def with_starting_offset(self, offset: int) -> KafkaPartitionSplit:
        """Return a copy that starts at ``offset`` (used by reader snapshots)."""
        return KafkaPartitionSplit(self.topic, self.partition, offset, self.stopping_offset)

    def is_exhausted(self) -> bool:
        """True if a bounded split has nothing left to read (start >= stop)."""
        return (
            self.stopping_offset is not None
            and self.starting_offset >= 0
            and self.starting_offset >= self.stopping_offset
        )
