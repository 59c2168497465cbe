"""TTL cleanup of heap state: incremental cleanup and the full-snapshot filter.

Incremental cleanup (Flink's ``TtlIncrementalCleanup``) keeps a lazy cursor over all
entries of one state. Every run checks the next ``cleanup_size`` entries and removes
expired values, list elements and map entries. The cursor walks a list of the entry keys
taken when it (re)starts, so it costs one pointer per entry while a pass is under way
(Flink documents the same copy for synchronous heap snapshots); entries added during a
pass are checked in the next one.
"""

from __future__ import annotations

from typing import Any

from strom._state.heap.states import HeapStateTable
from strom._state.snapshot import LIST, MAP
from strom._state.ttl import TtlPolicy

__all__ = ["HeapIncrementalCleanup", "unexpired"]


def unexpired(kind: str, value: Any, deadline: int) -> Any:
    """The part of an internal TTL value that is not expired, or None if nothing is.

    Args:
        kind: the state kind.
        value: ``(value, ts)``; for list state a list of them; for map state a dict of them.
        deadline: entries with ``ts <= deadline`` are expired (``now - ttl_ms``).
    """
    if kind == LIST:
        alive = [w for w in value if w[1] > deadline]
        return (alive or None) if len(alive) != len(value) else value
    if kind == MAP:
        alive_map = {k: w for k, w in value.items() if w[1] > deadline}
        return (alive_map or None) if len(alive_map) != len(value) else value
    return value if value[1] > deadline else None


class HeapIncrementalCleanup:
    """Checks a few entries of one heap state for expiry per call.

    Args:
        table: the state's data.
        kind: the state kind.
        policy: the TTL policy (``incremental_size`` entries per run).
    """

    __slots__ = ("_keys", "_kind", "_policy", "_pos", "_size", "_table")

    def __init__(self, table: HeapStateTable, kind: str, policy: TtlPolicy) -> None:
        self._table = table
        self._kind = kind
        self._policy = policy
        self._size = policy.incremental_size
        self._keys: list[tuple[bool, Any]] = []
        self._pos = 0

    def __call__(self) -> None:
        """Check the next ``cleanup_size`` entries; remove what expired."""
        budget = self._size
        if budget <= 0:
            return
        table = self._table
        deadline = self._policy.clock() - self._policy.ttl_ms
        refilled = False
        while budget > 0:
            if self._pos >= len(self._keys):
                if refilled:
                    return
                self._keys = [(False, k) for k in table.void]
                self._keys.extend((True, k) for k in table.namespaced)
                self._pos = 0
                refilled = True
                if not self._keys:
                    return
            namespaced, k = self._keys[self._pos]
            self._pos += 1
            budget -= 1
            d = table.namespaced if namespaced else table.void
            value = d.get(k)
            if value is None:
                continue
            alive = unexpired(self._kind, value, deadline)
            if alive is None:
                del d[k]
            elif alive is not value:
                d[k] = alive
