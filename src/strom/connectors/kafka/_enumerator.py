"""KafkaSourceEnumerator: discovers partitions and assigns them to readers.

Mirrors Flink's ``KafkaSourceEnumerator``. Discovery runs off the task threads through
``SplitEnumeratorContext.call_async`` (once, or every ``partition.discovery.interval.ms``);
offsets are resolved there too, so every split handed out carries concrete offsets. Each
partition has one owner, computed as in Flink so that assignments are even and stable::

    start = ((java_hash(topic) * 31) & 0x7FFFFFFF) % num_readers
    owner = (start + partition) % num_readers
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strom.connectors.kafka._config import java_string_hash
from strom.connectors.kafka._split import KafkaPartitionSplit, TopicPartition
from strom.connectors.kafka.offsets import OffsetsInitializer, PartitionOffsetsRetriever
from strom.connectors.source import SplitEnumerator, SplitEnumeratorContext
from strom.errors import ConnectorError

if TYPE_CHECKING:
    from confluent_kafka import Consumer

__all__ = [
    "KafkaSourceEnumState",
    "KafkaSourceEnumerator",
    "KafkaSubscriber",
    "split_owner",
]

logger = logging.getLogger(__name__)

_METADATA_TIMEOUT_S = 30.0  # per broker call; librdkafka retries inside it


def split_owner(topic: str, partition: int, num_readers: int) -> int:
    """The reader (subtask index) that owns ``(topic, partition)``; Flink's formula."""
    start = ((java_string_hash(topic) * 31) & 0x7FFFFFFF) % num_readers
    return (start + partition) % num_readers


@dataclass(frozen=True)
class KafkaSubscriber:
    """Which partitions a KafkaSource reads: a topic list, a topic regex or fixed partitions.

    Attributes:
        topics: explicit topic names (all partitions; each topic must exist).
        pattern: a regular expression matched in full against topic names (internal
            ``__`` topics excluded); topics created later are picked up by discovery.
        partitions: explicit ``(topic, partition)`` pairs.
    """

    topics: tuple[str, ...] = ()
    pattern: str | None = None
    partitions: tuple[TopicPartition, ...] = ()

    def describe(self) -> str:
        """A short description for messages."""
        if self.pattern is not None:
            return f"topic pattern {self.pattern!r}"
        if self.topics:
            return f"topics {list(self.topics)}"
        return f"partitions {[f'{t}-{p}' for t, p in self.partitions]}"

    def subscribed_partitions(self, topics: Mapping[str, Any]) -> set[TopicPartition]:
        """The partitions to read, given ``ClusterMetadata.topics``.

        Raises:
            ConnectorError: a listed topic or partition does not exist.
        """
        out: set[TopicPartition] = set()
        if self.pattern is not None:
            rx = re.compile(self.pattern)
            for name, md in topics.items():
                if not name.startswith("__") and rx.fullmatch(name) and md.error is None:
                    out.update((name, p) for p in md.partitions)
            return out
        if self.topics:
            missing = [t for t in self.topics if t not in topics or topics[t].error is not None]
            if missing:
                msg = (
                    f"Kafka topic(s) {missing} do not exist; create them first or fix set_topics()"
                )
                raise ConnectorError(msg)
            for t in self.topics:
                out.update((t, p) for p in topics[t].partitions)
            return out
        for t, p in self.partitions:
            if t not in topics or p not in topics[t].partitions:
                msg = f"Kafka partition {t}-{p} does not exist; fix set_partitions()"
                raise ConnectorError(msg)
            out.add((t, p))
        return out


@dataclass(frozen=True)
class KafkaSourceEnumState:
    """The enumerator's checkpoint (Flink's ``KafkaSourceEnumState``).

    Attributes:
        assigned_partitions: partitions already handed to a reader (their progress lives
            in the readers' snapshots).
        unassigned_splits: discovered splits not yet handed out.
        initial_discovery_finished: whether the first discovery completed; partitions
            found later start at the earliest offset.
    """

    assigned_partitions: tuple[TopicPartition, ...] = ()
    unassigned_splits: tuple[KafkaPartitionSplit, ...] = ()
    initial_discovery_finished: bool = False
    version: int = field(default=1)
    """Snapshot format version."""


