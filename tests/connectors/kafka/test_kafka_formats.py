"""Kafka connector pieces that need no broker: formats, schemas, builders, descriptors."""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest

from strom.connectors.kafka import (
    AvroDeserializationSchema,
    AvroSerializationSchema,
    ByteArraySchema,
    DeliveryGuarantee,
    JsonDeserializationSchema,
    JsonSerializationSchema,
    KafkaPartitionSplit,
    KafkaProducerRecord,
    KafkaRecord,
    KafkaRecordDeserializationSchema,
    KafkaRecordSerializationSchema,
    KafkaSink,
    KafkaSource,
    OffsetResetStrategy,
    OffsetsInitializer,
    PartitionOffsetsRetriever,
    SimpleStringSchema,
)
from strom.connectors.kafka._config import java_string_hash
from strom.connectors.kafka._enumerator import split_owner
from strom.connectors.kafka._txn_client import _parse_bootstrap, _Reader, _Writer
from strom.connectors.source import Boundedness
from strom.errors import ConfigurationError

SCHEMA = {
    "type": "record",
    "name": "Flight",
    "fields": [{"name": "carrier", "type": "string"}, {"name": "delay", "type": "int"}],
}


@dataclass
class Order:
    id: int
    item: str


def test_value_formats_round_trip() -> None:
    assert ByteArraySchema().serialize(bytearray(b"ab")) == b"ab"
    assert ByteArraySchema().deserialize(b"ab") == b"ab"
    s = SimpleStringSchema()
    assert s.deserialize(s.serialize("grüß")) == "grüß"
    assert s.serialize(None) is None and s.deserialize(None) is None
    j = JsonSerializationSchema()
    assert JsonDeserializationSchema().deserialize(j.serialize({"a": [1, 2]})) == {"a": [1, 2]}
    assert JsonDeserializationSchema(Order).deserialize(b'{"id": 1, "item": "x"}') == Order(1, "x")
    with pytest.raises(msgspec.ValidationError):
        JsonDeserializationSchema(Order).deserialize(b'{"id": "no"}')
    avro_out = AvroSerializationSchema(SCHEMA).serialize({"carrier": "UA", "delay": 12})
    assert AvroDeserializationSchema(SCHEMA).deserialize(avro_out) == {"carrier": "UA", "delay": 12}
    with pytest.raises(ValueError, match="trailing"):
        AvroDeserializationSchema(SCHEMA).deserialize((avro_out or b"") + b"\x00")
    with pytest.raises(ConfigurationError, match="Avro"):
        AvroSerializationSchema({"type": "no-such-type"})
    with pytest.raises(ConfigurationError):
        SimpleStringSchema("no-such-encoding")


def test_schemas_pickle_after_use() -> None:
    for schema in (JsonDeserializationSchema(Order), AvroDeserializationSchema(SCHEMA)):
        schema.deserialize(
            b'{"id": 1, "item": "x"}'
            if isinstance(schema, JsonDeserializationSchema)
            else AvroSerializationSchema(SCHEMA).serialize({"carrier": "A", "delay": 1})
        )
        clone = pickle.loads(pickle.dumps(schema))
        assert repr(clone) == repr(schema)


def test_record_serialization_schema_builder() -> None:
    schema = (
        KafkaRecordSerializationSchema.builder()
        .set_topic_selector(lambda e: f"t-{e['kind']}")
        .set_key_serialization_schema(lambda e: str(e["id"]).encode())
        .set_value_serialization_schema(JsonSerializationSchema())
        .set_header_provider(lambda e: [("h", b"1")])
        .set_partitioner(lambda e, k, v, t: 2)
        .build()
    )
    rec = schema.serialize({"kind": "a", "id": 7}, 123)
    assert rec == KafkaProducerRecord("t-a", b'{"kind":"a","id":7}', b"7", 2, 123, [("h", b"1")])
    with pytest.raises(ConfigurationError, match="set_topic"):
        KafkaRecordSerializationSchema.builder().set_value_serialization_schema(
            SimpleStringSchema()
        ).build()
    with pytest.raises(ConfigurationError, match="value"):
        KafkaRecordSerializationSchema.builder().set_topic("t").build()


