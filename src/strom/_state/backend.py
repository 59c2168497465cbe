"""The keyed state backend contract used by the runtime's keyed operators.

One backend instance serves one keyed operator subtask. The operator sets the current
key per record (``set_current_key``); state handles created by
``get_or_create_keyed_state`` read and write the value of the current key and of the
handle's current namespace (``VoidNamespace`` unless a window operator sets one).
Snapshots are organised by key group so a restore can select any ``KeyGroupRange``
(rescaling) and so heap and RocksDB snapshots share one interface.
"""

from __future__ import annotations

import abc
from typing import Any

__all__ = ["VOID_NAMESPACE", "KeyedStateBackend"]

VOID_NAMESPACE = None
"""The namespace of state outside windows."""


class KeyedStateBackend(abc.ABC):
    """Keyed state of one operator subtask (Flink's ``KeyedStateBackend``).

    Attributes:
        max_parallelism: number of key groups.
    """

    max_parallelism: int

    @abc.abstractmethod
    def set_current_key(self, key: Any) -> None:
        """Scope subsequent state access to ``key``."""

    @abc.abstractmethod
    def get_current_key(self) -> Any:
        """The current key."""

    @abc.abstractmethod
    def get_or_create_keyed_state(self, descriptor: Any) -> Any:
        """Return the state handle (ValueState, ListState, ...) for ``descriptor``.

        The handle also offers ``set_current_namespace(namespace)`` for window state.
        """

    @abc.abstractmethod
    def snapshot(self, checkpoint_id: int) -> Any:
        """A picklable, versioned snapshot of all state, grouped by key group."""

    @abc.abstractmethod
    def restore(self, snapshots: list[Any]) -> None:
        """Load the key groups of this backend's range from one or more snapshots."""

    def dispose(self) -> None:  # noqa: B027 - optional hook
        """Release memory and local files."""
