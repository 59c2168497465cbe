"""Heap snapshots of entries held outside the tables (the window fast path's per-window
dicts) are identical to snapshots of the same entries in the table; the key-group cache
gives exactly the stable-hash key groups."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from state_test_support import Window

from strom._runtime.key_groups import KeyGroupRange, key_groups_of
from strom._state.heap import HeapKeyedStateBackend
from strom._state.heap.backend import KeyGroupCache
from strom.datastream.state import ListStateDescriptor, ValueStateDescriptor
from strom.errors import InvalidProgramError

MAX_P = 128
W1, W2 = Window(0, 10), Window(10, 20)
CONTENTS = {
    W1: {f"k{i}": (i, float(i)) for i in range(60)} | {7: (7, 7.0), ("t", 1): (1, 1.0)},
    W2: {f"k{i}": (i, -1.0) for i in range(30, 90)},
}


def with_other_state(backend: HeapKeyedStateBackend) -> HeapKeyedStateBackend:
    other = backend.get_or_create_keyed_state(ValueStateDescriptor("other"))
    for i in range(5):
        backend.set_current_key(f"k{i}")
        other.update(i)
    return backend


def table_backend() -> HeapKeyedStateBackend:
    """The contents in the ``(key, namespace)`` table, as the generic window path holds them."""
    b = with_other_state(HeapKeyedStateBackend(MAX_P))
    table = b.raw_namespaced_table("contents")
    for ns, d in CONTENTS.items():
        for k, v in d.items():
            table[(k, ns)] = v
    return b


def views_backend() -> HeapKeyedStateBackend:
    b = with_other_state(HeapKeyedStateBackend(MAX_P))
    b.raw_namespaced_table("contents")  # registers the state; the table stays empty
    return b


def views() -> dict[Any, dict[Any, Any]]:
    return {ns: dict(d) for ns, d in CONTENTS.items()}


def test_snapshot_with_namespaces_is_the_table_snapshot() -> None:
    want = table_backend().snapshot(3)
    got = views_backend().snapshot_with_namespaces(3, {"contents": views()})
    assert got.key_groups == want.key_groups
    assert got.states == want.states
    assert pickle.loads(pickle.dumps(got)).key_groups == want.key_groups
    # every (key group, namespace) dict holds exactly the keys of that key group
    for kg, states in got.key_groups.items():
        for ns, entries in states.get("contents", {}).items():
            assert entries == {k: v for k, v in CONTENTS[ns].items()
                               if key_groups_of([k], MAX_P)[0] == kg}


def test_restoring_a_views_snapshot_fills_the_table() -> None:
    snap = pickle.loads(pickle.dumps(
        views_backend().snapshot_with_namespaces(1, {"contents": views()})))
    restored = HeapKeyedStateBackend(MAX_P)
    restored.restore([snap])
    assert restored.raw_namespaced_table("contents") == table_backend().raw_namespaced_table(
        "contents")
    assert restored.raw_table("other") == {f"k{i}": i for i in range(5)}


def test_rescaled_restore_of_a_views_snapshot_keeps_the_owned_key_groups() -> None:
    snap = views_backend().snapshot_with_namespaces(1, {"contents": views()})
    halves = [KeyGroupRange(0, 63), KeyGroupRange(64, 127)]
    tables = []
    for r in halves:
        b = HeapKeyedStateBackend(MAX_P, r)
        b.restore([snap])
        tables.append(b.raw_namespaced_table("contents"))
    assert tables[0] and tables[1]
    for r, t in zip(halves, tables):
        assert all(r.contains(key_groups_of([k], MAX_P)[0]) for k, _ns in t)
    assert tables[0] | tables[1] == table_backend().raw_namespaced_table("contents")


def test_views_are_copied_at_snapshot_time() -> None:
    live = views()
    snap = views_backend().snapshot_with_namespaces(1, {"contents": live})
    live[W1]["k0"] = (100, 100.0)
    live[W2].clear()
    live[Window(20, 30)] = {"new": (1, 1.0)}
    assert snap.key_groups == table_backend().snapshot(1).key_groups


def test_views_of_other_state_kinds_or_unknown_states_are_rejected() -> None:
    b = views_backend()
    lst = b.get_or_create_keyed_state(ListStateDescriptor("list"))
    b.set_current_key("a")
    lst.add(1)
    with pytest.raises(InvalidProgramError, match="not a value state"):
        b.snapshot_with_namespaces(1, {"list": {W1: {"a": [1]}}})
    with pytest.raises(InvalidProgramError, match="not registered"):
        b.snapshot_with_namespaces(1, {"nope": {W1: {"a": 1}}})
    assert b.snapshot_with_namespaces(1, {"nope": {}}).key_groups == b.snapshot(1).key_groups


def test_key_group_cache_matches_the_stable_hash() -> None:
    cache = KeyGroupCache(MAX_P)
    keys: list[Any] = [f"u{i}" for i in range(300)] + list(range(-5, 200)) + [
        ("t", 1), b"raw", None, 2**70, 1.5]
    assert cache.groups(keys) == key_groups_of(keys, MAX_P)
    assert len(cache) == len(keys)
    # cached lookups and mixed known/unknown keys give the same answer
    more = [*keys[::-1], "fresh", 10**6]
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
