"""Record-level (de)serialization for Kafka: keys, values, headers, topics, timestamps.

Mirrors Flink's ``KafkaRecordDeserializationSchema`` and ``KafkaRecordSerializationSchema``
(with its builder). The value-level formats live in :mod:`strom.connectors.kafka.formats`.

Deserialization failures follow a :class:`DeserializationErrorPolicy`, never silently:

- ``FAIL`` (default): the job fails with a ``DeserializationError`` naming the topic,
  partition and offset.
- ``EMIT_FAILURE``: the source emits a :class:`KafkaDeserializationFailure` in place of
  the record (a source cannot write to a side output itself). Put a
  :class:`DeserializationFailureRouter` right after the source to move the failures into
  a side output::

      FAILURES = OutputTag("kafka-failures")
      records = env.from_source(source, strategy, "kafka").process(
          DeserializationFailureRouter(FAILURES)
      )
      failures = records.get_side_output(FAILURES)   # KafkaDeserializationFailure values
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from strom.connectors.kafka.formats import DeserializationSchema, SerializationSchema
from strom.datastream.functions import ProcessFunction
from strom.datastream.output_tag import OutputTag
from strom.errors import ConfigurationError

__all__ = [
    "DeserializationErrorPolicy",
    "DeserializationFailureRouter",
    "KafkaDeserializationFailure",
    "KafkaProducerRecord",
    "KafkaRecord",
    "KafkaRecordDeserializationSchema",
    "KafkaRecordSerializationSchema",
    "KafkaRecordSerializationSchemaBuilder",
    "TimestampType",
]

T = TypeVar("T")
"""The type of the stream's records."""

Headers = list[tuple[str, bytes | None]]
"""Kafka record headers: ordered ``(name, value)`` pairs; names may repeat."""


