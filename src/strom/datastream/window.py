"""Windows: assigners, triggers, evictors and window functions (Flink's windowing API).

A :class:`WindowAssigner` puts each record into zero or more :class:`Window` s; a
:class:`Trigger` decides when a window's contents are evaluated (``FIRE``) and/or
discarded (``PURGE``); an optional :class:`Evictor` removes elements before or after
evaluation. Window contents live in keyed state with the window as namespace, so
checkpoints and the RocksDB backend cover them. Times are int epoch milliseconds;
sizes accept ``timedelta`` or int ms.

Example::

    (stream.key_by(lambda e: e.user)
        .window(TumblingEventTimeWindows.of(timedelta(seconds=10)))
        .aggregate(CountAndSum()))
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from strom._utils.time import to_millis
from strom.datastream.evictor import CountEvictor, DeltaEvictor, Evictor, TimeEvictor
from strom.datastream.trigger import (
    ContinuousEventTimeTrigger,
    ContinuousProcessingTimeTrigger,
    CountTrigger,
    EventTimeTrigger,
    NeverTrigger,
    ProcessingTimeTrigger,
    PurgingTrigger,
    Trigger,
    TriggerResult,
)
from strom.datastream.watermark import MAX_WATERMARK_MS
from strom.datastream.window_function import (
    AllWindowFunction,
    ProcessAllWindowFunction,
    ProcessWindowFunction,
    WindowFunction,
)
from strom.errors import ConfigurationError

if TYPE_CHECKING:
    pass

__all__ = [
    "AllWindowFunction",
    "ContinuousEventTimeTrigger",
    "ContinuousProcessingTimeTrigger",
    "CountEvictor",
    "CountTrigger",
    "DeltaEvictor",
    "EventTimeSessionWindows",
    "EventTimeTrigger",
    "Evictor",
    "GlobalWindow",
    "GlobalWindows",
    "MergingWindowAssigner",
    "NeverTrigger",
    "ProcessAllWindowFunction",
    "ProcessWindowFunction",
    "ProcessingTimeSessionWindows",
    "ProcessingTimeTrigger",
    "PurgingTrigger",
    "SlidingEventTimeWindows",
    "SlidingProcessingTimeWindows",
    "TimeEvictor",
    "TimeWindow",
    "TimestampedValue",
    "Trigger",
    "TriggerResult",
    "TumblingEventTimeWindows",
    "TumblingProcessingTimeWindows",
    "Window",
    "WindowAssigner",
    "WindowFunction",
]

W = TypeVar("W", bound="Window")
"""The window type of an assigner/trigger."""
IN = TypeVar("IN")
"""Input record type."""
OUT = TypeVar("OUT")
"""Output record type."""
KEY = TypeVar("KEY")
"""Key type."""


def _ms(value: timedelta | int, name: str) -> int:
    return to_millis(value, name=name)


# -- windows ----------------------------------------------------------------------------


class Window(abc.ABC):
    """A finite (or global) group of records (Flink's ``Window``)."""

    __slots__ = ()

    @abc.abstractmethod
    def max_timestamp(self) -> int:
        """The largest timestamp (epoch ms) that still belongs to the window."""


class TimeWindow(tuple, Window):
    """The time interval ``[start, end)`` in epoch ms (Flink's ``TimeWindow``).

    A tuple ``(start, end)`` underneath, so hashing and comparison run in C (windows are
    dictionary keys on the hot path); ordered by start, then end.

    Args:
        start: first millisecond of the window.
        end: one past the last millisecond.
    """

    __slots__ = ()

    def __new__(cls, start: int, end: int) -> TimeWindow:
        return tuple.__new__(cls, (start, end))

    def __getnewargs__(self) -> tuple[int, int]:
        return (self[0], self[1])

    @property
    def start(self) -> int:
        """First millisecond of the window."""
        return self[0]

    @property
    def end(self) -> int:
        """One past the last millisecond."""
        return self[1]

    def __repr__(self) -> str:
        return f"TimeWindow(start={self[0]}, end={self[1]})"

    def max_timestamp(self) -> int:
        """``end - 1``."""
        return self[1] - 1

    def intersects(self, other: TimeWindow) -> bool:
        """True if the windows overlap or touch (session merging)."""
        return self[0] <= other[1] and self[1] >= other[0]

    def cover(self, other: TimeWindow) -> TimeWindow:
        """The smallest window containing both."""
        return TimeWindow(min(self[0], other[0]), max(self[1], other[1]))

    @staticmethod
    def get_window_start_with_offset(timestamp: int, offset: int, window_size: int) -> int:
        """Start of the ``window_size`` ms window (shifted by ``offset``) holding ``timestamp``."""
        return timestamp - (timestamp - offset) % window_size


@dataclass(frozen=True, slots=True)
class GlobalWindow(Window):
    """The single window of ``GlobalWindows``; it never ends."""

    def max_timestamp(self) -> int:
        """The max watermark."""
        return MAX_WATERMARK_MS


_GLOBAL_WINDOW = GlobalWindow()


@dataclass(frozen=True, slots=True)
class TimestampedValue(Generic[IN]):
    """A window element with its timestamp (what evictors see).

    Attributes:
        value: the record.
        timestamp: its event timestamp in epoch ms, or None.
    """

    value: IN
    timestamp: int | None

    def get_value(self) -> IN:
        """The record."""
        return self.value

    def get_timestamp(self) -> int | None:
        """The timestamp."""
        return self.timestamp

    def has_timestamp(self) -> bool:
        """True if the record has a timestamp."""
        return self.timestamp is not None


# -- assigners --------------------------------------------------------------------------


class WindowAssigner(abc.ABC, Generic[W]):
    """Assigns records to windows (Flink's ``WindowAssigner``)."""

    class WindowAssignerContext(abc.ABC):
        """Gives assigners the current processing time."""

        @abc.abstractmethod
        def get_current_processing_time(self) -> int:
            """Now, in epoch ms."""

    @abc.abstractmethod
    def assign_windows(
        self, element: Any, timestamp: int | None, context: WindowAssigner.WindowAssignerContext
    ) -> list[W]:
        """The windows ``element`` (with ``timestamp``, epoch ms) belongs to."""

    @abc.abstractmethod
    def get_default_trigger(self) -> Trigger[Any]:
        """The trigger used unless ``.trigger(...)`` overrides it."""

    @abc.abstractmethod
    def is_event_time(self) -> bool:
        """True if windows are based on event time."""


class MergingWindowAssigner(WindowAssigner[W]):
    """An assigner whose windows can merge (sessions)."""

    @abc.abstractmethod
    def merge_windows(self, windows: Iterable[W], callback: Callable[[list[W], W], None]) -> None:
        """Call ``callback(to_be_merged, merge_result)`` for each group to merge."""


def _merge_time_windows(
    windows: Iterable[TimeWindow], callback: Callable[[list[TimeWindow], TimeWindow], None]
) -> None:
    """Merge overlapping time windows (Flink's ``TimeWindow.mergeWindows``)."""
    merged: list[tuple[TimeWindow, list[TimeWindow]]] = []
    current: tuple[TimeWindow, list[TimeWindow]] | None = None
    for w in sorted(windows):
        if current is None:
            current = (w, [w])
        elif current[0].intersects(w):
            current = (current[0].cover(w), [*current[1], w])
        else:
            merged.append(current)
            current = (w, [w])
    if current is not None:
        merged.append(current)
    for result, group in merged:
        if len(group) > 1:
            callback(group, result)


class TumblingEventTimeWindows(WindowAssigner[TimeWindow]):
    """Fixed-size, non-overlapping event-time windows (Flink's assigner of the same name).

    Args:
        size: window size (timedelta or int ms > 0).
        offset: shift of window starts (e.g. time zones), ``0 <= |offset| < size``.

    Raises:
        ConfigurationError: invalid size or offset.
    """

    def __init__(self, size: timedelta | int, offset: timedelta | int = 0) -> None:
        self.size = _ms(size, "size")
        self.offset = _offset_ms(offset, self.size)
        if self.size <= 0:
            msg = f"window size must be > 0 ms, got {self.size}"
            raise ConfigurationError(msg)

    @staticmethod
    def of(size: timedelta | int, offset: timedelta | int = 0) -> TumblingEventTimeWindows:
        """Windows of ``size``, shifted by ``offset``."""
        return TumblingEventTimeWindows(size, offset)

    def assign_windows(self, element: Any, timestamp: int | None, context: Any) -> list[TimeWindow]:
        """The one window holding ``timestamp``."""
        if timestamp is None:
            msg = _NO_TIMESTAMP_MSG
            raise ValueError(msg)
        start = timestamp - (timestamp - self.offset) % self.size
        return [TimeWindow(start, start + self.size)]

    def get_default_trigger(self) -> Trigger[Any]:
        """``EventTimeTrigger``."""
        return EventTimeTrigger()

    def is_event_time(self) -> bool:
        """True."""
        return True

    def __repr__(self) -> str:
        return f"TumblingEventTimeWindows({self.size}, {self.offset})"


_NO_TIMESTAMP_MSG = (
    "record has no timestamp, but an event-time window needs one: set a WatermarkStrategy "
    "with a timestamp assigner on from_source() or call assign_timestamps_and_watermarks()"
)


def _offset_ms(offset: timedelta | int, size: int) -> int:
    if isinstance(offset, timedelta):
        off = int(offset.total_seconds() * 1000)
    elif isinstance(offset, int) and not isinstance(offset, bool):
        off = offset
    else:
        msg = f"window offset must be a timedelta or int ms, got {offset!r}"
        raise ConfigurationError(msg)
    if size > 0 and abs(off) >= size:
        msg = f"window offset {off} ms must be smaller than the size {size} ms in magnitude"
        raise ConfigurationError(msg)
    return off


class SlidingEventTimeWindows(WindowAssigner[TimeWindow]):
    """Windows of ``size`` starting every ``slide`` (Flink's ``SlidingEventTimeWindows``).

    Args:
        size: window size (timedelta or int ms > 0).
        slide: distance between window starts (> 0).
        offset: shift of window starts.

    Raises:
        ConfigurationError: invalid arguments.
    """

    def __init__(
        self, size: timedelta | int, slide: timedelta | int, offset: timedelta | int = 0
    ) -> None:
        self.size = _ms(size, "size")
        self.slide = _ms(slide, "slide")
        if self.size <= 0 or self.slide <= 0:
            msg = f"sliding windows need size > 0 and slide > 0, got {self.size}, {self.slide}"
            raise ConfigurationError(msg)
        self.offset = _offset_ms(offset, self.slide)

    @staticmethod
    def of(
        size: timedelta | int, slide: timedelta | int, offset: timedelta | int = 0
    ) -> SlidingEventTimeWindows:
        """Windows of ``size`` every ``slide``."""
        return SlidingEventTimeWindows(size, slide, offset)

    def assign_windows(self, element: Any, timestamp: int | None, context: Any) -> list[TimeWindow]:
        """Every window holding ``timestamp`` (size/slide of them), latest first."""
        if timestamp is None:
            msg = _NO_TIMESTAMP_MSG
            raise ValueError(msg)
        last_start = timestamp - (timestamp - self.offset) % self.slide
        out = []
        start = last_start
        while start > timestamp - self.size:
            out.append(TimeWindow(start, start + self.size))
            start -= self.slide
        return out

    def get_default_trigger(self) -> Trigger[Any]:
        """``EventTimeTrigger``."""
        return EventTimeTrigger()

    def is_event_time(self) -> bool:
        """True."""
        return True


class EventTimeSessionWindows(MergingWindowAssigner[TimeWindow]):
    """Sessions closed by a gap of inactivity (Flink's ``EventTimeSessionWindows``).

    Args:
        gap: static gap (timedelta or int ms > 0), or None with ``gap_extractor``.
        gap_extractor: ``element -> gap ms`` for dynamic gaps.
    """

    def __init__(
        self,
        gap: timedelta | int | None = None,
        gap_extractor: Callable[[Any], int | timedelta] | None = None,
    ) -> None:
        if gap is None and gap_extractor is None:
            msg = "EventTimeSessionWindows needs a gap or a gap extractor"
            raise ConfigurationError(msg)
        self.gap = _ms(gap, "gap") if gap is not None else None
        if self.gap is not None and self.gap <= 0:
            msg = f"session gap must be > 0 ms, got {self.gap}"
            raise ConfigurationError(msg)
        self.gap_extractor = gap_extractor

    @staticmethod
    def with_gap(gap: timedelta | int) -> EventTimeSessionWindows:
        """Sessions with a static gap."""
        return EventTimeSessionWindows(gap)

    @staticmethod
    def with_dynamic_gap(extractor: Callable[[Any], int | timedelta]) -> EventTimeSessionWindows:
        """Sessions whose gap is computed per element (ms or timedelta)."""
        return EventTimeSessionWindows(None, extractor)

    def _gap_for(self, element: Any) -> int:
        if self.gap_extractor is None:
            assert self.gap is not None
            return self.gap
        gap = self.gap_extractor(element)
        g = int(gap.total_seconds() * 1000) if isinstance(gap, timedelta) else int(gap)
        if g <= 0:
            msg = f"the session gap extractor returned {gap!r}; gaps must be > 0"
            raise ValueError(msg)
        return g

    def assign_windows(self, element: Any, timestamp: int | None, context: Any) -> list[TimeWindow]:
        """The proto-session ``[timestamp, timestamp + gap)``."""
        if timestamp is None:
            msg = _NO_TIMESTAMP_MSG
            raise ValueError(msg)
        return [TimeWindow(timestamp, timestamp + self._gap_for(element))]

    def merge_windows(
        self,
        windows: Iterable[TimeWindow],
        callback: Callable[[list[TimeWindow], TimeWindow], None],
    ) -> None:
        """Merge overlapping sessions."""
        _merge_time_windows(windows, callback)

    def get_default_trigger(self) -> Trigger[Any]:
        """``EventTimeTrigger``."""
        return EventTimeTrigger()

    def is_event_time(self) -> bool:
        """True."""
        return True


class TumblingProcessingTimeWindows(WindowAssigner[TimeWindow]):
    """Fixed-size windows on the wall clock (Flink's ``TumblingProcessingTimeWindows``)."""

    def __init__(self, size: timedelta | int, offset: timedelta | int = 0) -> None:
        self.size = _ms(size, "size")
        if self.size <= 0:
            msg = f"window size must be > 0 ms, got {self.size}"
            raise ConfigurationError(msg)
        self.offset = _offset_ms(offset, self.size)

    @staticmethod
    def of(size: timedelta | int, offset: timedelta | int = 0) -> TumblingProcessingTimeWindows:
        """Windows of ``size`` on processing time."""
        return TumblingProcessingTimeWindows(size, offset)

    def assign_windows(self, element: Any, timestamp: int | None, context: Any) -> list[TimeWindow]:
        """The window holding the current processing time."""
        now = context.get_current_processing_time()
        start = now - (now - self.offset) % self.size
        return [TimeWindow(start, start + self.size)]

    def get_default_trigger(self) -> Trigger[Any]:
        """``ProcessingTimeTrigger``."""
        return ProcessingTimeTrigger()

    def is_event_time(self) -> bool:
        """False."""
        return False


class SlidingProcessingTimeWindows(WindowAssigner[TimeWindow]):
    """Sliding windows on the wall clock."""

    def __init__(
        self, size: timedelta | int, slide: timedelta | int, offset: timedelta | int = 0
    ) -> None:
        self._event = SlidingEventTimeWindows(size, slide, offset)

    @staticmethod
    def of(
        size: timedelta | int, slide: timedelta | int, offset: timedelta | int = 0
    ) -> SlidingProcessingTimeWindows:
        """Windows of ``size`` every ``slide`` on processing time."""
        return SlidingProcessingTimeWindows(size, slide, offset)

    def assign_windows(self, element: Any, timestamp: int | None, context: Any) -> list[TimeWindow]:
        """The windows holding the current processing time."""
        return self._event.assign_windows(element, context.get_current_processing_time(), context)

    def get_default_trigger(self) -> Trigger[Any]:
        """``ProcessingTimeTrigger``."""
        return ProcessingTimeTrigger()

    def is_event_time(self) -> bool:
        """False."""
        return False


class ProcessingTimeSessionWindows(MergingWindowAssigner[TimeWindow]):
    """Sessions on the wall clock."""

    def __init__(self, gap: timedelta | int) -> None:
        self.gap = _ms(gap, "gap")
        if self.gap <= 0:
            msg = f"session gap must be > 0 ms, got {self.gap}"
            raise ConfigurationError(msg)

    @staticmethod
    def with_gap(gap: timedelta | int) -> ProcessingTimeSessionWindows:
        """Sessions with a static gap."""
        return ProcessingTimeSessionWindows(gap)

    def assign_windows(self, element: Any, timestamp: int | None, context: Any) -> list[TimeWindow]:
        """``[now, now + gap)``."""
        now = context.get_current_processing_time()
        return [TimeWindow(now, now + self.gap)]

    def merge_windows(
        self,
        windows: Iterable[TimeWindow],
        callback: Callable[[list[TimeWindow], TimeWindow], None],
    ) -> None:
        """Merge overlapping sessions."""
        _merge_time_windows(windows, callback)

    def get_default_trigger(self) -> Trigger[Any]:
        """``ProcessingTimeTrigger``."""
        return ProcessingTimeTrigger()

    def is_event_time(self) -> bool:
        """False."""
        return False


class GlobalWindows(WindowAssigner[GlobalWindow]):
    """One window per key that never ends; needs a custom trigger (``count_window``)."""

    @staticmethod
    def create() -> GlobalWindows:
        """The assigner."""
        return GlobalWindows()

    def assign_windows(
        self, element: Any, timestamp: int | None, context: Any
    ) -> list[GlobalWindow]:
        """The global window."""
        return [_GLOBAL_WINDOW]

    def get_default_trigger(self) -> Trigger[Any]:
        """``NeverTrigger``: set a trigger with ``.trigger(...)``."""
        return NeverTrigger()

    def is_event_time(self) -> bool:
        """False."""
        return False