class ConsumerOffsetsRetriever(PartitionOffsetsRetriever):
    """Answers offset queries with a (never subscribed) librdkafka consumer.

    Args:
        consumer: a ``confluent_kafka.Consumer`` configured like the readers (same
            ``group.id`` and ``isolation.level``).
    """

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer

    def committed_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """Committed offsets of the group; missing ones are left out."""
        from confluent_kafka import TopicPartition as TP

        res = self.consumer.committed([TP(t, p) for t, p in partitions], _METADATA_TIMEOUT_S)
        return {(r.topic, r.partition): r.offset for r in res if r.offset >= 0}

    def _watermarks(
        self, partitions: Sequence[TopicPartition], index: int
    ) -> dict[TopicPartition, int]:
        from confluent_kafka import TopicPartition as TP

        out: dict[TopicPartition, int] = {}
        for t, p in partitions:
            wm = self.consumer.get_watermark_offsets(TP(t, p), _METADATA_TIMEOUT_S, False)
            if wm is None:
                msg = f"could not query offsets of Kafka partition {t}-{p}"
                raise ConnectorError(msg)
            out[(t, p)] = int(wm[index])
        return out

    def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """High watermarks (last stable offsets for ``read_committed``)."""
        return self._watermarks(partitions, 1)

    def beginning_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """Low watermarks."""
        return self._watermarks(partitions, 0)

    def offsets_for_times(
        self, timestamps_ms: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, int | None]:
        """First offsets at or after the timestamps (None where there is none)."""
        from confluent_kafka import TopicPartition as TP

        res = self.consumer.offsets_for_times(
            [TP(t, p, ts) for (t, p), ts in timestamps_ms.items()], _METADATA_TIMEOUT_S
        )
        return {(r.topic, r.partition): (r.offset if r.offset >= 0 else None) for r in res}


