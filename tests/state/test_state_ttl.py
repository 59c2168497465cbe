"""State time-to-live in every mode, with a manual clock, on both backends."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from state_test_support import Average, ManualClock

from strom._state.backend import KeyedStateBackend
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

TTL = 100
UT = StateTtlConfig.UpdateType
SV = StateTtlConfig.StateVisibility


def ttl(
    update: StateTtlConfig.UpdateType = UT.OnCreateAndWrite,
    visibility: StateTtlConfig.StateVisibility = SV.NeverReturnExpired,
) -> StateTtlConfig.Builder:
    return StateTtlConfig.new_builder(TTL).set_update_type(update).set_state_visibility(visibility)


def with_ttl(descriptor: StateDescriptor, config: StateTtlConfig) -> StateDescriptor:
    descriptor.enable_time_to_live(config)
    return descriptor


# -- visibility and update type ----------------------------------------------------------------


def test_value_expires_after_ttl_on_create_and_write(
    backend: KeyedStateBackend, clock: ManualClock
) -> None:
    s = backend.get_or_create_keyed_state(with_ttl(ValueStateDescriptor("v"), ttl().build()))
    backend.set_current_key("a")
    s.update(1)
    clock.advance(TTL - 1)
    assert s.value() == 1  # reads do not extend the TTL with OnCreateAndWrite
    clock.advance(1)  # last access + ttl <= now: expired
    assert s.value() is None
    s.update(2)
    clock.advance(TTL - 1)
    s.update(3)  # writes extend it
    clock.advance(TTL - 1)
    assert s.value() == 3
    clock.advance(1)
    assert s.value() is None
    assert backend.get_keys("v", None) == []  # cleaned up on read


def test_value_on_read_and_write_extends_on_read(
    backend: KeyedStateBackend, clock: ManualClock
) -> None:
    s = backend.get_or_create_keyed_state(
        with_ttl(ValueStateDescriptor("v"), ttl(UT.OnReadAndWrite).build())
    )
    backend.set_current_key("a")
    s.update(1)
    for _ in range(5):
        clock.advance(TTL - 1)
        assert s.value() == 1
    clock.advance(TTL)
    assert s.value() is None


def test_value_return_expired_if_not_cleaned_up(
    backend: KeyedStateBackend, clock: ManualClock
) -> None:
    s = backend.get_or_create_keyed_state(
        with_ttl(ValueStateDescriptor("v"), ttl(visibility=SV.ReturnExpiredIfNotCleanedUp).build())
    )
    backend.set_current_key("a")
    s.update("old")
    clock.advance(TTL * 5)
    assert s.value() == "old"  # returned once, removed by that read
    assert s.value() is None
    assert backend.get_keys("v", None) == []


def test_list_elements_expire_individually(backend: KeyedStateBackend, clock: ManualClock) -> None:
    s = backend.get_or_create_keyed_state(with_ttl(ListStateDescriptor("l"), ttl().build()))
    backend.set_current_key("a")
    s.add(1)
    clock.advance(50)
    s.add_all([2, 3])
    clock.advance(50)
    assert s.get() == [2, 3]
    clock.advance(49)
    assert s.get() == [2, 3]
    clock.advance(1)
    assert s.get() == []
    assert backend.get_keys("l", None) == []
    s.update([4])
    clock.advance(TTL)
    assert s.get() == []


def test_list_return_expired_and_update_on_read(
    backend: KeyedStateBackend, clock: ManualClock
) -> None:
    config = ttl(UT.OnReadAndWrite, SV.ReturnExpiredIfNotCleanedUp).build()
    s = backend.get_or_create_keyed_state(with_ttl(ListStateDescriptor("l"), config))
    backend.set_current_key("a")
    s.add("e1")
    clock.advance(60)
    s.add("e2")
    clock.advance(40)  # e1 expired (100), e2 alive (40)
    assert s.get() == ["e1", "e2"]  # expired one returned once, e2 refreshed
    clock.advance(99)
    assert s.get() == ["e2"]
    clock.advance(100)
    assert s.get() == ["e2"]
    assert s.get() == []


def test_map_entries_expire_individually(backend: KeyedStateBackend, clock: ManualClock) -> None:
    s = backend.get_or_create_keyed_state(with_ttl(MapStateDescriptor("m"), ttl().build()))
    backend.set_current_key("a")
    s.put("x", 1)
    clock.advance(50)
    s.put_all({"y": 2, "z": None})
    clock.advance(50)
    assert s.get("x") is None
    assert not s.contains("x")
    assert s.contains("z")
    assert s.get("z") is None
    assert sorted(s.keys()) == ["y", "z"]
    assert sorted(s.items(), key=repr) == [("y", 2), ("z", None)]
    assert not s.is_empty()
    clock.advance(50)
    assert s.is_empty()
    assert s.values() == []
    assert backend.get_keys("m", None) == []


def test_map_on_read_and_write_and_return_expired(
    backend: KeyedStateBackend, clock: ManualClock
) -> None:
    config = ttl(UT.OnReadAndWrite, SV.ReturnExpiredIfNotCleanedUp).build()
    s = backend.get_or_create_keyed_state(with_ttl(MapStateDescriptor("m"), config))
    backend.set_current_key("a")
    s.put("x", 1)
    s.put("y", 2)
    clock.advance(90)
    assert s.get("x") == 1  # refreshes x only
    clock.advance(10)
    assert s.contains("y")  # expired, visible once
    assert not s.contains("y")
    clock.advance(89)
    assert s.items() == [("x", 1)]  # refreshes x
    clock.advance(99)
    assert s.get("x") == 1
    clock.advance(TTL)
    assert s.values() == [1]  # expired, returned once by the iteration
    assert s.is_empty()
    s.put("z", 3)
    s.remove("z")
    assert s.is_empty()


@pytest.mark.parametrize("visibility", [SV.NeverReturnExpired, SV.ReturnExpiredIfNotCleanedUp])
def test_reducing_never_merges_into_an_expired_value(
    backend: KeyedStateBackend, clock: ManualClock, visibility: Any
) -> None:
    config = ttl(visibility=visibility).build()
    s = backend.get_or_create_keyed_state(
        with_ttl(ReducingStateDescriptor("r", lambda a, b: a + b, int), config)
    )
    backend.set_current_key("a")
    s.add(1)
    s.add(2)
    clock.advance(TTL)
    s.add(10)
    assert s.get() == 10
    clock.advance(TTL - 1)
    assert s.get() == 10
    clock.advance(1)
    assert s.get() == (10 if visibility is SV.ReturnExpiredIfNotCleanedUp else None)
    assert s.get() is None


def test_aggregating_with_ttl(backend: KeyedStateBackend, clock: ManualClock) -> None:
    s = backend.get_or_create_keyed_state(
        with_ttl(AggregatingStateDescriptor("a", Average()), ttl(UT.OnReadAndWrite).build())
    )
    backend.set_current_key("a")
    s.add(2)
    s.add(4)
    clock.advance(TTL - 1)
    assert s.get() == 3.0  # refreshed by the read
    clock.advance(TTL - 1)
    s.add(6)
    assert s.get() == 4.0
    clock.advance(TTL)
    s.add(1)
    assert s.get() == 1.0


def test_ttl_in_namespaces(backend: KeyedStateBackend, clock: ManualClock) -> None:
    s = backend.get_or_create_keyed_state(with_ttl(ValueStateDescriptor("v"), ttl().build()))
    backend.set_current_key("a")
    s.set_current_namespace("w1")
    s.update(1)
    clock.advance(50)
    s.set_current_namespace("w2")
    s.update(2)
    clock.advance(50)
    assert s.value() == 2
    s.set_current_namespace("w1")
    assert s.value() is None
    assert backend.get_keys("v", "w1") == []
    assert backend.get_keys("v", "w2") == ["a"]


# -- background cleanup strategies -------------------------------------------------------------


def _fill(backend: KeyedStateBackend, descriptor: StateDescriptor, n: int) -> Any:
    s = backend.get_or_create_keyed_state(descriptor)
    for k in range(n):
        backend.set_current_key(k)
        if isinstance(descriptor, ListStateDescriptor):
            s.add(k)
        elif isinstance(descriptor, MapStateDescriptor):
            s.put("u", k)
        else:
            s.update(k)
    return s


@pytest.mark.parametrize("kind", ["value", "list", "map"])
@pytest.mark.parametrize("full_snapshot", [True, False])
def test_cleanup_full_snapshot(
    make_backend: Any, clock: ManualClock, kind: str, full_snapshot: bool
) -> None:
    builder = ttl()
    if full_snapshot:
        builder.cleanup_full_snapshot()
    cls = {"value": ValueStateDescriptor, "list": ListStateDescriptor, "map": MapStateDescriptor}
    desc = cls[kind]("s")
    desc.enable_time_to_live(builder.build())
    b = make_backend()
    _fill(b, desc, 10)
    clock.advance(TTL)
    s = _fill(b, desc, 3)  # keys 0..2 rewritten now, 3..9 expired
    snap = b.snapshot(7)
    assert sorted(b.get_keys("s", None)) == list(range(10))  # local state keeps them
    fresh = make_backend()
    fresh.restore([snap])
    expected = [0, 1, 2] if full_snapshot else list(range(10))
    assert sorted(fresh.get_keys("s", None)) == expected
    s = fresh.get_or_create_keyed_state(desc)
    fresh.set_current_key(1)
    assert (s.value() if kind == "value" else s.get() if kind == "list" else s.get("u")) == (
        [1] if kind == "list" else 1
    )


def test_cleanup_incrementally_on_access(
    backend: KeyedStateBackend, backend_kind: str, clock: ManualClock
) -> None:
    desc = ValueStateDescriptor("v")
    desc.enable_time_to_live(ttl().cleanup_incrementally(5, False).build())
    s = _fill(backend, desc, 20)
    clock.advance(TTL)
    backend.set_current_key("fresh")
    s.update("x")  # one access checks 5 entries
    remaining = sorted(backend.get_keys("v", None), key=repr)
    if backend_kind == "hashmap":
        assert len(remaining) == 16  # 5 checked; 'fresh' itself may be among them
        for _ in range(4):
            s.value()
        assert backend.get_keys("v", None) == ["fresh"]
    else:  # as in Flink, incremental cleanup has no effect in RocksDB
        assert len(remaining) == 21


def test_cleanup_incrementally_for_every_record(
    backend: KeyedStateBackend, backend_kind: str, clock: ManualClock
) -> None:
    desc = ListStateDescriptor("l")
    desc.enable_time_to_live(ttl().cleanup_incrementally(2, True).build())
    s = _fill(backend, desc, 10)
    clock.advance(50)
    backend.set_current_key(0)
    s.add("late")  # key 0 holds [0 (expires at 100), "late" (expires at 150)]
    clock.advance(50)
    for k in range(100, 105):  # 5 records, no state access: 10 entries checked
        backend.set_current_key(k)
    if backend_kind == "hashmap":
        assert backend.get_keys("l", None) == [0]
        backend.set_current_key(0)
        assert s.get() == ["late"]
    else:
        assert sorted(backend.get_keys("l", None)) == list(range(10))


def test_cleanup_in_rocksdb_compact_filter(
    backend: KeyedStateBackend, backend_kind: str, clock: ManualClock
) -> None:
    descs = [ValueStateDescriptor("v"), ListStateDescriptor("l"), MapStateDescriptor("m")]
    for d in descs:
        d.enable_time_to_live(ttl().cleanup_in_rocksdb_compact_filter(3).build())
        _fill(backend, d, 10)
    clock.advance(TTL)
    for d in descs:
        _fill(backend, d, 2)  # keys 0, 1 alive
    compact = getattr(backend, "compact", None)
    if backend_kind == "rocksdb":
        assert compact is not None
        # value and map: keys 2..9 (keys 0, 1 were rewritten); list: keys 2..9 plus the
        # first elements of keys 0 and 1 (list elements expire individually)
        assert compact() == 8 + 10 + 8
        for d in descs:
            assert sorted(backend.get_keys(d.name, None)) == [0, 1]
    else:  # as in Flink, no effect on the heap: the backend has no compaction
        assert compact is None
        for d in descs:
            assert sorted(backend.get_keys(d.name, None)) == list(range(10))


def test_ttl_cannot_be_switched_on_for_restored_state(
    make_backend: Any, clock: ManualClock
) -> None:
    b = make_backend()
    s = b.get_or_create_keyed_state(ValueStateDescriptor("v"))
    b.set_current_key("a")
    s.update(1)
    snap = b.snapshot(1)
    fresh = make_backend()
    fresh.restore([snap])
    with pytest.raises(InvalidProgramError, match="enables time-to-live"):
        fresh.get_or_create_keyed_state(with_ttl(ValueStateDescriptor("v"), ttl().build()))


def test_ttl_config_builder() -> None:
    config = (
        StateTtlConfig.new_builder(dt.timedelta(seconds=2))
        .update_ttl_on_read_and_write()
        .return_expired_if_not_cleaned_up()
        .use_processing_time()
        .cleanup_full_snapshot()
        .cleanup_incrementally(10, True)
        .cleanup_in_rocksdb_compact_filter(1000)
        .disable_cleanup_in_background()
        .build()
    )
    assert config.ttl_ms == 2000
    assert config.get_ttl() == dt.timedelta(seconds=2)
    assert config.get_update_type() is UT.OnReadAndWrite
    assert config.get_state_visibility() is SV.ReturnExpiredIfNotCleanedUp
    processing_time = StateTtlConfig.TtlTimeCharacteristic.ProcessingTime
    assert config.get_ttl_time_characteristic() is processing_time
    assert config.is_enabled()
    strategies = config.get_cleanup_strategies()
    assert strategies.in_full_snapshot()
    inc = strategies.get_incremental_cleanup_strategy()
    assert inc is not None
    assert (inc.get_cleanup_size(), inc.run_cleanup_for_every_record()) == (10, True)
    compact = strategies.get_rocksdb_compact_filter_cleanup_strategy()
    assert compact is not None
    assert compact.get_query_time_after_num_entries() == 1000
    assert not strategies.is_cleanup_in_background
    assert StateTtlConfig.new_builder(5).set_ttl(7).build().ttl_ms == 7
    assert not StateTtlConfig.new_builder(5).set_update_type(UT.Disabled).build().is_enabled()
    with pytest.raises(ValueError, match="positive"):
        StateTtlConfig.new_builder(0)
    with pytest.raises(TypeError, match="milliseconds"):
        StateTtlConfig.new_builder("1s")
    with pytest.raises(ValueError, match="cleanup_size"):
        StateTtlConfig.new_builder(5).cleanup_incrementally(-1, False)
    with pytest.raises(ValueError, match="query_time_after_num_entries"):
        StateTtlConfig.new_builder(5).cleanup_in_rocksdb_compact_filter(0)


def test_disabled_ttl_means_no_expiry(backend: KeyedStateBackend, clock: ManualClock) -> None:
    desc = ValueStateDescriptor("v")
    desc.enable_time_to_live(StateTtlConfig.new_builder(1).set_update_type(UT.Disabled).build())
    assert desc.ttl_config is None
    s = backend.get_or_create_keyed_state(desc)
    backend.set_current_key("a")
    s.update(1)
    clock.advance(10_000)
    assert s.value() == 1


def test_ttl_list_and_map_write_paths_and_namespaces(
    backend: KeyedStateBackend, clock: ManualClock
) -> None:
    config = ttl().cleanup_incrementally(1, False).build()
    lst = backend.get_or_create_keyed_state(with_ttl(ListStateDescriptor("l"), config))
    mp = backend.get_or_create_keyed_state(with_ttl(MapStateDescriptor("m"), config))
    val = backend.get_or_create_keyed_state(with_ttl(ValueStateDescriptor("v"), config))
    backend.set_current_key("a")
    for s in (lst, mp, val):
        s.set_current_namespace("w1")
        assert s.get_current_namespace() == "w1"
    lst.add_all([1, 2])
    lst.update([3])
    with pytest.raises(ValueError, match="cannot add None"):
        lst.add(None)
    with pytest.raises(ValueError, match="cannot contain None"):
        lst.add_all([None])
    with pytest.raises(ValueError, match="updated with None"):
        lst.update(None)
    lst.set_current_namespace("w2")
    lst.add(9)
    clock.advance(50)
    lst.merge_namespaces("w1", ["w2"])
    assert lst.get() == [3, 9]
    clock.advance(50)
    assert lst.get() == []  # both keep their original timestamps
    mp.put("x", 1)
    assert mp.keys() == ["x"]
    assert mp.values() == [1]
    mp.clear()
    assert mp.is_empty()
    val.update(5)
    val.update(None)
    assert val.value() is None
    val.update(6)
    val.clear()
    assert val.value() is None
    lst.add(1)
    lst.clear()
    assert lst.get() == []
    assert backend.get_keys("l", "w1") == []
