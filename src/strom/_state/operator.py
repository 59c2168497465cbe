"""Operator (non-keyed) state: list, union list and broadcast state, and their
redistribution when the parallelism changes (Flink's ``DefaultOperatorStateBackend`` and
``RoundRobinOperatorStateRepartitioner``).

Operator state is small by design (source offsets, sink transactions, broadcast rules),
so it always lives on the heap, whatever keyed backend the job uses, as in Flink. A
subtask's snapshot is an :class:`~strom._state.snapshot.OperatorStateSnapshot`; the
checkpoint layer collects the snapshots of all subtasks (in subtask order) and calls
:func:`redistribute_operator_state` to compute what each new subtask restores:

* ``"split"`` (:meth:`OperatorStateBackend.get_list_state`): unchanged parallelism keeps
  every subtask's own list; otherwise all lists are concatenated in subtask order and cut
  into ``new_parallelism`` contiguous parts whose sizes differ by at most one (the first
  ``total % new_parallelism`` parts get one more element).
* ``"union"`` (:meth:`OperatorStateBackend.get_union_list_state`): every subtask gets the
  concatenation of all lists.
* ``"broadcast"`` (:meth:`OperatorStateBackend.get_broadcast_state`): every subtask gets
  a copy of subtask 0's map (all copies are equal by contract).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from strom._state.key_layout import KEY_SERIALIZER
from strom._state.lists import checked_list
from strom._state.serializers import serializer_for
from strom._state.snapshot import (
    OPERATOR_SNAPSHOT_VERSION,
    OperatorStateEntry,
    OperatorStateSnapshot,
    check_version,
)
from strom.datastream.state import (
    BroadcastState,
    ListState,
    ListStateDescriptor,
    MapStateDescriptor,
    OperatorStateStore,
    ReadOnlyBroadcastState,
)
from strom.errors import InvalidProgramError

__all__ = [
    "BROADCAST",
    "SPLIT",
    "UNION",
    "OperatorListState",
    "OperatorStateBackend",
    "ReadOnlyBroadcastStateView",
    "SimpleBroadcastState",
    "redistribute_operator_state",
]

SPLIT = "split"
UNION = "union"
BROADCAST = "broadcast"


class OperatorListState(ListState[Any]):
    """A subtask's operator list state (even-split or union)."""

    __slots__ = ("_list",)

    def __init__(self, elements: list[Any]) -> None:
        self._list = elements

    def get(self) -> list[Any]:
        """A copy of the elements."""
        return list(self._list)

    def add(self, value: Any) -> None:
        """Append ``value``.

        Raises:
            ValueError: ``value`` is None.
        """
        if value is None:
            msg = "cannot add None to a ListState"
            raise ValueError(msg)
        self._list.append(value)

    def add_all(self, values: list[Any]) -> None:
        """Append ``values``."""
        self._list.extend(checked_list(values))

    def update(self, values: list[Any]) -> None:
        """Replace the elements."""
        self._list[:] = checked_list(values)

    def clear(self) -> None:
        """Remove all elements."""
        self._list.clear()


class ReadOnlyBroadcastStateView(ReadOnlyBroadcastState[Any, Any]):
    """Read-only view of a broadcast state (what ``process_element`` sees)."""

    __slots__ = ("_map",)

    def __init__(self, mapping: dict[Any, Any]) -> None:
        self._map = mapping

    def get(self, key: Any) -> Any:
        """The value of ``key`` or None."""
        return self._map.get(key)

    def contains(self, key: Any) -> bool:
        """True if ``key`` is mapped."""
        return key in self._map

    def items(self) -> list[tuple[Any, Any]]:
        """All ``(key, value)`` pairs."""
        return list(self._map.items())

    def keys(self) -> list[Any]:
        """All keys."""
        return list(self._map)

    def values(self) -> list[Any]:
        """All values."""
        return list(self._map.values())

    def is_empty(self) -> bool:
        """True if no mappings."""
        return not self._map

    def clear(self) -> None:
        """Not allowed on a read-only view.

        Raises:
            TypeError: always.
        """
        msg = "broadcast state is read-only here; modify it in process_broadcast_element"
        raise TypeError(msg)


