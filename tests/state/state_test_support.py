"""Helpers shared by the state tests (imported by module name, like the connector tests)."""

from __future__ import annotations

from dataclasses import dataclass

from strom.datastream.functions import AggregateFunction, ReduceFunction


class ManualClock:
    """A processing-time clock the test advances by hand (epoch ms)."""

    def __init__(self, now_ms: int = 1_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms


@dataclass(frozen=True)
class Window:
    """A namespace like the runtime's TimeWindow (hashable, picklable)."""

    start: int
    end: int


class Average(AggregateFunction[int, list[int], float]):
    """Mean of ints; the accumulator is ``[sum, count]``."""

    def create_accumulator(self) -> list[int]:
        return [0, 0]

    def add(self, value: int, accumulator: list[int]) -> list[int]:
        return [accumulator[0] + value, accumulator[1] + 1]

    def get_result(self, accumulator: list[int]) -> float:
        return accumulator[0] / accumulator[1]

    def merge(self, acc_a: list[int], acc_b: list[int]) -> list[int]:
        return [acc_a[0] + acc_b[0], acc_a[1] + acc_b[1]]


class Concat(ReduceFunction[str]):
    """Concatenates strings."""

    def reduce(self, value1: str, value2: str) -> str:
        return value1 + value2
