"""Keyed state interfaces and descriptors (Flink's ``pyflink.datastream.state``).

State is scoped to the current key (and, in windows, the window). Obtain it through the
``RuntimeContext`` in ``open`` or in a process function; the state backend (heap or
RocksDB) stores it by key group so that checkpoints and rescaling cover it.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["State", "StateDescriptor", "ValueState", "ValueStateDescriptor"]

T = TypeVar("T")
"""The state's value type."""


class State(abc.ABC):
    """Base of all state handles."""

    @abc.abstractmethod
    def clear(self) -> None:
        """Remove the value of the current key."""


class ValueState(State, Generic[T]):
    """A single value per key (Flink's ``ValueState``)."""

    @abc.abstractmethod
    def value(self) -> T | None:
        """The current key's value, or None if unset."""

    @abc.abstractmethod
    def update(self, value: T) -> None:
        """Set the current key's value."""


@dataclass(frozen=True)
class StateDescriptor:
    """Names a piece of state (Flink's ``StateDescriptor``).

    Attributes:
        name: unique name of the state within its operator; part of snapshots.
        type_info: optional type hint / serializer used by typed backends.
    """

    name: str
    type_info: Any = None


@dataclass(frozen=True)
class ValueStateDescriptor(StateDescriptor):
    """Describes a :class:`ValueState` (Flink's ``ValueStateDescriptor``)."""
