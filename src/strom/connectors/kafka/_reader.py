"""KafkaSourceReader: one librdkafka consumer reading all partitions of one subtask.

Mirrors Flink's ``KafkaSourceReader`` (with its split reader and record emitter folded
in). The consumer is never subscribed to a group: partitions are ``incremental_assign``-ed
as the enumerator hands them out, at the split's offset. Each ``poll_next`` takes up to
``max.poll.records`` ready messages without blocking, decodes them and emits them per
partition (``ReaderOutput.create_output_for_split``) with their Kafka timestamps, so the
runtime can generate watermarks per partition.

The split state is the offset of the next record per partition; ``snapshot_state``
returns it and a reader restored from those splits resumes exactly there. When a
checkpoint completes the offsets are committed to the consumer group (only for lag
monitoring: recovery never reads them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strom.connectors.kafka._split import (
    COMMITTED_OFFSET,
    EARLIEST_OFFSET,
    LATEST_OFFSET,
    KafkaPartitionSplit,
    TopicPartition,
)
from strom.connectors.kafka.formats import ByteArraySchema
from strom.connectors.kafka.serialization import (
    DeserializationErrorPolicy,
    KafkaDeserializationFailure,
    KafkaRecord,
    KafkaRecordDeserializationSchema,
    TimestampType,
    _ValueOnly,
)
from strom.connectors.source import InputStatus, ReaderOutput, SourceReader, SourceReaderContext
from strom.errors import ConnectorError, DeserializationError

if TYPE_CHECKING:
    from confluent_kafka import Consumer

__all__ = ["KafkaSourceReader"]

logger = logging.getLogger(__name__)

_MAX_PENDING_COMMITS = 100  # offsets kept for checkpoints not yet complete (Flink keeps all)
_NO_TIMESTAMP = -1  # Kafka's ConsumerRecord.NO_TIMESTAMP, passed on as in Flink
_TIMESTAMP_TYPES = {
    0: TimestampType.NOT_AVAILABLE,
    1: TimestampType.CREATE_TIME,
    2: TimestampType.LOG_APPEND_TIME,
}


@dataclass
class _SplitState:
    """A partition being read: its split and the offset of the next record."""

    split: KafkaPartitionSplit
    next_offset: int
    output: ReaderOutput | None = None
    output_owner: ReaderOutput | None = None

    @property
    def split_id(self) -> str:
        return self.split.split_id()

    def snapshot(self) -> KafkaPartitionSplit:
        return self.split.with_starting_offset(self.next_offset)


class KafkaSourceReader(SourceReader[Any, KafkaPartitionSplit]):
    """Reads the partitions assigned to one subtask (see the module docstring).

    Args:
        context: the reader's context.
        consumer_config: librdkafka consumer configuration.
        deserializer: turns records into values.
        error_policy: what to do with undecodable records.
        max_poll_records: most records per ``poll_next``.
        commit_offsets_on_checkpoint: commit offsets to the group when checkpoints complete.
    """

    def __init__(
        self,
        context: SourceReaderContext,
        consumer_config: dict[str, Any],
        deserializer: KafkaRecordDeserializationSchema[Any],
        error_policy: DeserializationErrorPolicy,
        max_poll_records: int,
        commit_offsets_on_checkpoint: bool,
    ) -> None:
        self.context = context
        self.consumer_config = consumer_config
        self.deserializer = deserializer
        self.error_policy = error_policy
        self.max_poll_records = max_poll_records
        self.commit_offsets_on_checkpoint = commit_offsets_on_checkpoint
        self.splits: dict[TopicPartition, _SplitState] = {}
        self.finished: list[_SplitState] = []  # finished, output not yet released
        self.no_more_splits = False
        self._outputs_pending = False  # splits added since the last poll have no output yet
        self.pending_commits: dict[int, dict[TopicPartition, int]] = {}
        self._consumer: Consumer | None = None
        self._value_schema = deserializer.schema if isinstance(deserializer, _ValueOnly) else None
        self._opened = False
        self.failures_emitted = 0
        """Undecodable records emitted as KafkaDeserializationFailure (policy EMIT_FAILURE)."""

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def consumer(self) -> Consumer:
        """The consumer, created on first use."""
        if self._consumer is None:
            from confluent_kafka import Consumer

            self._consumer = Consumer(self.consumer_config)
        return self._consumer

    def start(self) -> None:
        """Open the deserializer."""
        if not self._opened:
            self._opened = True
            self.deserializer.open()

    def close(self) -> None:
        """Close the consumer (no offsets are committed on close)."""
        if self._consumer is not None:
            try:
                self._consumer.close()
            finally:
                self._consumer = None

    # -- splits -----------------------------------------------------------------------------
    def add_splits(self, splits: list[KafkaPartitionSplit]) -> None:
        """Assign partitions at their split offsets (from the enumerator or a checkpoint)."""
        from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, OFFSET_STORED
        from confluent_kafka import TopicPartition as TP

        to_assign = []
        for split in splits:
            tp = split.topic_partition
            if tp in self.splits:
                logger.warning("partition %s-%s assigned twice; ignoring", *tp)
                continue
            state = _SplitState(split, split.starting_offset)
            if split.is_exhausted():
                self.finished.append(state)
                continue
            self.splits[tp] = state
            start = split.starting_offset
            if start == EARLIEST_OFFSET:
                start = OFFSET_BEGINNING
            elif start == LATEST_OFFSET:
                start = OFFSET_END
            elif start == COMMITTED_OFFSET:
                start = OFFSET_STORED
            elif start < 0:
                msg = f"invalid starting offset {start} for Kafka partition {split.split_id()}"
                raise ConnectorError(msg, subtask_index=self.context.index_of_subtask())
            to_assign.append(TP(split.topic, split.partition, start))
            self._outputs_pending = True
        if to_assign:
            self.consumer.incremental_assign(to_assign)
            logger.info(
                "subtask %d reads Kafka partitions %s",
                self.context.index_of_subtask(),
                ", ".join(f"{t.topic}-{t.partition}@{t.offset}" for t in to_assign),
            )

    def notify_no_more_splits(self) -> None:
        """No more partitions will come; finish once the bounded ones are read."""
        self.no_more_splits = True

    def _finish(self, state: _SplitState) -> None:
        from confluent_kafka import TopicPartition as TP

        tp = state.split.topic_partition
        if self.splits.pop(tp, None) is not None:
            self.consumer.incremental_unassign([TP(tp[0], tp[1])])
        self.finished.append(state)

    # -- reading ----------------------------------------------------------------------------
    def poll_next(self, output: ReaderOutput) -> InputStatus:
        """Emit the records ready now (up to ``max.poll.records``), per partition."""
        if self.finished:
            for state in self.finished:
                output.release_output_for_split(state.split_id)
            self.finished.clear()
        if self._outputs_pending:
            # every assigned partition gets its output (and watermark generator) before
            # any record is emitted: a partition whose first records have not been
            # fetched yet must hold back the watermark (until it goes idle), or its
            # records would be late behind a partition fetched earlier
            self._outputs_pending = False
            for state in self.splits.values():
                if state.output_owner is not output:
                    state.output = output.create_output_for_split(state.split_id)
                    state.output_owner = output
        if not self.splits:
            if self.no_more_splits:
                return InputStatus.END_OF_INPUT
            return InputStatus.NOTHING_AVAILABLE
        messages = self.consumer.consume(self.max_poll_records, 0)
        if not messages:
            return InputStatus.NOTHING_AVAILABLE
        # group by partition, keeping each partition's order
        groups: dict[Any, list[Any]] = {}  # (topic, partition) -> messages
        events: list[Any] = []
        for m in messages:
            if m.error() is not None:
                events.append(m)
                continue
            tp = (m.topic(), m.partition())
            group = groups.get(tp)
            if group is None:
                groups[tp] = [m]
            else:
                group.append(m)
        for tp, group in groups.items():
            split_state = self.splits.get(tp)
            if split_state is None:
                continue  # a message of a partition unassigned meanwhile
            self._emit(split_state, group, output)
        for m in events:  # after the records: an end-of-partition event follows them
            self._handle_error_event(m)
        if self.finished:
            for state in self.finished:
                output.release_output_for_split(state.split_id)
            self.finished.clear()
        if not self.splits and self.no_more_splits:
            return InputStatus.END_OF_INPUT
        return InputStatus.MORE_AVAILABLE

    def _emit(self, state: _SplitState, group: list[Any], output: ReaderOutput) -> None:
        stop = state.split.stopping_offset
        if stop is not None and group[-1].offset() >= stop:
            group = [m for m in group if m.offset() < stop]
            done = True
        else:
            done = False
        if group:
            values: list[Any] = []
            timestamps: list[int] = []
            schema = self._value_schema
            if schema is not None:
                try:
                    if type(schema) is ByteArraySchema:
                        values = [m.value() for m in group]
                    else:
                        decode = schema.deserialize
                        values = [decode(m.value()) for m in group]
                    timestamps = [
                        ts[1] if ts[0] else _NO_TIMESTAMP for ts in [m.timestamp() for m in group]
                    ]
                except Exception:
                    values, timestamps = self._decode_slow(group)
            else:
                values, timestamps = self._decode_slow(group)
            state.next_offset = group[-1].offset() + 1
            if values:
                if state.output_owner is not output:
                    state.output = output.create_output_for_split(state.split_id)
                    state.output_owner = output
                assert state.output is not None
                state.output.collect_batch(values, timestamps)
        if done:
            self._finish(state)

    def _decode_slow(self, group: list[Any]) -> tuple[list[Any], list[int]]:
        """Decode record by record through the full schema, applying the error policy."""
        values: list[Any] = []
        timestamps: list[int] = []
        deserialize = self.deserializer.deserialize
        for m in group:
            ts_type, ts = m.timestamp()
            ts_ms = ts if ts_type else _NO_TIMESTAMP
            record = KafkaRecord(
                m.topic(),
                m.partition(),
                m.offset(),
                m.key(),
                m.value(),
                m.headers(),
                ts if ts_type else None,
                _TIMESTAMP_TYPES.get(ts_type, TimestampType.NOT_AVAILABLE),
            )
            before = len(values)
            try:
                deserialize(record, values)
            except Exception as e:
                del values[before:]
                if self.error_policy is DeserializationErrorPolicy.FAIL:
                    raise self._deserialization_error(record, e) from e
                self.failures_emitted += 1
                logger.log(
                    logging.WARNING if self.failures_emitted == 1 else logging.DEBUG,
                    "undecodable Kafka record at %s-%d offset %d emitted as a "
                    "KafkaDeserializationFailure (%d so far): %s: %s",
                    record.topic,
                    record.partition,
                    record.offset,
                    self.failures_emitted,
                    type(e).__name__,
                    e,
                )
                values.append(KafkaDeserializationFailure(record, type(e).__name__, str(e)))
            timestamps.extend([ts_ms] * (len(values) - before))
        return values, timestamps

    def _deserialization_error(self, record: KafkaRecord, exc: Exception) -> DeserializationError:
        msg = (
            f"could not deserialize the Kafka record at topic {record.topic!r} partition "
            f"{record.partition} offset {record.offset} with {self.deserializer!r}: "
            f"{type(exc).__name__}: {exc}. Fix the producer or the deserializer, or call "
            "set_deserialization_error_policy(DeserializationErrorPolicy.EMIT_FAILURE) on the "
            "KafkaSource builder to emit such records as KafkaDeserializationFailure values"
        )
        return DeserializationError(msg, subtask_index=self.context.index_of_subtask())

    def _handle_error_event(self, m: Any) -> None:
        from confluent_kafka import KafkaError

        err = m.error()
        assert err is not None
        if err.code() == KafkaError._PARTITION_EOF:
            state = self.splits.get((m.topic(), m.partition()))
            if state is not None:
                offset = m.offset()
                if offset is not None and offset > state.next_offset:
                    # control records (transaction markers) at the end were skipped
                    state.next_offset = offset
                stop = state.split.stopping_offset
                if stop is not None and state.next_offset >= stop:
                    self._finish(state)
            return
        if err.fatal() or (not err.retriable() and m.topic() is not None):
            where = f" on partition {m.topic()}-{m.partition()}" if m.topic() else ""
            msg = f"Kafka consumer error{where}: {err.str()}"
            raise ConnectorError(msg, subtask_index=self.context.index_of_subtask())
        logger.warning("transient Kafka consumer error (retrying): %s", err.str())

    # -- checkpoints ------------------------------------------------------------------------
    def snapshot_state(self, checkpoint_id: int) -> list[KafkaPartitionSplit]:
        """The unfinished partitions with the offset of their next record."""
        self._resolve_logical_offsets()
        splits = [state.snapshot() for state in self.splits.values()]
        if self.commit_offsets_on_checkpoint:
            self.pending_commits[checkpoint_id] = {
                s.topic_partition: s.starting_offset for s in splits if s.starting_offset >= 0
            }
            while len(self.pending_commits) > _MAX_PENDING_COMMITS:
                del self.pending_commits[min(self.pending_commits)]
        return splits

    def _resolve_logical_offsets(self) -> None:
        """Replace sentinel offsets of partitions not yet read with the consumer position."""
        from confluent_kafka import TopicPartition as TP

        unresolved = [s for s in self.splits.values() if s.next_offset < 0]
        if not unresolved or self._consumer is None:
            return
        positions = self._consumer.position([TP(*s.split.topic_partition) for s in unresolved])
        for state, pos in zip(unresolved, positions):
            if pos.offset >= 0:
                state.next_offset = pos.offset

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        """Commit the offsets of ``checkpoint_id`` to the group (for monitoring only)."""
        if not self.commit_offsets_on_checkpoint:
            return
        offsets = self.pending_commits.pop(checkpoint_id, None)
        for cid in [c for c in self.pending_commits if c < checkpoint_id]:
            del self.pending_commits[cid]
        if not offsets or self._consumer is None:
            return
        from confluent_kafka import KafkaException
        from confluent_kafka import TopicPartition as TP

        try:
            self._consumer.commit(
                offsets=[TP(t, p, o) for (t, p), o in offsets.items()], asynchronous=True
            )
        except KafkaException as e:  # monitoring only: never fail the job for it
            logger.warning("committing Kafka offsets of checkpoint %d failed: %s", checkpoint_id, e)
