"""Every keyed state type and method, namespaces, key types and the backend queries, on
both backends (the ``backend`` fixture is parametrized)."""

from __future__ import annotations

from typing import Any

import pytest
from state_test_support import Average, Concat, Window

from strom._state.backend import KeyedStateBackend
from strom.datastream.state import (
    AggregatingState,
    AggregatingStateDescriptor,
    ListState,
    ListStateDescriptor,
    MapState,
    MapStateDescriptor,
    ReducingState,
    ReducingStateDescriptor,
    ValueState,
    ValueStateDescriptor,
)
from strom.errors import InvalidProgramError

# -- value state -------------------------------------------------------------------------------


def test_value_state_per_key(backend: KeyedStateBackend) -> None:
    s = backend.get_or_create_keyed_state(ValueStateDescriptor("v"))
    assert isinstance(s, ValueState)
    backend.set_current_key("a")
    assert s.value() is None
    s.update(1)
    backend.set_current_key("b")
    assert s.value() is None
    s.update({"x": [1, 2]})
    backend.set_current_key("a")
    assert s.value() == 1
    assert backend.get_current_key() == "a"
    s.update(2)
    assert s.value() == 2
    s.clear()
    assert s.value() is None
    backend.set_current_key("b")
    assert s.value() == {"x": [1, 2]}
    s.update(None)  # None clears, as in Flink
    assert s.value() is None
    assert backend.get_keys("v", None) == []


@pytest.mark.parametrize(
    ("type_info", "values"),
    [
        (int, [0, -1, 2**62, -(2**63), 2**63, 10**40, -(10**40), True]),
        (float, [0.0, -1.5, 1e300, float("inf")]),
        (str, ["", "päivää", "\ud800"]),
        (bytes, [b"", b"\x00\xff"]),
        (bool, [True, False]),
        (None, [(1, "a"), [1, 2], {"k": {1, 2}}, 3.5]),
    ],
)
def test_value_state_typed_serializers_round_trip(
    backend: KeyedStateBackend, type_info: Any, values: list[Any]
) -> None:
    s = backend.get_or_create_keyed_state(ValueStateDescriptor("typed", type_info))
    for i, v in enumerate(values):
        backend.set_current_key(i)
        s.update(v)
    snap = backend.snapshot(1)  # forces the RocksDB write cache to RocksDB
    backend.restore([])  # no-op restore also drops the RocksDB clean cache
    for i, v in enumerate(values):
        backend.set_current_key(i)
        assert s.value() == v
    assert sorted(backend.get_keys("typed", None)) == list(range(len(values)))
    assert snap.checkpoint_id == 1


def test_equal_keys_of_different_types_share_state(backend: KeyedStateBackend) -> None:
    s = backend.get_or_create_keyed_state(ValueStateDescriptor("v"))
    backend.set_current_key(1)
    s.update("one")
    backend.set_current_key(1.0)
    assert s.value() == "one"
    backend.set_current_key(True)
    assert s.value() == "one"
    backend.set_current_key((1, "x"))
    s.update("tuple")
    backend.set_current_key((1.0, "x"))
    assert s.value() == "tuple"


@pytest.mark.parametrize(
    "key", ["k", "", 0, -5, 2**70, 1.25, b"\x00", None, ("a", 1, (2, None)), "\ud800x"]
)
def test_key_types(backend: KeyedStateBackend, key: Any) -> None:
    s = backend.get_or_create_keyed_state(ValueStateDescriptor("v"))
    backend.set_current_key(key)
    s.update("x")
    backend.set_current_key("other")
    s.update("y")
    backend.set_current_key(key)
    assert s.value() == "x"
    keys = backend.get_keys("v", None)
    assert len(keys) == 2
    assert key in keys


# -- list state --------------------------------------------------------------------------------


def test_list_state_methods(backend: KeyedStateBackend) -> None:
    s = backend.get_or_create_keyed_state(ListStateDescriptor("l", int))
    assert isinstance(s, ListState)
    backend.set_current_key("a")
    assert s.get() == []
    s.add(1)
    s.add(2)
    s.add_all([3, 4])
    s.add_all([])
    assert s.get() == [1, 2, 3, 4]
    assert list(s) == [1, 2, 3, 4]
    got = s.get()
    got.append(99)  # a copy: the state does not change
    assert s.get() == [1, 2, 3, 4]
    backend.set_current_key("b")
    assert s.get() == []
    s.update([7, 8])
    assert s.get() == [7, 8]
    s.update([9])
    assert s.get() == [9]
    s.update([])
    assert s.get() == []
    assert backend.get_keys("l", None) == ["a"]
    backend.set_current_key("a")
    s.clear()
    assert s.get() == []
    assert backend.get_keys("l", None) == []


def test_list_state_rejects_none(backend: KeyedStateBackend) -> None:
    s = backend.get_or_create_keyed_state(ListStateDescriptor("l"))
    backend.set_current_key("a")
    with pytest.raises(ValueError, match="cannot add None"):
        s.add(None)
    with pytest.raises(ValueError, match="cannot contain None"):
        s.add_all([1, None])
    with pytest.raises(ValueError, match="cannot contain None"):
        s.update([None])
    with pytest.raises(ValueError, match="cannot be updated with None"):
        s.update(None)
    assert s.get() == []


