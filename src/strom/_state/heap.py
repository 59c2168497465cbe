"""HashMapStateBackend's keyed backend: keyed state in Python dicts on the heap.

State tables are plain dicts ``key -> value`` per state name (``(key, namespace) ->
value`` once namespaces arrive with windows). Key groups are computed only when a
snapshot is taken (grouping by ``stable_hash(key) % max_parallelism``), which keeps the
per-record path to one dict lookup; a snapshot is therefore organised by key group and
can be restored into any key-group range (rescaling).
"""

from __future__ import annotations

from typing import Any

from strom.datastream.state import ValueState, ValueStateDescriptor

__all__ = ["HeapKeyedStateBackend", "HeapValueState"]

_MISSING = object()


class HeapValueState(ValueState[Any]):
    """A ``ValueState`` over the dicts of the heap backend.

    The VOID namespace uses ``key -> value``; other namespaces ``(key, ns) -> value``.

    Args:
        backend: the owning backend (provides the current key).
        table: ``key -> value`` dict of this state.
        ns_table: ``(key, namespace) -> value`` dict of this state.
    """

    __slots__ = ("_backend", "_ns", "_ns_table", "_table")

    def __init__(self, backend: HeapKeyedStateBackend, table: dict[Any, Any],
                 ns_table: dict[Any, Any]) -> None:
        self._backend = backend
        self._table = table
        self._ns_table = ns_table
        self._ns: Any = None

    def set_current_namespace(self, namespace: Any) -> None:
        """Scope access to ``namespace`` (a window); None is the VOID namespace."""
        self._ns = namespace

    def _k(self) -> tuple[dict[Any, Any], Any]:
        if self._ns is None:
            return self._table, self._backend.current_key
        return self._ns_table, (self._backend.current_key, self._ns)

    def value(self) -> Any:
        """The current key's value or None."""
        t, k = self._k()
        return t.get(k)

    def update(self, value: Any) -> None:
        """Set the current key's value (None clears it, as in Flink)."""
        t, k = self._k()
        if value is None:
            t.pop(k, None)
        else:
            t[k] = value

    def clear(self) -> None:
        """Remove the current key's value."""
        t, k = self._k()
        t.pop(k, None)


class HeapKeyedStateBackend:
    """Keyed state of one operator subtask, in dicts.

    Args:
        max_parallelism: number of key groups (for snapshots).
    """

    def __init__(self, max_parallelism: int) -> None:
        self.max_parallelism = max_parallelism
        self.current_key: Any = None
        self.tables: dict[str, dict[Any, Any]] = {}
        self.ns_tables: dict[str, dict[Any, Any]] = {}
        self._states: dict[str, HeapValueState] = {}

    def table(self, name: str) -> dict[Any, Any]:
        """The raw ``key -> value`` dict of a state (operators' fast path)."""
        t = self.tables.get(name)
        if t is None:
            t = self.tables[name] = {}
        return t

    def set_current_key(self, key: Any) -> None:
        """Scope state access to ``key``."""
        self.current_key = key

    def get_current_key(self) -> Any:
        """The current key."""
        return self.current_key

    def raw_namespaced_table(self, name: str) -> dict[Any, Any]:
        """Fast path: the ``(key, namespace) -> value`` dict of a value state."""
        t = self.ns_tables.get(name)
        if t is None:
            t = self.ns_tables[name] = {}
        return t

    def raw_table(self, name: str) -> dict[Any, Any]:
        """Fast path for runtime operators: the ``key -> value`` dict of a value state."""
        return self.table(name)

    def get_or_create_keyed_state(self, descriptor: ValueStateDescriptor) -> HeapValueState:
        """Only value state so far."""
        return self.get_value_state(descriptor)

    def get_value_state(self, descriptor: ValueStateDescriptor) -> HeapValueState:
        """Return (creating on first use) the value state named by ``descriptor``."""
        s = self._states.get(descriptor.name)
        if s is None:
            s = self._states[descriptor.name] = HeapValueState(
                self, self.table(descriptor.name), self.raw_namespaced_table(descriptor.name)
            )
        return s

    def snapshot(self, checkpoint_id: int = 0) -> dict[str, dict[int, dict[Any, Any]]]:
        """Copy all state grouped as ``{state name: {key group: {key: value}}}``."""
        from strom._runtime.key_groups import KeyGroupRangeAssignment

        assign = KeyGroupRangeAssignment.assign_to_key_group
        out: dict[str, dict[int, dict[Any, Any]]] = {}
        for name, table in self.tables.items():
            groups: dict[int, dict[Any, Any]] = {}
            for k, v in table.items():
                kg = assign(k, self.max_parallelism)
                g = groups.get(kg)
                if g is None:
                    g = groups[kg] = {}
                g[k] = v
            out[name] = groups
        return out

    def restore(
        self, snapshot: dict[str, dict[int, dict[Any, Any]]], key_groups: Any = None
    ) -> None:
        """Load a :meth:`snapshot`, keeping only key groups in ``key_groups`` (None = all)."""
        for name, groups in snapshot.items():
            table = self.table(name)
            for kg, entries in groups.items():
                if key_groups is None or kg in key_groups:
                    table.update(entries)
