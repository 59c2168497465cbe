"""Raw keyed states of the heap backend: Python objects in two dicts per state.

Each state's :class:`HeapStateTable` holds ``void: {key: value}`` for the VOID namespace
(state outside windows) and ``namespaced: {(key, namespace): value}`` for every other
namespace (Flink's ``StateTable`` with a composite key). A handle reads the backend's
``current_key`` attribute and its own namespace, so a ``value()`` of VOID-namespace state
costs two attribute loads and one ``dict.get``.

Values are stored by reference. List and map states own their containers (``get()``
returns copies), so a snapshot can copy the containers and stay consistent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from strom._state.lists import checked_list
from strom.datastream.state import ListState, MapState, ValueState

__all__ = ["HeapListState", "HeapMapState", "HeapStateTable", "HeapValueState"]


class HeapStateTable:
    """The data of one heap state.

    Attributes:
        void: ``key -> value`` of the VOID namespace.
        namespaced: ``(key, namespace) -> value`` of all other namespaces.
    """

    __slots__ = ("namespaced", "void")

    def __init__(self) -> None:
        self.void: dict[Any, Any] = {}
        self.namespaced: dict[tuple[Any, Any], Any] = {}

    def __len__(self) -> int:
        """Number of (key, namespace) entries."""
        return len(self.void) + len(self.namespaced)


class _HeapState:
    """Namespace handling shared by the raw heap states."""

    __slots__ = ("_backend", "_ns", "_nsd", "_void")

    def __init__(self, backend: Any, table: HeapStateTable) -> None:
        self._backend = backend
        self._void = table.void
        self._nsd = table.namespaced
        self._ns: Any = None

    def set_current_namespace(self, namespace: Any) -> None:
        """Scope access to ``namespace`` (None = VOID)."""
        self._ns = namespace

    def get_current_namespace(self) -> Any:
        """The current namespace."""
        return self._ns

    def _slot(self) -> tuple[dict[Any, Any], Any]:
        """The dict and the dict key of the current key and namespace."""
        ns = self._ns
        if ns is None:
            return self._void, self._backend.current_key
        return self._nsd, (self._backend.current_key, ns)

    def clear(self) -> None:
        """Remove the current key's state in the current namespace."""
        ns = self._ns
        if ns is None:
            self._void.pop(self._backend.current_key, None)
        else:
            self._nsd.pop((self._backend.current_key, ns), None)


class HeapValueState(_HeapState, ValueState[Any]):
    """Raw value state (also the store of heap reducing/aggregating state)."""

    __slots__ = ()

    def value(self) -> Any:
        """The current key's value or None."""
        ns = self._ns
        if ns is None:
            return self._void.get(self._backend.current_key)
        return self._nsd.get((self._backend.current_key, ns))

    value_for_merge = value

    def update(self, value: Any) -> None:
        """Set the current key's value (None clears it, as in Flink)."""
        ns = self._ns
        if value is None:
            if ns is None:
                self._void.pop(self._backend.current_key, None)
            else:
                self._nsd.pop((self._backend.current_key, ns), None)
        elif ns is None:
            self._void[self._backend.current_key] = value
        else:
            self._nsd[(self._backend.current_key, ns)] = value


class HeapListState(_HeapState, ListState[Any]):
    """Raw list state: a Python list per (key, namespace)."""

    __slots__ = ()

    def get(self) -> list[Any]:
        """A copy of the current key's list ([] if none)."""
        d, k = self._slot()
        lst = d.get(k)
        return list(lst) if lst else []

    def add(self, value: Any) -> None:
        """Append ``value``.

        Raises:
            ValueError: ``value`` is None.
        """
        if value is None:
            msg = "cannot add None to a ListState"
            raise ValueError(msg)
        d, k = self._slot()
        lst = d.get(k)
        if lst is None:
            d[k] = [value]
        else:
            lst.append(value)

    def add_all(self, values: list[Any]) -> None:
        """Append ``values``."""
        new = checked_list(values)
        if not new:
            return
        d, k = self._slot()
        lst = d.get(k)
        if lst is None:
            d[k] = new
        else:
            lst.extend(new)

    def update(self, values: list[Any]) -> None:
        """Replace the list (empty clears)."""
        new = checked_list(values)
        d, k = self._slot()
        if new:
            d[k] = new
        else:
            d.pop(k, None)

    def merge_namespaces(self, target: Any, sources: Iterable[Any]) -> None:
        """Append the lists of ``sources`` to ``target`` and remove them.

        The handle is scoped to ``target`` afterwards.
        """
        merged: list[Any] = []
        for ns in sources:
            if ns == target:
                continue
            self._ns = ns
            d, k = self._slot()
            lst = d.pop(k, None)
            if lst:
                merged.extend(lst)
        self._ns = target
        if merged:
            d, k = self._slot()
            lst = d.get(k)
            if lst is None:
                d[k] = merged
            else:
                lst.extend(merged)


class HeapMapState(_HeapState, MapState[Any, Any]):
    """Raw map state: a Python dict per (key, namespace)."""

    __slots__ = ()

    def get(self, key: Any) -> Any:
        """The value of user key ``key`` or None."""
        d, k = self._slot()
        m = d.get(k)
        return None if m is None else m.get(key)

    def put(self, key: Any, value: Any) -> None:
        """Map ``key`` to ``value``."""
        d, k = self._slot()
        m = d.get(k)
        if m is None:
            d[k] = {key: value}
        else:
            m[key] = value

    def put_all(self, dict_value: dict[Any, Any]) -> None:
        """Copy all mappings."""
        if not dict_value:
            return
        d, k = self._slot()
        m = d.get(k)
        if m is None:
            d[k] = dict(dict_value)
        else:
            m.update(dict_value)

    def remove(self, key: Any) -> None:
        """Remove user key ``key``."""
        d, k = self._slot()
        m = d.get(k)
        if m is not None:
            m.pop(key, None)
            if not m:
                del d[k]

    def contains(self, key: Any) -> bool:
        """True if ``key`` is mapped."""
        d, k = self._slot()
        m = d.get(k)
        return m is not None and key in m

    def items(self) -> list[tuple[Any, Any]]:
        """All ``(user key, value)`` pairs."""
        d, k = self._slot()
        m = d.get(k)
        return list(m.items()) if m else []

    def keys(self) -> list[Any]:
        """All user keys."""
        d, k = self._slot()
        m = d.get(k)
        return list(m) if m else []

    def values(self) -> list[Any]:
        """All values."""
        d, k = self._slot()
        m = d.get(k)
        return list(m.values()) if m else []

    def is_empty(self) -> bool:
        """True if the current key has no mappings."""
        d, k = self._slot()
        return not d.get(k)