def test_list_state_keeps_order_across_many_adds(backend: KeyedStateBackend) -> None:
    s = backend.get_or_create_keyed_state(ListStateDescriptor("l"))
    for i in range(300):
        backend.set_current_key(i % 3)
        s.add(i)
    for k in range(3):
        backend.set_current_key(k)
        assert s.get() == list(range(k, 300, 3))


# -- map state ---------------------------------------------------------------------------------


def test_map_state_methods(backend: KeyedStateBackend) -> None:
    s = backend.get_or_create_keyed_state(MapStateDescriptor("m", str, int))
    assert isinstance(s, MapState)
    backend.set_current_key("a")
    assert s.is_empty()
    assert s.get("x") is None
    assert not s.contains("x")
    s.put("x", 1)
    s.put_all({"y": 2, "z": 3})
    s.put_all({})
    s["w"] = 4
    assert not s.is_empty()
    assert s.get("y") == 2
    assert s["z"] == 3
    assert s.contains("x")
    assert "w" in s
    assert "q" not in s
    assert sorted(s.keys()) == ["w", "x", "y", "z"]
    assert sorted(s.values()) == [1, 2, 3, 4]
    assert sorted(s.items()) == [("w", 4), ("x", 1), ("y", 2), ("z", 3)]
    assert sorted(s) == ["w", "x", "y", "z"]
    s.remove("x")
    del s["w"]
    s.remove("missing")
    assert sorted(s.items()) == [("y", 2), ("z", 3)]
    s.put("y", 20)
    assert s.get("y") == 20
    backend.set_current_key("b")
    assert s.is_empty()
    assert s.items() == []
    backend.set_current_key("a")
    s.clear()
    assert s.is_empty()
    assert s.items() == []
    assert backend.get_keys("m", None) == []


def test_map_state_none_values_and_composite_user_keys(backend: KeyedStateBackend) -> None:
    s = backend.get_or_create_keyed_state(MapStateDescriptor("m"))
    backend.set_current_key("a")
    s.put(("k", 1), None)
    s.put(None, "none-key")
    s.put(2, [1, 2])
    assert s.contains(("k", 1))
    assert s.get(("k", 1)) is None
    assert s.get(None) == "none-key"
    assert s.get(2.0) == [1, 2]
    assert sorted(s.items(), key=repr) == sorted(
        [(("k", 1), None), (None, "none-key"), (2, [1, 2])], key=repr
    )
    s.remove(("k", 1))
    s.remove(None)
    s.remove(2)
    assert s.is_empty()
    assert backend.get_keys("m", None) == []


# -- reducing and aggregating state ------------------------------------------------------------


@pytest.mark.parametrize("fn", [lambda a, b: a + b, Concat()], ids=["callable", "ReduceFunction"])
def test_reducing_state(backend: KeyedStateBackend, fn: Any) -> None:
    s = backend.get_or_create_keyed_state(ReducingStateDescriptor("r", fn, str))
    assert isinstance(s, ReducingState)
    backend.set_current_key("a")
    assert s.get() is None
    s.add("x")
    s.add("y")
    assert s.get() == "xy"
    backend.set_current_key("b")
    s.add("z")
    assert s.get() == "z"
    s.add(None)  # None clears, as in Flink
    assert s.get() is None
    backend.set_current_key("a")
    assert s.get() == "xy"
    s.clear()
    assert s.get() is None


def test_aggregating_state(backend: KeyedStateBackend) -> None:
    s = backend.get_or_create_keyed_state(AggregatingStateDescriptor("avg", Average()))
    assert isinstance(s, AggregatingState)
    backend.set_current_key("a")
    assert s.get() is None
    for v in (1, 2, 6):
        s.add(v)
    assert s.get() == 3.0
    backend.set_current_key("b")
    s.add(10)
    assert s.get() == 10.0
    s.clear()
    assert s.get() is None
    backend.set_current_key("a")
    assert s.get() == 3.0
    s.add(None)
    assert s.get() is None


# -- namespaces --------------------------------------------------------------------------------


def test_namespaces_are_independent(backend: KeyedStateBackend) -> None:
    w1, w2 = Window(0, 10), Window(10, 20)
    v = backend.get_or_create_keyed_state(ValueStateDescriptor("v"))
    lst = backend.get_or_create_keyed_state(ListStateDescriptor("l"))
    m = backend.get_or_create_keyed_state(MapStateDescriptor("m"))
    backend.set_current_key("a")
    for ns, tag in ((None, "void"), (w1, "w1"), (w2, "w2")):
        for s in (v, lst, m):
            s.set_current_namespace(ns)
            assert s.get_current_namespace() == ns
        v.update(tag)
        lst.add(tag)
        m.put("k", tag)
    backend.set_current_key("b")
    v.set_current_namespace(w1)
    v.update("b-w1")
    for ns, tag in ((None, "void"), (w1, "w1"), (w2, "w2")):
        backend.set_current_key("a")
        for s in (v, lst, m):
            s.set_current_namespace(ns)
        assert v.value() == tag
        assert lst.get() == [tag]
        assert m.items() == [("k", tag)]
    assert backend.get_keys("v", None) == ["a"]
    assert sorted(backend.get_keys("v", w1)) == ["a", "b"]
    assert backend.get_keys("v", w2) == ["a"]
    assert backend.get_keys("v", Window(99, 100)) == []
    assert backend.get_keys("unknown", None) == []
    backend.set_current_key("a")
    v.set_current_namespace(w1)
    v.clear()
    assert backend.get_keys("v", w1) == ["b"]
    v.set_current_namespace(None)
    assert v.value() == "void"


