"""Accumulators: per-job counters and collections merged over all subtasks.

Mirrors Flink's ``Accumulator``/``IntCounter``. Register in ``open`` with
``runtime_context.add_accumulator(name, IntCounter())``; read the merged value from
``JobExecutionResult.get_accumulator_result(name)`` after ``execute()``.
"""

from __future__ import annotations

import abc
from typing import Any, Generic, TypeVar

__all__ = ["Accumulator", "DoubleCounter", "IntCounter", "ListAccumulator"]

V = TypeVar("V")
"""The accumulated value type."""


class Accumulator(abc.ABC, Generic[V]):
    """A value built up by one subtask and merged across subtasks at job end."""

    @abc.abstractmethod
    def add(self, value: Any) -> None:
        """Add one value."""

    @abc.abstractmethod
    def get_local_value(self) -> V:
        """This subtask's value."""

    @abc.abstractmethod
    def merge(self, other: Accumulator[V]) -> None:
        """Merge another subtask's accumulator of the same type into this one."""

    @abc.abstractmethod
    def reset_local(self) -> None:
        """Reset to the empty value."""


class IntCounter(Accumulator[int]):
    """Sums ints (Flink's ``IntCounter``).

    Args:
        value: the start value.
    """

    def __init__(self, value: int = 0) -> None:
        self.value = value

    def add(self, value: Any) -> None:
        """Add an int."""
        self.value += int(value)

    def get_local_value(self) -> int:
        """The sum so far."""
        return self.value

    def merge(self, other: Accumulator[int]) -> None:
        """Add another counter's sum."""
        self.value += other.get_local_value()

    def reset_local(self) -> None:
        """Back to 0."""
        self.value = 0


class DoubleCounter(Accumulator[float]):
    """Sums floats (Flink's ``DoubleCounter``).

    Args:
        value: the start value.
    """

    def __init__(self, value: float = 0.0) -> None:
        self.value = value

    def add(self, value: Any) -> None:
        """Add a number."""
        self.value += float(value)

    def get_local_value(self) -> float:
        """The sum so far."""
        return self.value

    def merge(self, other: Accumulator[float]) -> None:
        """Add another counter's sum."""
        self.value += other.get_local_value()

    def reset_local(self) -> None:
        """Back to 0.0."""
        self.value = 0.0


class ListAccumulator(Accumulator[list[Any]]):
    """Collects values into a list (Flink's ``ListAccumulator``); keep it small."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> None:
        """Append a value."""
        self.values.append(value)

    def get_local_value(self) -> list[Any]:
        """The collected values."""
        return self.values

    def merge(self, other: Accumulator[list[Any]]) -> None:
        """Append another subtask's values."""
        self.values.extend(other.get_local_value())

    def reset_local(self) -> None:
        """Empty the list."""
        self.values = []
