"""Key-group snapshots and restores: identical contents, rescaling, cross-backend restore,
isolation, versioning and serializer migration (both backends)."""

from __future__ import annotations

import os
import pickle
from typing import Any

import pytest
from state_test_support import Average, Window

from strom._runtime.key_groups import KeyGroupRange, KeyGroupRangeAssignment
from strom._state.backend import KeyedStateBackend
from strom._state.rocksdb import RocksDBKeyedStateBackend
from strom._state.serializers import IntSerializer, PickleSerializer
from strom._state.snapshot import KeyedStateSnapshot
from strom.datastream.state import (
    AggregatingStateDescriptor,
    ListStateDescriptor,
    MapStateDescriptor,
    ReducingStateDescriptor,
    StateDescriptor,
    StateTtlConfig,
    ValueStateDescriptor,
)
from strom.errors import InvalidProgramError

MAX_P = 128
NAMESPACES = [None, Window(0, 10), Window(10, 20)]


def descriptors() -> list[StateDescriptor]:
    ttl_value = ValueStateDescriptor("ttl-value", int)
    ttl_value.enable_time_to_live(StateTtlConfig.new_builder(10**9).build())
    return [
        ValueStateDescriptor("value", int),
        ValueStateDescriptor("pickled"),
        ListStateDescriptor("list", str),
        MapStateDescriptor("map", str, int),
        ReducingStateDescriptor("reducing", lambda a, b: a + b, int),
        AggregatingStateDescriptor("aggregating", Average()),
        ttl_value,
    ]


def populate(backend: KeyedStateBackend, keys: list[Any]) -> None:
    handles = [backend.get_or_create_keyed_state(d) for d in descriptors()]
    value, pickled, lst, mp, red, agg, ttl_value = handles
    for i, key in enumerate(keys):
        backend.set_current_key(key)
        for n, ns in enumerate(NAMESPACES):
            if (i + n) % 3 == 2:
                continue  # not every key in every namespace
            for h in handles:
                h.set_current_namespace(ns)
            value.update(i * 10 + n)
            pickled.update({"key": key, "ns": n})
            lst.add_all([f"{i}-{j}" for j in range(i % 4 + 1)])
            mp.put_all({f"u{j}": i + j for j in range(i % 3 + 1)})
            red.add(i)
            red.add(n)
            agg.add(i)
            agg.add(i + 2)
            ttl_value.update(i)


def dump(backend: KeyedStateBackend) -> dict[tuple[str, Any, Any], Any]:
    """Every (state, namespace, key) -> contents, read through the state API."""
    out: dict[tuple[str, Any, Any], Any] = {}
    for d in descriptors():
        h = backend.get_or_create_keyed_state(d)
        for ns in NAMESPACES:
            h.set_current_namespace(ns)
            for key in backend.get_keys(d.name, ns):
                backend.set_current_key(key)
                if isinstance(d, ValueStateDescriptor):
                    v = h.value()
                elif isinstance(d, MapStateDescriptor):
                    v = sorted(h.items())
                else:
                    v = h.get()
                out[(d.name, repr(ns), key)] = v
    return out


KEYS = [f"user-{i}" for i in range(150)] + list(range(50)) + [("t", i) for i in range(20)]


def test_snapshot_and_restore_into_a_fresh_backend_is_identical(make_backend: Any) -> None:
    source = make_backend()
    populate(source, KEYS)
    expected = dump(source)
    assert len(expected) == 3080
    snap = source.snapshot(5)
    assert isinstance(snap, KeyedStateSnapshot)
    assert snap.checkpoint_id == 5
    assert snap.format_version == 1
    assert snap.max_parallelism == MAX_P
    assert sorted(snap.states) == sorted(d.name for d in descriptors())
    assert set(snap.key_groups) == {
        KeyGroupRangeAssignment.assign_to_key_group(k, MAX_P) for k in KEYS
    }
    restored = pickle.loads(pickle.dumps(snap))
    fresh = make_backend()
    fresh.restore([restored])
    assert dump(fresh) == expected
    twice = make_backend()
    twice.restore([snap])  # the in-memory snapshot restores too, and can be reused
    twice.restore([])
    assert dump(twice) == expected