class TimestampType(enum.Enum):
    """What a Kafka record timestamp means (Kafka's ``TimestampType``)."""

    NOT_AVAILABLE = 0
    CREATE_TIME = 1
    """Set by the producer."""
    LOG_APPEND_TIME = 2
    """Set by the broker when it appended the record."""


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """One consumed Kafka record (Kafka's ``ConsumerRecord``), as bytes.

    Attributes:
        topic: the topic.
        partition: the partition.
        offset: the record's offset in the partition.
        key: the key bytes or None.
        value: the value bytes or None (a tombstone).
        headers: the headers, or None if the record has none.
        timestamp_ms: the Kafka timestamp in epoch ms, or None if not available.
        timestamp_type: what the timestamp means.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers | None = None
    timestamp_ms: int | None = None
    timestamp_type: TimestampType = TimestampType.CREATE_TIME


class DeserializationErrorPolicy(enum.Enum):
    """What a KafkaSource does with a record its deserializer cannot decode."""

    FAIL = "fail"
    """Fail the job with a ``DeserializationError`` naming topic, partition and offset."""
    EMIT_FAILURE = "emit_failure"
    """Emit a :class:`KafkaDeserializationFailure` in place of the record; route it to a
    side output with :class:`DeserializationFailureRouter`."""


@dataclass(frozen=True, slots=True)
class KafkaDeserializationFailure:
    """A record that could not be deserialized (policy ``EMIT_FAILURE``).

    Attributes:
        record: the raw record (topic, partition, offset, key, value, headers, timestamp).
        error_type: the exception's class name.
        error_message: the exception's message.
    """

    record: KafkaRecord
    error_type: str
    error_message: str


class DeserializationFailureRouter(ProcessFunction[Any, Any]):
    """Moves :class:`KafkaDeserializationFailure` values to a side output.

    Use it directly after a KafkaSource whose policy is ``EMIT_FAILURE``; every other
    value passes through unchanged.

    Args:
        output_tag: the side output that receives the failures.
    """

    def __init__(self, output_tag: OutputTag) -> None:
        """Create the router; see the class docstring."""
        if not isinstance(output_tag, OutputTag):
            msg = f"DeserializationFailureRouter needs an OutputTag, got {output_tag!r}"
            raise ConfigurationError(msg)
        self.output_tag = output_tag

    def process_element(self, value: Any, ctx: ProcessFunction.Context) -> Iterable[Any] | None:
        """Send failures to the side output; pass everything else on."""
        if type(value) is KafkaDeserializationFailure:
            ctx.output(self.output_tag, value)
            return None
        return (value,)


class KafkaRecordDeserializationSchema(abc.ABC, Generic[T]):
    """Turns a :class:`KafkaRecord` into zero or more values (Flink's name).

    Called on the reader's task thread for every record; must be picklable. Use
    :meth:`value_only` for the common case of decoding just the value.
    """

    def open(self) -> None:
        """Called once per reader before the first record."""

    @abc.abstractmethod
    def deserialize(self, record: KafkaRecord, out: list[T]) -> None:
        """Decode ``record`` and append its values to ``out`` (Flink's ``Collector``).

        Append nothing to drop the record. Every appended value gets the record's Kafka
        timestamp.

        Raises:
            Exception: the record is undecodable; the source applies its
                :class:`DeserializationErrorPolicy`.
        """

    @staticmethod
    def value_only(schema: DeserializationSchema[T]) -> KafkaRecordDeserializationSchema[T]:
        """Decode only each record's value with ``schema`` (Flink's ``valueOnly``)."""
        if not isinstance(schema, DeserializationSchema):
            msg = f"value_only needs a DeserializationSchema, got {schema!r}"
            raise ConfigurationError(msg)
        return _ValueOnly(schema)

    @staticmethod
    def key_value(
        key_schema: DeserializationSchema[Any], value_schema: DeserializationSchema[Any]
    ) -> KafkaRecordDeserializationSchema[tuple[Any, Any]]:
        """Decode each record into a ``(key, value)`` tuple."""
        for s in (key_schema, value_schema):
            if not isinstance(s, DeserializationSchema):
                msg = f"key_value needs DeserializationSchemas, got {s!r}"
                raise ConfigurationError(msg)
        return _KeyValue(key_schema, value_schema)


class _ValueOnly(KafkaRecordDeserializationSchema[T]):
    """Decodes the value only; the reader calls ``schema`` directly (no KafkaRecord)."""

    def __init__(self, schema: DeserializationSchema[T]) -> None:
        self.schema = schema

    def deserialize(self, record: KafkaRecord, out: list[T]) -> None:
        out.append(self.schema.deserialize(record.value))  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"KafkaRecordDeserializationSchema.value_only({self.schema!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ValueOnly) and other.schema == self.schema

    def __hash__(self) -> int:
        return hash((_ValueOnly, self.schema))


class _KeyValue(KafkaRecordDeserializationSchema[tuple[Any, Any]]):
    def __init__(
        self, key_schema: DeserializationSchema[Any], value_schema: DeserializationSchema[Any]
    ) -> None:
        self.key_schema = key_schema
        self.value_schema = value_schema

    def deserialize(self, record: KafkaRecord, out: list[tuple[Any, Any]]) -> None:
        out.append(
            (self.key_schema.deserialize(record.key), self.value_schema.deserialize(record.value))
        )

    def __repr__(self) -> str:
        return (
            f"KafkaRecordDeserializationSchema.key_value({self.key_schema!r}, "
            f"{self.value_schema!r})"
        )


@dataclass(frozen=True, slots=True)
class KafkaProducerRecord:
    """A record to produce (Kafka's ``ProducerRecord``).

    Attributes:
        topic: the target topic.
        value: the value bytes, or None for a tombstone.
        key: the key bytes or None (then the partition is chosen without a key).
        partition: an explicit partition, or None for the producer's partitioner
            (``murmur2_random`` by default: the same as Java clients).
        timestamp_ms: the record timestamp in epoch ms, or None for "now".
        headers: headers or None.
    """

    topic: str
    value: bytes | None
    key: bytes | None = None
    partition: int | None = None
    timestamp_ms: int | None = None
    headers: Headers | None = None


class KafkaRecordSerializationSchema(abc.ABC, Generic[T]):
    """Turns a stream element into a :class:`KafkaProducerRecord` (Flink's name).

    Build one with :meth:`builder` or subclass it. Must be picklable; called on the
    writer's task thread for every element.
    """

    def open(self) -> None:
        """Called once per writer before the first element."""

    @abc.abstractmethod
    def serialize(self, element: T, timestamp_ms: int | None) -> KafkaProducerRecord | None:
        """Return the record for ``element``, or None to skip it.

        Args:
            element: the stream element.
            timestamp_ms: its event timestamp (int epoch ms) or None.
        """

    @staticmethod
    def builder() -> KafkaRecordSerializationSchemaBuilder[Any]:
        """Start a builder (Flink's ``KafkaRecordSerializationSchema.builder()``)."""
        return KafkaRecordSerializationSchemaBuilder()


def _as_serializer(schema: Any, what: str) -> Callable[[Any], bytes | None]:
    if isinstance(schema, SerializationSchema):
        return schema.serialize
    if callable(schema):
        fn: Callable[[Any], bytes | None] = schema
        return fn
    msg = (
        f"{what} must be a SerializationSchema or a callable element -> bytes | None, "
        f"got {schema!r}"
    )
    raise ConfigurationError(msg)


class _BuiltSerializationSchema(KafkaRecordSerializationSchema[Any]):
    """What :class:`KafkaRecordSerializationSchemaBuilder` builds."""

    def __init__(
        self,
        topic: str | None,
        topic_selector: Callable[[Any], str] | None,
        key: SerializationSchema[Any] | Callable[[Any], bytes | None] | None,
        value: SerializationSchema[Any] | Callable[[Any], bytes | None],
        headers: Callable[[Any], Headers | Mapping[str, bytes | None] | None] | None,
        partitioner: Callable[[Any, bytes | None, bytes | None, str], int | None] | None,
    ) -> None:
        self.topic = topic
        self.topic_selector = topic_selector
        self.key = key
        self.value = value
        self.headers = headers
        self.partitioner = partitioner
        self._value_fn = _as_serializer(value, "value")
        self._key_fn = None if key is None else _as_serializer(key, "key")

    def fast_path(
        self,
    ) -> tuple[str, Callable[[Any], bytes | None], Callable[[Any], bytes | None] | None] | None:
        """``(topic, value_fn, key_fn)`` when records need nothing else (the writer then
        produces without building a KafkaProducerRecord per element), else None."""
        if self.topic is None or self.headers is not None or self.partitioner is not None:
            return None
        return self.topic, self._value_fn, self._key_fn

    def serialize(self, element: Any, timestamp_ms: int | None) -> KafkaProducerRecord | None:
        topic = self.topic if self.topic_selector is None else self.topic_selector(element)
        if not isinstance(topic, str) or not topic:
            msg = f"the topic selector returned {topic!r} for {element!r}; it must return a str"
            raise ValueError(msg)
        value = self._value_fn(element)
        key = None if self._key_fn is None else self._key_fn(element)
        headers: Headers | None = None
        if self.headers is not None:
            h = self.headers(element)
            if isinstance(h, Mapping):
                headers = list(h.items())
            elif h is not None:
                headers = list(h)
        partition = None
        if self.partitioner is not None:
            partition = self.partitioner(element, key, value, topic)
        if timestamp_ms is not None and timestamp_ms < 0:
            timestamp_ms = None  # Kafka rejects negative timestamps; let the producer stamp it
        return KafkaProducerRecord(topic, value, key, partition, timestamp_ms, headers)

    def __repr__(self) -> str:
        target = self.topic if self.topic_selector is None else self.topic_selector
        return f"KafkaRecordSerializationSchema(topic={target!r}, value={self.value!r})"


class KafkaRecordSerializationSchemaBuilder(Generic[T]):
    """Builds a :class:`KafkaRecordSerializationSchema` (Flink's builder).

    Example::

        KafkaRecordSerializationSchema.builder()
            .set_topic("out")
            .set_key_serialization_schema(lambda e: e["id"].encode())
            .set_value_serialization_schema(JsonSerializationSchema())
            .build()

    The record timestamp is the element's event timestamp when it has one (as in Flink).
    """

    def __init__(self) -> None:
        """Start with nothing set."""
        self._topic: str | None = None
        self._topic_selector: Callable[[Any], str] | None = None
        self._key: Any = None
        self._value: Any = None
        self._headers: Any = None
        self._partitioner: Any = None

    def set_topic(self, topic: str) -> KafkaRecordSerializationSchemaBuilder[T]:
        """Write every record to ``topic``."""
        if not isinstance(topic, str) or not topic:
            msg = f"set_topic needs a non-empty str, got {topic!r}"
            raise ConfigurationError(msg)
        self._topic, self._topic_selector = topic, None
        return self

    def set_topic_selector(
        self, selector: Callable[[T], str]
    ) -> KafkaRecordSerializationSchemaBuilder[T]:
        """Choose the topic per element with ``selector(element) -> str``."""
        if not callable(selector):
            msg = f"set_topic_selector needs a callable, got {selector!r}"
            raise ConfigurationError(msg)
        self._topic, self._topic_selector = None, selector
        return self

    def set_key_serialization_schema(
        self, schema: SerializationSchema[T] | Callable[[T], bytes | None]
    ) -> KafkaRecordSerializationSchemaBuilder[T]:
        """Serialize each element into its key (a schema, or ``callable(element) -> bytes``)."""
        _as_serializer(schema, "the key serialization schema")
        self._key = schema
        return self

    def set_value_serialization_schema(
        self, schema: SerializationSchema[T] | Callable[[T], bytes | None]
    ) -> KafkaRecordSerializationSchemaBuilder[T]:
        """Serialize each element into its value (required)."""
        _as_serializer(schema, "the value serialization schema")
        self._value = schema
        return self

    def set_header_provider(
        self, provider: Callable[[T], Headers | Mapping[str, bytes | None] | None]
    ) -> KafkaRecordSerializationSchemaBuilder[T]:
        """Add headers per element: ``provider(element)`` returns pairs, a dict or None."""
        if not callable(provider):
            msg = f"set_header_provider needs a callable, got {provider!r}"
            raise ConfigurationError(msg)
        self._headers = provider
        return self

    def set_partitioner(
        self, partitioner: Callable[[T, bytes | None, bytes | None, str], int | None]
    ) -> KafkaRecordSerializationSchemaBuilder[T]:
        """Choose the partition: ``partitioner(element, key, value, topic) -> int | None``
        (Flink's ``FlinkKafkaPartitioner``); None leaves it to the producer."""
        if not callable(partitioner):
            msg = f"set_partitioner needs a callable, got {partitioner!r}"
            raise ConfigurationError(msg)
        self._partitioner = partitioner
        return self

    def build(self) -> KafkaRecordSerializationSchema[T]:
        """Validate and build.

        Raises:
            ConfigurationError: no topic (or selector) or no value serialization schema.
        """
        if self._topic is None and self._topic_selector is None:
            msg = "KafkaRecordSerializationSchema needs set_topic() or set_topic_selector()"
            raise ConfigurationError(msg)
        if self._value is None:
            msg = "KafkaRecordSerializationSchema needs set_value_serialization_schema()"
            raise ConfigurationError(msg)
        return _BuiltSerializationSchema(
            self._topic,
            self._topic_selector,
            self._key,
            self._value,
            self._headers,
            self._partitioner,
        )