class SimpleBroadcastState(ReadOnlyBroadcastStateView, BroadcastState[Any, Any]):
    """Read-write broadcast state over a dict (the reads are the view's)."""

    __slots__ = ()

    def put(self, key: Any, value: Any) -> None:
        """Map ``key`` to ``value``."""
        self._map[key] = value

    def put_all(self, dict_value: dict[Any, Any]) -> None:
        """Copy all mappings."""
        self._map.update(dict_value)

    def remove(self, key: Any) -> None:
        """Remove ``key`` (no error if absent)."""
        self._map.pop(key, None)

    def clear(self) -> None:
        """Remove all mappings."""
        self._map.clear()


class OperatorStateBackend(OperatorStateStore):
    """Operator state of one subtask (see the module docstring).

    Args:
        subtask_index: the subtask (for messages).
        parallelism: the operator's parallelism (for messages).
    """

    def __init__(self, subtask_index: int = 0, parallelism: int = 1) -> None:
        self.subtask_index = subtask_index
        self.parallelism = parallelism
        self._entries: dict[str, OperatorStateEntry] = {}
        self._handles: dict[str, Any] = {}

    def _entry(self, name: str, mode: str, entry: OperatorStateEntry) -> OperatorStateEntry:
        existing = self._entries.get(name)
        if existing is None:
            self._entries[name] = entry
            return entry
        if existing.mode != mode:
            msg = (
                f"operator state {name!r} is {existing.mode} state and cannot be used as "
                f"{mode} state; use a new name"
            )
            raise InvalidProgramError(msg)
        existing.value_serializer = entry.value_serializer
        existing.key_serializer = entry.key_serializer
        return existing

    def _list_state(self, descriptor: ListStateDescriptor, mode: str) -> OperatorListState:
        if not isinstance(descriptor, ListStateDescriptor):
            msg = f"operator list state needs a ListStateDescriptor, got {descriptor!r}"
            raise TypeError(msg)
        ser = serializer_for(descriptor.type_info).snapshot_configuration()
        entry = self._entry(descriptor.name, mode, OperatorStateEntry(mode, ser, []))
        handle = self._handles.get(descriptor.name)
        if handle is None:
            handle = self._handles[descriptor.name] = OperatorListState(entry.data)
        return handle

    def get_list_state(self, state_descriptor: ListStateDescriptor) -> OperatorListState:
        """Even-split redistributed list state (see the module docstring).

        Raises:
            InvalidProgramError: the name is used by state of another mode.
            TypeError: not a ``ListStateDescriptor``.
        """
        return self._list_state(state_descriptor, SPLIT)

    def get_union_list_state(self, state_descriptor: ListStateDescriptor) -> OperatorListState:
        """Union redistributed list state (see the module docstring).

        Raises:
            InvalidProgramError: the name is used by state of another mode.
            TypeError: not a ``ListStateDescriptor``.
        """
        return self._list_state(state_descriptor, UNION)

    def _broadcast_entry(self, descriptor: MapStateDescriptor) -> OperatorStateEntry:
        if not isinstance(descriptor, MapStateDescriptor):
            msg = f"broadcast state needs a MapStateDescriptor, got {descriptor!r}"
            raise TypeError(msg)
        ser = serializer_for(descriptor.value_type_info).snapshot_configuration()
        entry = OperatorStateEntry(BROADCAST, ser, {}, KEY_SERIALIZER.snapshot_configuration())
        return self._entry(descriptor.name, BROADCAST, entry)

    def get_broadcast_state(self, state_descriptor: MapStateDescriptor) -> SimpleBroadcastState:
        """The read-write broadcast state named by ``state_descriptor``.

        Raises:
            InvalidProgramError: the name is used by state of another mode.
            TypeError: not a ``MapStateDescriptor``.
        """
        entry = self._broadcast_entry(state_descriptor)
        handle = self._handles.get(state_descriptor.name)
        if handle is None:
            handle = self._handles[state_descriptor.name] = SimpleBroadcastState(entry.data)
        return handle

    def get_read_only_broadcast_state(
        self, state_descriptor: MapStateDescriptor
    ) -> ReadOnlyBroadcastStateView:
        """A read-only view of the broadcast state named by ``state_descriptor``."""
        return ReadOnlyBroadcastStateView(self._broadcast_entry(state_descriptor).data)

    def get_registered_state_names(self) -> list[str]:
        """Names of all operator states (registered or restored)."""
        return sorted(self._entries)

    def snapshot(self, checkpoint_id: int) -> OperatorStateSnapshot:
        """A copy of all operator state (containers are copied; elements shared)."""
        states = {
            name: OperatorStateEntry(
                e.mode,
                e.value_serializer,
                list(e.data) if e.mode != BROADCAST else dict(e.data),
                e.key_serializer,
            )
            for name, e in self._entries.items()
        }
        return OperatorStateSnapshot(states, checkpoint_id, OPERATOR_SNAPSHOT_VERSION)

    def restore(
        self, snapshots: OperatorStateSnapshot | list[OperatorStateSnapshot] | None
    ) -> None:
        """Load this subtask's share, as computed by :func:`redistribute_operator_state`
        (a list is merged: list states are concatenated, broadcast maps updated).

        Raises:
            InvalidProgramError: unknown format version, or a state's mode differs from
                the registered one.
        """
        if snapshots is None:
            return
        if isinstance(snapshots, OperatorStateSnapshot):
            snapshots = [snapshots]
        for snap in snapshots:
            if snap is None:
                continue
            check_version(snap.format_version, OPERATOR_SNAPSHOT_VERSION, "operator state")
            for name, e in snap.states.items():
                fresh = OperatorStateEntry(
                    e.mode,
                    e.value_serializer,
                    [] if e.mode != BROADCAST else {},
                    e.key_serializer,
                )
                target = self._entry(name, e.mode, fresh)
                if e.mode == BROADCAST:
                    target.data.update(e.data)
                else:
                    target.data.extend(e.data)

    def dispose(self) -> None:
        """Drop all state."""
        self._entries.clear()
        self._handles.clear()


