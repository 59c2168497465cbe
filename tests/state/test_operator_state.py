"""Operator state: list (even split), union list and broadcast state, snapshot, restore and
redistribution. Operator state always lives on the heap (as in Flink), whatever keyed
backend the job uses, so these tests are not parametrized over keyed backends."""

from __future__ import annotations

import pickle

import pytest

from strom._state.factory import create_operator_state_backend
from strom._state.operator import OperatorStateBackend, redistribute_operator_state
from strom._state.snapshot import OperatorStateSnapshot
from strom.datastream.state import (
    BroadcastState,
    ListStateDescriptor,
    MapStateDescriptor,
    OperatorStateStore,
    ReadOnlyBroadcastState,
)
from strom.errors import InvalidProgramError

OFFSETS = ListStateDescriptor("offsets", int)
ALL = ListStateDescriptor("all")
RULES = MapStateDescriptor("rules", str, str)


def subtask_snapshots(lists: list[list[int]]) -> list[OperatorStateSnapshot]:
    snaps = []
    for i, elements in enumerate(lists):
        b = create_operator_state_backend(i, len(lists))
        assert isinstance(b, OperatorStateStore)
        b.get_list_state(OFFSETS).add_all(elements)
        b.get_union_list_state(ALL).add_all([f"s{i}-{e}" for e in elements])
        rules = b.get_broadcast_state(RULES)
        rules.put("r", f"from-{i}")  # the contract says equal; make them differ to see which wins
        snaps.append(pickle.loads(pickle.dumps(b.snapshot(3))))
    return snaps


def restored(snap: OperatorStateSnapshot) -> tuple[list[int], list[str], dict[str, str]]:
    b = OperatorStateBackend()
    b.restore(snap)
    rules = b.get_broadcast_state(RULES)
    return (
        b.get_list_state(OFFSETS).get(),
        b.get_union_list_state(ALL).get(),
        dict(rules.items()),
    )


def test_same_parallelism_keeps_each_subtask_state() -> None:
    snaps = subtask_snapshots([[1, 2], [3], [4, 5, 6]])
    out = redistribute_operator_state(snaps, 3)
    assert [restored(s)[0] for s in out] == [[1, 2], [3], [4, 5, 6]]
    assert all(s.checkpoint_id == 3 for s in out)


@pytest.mark.parametrize(
    ("new_parallelism", "expected"),
    [
        (1, [[1, 2, 3, 4, 5, 6, 7]]),
        (2, [[1, 2, 3, 4], [5, 6, 7]]),
        (4, [[1, 2], [3, 4], [5, 6], [7]]),
        (9, [[1], [2], [3], [4], [5], [6], [7], [], []]),
    ],
)
def test_even_split_redistribution(new_parallelism: int, expected: list[list[int]]) -> None:
    snaps = subtask_snapshots([[1, 2], [3], [4, 5, 6, 7]])
    out = redistribute_operator_state(snaps, new_parallelism)
    assert [restored(s)[0] for s in out] == expected


@pytest.mark.parametrize("new_parallelism", [1, 2, 5])
def test_union_and_broadcast_redistribution(new_parallelism: int) -> None:
    snaps = subtask_snapshots([[1, 2], [3]])
    out = redistribute_operator_state([*snaps, None], new_parallelism)
    for s in out:
        _, union, rules = restored(s)
        assert union == ["s0-1", "s0-2", "s1-3"]
        assert rules == {"r": "from-0"}  # every subtask gets subtask 0's copy


def test_handles_modes_and_read_only_view() -> None:
    b = OperatorStateBackend()
    lst = b.get_list_state(OFFSETS)
    assert b.get_list_state(OFFSETS) is lst
    lst.add(1)
    lst.add_all([2, 3])
    lst.update([4, 5])
    assert lst.get() == [4, 5]
    assert list(lst) == [4, 5]
    with pytest.raises(ValueError, match="None"):
        lst.add(None)
    with pytest.raises(ValueError, match="None"):
        lst.update([1, None])
    lst.clear()
    assert lst.get() == []
    with pytest.raises(InvalidProgramError, match="split state and cannot be used as union"):
        b.get_union_list_state(OFFSETS)
    with pytest.raises(TypeError, match="MapStateDescriptor"):
        b.get_broadcast_state(OFFSETS)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ListStateDescriptor"):
        b.get_list_state(RULES)  # type: ignore[arg-type]
    rules = b.get_broadcast_state(RULES)
    assert isinstance(rules, BroadcastState)
    rules.put("a", "1")
    rules["b"] = "2"
    rules.put_all({"c": "3"})
    rules.remove("c")
    del rules["b"]
    view = b.get_read_only_broadcast_state(RULES)
    assert isinstance(view, ReadOnlyBroadcastState)
    assert (view.get("a"), view["a"], view.contains("a"), "b" in view) == ("1", "1", True, False)
    assert (view.keys(), view.values(), view.items(), list(view)) == (
        ["a"],
        ["1"],
        [("a", "1")],
        ["a"],
    )
    assert not view.is_empty()
    with pytest.raises(TypeError, match="read-only"):
        view.clear()
    rules.clear()
    assert view.is_empty()
    assert b.get_registered_state_names() == ["offsets", "rules"]
    snap = b.snapshot(1)
    rules.put("later", "x")
    assert snap.states["rules"].data == {}
    b.dispose()
    assert b.get_registered_state_names() == []


def test_restore_checks_version_and_modes() -> None:
    snap = subtask_snapshots([[1]])[0]
    bad = pickle.loads(pickle.dumps(snap))
    bad.format_version = 2
    with pytest.raises(InvalidProgramError, match="format version 2"):
        OperatorStateBackend().restore(bad)
    with pytest.raises(InvalidProgramError, match="format version 2"):
        redistribute_operator_state([bad], 1)
    b = OperatorStateBackend()
    b.get_union_list_state(OFFSETS)
    with pytest.raises(InvalidProgramError, match="union state"):
        b.restore([snap])
    clash = pickle.loads(pickle.dumps(snap))
    clash.states["offsets"].mode = "union"
    with pytest.raises(InvalidProgramError, match="both split and union"):
        redistribute_operator_state([snap, clash], 1)
    with pytest.raises(ValueError, match="new_parallelism"):
        redistribute_operator_state([snap], 0)
    OperatorStateBackend().restore(None)
