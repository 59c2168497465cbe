"""KafkaWriter and KafkaCommitter: NONE, AT_LEAST_ONCE and EXACTLY_ONCE delivery.

Mirrors Flink's ``KafkaWriter`` / ``KafkaCommitter``. EXACTLY_ONCE is a two-phase commit
over Kafka transactions, one per checkpoint and subtask::

    write_batch        records go into transaction T(c) = "{prefix}-{subtask}-{c}"
    prepare_commit     (before the barrier) flush T(c); hand over KafkaCommittable(T(c));
                       the next record opens T(c+1) in a new producer
    snapshot_state     KafkaWriterState(prefix, subtask, c+1): where lingering ids start
    commit             (checkpoint complete) commit T(c): through the live producer if it
                       is in this process, else by producer id/epoch over the wire
    restore            fence T(c+1), T(c+2), ... (aborting what the failed attempt left
                       open) until an id the broker never saw; then commit the restored
                       committables

A producer whose transaction is pre-committed stays in a process-wide registry until its
committer commits it: closing a librdkafka producer aborts its open transaction, so the
producer of a pre-committed transaction is never closed before the commit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strom.connectors.kafka._txn_client import (
    KafkaProtocolError,
    TransactionCoordinatorClient,
)
from strom.connectors.kafka.serialization import _BuiltSerializationSchema as _Built
from strom.connectors.sink import CommitRequest, Committer, SinkWriter, SinkWriterContext
from strom.errors import ConnectorError

if TYPE_CHECKING:
    from confluent_kafka import Producer

    from strom.connectors.kafka.sink import KafkaSink

__all__ = [
    "KafkaCommittable",
    "KafkaCommitter",
    "KafkaWriter",
    "KafkaWriterState",
    "transactional_id",
]

logger = logging.getLogger(__name__)

_TXN_CALL_TIMEOUT_S = 60.0  # init/commit/abort of one transaction (librdkafka retries inside)
_CLOSE_TIMEOUT_S = 5.0  # closing a producer after failure must not hang the task


def transactional_id(prefix: str, subtask_index: int, counter: int) -> str:
    """The transactional id of ``subtask_index``'s ``counter``-th transaction."""
    return f"{prefix}-{subtask_index}-{counter}"


@dataclass(frozen=True)
class KafkaCommittable:
    """A pre-committed transaction to commit when its checkpoint completes.

    Attributes:
        transactional_id: the transaction's id (``{prefix}-{subtask}-{counter}``).
        subtask_index: the writer that produced it.
    """

    transactional_id: str
    subtask_index: int


@dataclass(frozen=True)
class KafkaWriterState:
    """A writer's checkpointed state (EXACTLY_ONCE only).

    Attributes:
        transactional_id_prefix: the sink's prefix.
        subtask_index: the writer's subtask.
        next_counter: the counter of the first transaction not covered by a committable
            of this or an earlier checkpoint; ids from here on are aborted on restore.
        version: snapshot format version.
    """

    transactional_id_prefix: str
    subtask_index: int
    next_counter: int
    version: int = 1