def test_merge_namespaces(backend: KeyedStateBackend) -> None:
    w1, w2, w3 = Window(0, 5), Window(3, 8), Window(0, 8)
    lst = backend.get_or_create_keyed_state(ListStateDescriptor("l"))
    red = backend.get_or_create_keyed_state(ReducingStateDescriptor("r", lambda a, b: a + b))
    agg = backend.get_or_create_keyed_state(AggregatingStateDescriptor("a", Average()))
    backend.set_current_key("k")
    for ns, values in ((w1, [1, 2]), (w2, [3]), (w3, [10])):
        for s in (lst, red, agg):
            s.set_current_namespace(ns)
            for x in values:
                s.add(x)
    for s in (lst, red, agg):
        s.merge_namespaces(w3, [w1, w2])
        assert s.get_current_namespace() == w3
    assert lst.get() == [10, 1, 2, 3]
    assert red.get() == 16
    assert agg.get() == 4.0
    for s in (lst, red, agg):
        s.set_current_namespace(w1)
        assert s.get() in ([], None)
        s.set_current_namespace(w2)
        assert s.get() in ([], None)
    assert backend.get_keys("l", w1) == []
    assert backend.get_keys("r", w2) == []


# -- registration and backend queries ----------------------------------------------------------


def test_same_name_returns_same_handle_and_conflicts_raise(backend: KeyedStateBackend) -> None:
    a = backend.get_or_create_keyed_state(ValueStateDescriptor("s"))
    assert backend.get_or_create_keyed_state(ValueStateDescriptor("s")) is a
    with pytest.raises(InvalidProgramError, match="already registered as value state"):
        backend.get_or_create_keyed_state(ListStateDescriptor("s"))
    with pytest.raises(TypeError, match="not a keyed state descriptor"):
        backend.get_or_create_keyed_state(object())


def test_apply_to_all_keys(backend: KeyedStateBackend) -> None:
    desc = ValueStateDescriptor("count")
    s = backend.get_or_create_keyed_state(desc)
    for k in range(10):
        backend.set_current_key(k)
        s.update(k)
    backend.set_current_key("current")
    seen: list[Any] = []

    def fn(key: Any, state: Any) -> None:
        seen.append(key)
        assert backend.get_current_key() == key
        if key % 2:
            state.clear()
        else:
            state.update(state.value() * 10)

    backend.apply_to_all_keys(None, desc, fn)
    assert sorted(seen) == list(range(10))
    assert backend.get_current_key() == "current"
    assert sorted(backend.get_keys("count", None)) == [0, 2, 4, 6, 8]
    for k in (0, 2, 4, 6, 8):
        backend.set_current_key(k)
        assert s.value() == k * 10


def test_apply_to_all_keys_in_a_namespace_restores_the_namespace(
    backend: KeyedStateBackend,
) -> None:
    desc = ListStateDescriptor("l")
    s = backend.get_or_create_keyed_state(desc)
    w = Window(0, 1)
    backend.set_current_key("a")
    s.set_current_namespace(w)
    s.add(1)
    s.set_current_namespace(None)
    s.add(2)
    got: dict[Any, list[Any]] = {}
    backend.apply_to_all_keys(w, desc, lambda k, st: got.__setitem__(k, st.get()))
    assert got == {"a": [1]}
    assert s.get_current_namespace() is None
    assert s.get() == [2]


def test_many_keys_with_a_tiny_rocksdb_write_cache(make_backend: Any) -> None:
    b = make_backend(write_cache_size=8)
    s = b.get_or_create_keyed_state(ValueStateDescriptor("v", int))
    w = b.get_or_create_keyed_state(ValueStateDescriptor("w"))
    w.set_current_namespace(Window(0, 1))
    for i in range(500):
        b.set_current_key(i % 50)
        cur = s.value()
        s.update((cur or 0) + i)
        w.update(i)
        if i % 7 == 0:
            w.clear()
    for k in range(50):
        b.set_current_key(k)
        assert s.value() == sum(range(k, 500, 50))
        last = max(range(k, 500, 50))
        assert w.value() == (None if last % 7 == 0 else last)
    expected_w = sorted(k for k in range(50) if max(range(k, 500, 50)) % 7)
    assert sorted(b.get_keys("w", Window(0, 1))) == expected_w