def redistribute_operator_state(
    snapshots: Sequence[OperatorStateSnapshot | None], new_parallelism: int
) -> list[OperatorStateSnapshot]:
    """Compute each new subtask's operator state from the old subtasks' snapshots.

    Args:
        snapshots: one snapshot per old subtask, in subtask order (None for a subtask
            without operator state).
        new_parallelism: the new number of subtasks.

    Returns:
        One snapshot per new subtask (see the module docstring for the rules).

    Raises:
        ValueError: ``new_parallelism`` < 1.
        InvalidProgramError: a state has different modes in different snapshots, or a
            snapshot has an unknown format version.
    """
    if new_parallelism < 1:
        msg = f"new_parallelism must be >= 1, got {new_parallelism}"
        raise ValueError(msg)
    checkpoint_id = 0
    modes: dict[str, OperatorStateEntry] = {}
    for snap in snapshots:
        if snap is None:
            continue
        check_version(snap.format_version, OPERATOR_SNAPSHOT_VERSION, "operator state")
        checkpoint_id = max(checkpoint_id, snap.checkpoint_id)
        for name, e in snap.states.items():
            first = modes.setdefault(name, e)
            if first.mode != e.mode:
                msg = f"operator state {name!r} is both {first.mode} and {e.mode} state"
                raise InvalidProgramError(msg)
    out = [OperatorStateSnapshot({}, checkpoint_id) for _ in range(new_parallelism)]
    same_parallelism = len(snapshots) == new_parallelism
    for name, proto in modes.items():
        parts = [s.states.get(name) if s is not None else None for s in snapshots]
        if proto.mode == BROADCAST:
            source = next((p for p in parts if p is not None), proto)
            for target in out:
                target.states[name] = _entry_like(proto, dict(source.data))
        elif proto.mode == UNION:
            union = [x for p in parts if p is not None for x in p.data]
            for target in out:
                target.states[name] = _entry_like(proto, list(union))
        elif same_parallelism:
            for target, p in zip(out, parts):
                target.states[name] = _entry_like(proto, list(p.data) if p is not None else [])
        else:
            elements = [x for p in parts if p is not None for x in p.data]
            base, extra = divmod(len(elements), new_parallelism)
            pos = 0
            for i, target in enumerate(out):
                size = base + (1 if i < extra else 0)
                target.states[name] = _entry_like(proto, elements[pos : pos + size])
                pos += size
    return out


def _entry_like(proto: OperatorStateEntry, data: Any) -> OperatorStateEntry:
    return OperatorStateEntry(proto.mode, proto.value_serializer, data, proto.key_serializer)
