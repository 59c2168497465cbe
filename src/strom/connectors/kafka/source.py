"""KafkaSource: a FLIP-27 source reading Kafka topics, and its builder.

Example::

    from strom.connectors.kafka import KafkaSource, OffsetsInitializer, SimpleStringSchema

    source = (
        KafkaSource.builder()
        .set_bootstrap_servers("localhost:9092")
        .set_topics("orders")
        .set_group_id("order-stats")
        .set_starting_offsets(OffsetsInitializer.earliest())
        .set_value_only_deserializer(SimpleStringSchema())
        .build()
    )
    stream = env.from_source(
        source, WatermarkStrategy.for_monotonous_timestamps(), "orders"
    )

Records carry their Kafka timestamp, so ``WatermarkStrategy`` s without a timestamp
assigner use it. Each partition is one split; see :class:`KafkaSource` for the
guarantees.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from strom.connectors.kafka._config import STROM_ONLY_KEYS, client_config, parse_bool, parse_int
from strom.connectors.kafka._enumerator import (
    KafkaSourceEnumerator,
    KafkaSourceEnumState,
    KafkaSubscriber,
)
from strom.connectors.kafka._reader import KafkaSourceReader
from strom.connectors.kafka._split import KafkaPartitionSplit, TopicPartition
from strom.connectors.kafka.formats import DeserializationSchema
from strom.connectors.kafka.offsets import (
    OffsetResetStrategy,
    OffsetsInitializer,
    _to_topic_partition,
)
from strom.connectors.kafka.serialization import (
    DeserializationErrorPolicy,
    KafkaRecordDeserializationSchema,
)
from strom.connectors.source import (
    Boundedness,
    Source,
    SourceReader,
    SourceReaderContext,
    SplitEnumerator,
    SplitEnumeratorContext,
)
from strom.errors import ConfigurationError, ConnectorError

__all__ = ["KafkaSource", "KafkaSourceBuilder"]

DEFAULT_PARTITION_DISCOVERY_INTERVAL_MS = 300_000
"""Flink's default ``partition.discovery.interval.ms`` (5 minutes) for unbounded sources."""
DEFAULT_MAX_POLL_RECORDS = 1000
"""Records per ``poll_next`` (``max.poll.records``): Strom's usual batch size."""
DEFAULT_CLIENT_ID_PREFIX = "strom-kafka-source"
_EARLIEST = OffsetsInitializer.earliest()
_PLACEHOLDER_GROUP_ID = "strom-kafka-source-no-group"
"""librdkafka needs a group.id even for assign-only consumers; this one never commits."""


