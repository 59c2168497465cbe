"""Kafka connector: :class:`KafkaSource` and :class:`KafkaSink` (Flink's Kafka connector).

Built on librdkafka (``confluent-kafka``) and Strom's FLIP-27 source / Sink V2 contracts.

- :class:`KafkaSource` (:class:`KafkaSourceBuilder`): one split per partition, even
  assignment, periodic partition discovery, offsets as checkpointed state, bounded reads,
  per-partition event time, :class:`OffsetsInitializer` for start and stop offsets.
- :class:`KafkaSink` (:class:`KafkaSinkBuilder`): :class:`DeliveryGuarantee` NONE,
  AT_LEAST_ONCE or EXACTLY_ONCE (Kafka transactions committed with checkpoints).
- Records: :class:`KafkaRecordDeserializationSchema`, :class:`KafkaRecordSerializationSchema`,
  :class:`KafkaRecord`, :class:`KafkaProducerRecord`; undecodable records follow a
  :class:`DeserializationErrorPolicy` (:class:`KafkaDeserializationFailure`,
  :class:`DeserializationFailureRouter`).
- Formats: :class:`ByteArraySchema`, :class:`SimpleStringSchema`, JSON
  (:class:`JsonSerializationSchema`, :class:`JsonDeserializationSchema`), Avro without a
  registry (:class:`AvroSerializationSchema`, :class:`AvroDeserializationSchema`).

Example::

    source = (
        KafkaSource.builder()
        .set_bootstrap_servers("localhost:9092")
        .set_topics("in")
        .set_value_only_deserializer(SimpleStringSchema())
        .build()
    )
    sink = (
        KafkaSink.builder()
        .set_bootstrap_servers("localhost:9092")
        .set_record_serializer(
            KafkaRecordSerializationSchema.builder()
            .set_topic("out")
            .set_value_serialization_schema(SimpleStringSchema())
            .build()
        )
        .set_delivery_guarantee(DeliveryGuarantee.AT_LEAST_ONCE)
        .build()
    )
    env.from_source(source, WatermarkStrategy.no_watermarks(), "in").map(str.upper).sink_to(sink)
"""

from strom.connectors.kafka._split import KafkaPartitionSplit
from strom.connectors.kafka.formats import (
    AvroDeserializationSchema,
    AvroSerializationSchema,
    ByteArraySchema,
    DeserializationSchema,
    JsonDeserializationSchema,
    JsonSerializationSchema,
    SerializationSchema,
    SimpleStringSchema,
)
from strom.connectors.kafka.offsets import (
    OffsetResetStrategy,
    OffsetsInitializer,
    PartitionOffsetsRetriever,
)
from strom.connectors.kafka.serialization import (
    DeserializationErrorPolicy,
    DeserializationFailureRouter,
    KafkaDeserializationFailure,
    KafkaProducerRecord,
    KafkaRecord,
    KafkaRecordDeserializationSchema,
    KafkaRecordSerializationSchema,
    KafkaRecordSerializationSchemaBuilder,
    TimestampType,
)
from strom.connectors.kafka.sink import DeliveryGuarantee, KafkaSink, KafkaSinkBuilder
from strom.connectors.kafka.source import KafkaSource, KafkaSourceBuilder

__all__ = [
    "AvroDeserializationSchema",
    "AvroSerializationSchema",
    "ByteArraySchema",
    "DeliveryGuarantee",
    "DeserializationErrorPolicy",
    "DeserializationFailureRouter",
    "DeserializationSchema",
    "JsonDeserializationSchema",
    "JsonSerializationSchema",
    "KafkaDeserializationFailure",
    "KafkaPartitionSplit",
    "KafkaProducerRecord",
    "KafkaRecord",
    "KafkaRecordDeserializationSchema",
    "KafkaRecordSerializationSchema",
    "KafkaRecordSerializationSchemaBuilder",
    "KafkaSink",
    "KafkaSinkBuilder",
    "KafkaSource",
    "KafkaSourceBuilder",
    "OffsetResetStrategy",
    "OffsetsInitializer",
    "PartitionOffsetsRetriever",
    "SerializationSchema",
    "SimpleStringSchema",
    "TimestampType",
]
