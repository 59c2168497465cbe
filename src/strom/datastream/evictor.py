"""Evictors: remove window elements before/after evaluation (Flink's ``Evictor`` and
``CountEvictor``/``TimeEvictor``/``DeltaEvictor``). Re-exported by
``strom.datastream.window``."""

from __future__ import annotations

import abc
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from strom._utils.time import to_millis

if TYPE_CHECKING:
    from strom.datastream.window import TimestampedValue, Window

W = TypeVar("W", bound="Window")
"""The window type of a trigger/evictor."""


def _ms(value: timedelta | int, name: str) -> int:
    return to_millis(value, name=name)


__all__ = ["CountEvictor", "DeltaEvictor", "Evictor", "TimeEvictor"]


class Evictor(abc.ABC, Generic[W]):
    """Removes elements from a window before and/or after evaluation (Flink's ``Evictor``).

    ``elements`` is a list of :class:`TimestampedValue`; remove entries in place.
    """

    class EvictorContext(abc.ABC):
        """Time queries for evictors."""

        @abc.abstractmethod
        def get_current_processing_time(self) -> int:
            """Now, epoch ms."""

        @abc.abstractmethod
        def get_current_watermark(self) -> int:
            """The current watermark, epoch ms."""

    @abc.abstractmethod
    def evict_before(
        self,
        elements: list[TimestampedValue[Any]],
        size: int,
        window: W,
        evictor_context: Evictor.EvictorContext,
    ) -> None:
        """Evict before the window function runs."""

    @abc.abstractmethod
    def evict_after(
        self,
        elements: list[TimestampedValue[Any]],
        size: int,
        window: W,
        evictor_context: Evictor.EvictorContext,
    ) -> None:
        """Evict after the window function ran."""


class _BeforeOrAfterEvictor(Evictor[Any]):
    """An evictor with one eviction rule applied before evaluation, or after it when
    ``do_evict_after`` is set (Flink's built-in evictors)."""

    do_evict_after: bool = False

    def _evict(self, elements: list[TimestampedValue[Any]], size: int) -> None:
        raise NotImplementedError

    def evict_before(
        self,
        elements: list[TimestampedValue[Any]],
        size: int,
        window: Window,
        evictor_context: Evictor.EvictorContext,
    ) -> None:
        """Evict unless ``do_evict_after``."""
        if not self.do_evict_after:
            self._evict(elements, size)

    def evict_after(
        self,
        elements: list[TimestampedValue[Any]],
        size: int,
        window: Window,
        evictor_context: Evictor.EvictorContext,
    ) -> None:
        """Evict if ``do_evict_after``."""
        if self.do_evict_after:
            self._evict(elements, size)


class CountEvictor(_BeforeOrAfterEvictor):
    """Keeps at most ``max_count`` (the latest) elements.

    Args:
        max_count: elements to keep.
        do_evict_after: evict after instead of before evaluation.
    """

    def __init__(self, max_count: int, do_evict_after: bool = False) -> None:
        self.max_count = max_count
        self.do_evict_after = do_evict_after

    @staticmethod
    def of(max_count: int, do_evict_after: bool = False) -> CountEvictor:
        """Keep the last ``max_count`` elements."""
        return CountEvictor(max_count, do_evict_after)

    def _evict(self, elements: list[TimestampedValue[Any]], size: int) -> None:
        if size > self.max_count:
            del elements[: size - self.max_count]



class TimeEvictor(_BeforeOrAfterEvictor):
    """Keeps elements within ``window_size`` of the newest element's timestamp.

    Args:
        window_size: time span to keep (timedelta or int ms).
        do_evict_after: evict after instead of before evaluation.
    """

    def __init__(self, window_size: timedelta | int, do_evict_after: bool = False) -> None:
        self.window_size = _ms(window_size, "window_size")
        self.do_evict_after = do_evict_after

    @staticmethod
    def of(window_size: timedelta | int, do_evict_after: bool = False) -> TimeEvictor:
        """Keep the last ``window_size`` of event time."""
        return TimeEvictor(window_size, do_evict_after)

    def _evict(self, elements: list[TimestampedValue[Any]], size: int) -> None:
        stamped = [e.timestamp for e in elements if e.timestamp is not None]
        if not stamped:
            return
        cutoff = max(stamped) - self.window_size
        elements[:] = [e for e in elements if e.timestamp is None or e.timestamp > cutoff]



class DeltaEvictor(_BeforeOrAfterEvictor):
    """Evicts elements whose ``delta(element, last)`` is >= ``threshold``.

    Args:
        threshold: the delta limit.
        delta_function: ``(old_value, new_value) -> float``.
        do_evict_after: evict after instead of before evaluation.
    """

    def __init__(
        self,
        threshold: float,
        delta_function: Callable[[Any, Any], float],
        do_evict_after: bool = False,
    ) -> None:
        self.threshold = threshold
        self.delta_function = delta_function
        self.do_evict_after = do_evict_after

    @staticmethod
    def of(
        threshold: float, delta_function: Callable[[Any, Any], float], do_evict_after: bool = False
    ) -> DeltaEvictor:
        """Evict by delta to the last element."""
        return DeltaEvictor(threshold, delta_function, do_evict_after)

    def _evict(self, elements: list[TimestampedValue[Any]], size: int) -> None:
        if not elements:
            return
        last = elements[-1].value
        elements[:] = [e for e in elements if self.delta_function(e.value, last) < self.threshold]