@dataclass(frozen=True)
class KafkaSource(Source[Any, KafkaPartitionSplit, KafkaSourceEnumState]):
    """Reads Kafka topic partitions in parallel (Flink's ``KafkaSource``).

    Build with :meth:`builder`; the instance is an immutable, picklable descriptor.

    - **Splits**: one per topic partition. The enumerator discovers partitions (once, or
      every ``partition.discovery.interval.ms``, 5 min by default for unbounded
      sources; 0 disables) and assigns each to one reader with Flink's formula, so
      partitions spread evenly. Partitions discovered after the first discovery are
      read from their earliest offset.
    - **Exactly-once**: a reader's checkpointed state is the next offset of each of its
      partitions; a restored reader resumes exactly there. Offsets are committed to the
      consumer group when a checkpoint completes (``commit.offsets.on.checkpoint``, on
      when a group id is set), for lag monitoring only.
    - **Event time**: each record carries its Kafka timestamp (epoch ms) and is emitted
      through the runtime's per-partition output, so watermarks are per partition; use
      ``WatermarkStrategy.with_idleness`` so an empty partition does not hold back time.
    - **Bounded reads**: ``set_bounded(stopping_offsets)`` ends each partition at its
      stopping offset (exclusive) and disables partition discovery.
    - **Isolation**: librdkafka's default ``isolation.level`` is ``read_committed``:
      records of open or aborted transactions are never read.
    - **Undecodable records**: see :class:`DeserializationErrorPolicy`.

    Attributes mirror the builder calls; read them, do not construct directly.
    """

    bootstrap_servers: str
    subscriber: KafkaSubscriber
    deserializer: KafkaRecordDeserializationSchema[Any]
    group_id: str | None = None
    starting_offsets: OffsetsInitializer = _EARLIEST
    stopping_offsets: OffsetsInitializer | None = None
    boundedness: Boundedness = Boundedness.CONTINUOUS_UNBOUNDED
    error_policy: DeserializationErrorPolicy = DeserializationErrorPolicy.FAIL
    properties: tuple[tuple[str, Any], ...] = ()
    client_id_prefix: str = DEFAULT_CLIENT_ID_PREFIX

    @staticmethod
    def builder() -> KafkaSourceBuilder:
        """Start building a KafkaSource (Flink's ``KafkaSource.builder()``)."""
        return KafkaSourceBuilder()

    # -- derived settings -------------------------------------------------------------------
    @property
    def partition_discovery_interval_ms(self) -> int:
        """Re-discovery period in ms; 0 for bounded sources or when disabled."""
        if self.boundedness is Boundedness.BOUNDED:
            return 0
        return max(
            0,
            parse_int(
                dict(self.properties),
                "partition.discovery.interval.ms",
                DEFAULT_PARTITION_DISCOVERY_INTERVAL_MS,
            ),
        )

    @property
    def commit_offsets_on_checkpoint(self) -> bool:
        """Whether readers commit offsets to the group when checkpoints complete."""
        if self.group_id is None:
            return False
        return parse_bool(dict(self.properties), "commit.offsets.on.checkpoint", True)

    def consumer_config(self, client_id: str) -> dict[str, Any]:
        """The librdkafka consumer configuration of a reader or of the enumerator."""
        return client_config(
            self.bootstrap_servers,
            self.properties,
            group_id=self.group_id or _PLACEHOLDER_GROUP_ID,
            client_id=client_id,
            enable_auto_commit=False,
            enable_auto_offset_store=False,
            enable_partition_eof=True,
            auto_offset_reset=_auto_offset_reset(self.starting_offsets),
        )

    # -- Source -----------------------------------------------------------------------------
    def get_boundedness(self) -> Boundedness:
        """BOUNDED after ``set_bounded``, else CONTINUOUS_UNBOUNDED."""
        return self.boundedness

    def create_reader(self, context: SourceReaderContext) -> SourceReader[Any, KafkaPartitionSplit]:
        """Create the reader of one subtask (one consumer for all its partitions)."""
        return KafkaSourceReader(
            context,
            self.consumer_config(f"{self.client_id_prefix}-{context.index_of_subtask()}"),
            self.deserializer,
            self.error_policy,
            max(1, parse_int(dict(self.properties), "max.poll.records", DEFAULT_MAX_POLL_RECORDS)),
            self.commit_offsets_on_checkpoint,
        )

    def _enumerator(
        self,
        context: SplitEnumeratorContext[KafkaPartitionSplit],
        state: KafkaSourceEnumState | None,
    ) -> KafkaSourceEnumerator:
        return KafkaSourceEnumerator(
            context,
            self.subscriber,
            self.consumer_config(f"{self.client_id_prefix}-enumerator"),
            self.starting_offsets,
            self.stopping_offsets,
            self.partition_discovery_interval_ms,
            state,
        )

    def create_enumerator(
        self, context: SplitEnumeratorContext[KafkaPartitionSplit]
    ) -> SplitEnumerator[KafkaPartitionSplit, KafkaSourceEnumState]:
        """Create a fresh enumerator."""
        return self._enumerator(context, None)

    def restore_enumerator(
        self,
        context: SplitEnumeratorContext[KafkaPartitionSplit],
        checkpoint: KafkaSourceEnumState,
    ) -> SplitEnumerator[KafkaPartitionSplit, KafkaSourceEnumState]:
        """Re-create the enumerator from its checkpoint."""
        return self._enumerator(context, checkpoint)

    def test_connection(self, timeout_s: float = 10.0) -> list[TopicPartition]:
        """Check that the brokers answer and return the partitions this source would read.

        Raises:
            ConnectorError: the brokers did not answer or a listed topic is missing.
        """
        from confluent_kafka import Consumer, KafkaException

        consumer = Consumer(self.consumer_config(f"{self.client_id_prefix}-test"))
        try:
            metadata = consumer.list_topics(timeout=timeout_s)
            return sorted(self.subscriber.subscribed_partitions(metadata.topics))
        except KafkaException as e:
            msg = f"cannot reach Kafka at {self.bootstrap_servers}: {e}"
            raise ConnectorError(msg) from e
        finally:
            consumer.close()