def test_key_value_record_deserializer() -> None:
    out: list[Any] = []
    KafkaRecordDeserializationSchema.key_value(
        SimpleStringSchema(), JsonDeserializationSchema()
    ).deserialize(KafkaRecord("t", 0, 5, b"k", b"[1]"), out)
    assert out == [("k", [1])]


def test_source_builder_validates_and_descriptor_pickles() -> None:
    with pytest.raises(ConfigurationError, match="bootstrap"):
        KafkaSource.builder().set_topics("t").build()
    with pytest.raises(ConfigurationError, match="only one"):
        KafkaSource.builder().set_topics("a").set_topic_pattern("b.*")
    with pytest.raises(ConfigurationError, match="deserializer"):
        KafkaSource.builder().set_bootstrap_servers("h:1").set_topics("t").build()
    with pytest.raises(ConfigurationError, match="managed"):
        KafkaSource.builder().set_property("enable.auto.commit", True)
    with pytest.raises(ConfigurationError, match="integer"):
        KafkaSource.builder().set_property("partition.discovery.interval.ms", "soon")
    source = (
        KafkaSource.builder()
        .set_bootstrap_servers("h:1")
        .set_topics(["a", "b"])
        .set_group_id("g")
        .set_value_only_deserializer(SimpleStringSchema())
        .set_starting_offsets(OffsetsInitializer.committed_offsets(OffsetResetStrategy.LATEST))
        .set_property("isolation.level", "read_uncommitted")
        .build()
    )
    assert source.get_boundedness() is Boundedness.CONTINUOUS_UNBOUNDED
    assert source.partition_discovery_interval_ms == 300_000
    assert source.commit_offsets_on_checkpoint
    conf = source.consumer_config("c")
    assert conf["auto.offset.reset"] == "latest" and conf["isolation.level"] == "read_uncommitted"
    assert pickle.loads(pickle.dumps(source)) == source


def test_sink_builder_validates_and_descriptor_pickles() -> None:
    serializer = (
        KafkaRecordSerializationSchema.builder()
        .set_topic("t")
        .set_value_serialization_schema(SimpleStringSchema())
        .build()
    )
    with pytest.raises(ConfigurationError, match="prefix"):
        KafkaSink.builder().set_bootstrap_servers("h:1").set_record_serializer(
            serializer
        ).set_delivery_guarantee(DeliveryGuarantee.EXACTLY_ONCE).build()
    with pytest.raises(ConfigurationError, match="prefix"):
        KafkaSink.builder().set_transactional_id_prefix("has space")
    with pytest.raises(ConfigurationError, match=r"transactional\.id"):
        KafkaSink.builder().set_property("transactional.id", "x")
    sink = (
        KafkaSink.builder()
        .set_bootstrap_servers("h:1")
        .set_record_serializer(serializer)
        .set_delivery_guarantee(DeliveryGuarantee.EXACTLY_ONCE)
        .set_transactional_id_prefix("job-1")
        .build()
    )
    conf = sink.producer_config(3, "job-1-3-9")
    assert conf["transactional.id"] == "job-1-3-9" and conf["partitioner"] == "murmur2_random"
    assert conf["transaction.timeout.ms"] == 900_000
    clone = pickle.loads(pickle.dumps(sink))
    assert clone.transactional_id_prefix == "job-1"


class _FakeRetriever(PartitionOffsetsRetriever):
    def committed_offsets(
        self, partitions: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], int]:
        return {tp: 5 for tp in partitions if tp[1] == 0}

    def end_offsets(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return {tp: 100 for tp in partitions}

    def beginning_offsets(
        self, partitions: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], int]:
        return {tp: 1 for tp in partitions}

    def offsets_for_times(
        self, timestamps_ms: Mapping[tuple[str, int], int]
    ) -> dict[tuple[str, int], int | None]:
        return {tp: (42 if tp[1] == 0 else None) for tp in timestamps_ms}


