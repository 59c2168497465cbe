"""KafkaSink: writes a stream to Kafka with NONE, AT_LEAST_ONCE or EXACTLY_ONCE delivery.

Example::

    from strom.connectors.kafka import (
        DeliveryGuarantee, JsonSerializationSchema, KafkaRecordSerializationSchema, KafkaSink,
    )

    sink = (
        KafkaSink.builder()
        .set_bootstrap_servers("localhost:9092")
        .set_record_serializer(
            KafkaRecordSerializationSchema.builder()
            .set_topic("order-stats")
            .set_value_serialization_schema(JsonSerializationSchema())
            .build()
        )
        .set_delivery_guarantee(DeliveryGuarantee.EXACTLY_ONCE)
        .set_transactional_id_prefix("order-stats-job")
        .build()
    )
    stream.sink_to(sink)
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strom.connectors.kafka._config import client_config, parse_int
from strom.connectors.kafka._writer import (
    KafkaCommittable,
    KafkaCommitter,
    KafkaWriter,
    KafkaWriterState,
)
from strom.connectors.kafka.serialization import KafkaRecordSerializationSchema
from strom.connectors.sink import Committer, Sink, SinkWriter, SinkWriterContext
from strom.errors import ConfigurationError, ConnectorError

__all__ = ["DeliveryGuarantee", "KafkaSink", "KafkaSinkBuilder"]

DEFAULT_TRANSACTION_TIMEOUT_MS = 900_000
"""15 minutes: Kafka brokers' default ``transaction.max.timeout.ms`` (the most they
accept). It bounds how long a failed job may stay down before its pre-committed
transactions are aborted by the broker."""

_PREFIX_RE = re.compile(r"[A-Za-z0-9._\-]+")


class DeliveryGuarantee(enum.Enum):
    """What a sink promises after failures (Flink's ``DeliveryGuarantee``)."""

    NONE = "none"
    """Fire and forget: records in flight at a failure may be lost (or duplicated)."""
    AT_LEAST_ONCE = "at-least-once"
    """Every checkpoint waits for all records to be acknowledged: no loss, duplicates
    possible after a restart."""
    EXACTLY_ONCE = "exactly-once"
    """Records are written in Kafka transactions committed when checkpoints complete:
    ``read_committed`` consumers see every record once. Output becomes visible only
    at checkpoints (or at the end of a bounded job)."""


@dataclass(frozen=True)
class KafkaSink(Sink[Any, KafkaCommittable]):
    """Writes records to Kafka (Flink's ``KafkaSink``); build with :meth:`builder`.

    EXACTLY_ONCE runs one Kafka transaction per checkpoint and subtask with transactional
    id ``{prefix}-{subtask}-{counter}``: it is pre-committed before the checkpoint
    barrier, committed when the checkpoint completes, and on restart the transactions
    the failed attempt left open are aborted (fencing their ids) while those of the
    restored checkpoint are committed. The prefix must be unique per job and stable
    across its restarts. ``transaction.timeout.ms`` (15 min by default) must exceed
    checkpoint interval plus the longest recovery time.

    The producers use the ``murmur2_random`` partitioner by default, so keyed records
    land on the same partitions as with Java clients.

    Attributes mirror the builder calls; read them, do not construct directly.
    """

    bootstrap_servers: str
    record_serializer: KafkaRecordSerializationSchema[Any]
    delivery_guarantee: DeliveryGuarantee = DeliveryGuarantee.NONE
    transactional_id_prefix: str | None = None
    properties: tuple[tuple[str, Any], ...] = ()

    @staticmethod
    def builder() -> KafkaSinkBuilder:
        """Start building a KafkaSink (Flink's ``KafkaSink.builder()``)."""
        return KafkaSinkBuilder()

    @property
    def transaction_timeout_ms(self) -> int:
        """The producers' ``transaction.timeout.ms``."""
        return parse_int(
            dict(self.properties), "transaction.timeout.ms", DEFAULT_TRANSACTION_TIMEOUT_MS
        )

    def producer_config(self, subtask_index: int, transactional_id: str | None) -> dict[str, Any]:
        """The librdkafka producer configuration of one writer (and transaction)."""
        props = dict(self.properties)
        conf = client_config(
            self.bootstrap_servers,
            self.properties,
            client_id=props.get("client.id", f"strom-kafka-sink-{subtask_index}"),
            partitioner=props.get("partitioner", "murmur2_random"),
        )
        if self.delivery_guarantee is not DeliveryGuarantee.NONE:
            conf.setdefault("acks", "all")
        if transactional_id is not None:
            conf["transactional.id"] = transactional_id
            conf["transaction.timeout.ms"] = self.transaction_timeout_ms
        return conf

    def create_writer(self, context: SinkWriterContext) -> SinkWriter[Any, KafkaCommittable]:
        """Create the writer of one subtask (EXACTLY_ONCE: aborts lingering transactions)."""
        return KafkaWriter(self, context, [])

    def restore_writer(
        self, context: SinkWriterContext, recovered_state: list[Any]
    ) -> SinkWriter[Any, KafkaCommittable]:
        """Create a writer after a restart: abort the failed attempt's open transactions."""
        states = [s for s in recovered_state if isinstance(s, KafkaWriterState)]
        return KafkaWriter(self, context, states)

    def create_committer(self) -> Committer[KafkaCommittable] | None:
        """EXACTLY_ONCE: the committer of pre-committed transactions; otherwise None."""
        if self.delivery_guarantee is DeliveryGuarantee.EXACTLY_ONCE:
            return KafkaCommitter(self)
        return None

    def test_connection(self, timeout_s: float = 10.0) -> list[str]:
        """Check that the brokers answer; return the topic names they report.

        Raises:
            ConnectorError: the brokers did not answer.
        """
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        conf = self.producer_config(0, None)
        conf.pop("partitioner", None)
        conf.pop("acks", None)
        try:
            metadata = AdminClient(conf).list_topics(timeout=timeout_s)
        except KafkaException as e:
            msg = f"cannot reach Kafka at {self.bootstrap_servers}: {e}"
            raise ConnectorError(msg) from e
        return sorted(metadata.topics)


class KafkaSinkBuilder:
    """Builds a :class:`KafkaSink` (Flink's ``KafkaSinkBuilder``)."""

    def __init__(self) -> None:
        """Start with nothing set (delivery guarantee NONE, as in Flink)."""
        self._bootstrap_servers: str | None = None
        self._serializer: KafkaRecordSerializationSchema[Any] | None = None
        self._guarantee = DeliveryGuarantee.NONE
        self._prefix: str | None = None
        self._properties: dict[str, Any] = {}

    def set_bootstrap_servers(self, servers: str) -> KafkaSinkBuilder:
        """Brokers to bootstrap from: ``"host:port[,host:port...]"``."""
        if not isinstance(servers, str) or not servers.strip():
            msg = f"bootstrap servers must be a non-empty 'host:port,...' str, got {servers!r}"
            raise ConfigurationError(msg)
        self._bootstrap_servers = servers.strip()
        return self

    def set_record_serializer(
        self, serializer: KafkaRecordSerializationSchema[Any]
    ) -> KafkaSinkBuilder:
        """How elements become records (see ``KafkaRecordSerializationSchema.builder()``)."""
        if not isinstance(serializer, KafkaRecordSerializationSchema):
            msg = (
                f"set_record_serializer needs a KafkaRecordSerializationSchema, got {serializer!r};"
                " build one with KafkaRecordSerializationSchema.builder()"
            )
            raise ConfigurationError(msg)
        self._serializer = serializer
        return self

    def set_delivery_guarantee(self, guarantee: DeliveryGuarantee) -> KafkaSinkBuilder:
        """NONE (default), AT_LEAST_ONCE or EXACTLY_ONCE."""
        if not isinstance(guarantee, DeliveryGuarantee):
            msg = f"expected a DeliveryGuarantee, got {guarantee!r}"
            raise ConfigurationError(msg)
        self._guarantee = guarantee
        return self

    def set_transactional_id_prefix(self, prefix: str) -> KafkaSinkBuilder:
        """Prefix of the transactional ids (EXACTLY_ONCE); unique per job, stable across
        its restarts. Letters, digits, ``.``, ``_`` and ``-``."""
        if not isinstance(prefix, str) or not _PREFIX_RE.fullmatch(prefix):
            msg = (
                f"transactional id prefix must be a non-empty str of letters, digits, '.', "
                f"'_' and '-', got {prefix!r}"
            )
            raise ConfigurationError(msg)
        self._prefix = prefix
        return self

    def set_property(self, key: str, value: Any) -> KafkaSinkBuilder:
        """Pass a librdkafka producer property (e.g. ``linger.ms``, ``compression.type``,
        ``transaction.timeout.ms``)."""
        if not isinstance(key, str) or not key:
            msg = f"property key must be a non-empty str, got {key!r}"
            raise ConfigurationError(msg)
        if key == "bootstrap.servers":
            return self.set_bootstrap_servers(value)
        if key == "transactional.id":
            msg = "the KafkaSink sets transactional.id itself; use set_transactional_id_prefix()"
            raise ConfigurationError(msg)
        if key == "transaction.timeout.ms":
            probe = parse_int({key: value}, key, 1)
            if probe <= 0:
                msg = f"transaction.timeout.ms must be > 0, got {value!r}"
                raise ConfigurationError(msg)
        self._properties[key] = value
        return self

    def set_kafka_producer_config(self, properties: Mapping[str, Any]) -> KafkaSinkBuilder:
        """Call :meth:`set_property` for every item (Flink's ``setKafkaProducerConfig``)."""
        for k, v in properties.items():
            self.set_property(k, v)
        return self

    def build(self) -> KafkaSink:
        """Validate and build the sink.

        Raises:
            ConfigurationError: bootstrap servers or serializer missing, or EXACTLY_ONCE
                without a transactional id prefix.
        """
        if self._bootstrap_servers is None:
            msg = "KafkaSink needs set_bootstrap_servers()"
            raise ConfigurationError(msg)
        if self._serializer is None:
            msg = "KafkaSink needs set_record_serializer()"
            raise ConfigurationError(msg)
        if self._guarantee is DeliveryGuarantee.EXACTLY_ONCE and self._prefix is None:
            msg = (
                "DeliveryGuarantee.EXACTLY_ONCE needs set_transactional_id_prefix(), unique to "
                "this job and stable across its restarts"
            )
            raise ConfigurationError(msg)
        return KafkaSink(
            bootstrap_servers=self._bootstrap_servers,
            record_serializer=self._serializer,
            delivery_guarantee=self._guarantee,
            transactional_id_prefix=self._prefix,
            properties=tuple(sorted(self._properties.items())),
        )