class KafkaSourceBuilder:
    """Builds a :class:`KafkaSource` (Flink's ``KafkaSourceBuilder``); every setter
    validates its argument and returns the builder."""

    def __init__(self) -> None:
        """Start with nothing set (starting offsets default to earliest)."""
        self._bootstrap_servers: str | None = None
        self._subscriber: KafkaSubscriber | None = None
        self._group_id: str | None = None
        self._starting: OffsetsInitializer = OffsetsInitializer.earliest()
        self._stopping: OffsetsInitializer | None = None
        self._boundedness = Boundedness.CONTINUOUS_UNBOUNDED
        self._deserializer: KafkaRecordDeserializationSchema[Any] | None = None
        self._error_policy = DeserializationErrorPolicy.FAIL
        self._properties: dict[str, Any] = {}
        self._client_id_prefix = DEFAULT_CLIENT_ID_PREFIX

    def set_bootstrap_servers(self, servers: str) -> KafkaSourceBuilder:
        """Brokers to bootstrap from: ``"host:port[,host:port...]"``."""
        if not isinstance(servers, str) or not servers.strip():
            msg = f"bootstrap servers must be a non-empty 'host:port,...' str, got {servers!r}"
            raise ConfigurationError(msg)
        self._bootstrap_servers = servers.strip()
        return self

    def _set_subscriber(self, subscriber: KafkaSubscriber) -> KafkaSourceBuilder:
        if self._subscriber is not None:
            msg = (
                "a KafkaSource reads either set_topics(), set_topic_pattern() or "
                "set_partitions(); call only one of them"
            )
            raise ConfigurationError(msg)
        self._subscriber = subscriber
        return self

    def set_topics(self, *topics: str | Iterable[str]) -> KafkaSourceBuilder:
        """Read all partitions of these topics (``set_topics("a", "b")`` or a list)."""
        names: list[str] = []
        for t in topics:
            names.extend([t] if isinstance(t, str) else list(t))
        if not names or not all(isinstance(t, str) and t for t in names):
            msg = f"set_topics needs one or more non-empty topic names, got {topics!r}"
            raise ConfigurationError(msg)
        return self._set_subscriber(KafkaSubscriber(topics=tuple(dict.fromkeys(names))))

    def set_topic_pattern(self, pattern: str | re.Pattern[str]) -> KafkaSourceBuilder:
        """Read every topic whose full name matches the regex (new topics are discovered)."""
        text = pattern.pattern if isinstance(pattern, re.Pattern) else pattern
        try:
            re.compile(text)
        except (re.error, TypeError) as e:
            msg = f"invalid topic pattern {pattern!r}: {e}"
            raise ConfigurationError(msg) from e
        return self._set_subscriber(KafkaSubscriber(pattern=text))

    def set_partitions(self, partitions: Iterable[Any]) -> KafkaSourceBuilder:
        """Read exactly these ``(topic, partition)`` pairs."""
        tps = sorted({_to_topic_partition(tp) for tp in partitions})
        if not tps:
            msg = "set_partitions needs at least one (topic, partition)"
            raise ConfigurationError(msg)
        return self._set_subscriber(KafkaSubscriber(partitions=tuple(tps)))

    def set_group_id(self, group_id: str) -> KafkaSourceBuilder:
        """The consumer group: for committed offsets and offset commits on checkpoints."""
        if not isinstance(group_id, str) or not group_id:
            msg = f"group id must be a non-empty str, got {group_id!r}"
            raise ConfigurationError(msg)
        self._group_id = group_id
        return self

    def set_starting_offsets(self, initializer: OffsetsInitializer) -> KafkaSourceBuilder:
        """Where each partition starts (default ``OffsetsInitializer.earliest()``)."""
        self._starting = _check_initializer(initializer, "set_starting_offsets")
        return self

    def set_bounded(self, stopping_offsets: OffsetsInitializer) -> KafkaSourceBuilder:
        """Make the source BOUNDED: each partition ends at its stopping offset (exclusive)."""
        self._stopping = _check_initializer(stopping_offsets, "set_bounded")
        self._boundedness = Boundedness.BOUNDED
        return self

    def set_unbounded(self, stopping_offsets: OffsetsInitializer) -> KafkaSourceBuilder:
        """Stop partitions at offsets but stay CONTINUOUS_UNBOUNDED (streaming mode)."""
        self._stopping = _check_initializer(stopping_offsets, "set_unbounded")
        self._boundedness = Boundedness.CONTINUOUS_UNBOUNDED
        return self

    def set_deserializer(
        self, deserializer: KafkaRecordDeserializationSchema[Any]
    ) -> KafkaSourceBuilder:
        """Decode whole records (key, value, headers, partition, offset, timestamp)."""
        if not isinstance(deserializer, KafkaRecordDeserializationSchema):
            msg = (
                f"set_deserializer needs a KafkaRecordDeserializationSchema, got {deserializer!r};"
                " for a value-only format use set_value_only_deserializer()"
            )
            raise ConfigurationError(msg)
        self._deserializer = deserializer
        return self

    def set_value_only_deserializer(self, schema: DeserializationSchema[Any]) -> KafkaSourceBuilder:
        """Decode only record values, e.g. with ``SimpleStringSchema()``."""
        self._deserializer = KafkaRecordDeserializationSchema.value_only(schema)
        return self

    def set_deserialization_error_policy(
        self, policy: DeserializationErrorPolicy
    ) -> KafkaSourceBuilder:
        """FAIL (default) or EMIT_FAILURE for records the deserializer cannot decode."""
        if not isinstance(policy, DeserializationErrorPolicy):
            msg = f"expected a DeserializationErrorPolicy, got {policy!r}"
            raise ConfigurationError(msg)
        self._error_policy = policy
        return self

    def set_client_id_prefix(self, prefix: str) -> KafkaSourceBuilder:
        """Prefix of the consumers' ``client.id`` (``{prefix}-{subtask}``)."""
        if not isinstance(prefix, str) or not prefix:
            msg = f"client id prefix must be a non-empty str, got {prefix!r}"
            raise ConfigurationError(msg)
        self._client_id_prefix = prefix
        return self

    def set_property(self, key: str, value: Any) -> KafkaSourceBuilder:
        """Pass a librdkafka consumer property, or a Strom one.

        Strom reads ``partition.discovery.interval.ms``, ``commit.offsets.on.checkpoint``,
        ``max.poll.records`` and ``client.id.prefix`` itself; everything else goes to
        librdkafka (e.g. ``isolation.level``, ``security.protocol``). ``group.id`` maps
        to :meth:`set_group_id`.
        """
        if not isinstance(key, str) or not key:
            msg = f"property key must be a non-empty str, got {key!r}"
            raise ConfigurationError(msg)
        if key == "group.id":
            return self.set_group_id(value)
        if key == "bootstrap.servers":
            return self.set_bootstrap_servers(value)
        if key == "client.id.prefix":
            return self.set_client_id_prefix(value)
        if key in ("enable.auto.commit", "enable.auto.offset.store"):
            msg = f"{key!r} is managed by the KafkaSource (offsets follow checkpoints)"
            raise ConfigurationError(msg)
        if key in STROM_ONLY_KEYS:
            probe = {key: value}
            if key == "commit.offsets.on.checkpoint":
                parse_bool(probe, key, True)
            else:
                parse_int(probe, key, 0)
        self._properties[key] = value
        return self

    def set_properties(self, properties: Mapping[str, Any]) -> KafkaSourceBuilder:
        """Call :meth:`set_property` for every item."""
        for k, v in properties.items():
            self.set_property(k, v)
        return self

    def build(self) -> KafkaSource:
        """Validate and build the source.

        Raises:
            ConfigurationError: bootstrap servers, topics or deserializer missing, or
                committed offsets without a group id.
        """
        if self._bootstrap_servers is None:
            msg = "KafkaSource needs set_bootstrap_servers()"
            raise ConfigurationError(msg)
        if self._subscriber is None:
            msg = "KafkaSource needs set_topics(), set_topic_pattern() or set_partitions()"
            raise ConfigurationError(msg)
        if self._deserializer is None:
            msg = "KafkaSource needs set_value_only_deserializer() or set_deserializer()"
            raise ConfigurationError(msg)
        from strom.connectors.kafka.offsets import _Committed

        uses_committed = isinstance(self._starting, _Committed) or isinstance(
            self._stopping, _Committed
        )
        if uses_committed and self._group_id is None:
            msg = "OffsetsInitializer.committed_offsets() needs set_group_id()"
            raise ConfigurationError(msg)
        return KafkaSource(
            bootstrap_servers=self._bootstrap_servers,
            subscriber=self._subscriber,
            deserializer=self._deserializer,
            group_id=self._group_id,
            starting_offsets=self._starting,
            stopping_offsets=self._stopping,
            boundedness=self._boundedness,
            error_policy=self._error_policy,
            properties=tuple(sorted(self._properties.items())),
            client_id_prefix=self._client_id_prefix,
        )


def _auto_offset_reset(initializer: OffsetsInitializer) -> str:
    """librdkafka's ``auto.offset.reset`` for an initializer (``error`` for NONE)."""
    strategy = initializer.get_auto_offset_reset_strategy()
    return "error" if strategy is OffsetResetStrategy.NONE else strategy.value


def _check_initializer(initializer: Any, api: str) -> OffsetsInitializer:
    if not isinstance(initializer, OffsetsInitializer):
        msg = (
            f"{api} needs an OffsetsInitializer (e.g. OffsetsInitializer.latest()), "
            f"got {initializer!r}"
        )
        raise ConfigurationError(msg)
    return initializer
