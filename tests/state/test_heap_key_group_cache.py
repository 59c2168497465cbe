"""The heap backend's key-group cache gives exactly the stable-hash key groups, across
snapshots, and stays in proportion to the state."""

from __future__ import annotations

from typing import Any

from state_test_support import Window

from strom._runtime.key_groups import key_groups_of
from strom._state.heap import HeapKeyedStateBackend
from strom._state.heap.backend import KeyGroupCache, _group
from strom.datastream.state import ValueStateDescriptor

MAX_P = 128
KEYS: list[Any] = [f"u{i}" for i in range(300)] + list(range(-5, 200)) + [
    ("t", 1), b"raw", None, 2**70, 1.5]


def test_key_group_cache_matches_the_stable_hash() -> None:
    cache = KeyGroupCache(MAX_P)
    assert cache.groups(KEYS) == key_groups_of(KEYS, MAX_P)
    assert len(cache) == len(KEYS)
    # cached lookups and mixed known/unknown keys give the same answer
    more = [*KEYS[::-1], "fresh", 10**6]
    assert cache.groups(more) == key_groups_of(more, MAX_P)
    # equal keys hash equal, so an int key answers for an equal float or bool key
    assert cache.groups([1.0, True]) == key_groups_of([1.0, True], MAX_P)
    assert cache.groups([]) == []


def test_key_group_cache_forgets_when_the_state_shrank() -> None:
    cache = KeyGroupCache(MAX_P)
    cache.groups([f"k{i}" for i in range(5000)])
    cache.trim(live_keys=5000)
    assert len(cache) == 5000  # in proportion: kept
    cache.trim(live_keys=10)
    assert len(cache) == 0  # 5000 > 2 * 10 + 4096: dropped
    assert cache.groups(["k1"]) == key_groups_of(["k1"], MAX_P)


def test_snapshots_with_a_warm_cache_group_exactly() -> None:
    b = HeapKeyedStateBackend(MAX_P)
    value = b.get_or_create_keyed_state(ValueStateDescriptor("v"))
    for i, key in enumerate(KEYS):
        b.set_current_key(key)
        value.set_current_namespace(None)
        value.update(i)
        value.set_current_namespace(Window(0, 10))
        value.update(-i)
    first = b.snapshot(1).key_groups
    b.set_current_key("late")
    value.set_current_namespace(None)
    value.update(-1)
    second = b.snapshot(2).key_groups  # mostly cached keys, one new
    table = b.raw_table("v")
    copies = [("v", "value", dict(table), dict(b.raw_namespaced_table("v")), None)]
    assert second == _group(copies, MAX_P)  # a fresh cache: the same grouping
    assert first != second and len(b._kg_cache) == len(KEYS) + 1
    for kg, states in second.items():
        assert all(key_groups_of([k], MAX_P) == [kg] for k in states["v"][None])