class _ProducerRegistry:
    """Producers of pre-committed transactions in this process, by transactional id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._producers: dict[str, Producer] = {}

    def put(self, tid: str, producer: Producer) -> None:
        with self._lock:
            self._producers[tid] = producer

    def pop(self, tid: str) -> Producer | None:
        with self._lock:
            return self._producers.pop(tid, None)

    def __contains__(self, tid: str) -> bool:
        with self._lock:
            return tid in self._producers


PRECOMMITTED = _ProducerRegistry()
"""The process-wide registry of producers holding pre-committed transactions."""


def _close_producer(producer: Producer) -> None:
    try:
        producer.close(_CLOSE_TIMEOUT_S)  # type: ignore[call-arg]
    except TypeError:  # pragma: no cover - older confluent-kafka without a timeout arg
        producer.close()
    except Exception as e:  # closing after a failure: nothing left to save
        logger.debug("closing a Kafka producer failed: %s", e)


class KafkaWriter(SinkWriter[Any, KafkaCommittable]):
    """Writes one subtask's records to Kafka (see the module docstring).

    Args:
        sink: the sink descriptor.
        context: the writer's subtask.
        recovered_states: writer states to restore (EXACTLY_ONCE), possibly of other
            subtasks after rescaling; their lingering transactions are aborted.

    Raises:
        ConnectorError: lingering transactions could not be aborted.
    """

    def __init__(
        self,
        sink: KafkaSink,
        context: SinkWriterContext,
        recovered_states: list[KafkaWriterState],
    ) -> None:
        from strom.connectors.kafka.sink import DeliveryGuarantee

        self.sink = sink
        self.context = context
        self.subtask_index = context.subtask_index
        self.guarantee = sink.delivery_guarantee
        self.exactly_once = self.guarantee is DeliveryGuarantee.EXACTLY_ONCE
        self.serializer = sink.record_serializer
        self.serializer.open()
        self._error: str | None = None
        self._producer: Producer | None = None
        self._tid: str | None = None
        self._has_records = False
        self.records_written = 0
        self.counter = 1
        if self.exactly_once:
            prefix = sink.transactional_id_prefix
            assert prefix is not None
            self.prefix = prefix
            own = [
                s
                for s in recovered_states
                if s.subtask_index == self.subtask_index and s.transactional_id_prefix == prefix
            ]
            self.counter = max((s.next_counter for s in own), default=1)
            starts = {self.subtask_index: self.counter}
            for s in recovered_states:
                if s.transactional_id_prefix == prefix and s.subtask_index != self.subtask_index:
                    starts[s.subtask_index] = min(
                        starts.get(s.subtask_index, s.next_counter), s.next_counter
                    )
            self._abort_lingering(starts)

    # -- producers ----------------------------------------------------------------------------
    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None and self._error is None:
            where = f" to {msg.topic()}" if msg is not None and msg.topic() else ""
            self._error = f"{err.str() if hasattr(err, 'str') else err}{where}"

    def _producer_config(self, tid: str | None) -> dict[str, Any]:
        conf = self.sink.producer_config(self.subtask_index, tid)
        conf["on_delivery"] = self._on_delivery
        conf["delivery.report.only.error"] = True
        return conf

    def _ensure_producer(self) -> Producer:
        producer = self._producer
        if producer is not None:
            return producer
        from confluent_kafka import KafkaException, Producer

        if not self.exactly_once:
            producer = self._producer = Producer(self._producer_config(None))
            return producer
        tid = transactional_id(self.prefix, self.subtask_index, self.counter)
        producer = Producer(self._producer_config(tid))
        try:
            producer.init_transactions(_TXN_CALL_TIMEOUT_S)
            producer.begin_transaction()
        except KafkaException as e:
            _close_producer(producer)
            msg = f"could not start Kafka transaction {tid!r}: {e}"
            raise self._connector_error(msg) from e
        self._producer, self._tid, self._has_records = producer, tid, False
        return producer

    def _abort_lingering(self, starts: dict[int, int]) -> None:
        """Fence ids ``{prefix}-{subtask}-{c}`` for c >= start until one was never used."""
        client = TransactionCoordinatorClient(
            self.sink.producer_config(self.subtask_index, None), _TXN_CALL_TIMEOUT_S
        )
        timeout_ms = int(self.sink.transaction_timeout_ms)
        try:
            for subtask, start in sorted(starts.items()):
                counter = start
                while True:
                    tid = transactional_id(self.prefix, subtask, counter)
                    live = PRECOMMITTED.pop(tid)
                    if live is not None:  # a zombie of an earlier attempt in this process
                        _close_producer(live)
                    _pid, epoch = client.init_producer_id(tid, timeout_ms)
                    if epoch == 0:  # the broker never saw this id: nothing after it either
                        break
                    logger.info("aborted lingering Kafka transaction %r", tid)
                    counter += 1
        except ConnectorError as e:
            msg = f"could not abort lingering Kafka transactions of an earlier attempt: {e}"
            raise self._connector_error(msg) from e
        finally:
            client.close()

    # -- writing -------------------------------------------------------------------------------
    def write(self, value: Any, timestamp_ms: int | None) -> None:
        """Write one record."""
        self.write_batch([value], None if timestamp_ms is None else [timestamp_ms])

    def write_batch(self, values: list[Any], timestamps_ms: list[int] | None) -> None:
        """Serialize and produce a batch (asynchronously; errors surface on later calls).

        Raises:
            ConnectorError: an earlier record could not be delivered.
        """
        if self._error is not None:
            self._raise_delivery_error()
        producer = self._ensure_producer()
        fast = self.serializer.fast_path() if isinstance(self.serializer, _Built) else None
        if fast is not None:
            n = self._write_fast(producer, fast, values, timestamps_ms)
        else:
            n = self._write_records(producer, values, timestamps_ms)
        if n:
            self._has_records = True
            self.records_written += n
        producer.poll(0)

    def _write_fast(
        self,
        producer: Producer,
        fast: tuple[str, Callable[[Any], bytes | None], Callable[[Any], bytes | None] | None],
        values: list[Any],
        timestamps_ms: list[int] | None,
    ) -> int:
        """Fixed topic, no headers, no partitioner: produce without record objects."""
        topic, value_fn, key_fn = fast
        produce = producer.produce
        for i, value in enumerate(values):
            key = None if key_fn is None else key_fn(value)
            ts = 0 if timestamps_ms is None else timestamps_ms[i]  # 0: "now" for librdkafka
            while True:
                try:
                    produce(topic, value_fn(value), key, timestamp=ts if ts > 0 else 0)
                    break
                except BufferError:  # local queue full: serve delivery reports, then retry
                    producer.poll(0.05)
        return len(values)

    def _write_records(
        self, producer: Producer, values: list[Any], timestamps_ms: list[int] | None
    ) -> int:
        """The general path: one KafkaProducerRecord per element."""
        produce = producer.produce
        serialize = self.serializer.serialize
        n = 0
        for i, value in enumerate(values):
            rec = serialize(value, None if timestamps_ms is None else timestamps_ms[i])
            if rec is None:
                continue
            kwargs: dict[str, Any] = {}
            if rec.partition is not None:
                kwargs["partition"] = rec.partition
            if rec.timestamp_ms is not None:
                kwargs["timestamp"] = rec.timestamp_ms
            if rec.headers:
                kwargs["headers"] = rec.headers
            while True:
                try:
                    produce(rec.topic, rec.value, rec.key, **kwargs)
                    break
                except BufferError:  # local queue full: serve delivery reports, then retry
                    producer.poll(0.05)
            n += 1
        return n

    def _flush_producer(self) -> None:
        producer = self._producer
        if producer is None:
            return
        remaining = producer.flush()
        if remaining:
            msg = f"{remaining} Kafka record(s) were not delivered by flush()"
            raise self._connector_error(msg)
        if self._error is not None:
            self._raise_delivery_error()

    def flush(self, end_of_input: bool) -> None:
        """Wait until every record is acknowledged (AT_LEAST_ONCE, EXACTLY_ONCE; NONE only
        at end of input).

        Raises:
            ConnectorError: a record could not be delivered.
        """
        from strom.connectors.kafka.sink import DeliveryGuarantee

        if self.guarantee is not DeliveryGuarantee.NONE or end_of_input:
            self._flush_producer()

    def prepare_commit(self) -> list[KafkaCommittable]:
        """EXACTLY_ONCE: end writing into the current transaction and return it."""
        if not self.exactly_once or self._producer is None or not self._has_records:
            return []
        self._flush_producer()
        producer, tid = self._producer, self._tid
        assert tid is not None
        PRECOMMITTED.put(tid, producer)
        self._producer, self._tid, self._has_records = None, None, False
        self.counter += 1
        return [KafkaCommittable(tid, self.subtask_index)]

    def snapshot_state(self, checkpoint_id: int) -> list[Any]:
        """EXACTLY_ONCE: the counter where this writer's uncommitted ids start."""
        if not self.exactly_once:
            return []
        return [KafkaWriterState(self.prefix, self.subtask_index, self.counter)]

    def close(self) -> None:
        """Abort the open (not pre-committed) transaction and close the producer."""
        producer, self._producer = self._producer, None
        if producer is None:
            return
        if self.exactly_once:
            try:
                producer.abort_transaction(_CLOSE_TIMEOUT_S)
            except Exception as e:
                logger.debug("aborting Kafka transaction %r on close failed: %s", self._tid, e)
        _close_producer(producer)

    # -- errors --------------------------------------------------------------------------------
    def _raise_delivery_error(self) -> None:
        msg = f"a Kafka record could not be delivered: {self._error}"
        raise self._connector_error(msg)

    def _connector_error(self, msg: str) -> ConnectorError:
        c = self.context
        return ConnectorError(
            msg,
            job_id=c.job_id or None,
            operator_uid=c.operator_uid or None,
            subtask_index=c.subtask_index,
        )