@pytest.mark.parametrize("target", ["hashmap", "rocksdb"])
def test_restore_across_backends(make_backend: Any, target: str) -> None:
    source = make_backend()
    populate(source, KEYS)
    snap = pickle.loads(pickle.dumps(source.snapshot(1)))
    fresh = make_backend(kind=target)
    fresh.restore([snap])
    assert dump(fresh) == dump(source)
    # and the list sequence numbers continue after a restore
    lst = fresh.get_or_create_keyed_state(ListStateDescriptor("list", str))
    lst.set_current_namespace(None)  # dump() left it in the last namespace
    fresh.set_current_key("user-3")
    lst.add("new")
    assert lst.get() == ["3-0", "3-1", "3-2", "3-3", "new"]


@pytest.mark.parametrize("new_parallelism", [2, 3, 7])
def test_rescale_out_restores_exactly_the_owned_key_groups(
    make_backend: Any, new_parallelism: int
) -> None:
    source = make_backend()
    populate(source, KEYS)
    expected = dump(source)
    snap = source.snapshot(2)
    merged: dict[Any, Any] = {}
    for i in range(new_parallelism):
        b = make_backend(parallelism=new_parallelism, subtask_index=i)
        b.restore([snap])
        kgs = KeyGroupRangeAssignment.compute_key_group_range_for_operator_index(
            MAX_P, new_parallelism, i
        )
        assert b.key_group_range == kgs
        part = dump(b)
        for name, _, key in part:
            assert KeyGroupRangeAssignment.assign_to_key_group(key, MAX_P) in kgs, (name, key)
        assert not set(part) & set(merged)
        merged.update(part)
    assert merged == expected


def test_rescale_in_merges_several_snapshots(make_backend: Any) -> None:
    expected: dict[Any, Any] = {}
    snaps = []
    for i in range(3):
        b = make_backend(parallelism=3, subtask_index=i)
        owned = [
            k
            for k in KEYS
            if KeyGroupRangeAssignment.assign_key_to_parallel_operator(k, MAX_P, 3) == i
        ]
        populate(b, owned)
        expected.update(dump(b))
        snaps.append(pickle.loads(pickle.dumps(b.snapshot(9))))
    merged: dict[Any, Any] = {}
    for i in range(2):
        b = make_backend(parallelism=2, subtask_index=i)
        b.restore(snaps)
        merged.update(dump(b))
    full = {k: v for k, v in expected.items()}
    assert merged == full
    assert len(merged) == 3080


def test_snapshot_is_isolated_from_later_changes(make_backend: Any) -> None:
    b = make_backend()
    v = b.get_or_create_keyed_state(ValueStateDescriptor("v"))
    lst = b.get_or_create_keyed_state(ListStateDescriptor("l"))
    mp = b.get_or_create_keyed_state(MapStateDescriptor("m"))
    b.set_current_key("k")
    v.update(1)
    lst.add(1)
    mp.put("a", 1)
    snap = b.snapshot(1)
    v.update(2)
    lst.add(2)
    mp.put("b", 2)
    b.set_current_key("other")
    v.update(3)
    fresh = make_backend()
    fresh.restore([snap])
    fresh.set_current_key("k")
    assert fresh.get_or_create_keyed_state(ValueStateDescriptor("v")).value() == 1
    assert fresh.get_or_create_keyed_state(ListStateDescriptor("l")).get() == [1]
    assert fresh.get_or_create_keyed_state(MapStateDescriptor("m")).items() == [("a", 1)]
    assert fresh.get_keys("v", None) == ["k"]


def test_restore_rejects_incompatible_snapshots(make_backend: Any) -> None:
    b = make_backend()
    s = b.get_or_create_keyed_state(ValueStateDescriptor("v"))
    b.set_current_key(1)
    s.update(1)
    snap = pickle.loads(pickle.dumps(b.snapshot(1)))
    other = make_backend(max_parallelism=256)
    with pytest.raises(InvalidProgramError, match="max_parallelism 128"):
        other.restore([snap])
    snap.format_version = 99
    with pytest.raises(InvalidProgramError, match="format version 99"):
        make_backend().restore([snap])
    with pytest.raises(InvalidProgramError, match="not a keyed state snapshot"):
        make_backend().restore([{"keyed": {}}])
    snap.format_version = 1
    kind_clash = make_backend()
    kind_clash.get_or_create_keyed_state(ListStateDescriptor("v"))
    with pytest.raises(InvalidProgramError, match="stored as list state"):
        kind_clash.restore([snap])


