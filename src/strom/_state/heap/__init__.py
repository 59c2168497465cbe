"""The heap keyed state backend (``HashMapStateBackend``)."""

from strom._state.heap.backend import HeapKeyedStateBackend
from strom._state.heap.states import HeapListState, HeapMapState, HeapStateTable, HeapValueState

__all__ = [
    "HeapKeyedStateBackend",
    "HeapListState",
    "HeapMapState",
    "HeapStateTable",
    "HeapValueState",
]
