"""Serializers, key encoding, descriptors and backend descriptors."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from strom._state.factory import create_keyed_state_backend
from strom._state.key_layout import (
    KEY_SERIALIZER,
    decode_entries,
    encode_entries,
    key_part,
    namespace_part,
    prefix_end,
    split_entry_key,
)
from strom._state.serializers import (
    BoolSerializer,
    BytesSerializer,
    FloatSerializer,
    IntSerializer,
    NullableSerializer,
    PickleSerializer,
    SchemaCompatibility,
    StrSerializer,
    TtlSerializer,
    TypeSerializer,
    TypeSerializerSnapshot,
    decode_varint,
    encode_varint,
    serializer_for,
)
from strom.datastream.state import (
    AggregatingStateDescriptor,
    ListStateDescriptor,
    MapStateDescriptor,
    ReducingStateDescriptor,
    StateTtlConfig,
    ValueStateDescriptor,
)
from strom.datastream.state_backend import (
    EmbeddedRocksDBStateBackend,
    HashMapStateBackend,
    RocksDBStateBackend,
)
from strom.errors import ConfigurationError


class UpperSerializer(TypeSerializer[str]):
    """A user serializer (restored by its import path)."""

    def serialize(self, value: str) -> bytes:
        return value.upper().encode()

    def deserialize(self, data: bytes) -> str:
        return data.decode().lower()


@pytest.mark.parametrize(
    ("serializer", "values"),
    [
        (IntSerializer(), [0, 1, -1, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 10**30]),
        (FloatSerializer(), [0.0, -2.5, 1e-300]),
        (StrSerializer(), ["", "abc", "\u00e4\ud800"]),
        (BytesSerializer(), [b"", b"\x00\x01"]),
        (BoolSerializer(), [True, False]),
        (PickleSerializer(), [None, (1, [2]), {"a": {1}}]),
        (TtlSerializer(IntSerializer()), [(5, 123), (-1, -(2**40))]),
        (NullableSerializer(StrSerializer()), [None, "", "x"]),
        (UpperSerializer(), ["abc"]),
    ],
)
def test_round_trip_and_snapshot_restore(
    serializer: TypeSerializer[Any], values: list[Any]
) -> None:
    for v in values:
        assert serializer.deserialize(serializer.serialize(v)) == v
    snap = pickle.loads(pickle.dumps(serializer.snapshot_configuration()))
    restored = snap.restore_serializer()
    assert restored == serializer
    assert snap.resolve_compatibility(serializer) is SchemaCompatibility.COMPATIBLE_AS_IS
    for v in values:
        assert restored.deserialize(serializer.serialize(v)) == v


def test_typed_encodings_are_compact_and_fixed() -> None:
    assert IntSerializer().serialize(1) == b"\x00" * 7 + b"\x01"
    assert len(IntSerializer().serialize(2**63)) == 9
    assert FloatSerializer().serialize(1.0) == b"?\xf0\x00\x00\x00\x00\x00\x00"
    assert TtlSerializer(StrSerializer()).serialize(("a", 1)) == b"\x00" * 7 + b"\x01a"
    with pytest.raises(TypeError, match="IntSerializer cannot encode a str"):
        IntSerializer().serialize("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="StrSerializer"):
        StrSerializer().serialize(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="FloatSerializer"):
        FloatSerializer().serialize("x")  # type: ignore[arg-type]


def test_serializer_for_type_info() -> None:
    assert serializer_for(None) == PickleSerializer()
    assert serializer_for(int) == IntSerializer()
    assert serializer_for("str") == StrSerializer()
    assert serializer_for(list[int]) == PickleSerializer()
    assert serializer_for([int]) == PickleSerializer()  # unhashable type info
    custom = UpperSerializer()
    assert serializer_for(custom) is custom

    class Info:
        def create_serializer(self) -> TypeSerializer[Any]:
            return BoolSerializer()

    assert serializer_for(Info()) == BoolSerializer()
    assert repr(PickleSerializer()) == "PickleSerializer(protocol=5)"


def test_compatibility_resolution() -> None:
    old = PickleSerializer().snapshot_configuration()
    assert old.resolve_compatibility(IntSerializer()) is (
        SchemaCompatibility.COMPATIBLE_AFTER_MIGRATION
    )
    gone = TypeSerializerSnapshot("no.such.module.Serializer", 1, {})
    assert gone.resolve_compatibility(IntSerializer()) is SchemaCompatibility.INCOMPATIBLE
    with pytest.raises(LookupError, match="cannot be found"):
        gone.restore_serializer()
    assert UpperSerializer.SERIALIZER_ID.endswith("test_state_serializers.UpperSerializer")


@pytest.mark.parametrize(
    "key",
    [
        "",
        "a",
        "\ud800",
        0,
        -1,
        2**63,
        -(2**64),
        1.5,
        float("-inf"),
        b"",
        b"\x00",
        None,
        (),
        ("a", (1, None), b"x"),
        frozenset({1}),
    ],
)
def test_key_serializer_round_trip(key: Any) -> None:
    assert KEY_SERIALIZER.deserialize(KEY_SERIALIZER.serialize(key)) == key


def test_key_serializer_equal_keys_equal_bytes() -> None:
    ser = KEY_SERIALIZER.serialize
    assert ser(1) == ser(1.0) == ser(True) == b"i" + b"\x00" * 7 + b"\x01"
    assert ser(0) == ser(-0.0) == ser(False)
    assert ser((1, "a")) == ser((1.0, "a"))
    assert ser(2**70) == ser(float(2**70))
    assert ser("a") == b"sa"
    assert ser(None) == b"n"
    with pytest.raises(ValueError, match="not a serialized key"):
        KEY_SERIALIZER.deserialize(b"?")


def test_varint_and_key_layout() -> None:
    for n in (0, 1, 127, 128, 300, 2**21, 2**35):
        data = b"xx" + encode_varint(n)
        assert decode_varint(data, 2) == (n, len(data))
    entry = key_part(300 % 128, ("k", 1)) + namespace_part("w") + b"SUFFIX"
    assert entry[:2] == (300 % 128).to_bytes(2, "big")
    assert split_entry_key(entry) == (("k", 1), "w", b"SUFFIX")
    assert split_entry_key(entry[2:], 0) == (("k", 1), "w", b"SUFFIX")
    assert split_entry_key(key_part(0, "k") + namespace_part(None)) == ("k", None, b"")
    assert prefix_end(b"\x00\x01") == b"\x00\x02"
    assert prefix_end(b"\x00\xff") == b"\x01"
    assert prefix_end(b"\xff\xff") is None
    pairs = [(b"k1", b"v"), (b"k" * 200, b""), (b"", b"x" * 300)]
    assert list(decode_entries(encode_entries(pairs))) == pairs
    assert encode_entries([]) == b""


def test_descriptors_are_immutable_comparable_and_picklable() -> None:
    ttl = StateTtlConfig.new_builder(10).build()
    d = ValueStateDescriptor("v", int)
    d.enable_time_to_live(ttl)
    assert d.get_name() == "v"
    assert d.ttl_config == ttl
    with pytest.raises(AttributeError, match="immutable"):
        d.name = "w"
    back = pickle.loads(pickle.dumps(d))
    assert back == d
    assert back.ttl_config == ttl
    assert hash(back) == hash(d)
    assert repr(d) == "ValueStateDescriptor('v', <class 'int'>)"
    assert ValueStateDescriptor("v") != ListStateDescriptor("v")
    m = MapStateDescriptor("m", str, int)
    assert (m.key_type_info, m.value_type_info, m.type_info) == (str, int, int)
    assert pickle.loads(pickle.dumps(m)) == m
    r = ReducingStateDescriptor("r", max)
    assert r.get_reduce_function() is max
    assert AggregatingStateDescriptor.__name__ == "AggregatingStateDescriptor"
    with pytest.raises(TypeError, match="AggregateFunction"):
        AggregatingStateDescriptor("a", max)
    with pytest.raises(TypeError, match="ReduceFunction or a callable"):
        ReducingStateDescriptor("r", 3)
    with pytest.raises(ValueError, match="empty"):
        ValueStateDescriptor("")
    with pytest.raises(TypeError, match="must be a str"):
        ValueStateDescriptor(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="StateTtlConfig"):
        d.enable_time_to_live(10)  # type: ignore[arg-type]


def test_state_backend_descriptors() -> None:
    assert HashMapStateBackend().to_config() == {"state.backend": "hashmap"}
    assert RocksDBStateBackend is EmbeddedRocksDBStateBackend
    assert EmbeddedRocksDBStateBackend().to_config() == {
        "state.backend": "rocksdb",
        "state.backend.rocksdb.localdir": "",
        "state.backend.incremental": True,
    }
    assert EmbeddedRocksDBStateBackend("/data/x", incremental=False).to_config() == {
        "state.backend": "rocksdb",
        "state.backend.rocksdb.localdir": "/data/x",
        "state.backend.incremental": False,
    }
    with pytest.raises(TypeError, match="incremental"):
        EmbeddedRocksDBStateBackend(incremental="yes")  # type: ignore[arg-type]


def test_factory_rejects_unknown_backend() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown state\.backend 'memory'"):
        create_keyed_state_backend({"state.backend": "memory"}, "j", "u", 0, 1, 128)
