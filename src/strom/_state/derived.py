"""Reducing and aggregating state as views over a value store (any backend, TTL or not).

The store is a raw value state of the backend, or a :class:`~strom._state.ttl.TtlValueState`
wrapping one. It offers ``value``/``update``/``clear``/``set_current_namespace`` and
``value_for_merge()``: the stored value to combine a new value with, which for a TTL store
is None once the value expired (an expired accumulator is never merged into, as in Flink's
``TtlReduceFunction``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from strom.datastream.state import AggregatingState, ReducingState

__all__ = ["AggregatingStateImpl", "ReducingStateImpl"]


class _StoreView:
    """What reducing and aggregating state share: the store, namespaces, and merging
    namespaces with a combine function ``(a, b) -> combined`` (:meth:`_combine`)."""

    __slots__ = ()
    _store: Any

    def _combine(self, a: Any, b: Any) -> Any:
        raise NotImplementedError

    def clear(self) -> None:
        """Remove the current key's value."""
        self._store.clear()

    def set_current_namespace(self, namespace: Any) -> None:
        """Scope access to ``namespace``."""
        self._store.set_current_namespace(namespace)

    def get_current_namespace(self) -> Any:
        """The current namespace."""
        return self._store.get_current_namespace()

    def merge_namespaces(self, target: Any, sources: Iterable[Any]) -> None:
        """Combine the values of ``sources`` into ``target`` and clear the sources.

        The handle is scoped to ``target`` afterwards.
        """
        store = self._store
        combine = self._combine
        merged: Any = None
        for ns in sources:
            if ns == target:
                continue
            store.set_current_namespace(ns)
            v = store.value_for_merge()
            if v is not None:
                merged = v if merged is None else combine(merged, v)
                store.clear()
        store.set_current_namespace(target)
        if merged is not None:
            current = store.value_for_merge()
            store.update(merged if current is None else combine(current, merged))


class ReducingStateImpl(_StoreView, ReducingState[Any]):
    """``ReducingState`` over a value store.

    Args:
        store: the value store (see the module docstring).
        reduce: ``(accumulated, value) -> accumulated``.
    """

    __slots__ = ("_reduce", "_store")

    def __init__(self, store: Any, reduce: Callable[[Any, Any], Any]) -> None:
        self._store = store
        self._reduce = reduce

    def get(self) -> Any:
        """The reduced value of the current key, or None."""
        return self._store.value()

    def add(self, value: Any) -> None:
        """Reduce ``value`` into the current key's value (None clears, as in Flink)."""
        if value is None:
            self._store.clear()
            return
        store = self._store
        current = store.value_for_merge()
        store.update(value if current is None else self._reduce(current, value))

    def _combine(self, a: Any, b: Any) -> Any:
        return self._reduce(a, b)


class AggregatingStateImpl(_StoreView, AggregatingState[Any, Any]):
    """``AggregatingState`` over a value store holding the accumulator.

    Args:
        store: the value store (see the module docstring).
        agg_function: a ``strom.datastream.functions.AggregateFunction``.
    """

    __slots__ = ("_add", "_create", "_fn", "_store")

    def __init__(self, store: Any, agg_function: Any) -> None:
        self._store = store
        self._fn = agg_function
        self._add = agg_function.add
        self._create = agg_function.create_accumulator

    def get(self) -> Any:
        """``get_result`` of the current key's accumulator, or None if it has none."""
        acc = self._store.value()
        return None if acc is None else self._fn.get_result(acc)

    def add(self, value: Any) -> None:
        """Add ``value`` to the current key's accumulator (None clears, as in Flink)."""
        if value is None:
            self._store.clear()
            return
        store = self._store
        acc = store.value_for_merge()
        if acc is None:
            acc = self._create()
        store.update(self._add(value, acc))

    def _combine(self, a: Any, b: Any) -> Any:
        return self._fn.merge(a, b)