def test_offsets_initializers() -> None:
    tps = [("t", 0), ("t", 1)]
    r = _FakeRetriever()
    assert OffsetsInitializer.earliest().get_partition_offsets(tps, r) == {("t", 0): 1, ("t", 1): 1}
    assert OffsetsInitializer.latest().get_partition_offsets(tps, r) == {
        ("t", 0): 100,
        ("t", 1): 100,
    }
    assert OffsetsInitializer.timestamp(9).get_partition_offsets(tps, r) == {
        ("t", 0): 42,
        ("t", 1): 100,
    }
    assert OffsetsInitializer.committed_offsets(OffsetResetStrategy.EARLIEST).get_partition_offsets(
        tps, r
    ) == {("t", 0): 5, ("t", 1): 1}
    with pytest.raises(ConfigurationError, match="t-1"):
        OffsetsInitializer.committed_offsets().get_partition_offsets(tps, r)
    assert OffsetsInitializer.offsets({("t", 1): 7}).get_partition_offsets(tps, r) == {
        ("t", 0): 1,
        ("t", 1): 7,
    }
    with pytest.raises(ConfigurationError):
        OffsetsInitializer.offsets({("t", -1): 0})
    with pytest.raises(ConfigurationError):
        OffsetsInitializer.timestamp(-5)


def test_split_ownership_is_flinks_and_even() -> None:
    assert java_string_hash("a") == 97
    assert java_string_hash("hello") == 99162322  # "hello".hashCode() in Java
    assert java_string_hash("orders-topic-with-a-long-name") < 2**31
    for readers in (1, 2, 3, 5):
        owners = [split_owner("orders", p, readers) for p in range(10 * readers)]
        assert all(owners.count(r) == 10 for r in range(readers))
    split = KafkaPartitionSplit("orders", 3, 10, 12)
    assert split.split_id() == "orders-3" and not split.is_exhausted()
    assert split.with_starting_offset(12).is_exhausted()


def test_txn_client_encoding() -> None:
    w = _Writer().int16(-1).string("ab").uvarint(300).compact_string("xy").int64(2**40)
    r = _Reader(w.bytes())
    assert (r.int16(), r.string(), r.uvarint(), r.compact_string(), r.int64()) == (
        -1,
        "ab",
        300,
        "xy",
        2**40,
    )
    assert _parse_bootstrap("PLAINTEXT://a:1, b:2") == [("a", 1), ("b", 2)]
    with pytest.raises(ConfigurationError):
        _parse_bootstrap("nohost")


@pytest.mark.parametrize(
    "name",
    [
        "strom.connectors.kafka",
        "strom.connectors.kafka.source",
        "strom.connectors.kafka.sink",
        "strom.connectors.kafka.offsets",
        "strom.connectors.kafka.formats",
        "strom.connectors.kafka.serialization",
    ],
)
def test_public_names_match_all(name: str) -> None:
    """``__all__`` of the public Kafka modules lists exactly their public classes."""
    import importlib
    import inspect

    mod = importlib.import_module(name)
    for attr in mod.__all__:
        assert hasattr(mod, attr), f"{name}.__all__ lists missing {attr}"
    defined = {
        n
        for n, v in vars(mod).items()
        if not n.startswith("_")
        and (inspect.isclass(v) or inspect.isfunction(v))
        and v.__module__.startswith("strom.connectors.kafka")
        and (name == "strom.connectors.kafka" or v.__module__ == name)
    }
    assert defined <= set(mod.__all__), sorted(defined - set(mod.__all__))
    if name == "strom.connectors.kafka":
        assert set(mod.__all__) == defined