class KafkaCommitter(Committer[KafkaCommittable]):
    """Commits pre-committed Kafka transactions (idempotently).

    A committable whose producer lives in this process is committed through it. Any
    other (the writer's process died, or the job restarted) is committed over the wire
    with the producer id and epoch the transaction coordinator reports, which is how
    Flink resumes transactions. Committing a committed transaction again is a no-op.

    A transaction that was aborted in the meantime (``transaction.timeout.ms`` expired
    during a long outage, or someone reused the transactional id) cannot be committed:
    its records are lost. This is logged as an ERROR, as in Flink, and not raised, since
    raising would fail every restart from this checkpoint.

    Args:
        sink: the sink descriptor.
    """

    def __init__(self, sink: KafkaSink) -> None:
        self.sink = sink
        self._client: TransactionCoordinatorClient | None = None

    def commit(self, requests: list[CommitRequest[KafkaCommittable]]) -> None:
        """Commit every request.

        Raises:
            ConnectorError: a transaction could not be committed and may still be (the
                broker was unreachable or failed the commit); the job restarts and retries.
        """
        from confluent_kafka import KafkaException

        for request in requests:
            c = request.committable
            producer = PRECOMMITTED.pop(c.transactional_id)
            if producer is None:
                self._commit_recovered(c)
                continue
            try:
                producer.commit_transaction(_TXN_CALL_TIMEOUT_S)
            except KafkaException as e:
                err = e.args[0] if e.args else None
                if err is not None and getattr(err, "retriable", lambda: False)():
                    PRECOMMITTED.put(c.transactional_id, producer)
                    msg = f"committing Kafka transaction {c.transactional_id!r} failed, retry: {e}"
                    raise ConnectorError(msg, subtask_index=c.subtask_index) from e
                _close_producer(producer)
                msg = f"committing Kafka transaction {c.transactional_id!r} failed: {e}"
                raise ConnectorError(msg, subtask_index=c.subtask_index) from e
            _close_producer(producer)
            logger.debug("committed Kafka transaction %r", c.transactional_id)

    def _commit_recovered(self, c: KafkaCommittable) -> None:
        if self._client is None:
            self._client = TransactionCoordinatorClient(
                self.sink.producer_config(c.subtask_index, None), _TXN_CALL_TIMEOUT_S
            )
        tid = c.transactional_id
        desc = self._client.describe_transaction(tid)
        if desc is None:
            self._lost(tid, "the broker does not know the transactional id")
            return
        if desc.state == "CompleteCommit":
            logger.debug("Kafka transaction %r was already committed", tid)
            return
        if desc.state not in ("Ongoing", "PrepareCommit"):
            self._lost(tid, f"its state is {desc.state}")
            return
        try:
            self._client.end_transaction(tid, desc.producer_id, desc.producer_epoch, True)
        except KafkaProtocolError as e:
            self._lost(tid, str(e))
            return
        logger.info("committed recovered Kafka transaction %r", tid)

    def _lost(self, tid: str, why: str) -> None:
        logger.error(
            "Kafka transaction %r of a completed checkpoint cannot be committed (%s): its "
            "records are lost. Make transaction.timeout.ms (and the broker's "
            "transaction.max.timeout.ms) longer than the longest expected downtime, and use "
            "a transactional id prefix that no other job uses.",
            tid,
            why,
        )

    def close(self) -> None:
        """Close the recovery client."""
        if self._client is not None:
            self._client.close()
            self._client = None