def test_restored_state_migrates_to_a_new_serializer(make_backend: Any) -> None:
    b = make_backend()
    s = b.get_or_create_keyed_state(ValueStateDescriptor("v"))
    for k in range(20):
        b.set_current_key(k)
        s.update(k * 1000)
    snap = b.snapshot(1)
    assert snap.states["v"].value_serializer == PickleSerializer().snapshot_configuration()
    fresh = make_backend()
    fresh.restore([snap])
    typed = fresh.get_or_create_keyed_state(ValueStateDescriptor("v", int))
    for k in range(20):
        fresh.set_current_key(k)
        assert typed.value() == k * 1000
    again = fresh.snapshot(2)
    assert again.states["v"].value_serializer == IntSerializer().snapshot_configuration()
    last = make_backend()
    last.restore([again])
    last.set_current_key(19)
    assert last.get_or_create_keyed_state(ValueStateDescriptor("v", int)).value() == 19000


def test_raw_table_fast_path_is_the_state(backend: KeyedStateBackend, backend_kind: str) -> None:
    raw = getattr(backend, "raw_table", None)
    if backend_kind == "rocksdb":
        assert raw is None  # the runtime checks with getattr
        return
    assert raw is not None
    table = raw("_reduce_value")
    table["a"] = 5
    s = backend.get_or_create_keyed_state(ValueStateDescriptor("_reduce_value"))
    backend.set_current_key("a")
    assert s.value() == 5
    s.update(6)
    assert table == {"a": 6}
    snap = backend.snapshot(1)
    backend.restore([snap])
    assert raw("_reduce_value") is table
    namespaced = backend.raw_namespaced_table("_reduce_value")  # type: ignore[attr-defined]
    namespaced[("a", Window(0, 1))] = 7
    s.set_current_namespace(Window(0, 1))
    assert s.value() == 7
    backend.get_or_create_keyed_state(ListStateDescriptor("l"))
    with pytest.raises(InvalidProgramError, match="not a value state"):
        raw("l")


def test_rocksdb_native_checkpoint_restores_a_key_group_range(tmp_path: Any) -> None:
    source = RocksDBKeyedStateBackend(MAX_P, local_dir=str(tmp_path / "db"))
    try:
        populate(source, KEYS)
        expected = dump(source)
        native = source.create_native_checkpoint(4, str(tmp_path / "chk-4"))
        assert native.checkpoint_id == 4
        assert any(f.endswith(".sst") for f in native.files)
        merged: dict[Any, Any] = {}
        for i in range(2):
            kgs = KeyGroupRangeAssignment.compute_key_group_range_for_operator_index(MAX_P, 2, i)
            b = RocksDBKeyedStateBackend(MAX_P, kgs, local_dir=str(tmp_path / "db"))
            try:
                b.restore([native])
                part = dump(b)
                lst = b.get_or_create_keyed_state(ListStateDescriptor("list", str))
                key = next(
                    k
                    for k in KEYS
                    if KeyGroupRangeAssignment.assign_to_key_group(k, MAX_P) in kgs
                    and ("list", "None", k) in part
                )
                b.set_current_key(key)
                before = lst.get()
                lst.add("appended")
                assert lst.get() == [*before, "appended"]
            finally:
                b.dispose()
            merged.update(part)
        assert merged == expected
    finally:
        path = source.path
        source.dispose()
        source.dispose()  # idempotent
    assert not os.path.exists(path)
    assert os.listdir(tmp_path / "db") == []


def test_key_group_range_default_and_factory_range(make_backend: Any) -> None:
    assert make_backend().key_group_range == KeyGroupRange(0, 127)
    assert make_backend(parallelism=4, subtask_index=3).key_group_range == KeyGroupRange(96, 127)


def test_entry_count_counts_key_namespace_pairs(backend: KeyedStateBackend) -> None:
    lst = backend.get_or_create_keyed_state(ListStateDescriptor("l"))
    for key in ("a", "b"):
        backend.set_current_key(key)
        for ns in (None, Window(0, 1)):
            lst.set_current_namespace(ns)
            lst.add_all([1, 2, 3])
    count = backend.entry_count  # type: ignore[attr-defined]
    assert count("l") == 4
    assert count("missing") == 0


def test_rocksdb_temporary_directory_is_removed_and_use_after_dispose_fails() -> None:
    b = RocksDBKeyedStateBackend(MAX_P)  # no local dir: a fresh temporary directory
    base = b._own_base
    assert base is not None and os.path.isdir(b.path)
    s = b.get_or_create_keyed_state(ValueStateDescriptor("v"))
    b.set_current_key("a")
    s.update(1)
    b.dispose()
    assert not os.path.exists(base)
    with pytest.raises(RuntimeError, match="disposed"):
        b.snapshot(1)