class KafkaSourceEnumerator(SplitEnumerator[KafkaPartitionSplit, KafkaSourceEnumState]):
    """Discovers partitions, resolves their offsets and assigns them (see module docstring).

    Args:
        context: the runtime's enumerator context.
        subscriber: which partitions to read.
        consumer_config: librdkafka config of the metadata/offsets consumer.
        starting_offsets: initializer for partitions of the initial discovery.
        stopping_offsets: initializer of the exclusive end offsets, or None (unbounded).
        discovery_interval_ms: re-discovery period in ms; <= 0 discovers once.
        state: a restored checkpoint, or None.
    """

    def __init__(
        self,
        context: SplitEnumeratorContext[KafkaPartitionSplit],
        subscriber: KafkaSubscriber,
        consumer_config: dict[str, Any],
        starting_offsets: OffsetsInitializer,
        stopping_offsets: OffsetsInitializer | None,
        discovery_interval_ms: int,
        state: KafkaSourceEnumState | None = None,
    ) -> None:
        self.context = context
        self.subscriber = subscriber
        self.consumer_config = consumer_config
        self.starting_offsets = starting_offsets
        self.stopping_offsets = stopping_offsets
        self.discovery_interval_ms = discovery_interval_ms
        self._lock = threading.Lock()
        state = state or KafkaSourceEnumState()
        self.assigned: set[TopicPartition] = set(state.assigned_partitions)
        self.pending: dict[int, list[KafkaPartitionSplit]] = {}
        for split in state.unassigned_splits:
            self._add_pending(split)
        self.initial_discovery_finished = state.initial_discovery_finished
        self.no_more_new_splits = False
        self._signalled: set[int] = set()
        self._consumer: Consumer | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Schedule discovery (periodic if the interval is > 0)."""
        if self.discovery_interval_ms > 0:
            self.context.call_async(
                self._discover, self._handle_discovery, 0, self.discovery_interval_ms
            )
        else:
            self.context.call_async(self._discover, self._handle_discovery)

    def close(self) -> None:
        """Close the metadata consumer."""
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    # -- discovery (worker thread) ----------------------------------------------------------
    def _retriever_consumer(self) -> Consumer:
        if self._consumer is None:
            from confluent_kafka import Consumer

            self._consumer = Consumer(self.consumer_config)
        return self._consumer

    def _discover(self) -> list[KafkaPartitionSplit]:
        """Find partitions not yet known and resolve their start (and stop) offsets."""
        from confluent_kafka import KafkaException

        consumer = self._retriever_consumer()
        try:
            metadata = consumer.list_topics(timeout=_METADATA_TIMEOUT_S)
        except KafkaException as e:
            msg = f"Kafka partition discovery failed for {self.subscriber.describe()}: {e}"
            raise ConnectorError(msg) from e
        with self._lock:
            known = set(self.assigned)
            known.update(s.topic_partition for ss in self.pending.values() for s in ss)
            initial = not self.initial_discovery_finished
        new = sorted(self.subscriber.subscribed_partitions(metadata.topics) - known)
        if not new:
            return []
        retriever = ConsumerOffsetsRetriever(consumer)
        # partitions that appear after the initial discovery are read from their start
        initializer = self.starting_offsets if initial else OffsetsInitializer.earliest()
        try:
            starts = initializer.get_partition_offsets(new, retriever)
            stops = (
                self.stopping_offsets.get_partition_offsets(new, retriever)
                if self.stopping_offsets is not None
                else {}
            )
        except KafkaException as e:
            msg = f"could not resolve offsets of Kafka partitions {new}: {e}"
            raise ConnectorError(msg) from e
        splits = []
        for tp in new:
            if tp not in starts:
                msg = f"{initializer!r} returned no offset for partition {tp[0]}-{tp[1]}"
                raise ConnectorError(msg)
            stop = stops.get(tp) if self.stopping_offsets is not None else None
            if self.stopping_offsets is not None and stop is None:
                msg = f"{self.stopping_offsets!r} returned no offset for partition {tp[0]}-{tp[1]}"
                raise ConnectorError(msg)
            splits.append(KafkaPartitionSplit(tp[0], tp[1], starts[tp], stop))
        return splits

    def _handle_discovery(
        self, splits: list[KafkaPartitionSplit] | None, error: BaseException | None
    ) -> None:
        """Loop thread: queue new splits for their owners and hand them out."""
        if error is not None:
            if not self.initial_discovery_finished:
                if isinstance(error, ConnectorError):
                    raise error
                msg = f"Kafka partition discovery failed: {type(error).__name__}: {error}"
                raise ConnectorError(msg) from error
            logger.warning("periodic Kafka partition discovery failed (will retry): %s", error)
            return
        if splits:
            logger.info("discovered %d new Kafka partition(s)", len(splits))
            with self._lock:
                for split in splits:
                    self._add_pending(split)
        self.initial_discovery_finished = True
        if self.discovery_interval_ms <= 0:
            self.no_more_new_splits = True
        self._assign_pending()

    # -- assignment (loop thread) -------------------------------------------------------------
    def _add_pending(self, split: KafkaPartitionSplit) -> None:
        owner = split_owner(split.topic, split.partition, self.context.current_parallelism())
        self.pending.setdefault(owner, []).append(split)

    def _assign_pending(self) -> None:
        registered = set(self.context.registered_readers())
        for reader in sorted(registered):
            with self._lock:
                splits = self.pending.pop(reader, [])
                self.assigned.update(s.topic_partition for s in splits)
            for split in splits:
                self.context.assign_split(split, reader)
            if self.no_more_new_splits and reader not in self._signalled:
                self._signalled.add(reader)
                self.context.signal_no_more_splits(reader)

    # -- SplitEnumerator --------------------------------------------------------------------
    def handle_split_request(self, subtask_id: int, requester_hostname: str | None) -> None:
        """Kafka readers do not request splits: partitions are pushed to their owners."""

    def add_splits_back(self, splits: list[KafkaPartitionSplit], subtask_id: int) -> None:
        """Splits of a failed reader: queue them again (with their offsets) for reassignment."""
        with self._lock:
            for split in splits:
                self.assigned.discard(split.topic_partition)
                self._add_pending(split)
        self._signalled.discard(subtask_id)
        if self.initial_discovery_finished:
            self._assign_pending()

    def add_reader(self, subtask_id: int) -> None:
        """A reader registered: hand it its pending partitions."""
        if self.initial_discovery_finished:
            self._assign_pending()

    def snapshot_state(self, checkpoint_id: int) -> KafkaSourceEnumState:
        """Assigned partitions, unassigned splits and whether initial discovery finished."""
        with self._lock:
            return KafkaSourceEnumState(
                tuple(sorted(self.assigned)),
                tuple(s for reader in sorted(self.pending) for s in self.pending[reader]),
                self.initial_discovery_finished,
            )
