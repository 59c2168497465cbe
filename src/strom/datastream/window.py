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
import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from strom._utils.time import to_millis
from strom.datastream.functions import Function
from strom.datastream.watermark import MAX_WATERMARK_MS
from strom.errors import ConfigurationError

if TYPE_CHECKING:
    from strom.datastream.output_tag import OutputTag

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


# -- triggers ---------------------------------------------------------------------------


class TriggerResult(enum.Enum):
    """What a trigger decides (Flink's ``TriggerResult``)."""

    CONTINUE = (False, False)
    FIRE_AND_PURGE = (True, True)
    FIRE = (True, False)
    PURGE = (False, True)

    def is_fire(self) -> bool:
        """True for FIRE and FIRE_AND_PURGE."""
        return self.value[0]

    def is_purge(self) -> bool:
        """True for PURGE and FIRE_AND_PURGE."""
        return self.value[1]


class Trigger(abc.ABC, Generic[W]):
    """Decides when a window is evaluated (Flink's ``Trigger``).

    Each callback runs for one key and window; a trigger keeps its own data in
    ``ctx.get_partitioned_state(descriptor)`` (scoped to key and window), never in
    attributes: one trigger instance serves all keys and windows of a subtask.
    """

    class TriggerContext(abc.ABC):
        """Time, timers and state for one (key, window)."""

        @abc.abstractmethod
        def get_current_processing_time(self) -> int:
            """Now, epoch ms."""

        @abc.abstractmethod
        def get_current_watermark(self) -> int:
            """The current watermark, epoch ms."""

        @abc.abstractmethod
        def register_processing_time_timer(self, time: int) -> None:
            """Call ``on_processing_time`` at ``time``."""

        @abc.abstractmethod
        def register_event_time_timer(self, time: int) -> None:
            """Call ``on_event_time`` when the watermark passes ``time``."""

        @abc.abstractmethod
        def delete_processing_time_timer(self, time: int) -> None:
            """Delete a processing-time timer."""

        @abc.abstractmethod
        def delete_event_time_timer(self, time: int) -> None:
            """Delete an event-time timer."""

        @abc.abstractmethod
        def get_partitioned_state(self, state_descriptor: Any) -> Any:
            """State scoped to the current key and window."""

    class OnMergeContext(TriggerContext):
        """Context of ``on_merge``."""

        def merge_partitioned_state(self, state_descriptor: Any) -> None:
            """Merge the state of the merged windows into the result window."""

    @abc.abstractmethod
    def on_element(
        self, element: Any, timestamp: int | None, window: W, ctx: Trigger.TriggerContext
    ) -> TriggerResult:
        """Called per element added to ``window``."""

    @abc.abstractmethod
    def on_processing_time(
        self, time: int, window: W, ctx: Trigger.TriggerContext
    ) -> TriggerResult:
        """A processing-time timer of this trigger fired."""

    @abc.abstractmethod
    def on_event_time(self, time: int, window: W, ctx: Trigger.TriggerContext) -> TriggerResult:
        """An event-time timer of this trigger fired."""

    def can_merge(self) -> bool:
        """True if the trigger supports merging windows (sessions)."""
        return False

    def on_merge(self, window: W, ctx: Trigger.OnMergeContext) -> None:
        """Windows were merged into ``window``."""
        msg = f"{type(self).__name__} does not support merging windows"
        raise TypeError(msg)

    @abc.abstractmethod
    def clear(self, window: W, ctx: Trigger.TriggerContext) -> None:
        """Remove timers and state of ``window`` (the window is purged for good)."""


class EventTimeTrigger(Trigger[Window]):
    """Fires once the watermark passes the window's end (and for each late element)."""

    @staticmethod
    def create() -> EventTimeTrigger:
        """The trigger."""
        return EventTimeTrigger()

    def on_element(
        self, element: Any, timestamp: int | None, window: Window, ctx: Trigger.TriggerContext
    ) -> TriggerResult:
        """Fire at once for late elements; otherwise register the end-of-window timer."""
        if window.max_timestamp() <= ctx.get_current_watermark():
            return TriggerResult.FIRE
        ctx.register_event_time_timer(window.max_timestamp())
        return TriggerResult.CONTINUE

    def on_event_time(
        self, time: int, window: Window, ctx: Trigger.TriggerContext
    ) -> TriggerResult:
        """Fire at the window's end."""
        return TriggerResult.FIRE if time == window.max_timestamp() else TriggerResult.CONTINUE

    def on_processing_time(
        self, time: int, window: Window, ctx: Trigger.TriggerContext
    ) -> TriggerResult:
        """Ignored."""
        return TriggerResult.CONTINUE

    def can_merge(self) -> bool:
        """True."""
        return True

    def on_merge(self, window: Window, ctx: Trigger.OnMergeContext) -> None:
        """Register the merged window's end timer (if not already passed)."""
        if window.max_timestamp() > ctx.get_current_watermark():
            ctx.register_event_time_timer(window.max_timestamp())

    def clear(self, window: Window, ctx: Trigger.TriggerContext) -> None:
        """Delete the end-of-window timer."""
        ctx.delete_event_time_timer(window.max_timestamp())


class ProcessingTimeTrigger(Trigger[Window]):
    """Fires when the wall clock passes the window's end."""

    @staticmethod
    def create() -> ProcessingTimeTrigger:
        """The trigger."""
        return ProcessingTimeTrigger()

    def on_element(
        self, element: Any, timestamp: int | None, window: Window, ctx: Trigger.TriggerContext
    ) -> TriggerResult:
        """Register the end-of-window processing-time timer."""
        ctx.register_processing_time_timer(window.max_timestamp())
        return TriggerResult.CONTINUE

    def on_event_time(
        self, time: int, window: Window, ctx: Trigger.TriggerContext
    ) -> TriggerResult:
        """Ignored."""
        return TriggerResult.CONTINUE

    def on_processing_time(
        self, time: int, window: Window, ctx: Trigger.TriggerContext
    ) -> TriggerResult:
        """Fire."""
        return TriggerResult.FIRE

    def can_merge(self) -> bool:
        """True."""
        return True

    def on_merge(self, window: Window, ctx: Trigger.OnMergeContext) -> None:
        """Register the merged window's timer."""
        if window.max_timestamp() > ctx.get_current_processing_time():
            ctx.register_processing_time_timer(window.max_timestamp())

    def clear(self, window: Window, ctx: Trigger.TriggerContext) -> None:
        """Delete the timer."""
        ctx.delete_processing_time_timer(window.max_timestamp())


class NeverTrigger(Trigger[Window]):
    """Never fires (the default of ``GlobalWindows``)."""

    def on_element(
        self, element: Any, timestamp: int | None, window: Window, ctx: Trigger.TriggerContext
    ) -> TriggerResult:
        """CONTINUE."""
        return TriggerResult.CONTINUE

    def on_event_time(
        self, time: int, window: Window, ctx: Trigger.TriggerContext
    ) -> TriggerResult:
        """CONTINUE."""
        return TriggerResult.CONTINUE

    def on_processing_time(
        self, time: int, window: Window, ctx: Trigger.TriggerContext
    ) -> TriggerResult:
        """CONTINUE."""
        return TriggerResult.CONTINUE

    def clear(self, window: Window, ctx: Trigger.TriggerContext) -> None:
        """Nothing to clear."""


class CountTrigger(Trigger[Window]):
    """Fires every ``count`` elements of a window (Flink's ``CountTrigger``).

    Args:
        count: elements per firing (>= 1).
    """

    STATE = "count-trigger"

    def __init__(self, count: int) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            msg = f"CountTrigger needs an int count >= 1, got {count!r}"
            raise ConfigurationError(msg)
        self.count = count

    @staticmethod
    def of(count: int) -> CountTrigger:
        """Fire every ``count`` elements."""
        return CountTrigger(count)

    def _state(self, ctx: Trigger.TriggerContext) -> Any:
        from strom.datastream.state import ValueStateDescriptor

        return ctx.get_partitioned_state(ValueStateDescriptor(self.STATE))

    def on_element(
        self, element: Any, timestamp: int | None, window: Window, ctx: Trigger.TriggerContext
    ) -> TriggerResult:
        """Count; fire (and reset) at ``count``."""
        state = self._state(ctx)
        n = (state.value() or 0) + 1
        if n >= self.count:
            state.clear()
            return TriggerResult.FIRE
        state.update(n)
        return TriggerResult.CONTINUE

    def on_event_time(
        self, time: int, window: Window, ctx: Trigger.TriggerContext
    ) -> TriggerResult:
        """CONTINUE."""
        return TriggerResult.CONTINUE

    def on_processing_time(
        self, time: int, window: Window, ctx: Trigger.TriggerContext
    ) -> TriggerResult:
        """CONTINUE."""
        return TriggerResult.CONTINUE

    def can_merge(self) -> bool:
        """True."""
        return True

    def on_merge(self, window: Window, ctx: Trigger.OnMergeContext) -> None:
        """Counts of merged windows are summed by the operator."""
        ctx.merge_partitioned_state(self.STATE)

    def clear(self, window: Window, ctx: Trigger.TriggerContext) -> None:
        """Drop the count."""
        self._state(ctx).clear()


class PurgingTrigger(Trigger[Window]):
    """Turns every FIRE of the wrapped trigger into FIRE_AND_PURGE.

    Args:
        nested: the wrapped trigger.
    """

    def __init__(self, nested: Trigger[Any]) -> None:
        self.nested = nested

    @staticmethod
    def of(nested: Trigger[Any]) -> PurgingTrigger:
        """Wrap ``nested``."""
        return PurgingTrigger(nested)

    @staticmethod
    def _purging(r: TriggerResult) -> TriggerResult:
        return TriggerResult.FIRE_AND_PURGE if r.is_fire() else r

    def on_element(
        self, element: Any, timestamp: int | None, window: Window, ctx: Trigger.TriggerContext
    ) -> TriggerResult:
        """Nested result, purging on fire."""
        return self._purging(self.nested.on_element(element, timestamp, window, ctx))

    def on_event_time(
        self, time: int, window: Window, ctx: Trigger.TriggerContext
    ) -> TriggerResult:
        """Nested result, purging on fire."""
        return self._purging(self.nested.on_event_time(time, window, ctx))

    def on_processing_time(
        self, time: int, window: Window, ctx: Trigger.TriggerContext
    ) -> TriggerResult:
        """Nested result, purging on fire."""
        return self._purging(self.nested.on_processing_time(time, window, ctx))

    def can_merge(self) -> bool:
        """As the nested trigger."""
        return self.nested.can_merge()

    def on_merge(self, window: Window, ctx: Trigger.OnMergeContext) -> None:
        """Delegate."""
        self.nested.on_merge(window, ctx)

    def clear(self, window: Window, ctx: Trigger.TriggerContext) -> None:
        """Delegate."""
        self.nested.clear(window, ctx)


class ContinuousEventTimeTrigger(Trigger[Window]):
    """Fires every ``interval`` of event time and at the window's end.

    Args:
        interval: firing interval (timedelta or int ms > 0).
    """

    STATE = "continuous-event-time-fire"

    def __init__(self, interval: timedelta | int) -> None:
        self.interval = _ms(interval, "interval")
        if self.interval <= 0:
            msg = f"interval must be > 0 ms, got {self.interval}"
            raise ConfigurationError(msg)

    @staticmethod
    def of(interval: timedelta | int) -> ContinuousEventTimeTrigger:
        """Fire every ``interval``."""
        return ContinuousEventTimeTrigger(interval)

    def _state(self, ctx: Trigger.TriggerContext) -> Any:
        from strom.datastream.state import ValueStateDescriptor

        return ctx.get_partitioned_state(ValueStateDescriptor(self.STATE))

    def on_element(
        self, element: Any, timestamp: int | None, window: Window, ctx: Trigger.TriggerContext
    ) -> TriggerResult:
        """Register the window-end timer and the next interval timer."""
        if window.max_timestamp() <= ctx.get_current_watermark():
            return TriggerResult.FIRE
        ctx.register_event_time_timer(window.max_timestamp())
        state = self._state(ctx)
        if state.value() is None and timestamp is not None:
            start = timestamp - timestamp % self.interval
            nxt = min(start + self.interval, window.max_timestamp())
            state.update(nxt)
            ctx.register_event_time_timer(nxt)
        return TriggerResult.CONTINUE

    def on_event_time(
        self, time: int, window: Window, ctx: Trigger.TriggerContext
    ) -> TriggerResult:
        """Fire at interval boundaries and at the window's end."""
        if time == window.max_timestamp():
            return TriggerResult.FIRE
        state = self._state(ctx)
        if state.value() == time:
            nxt = min(time + self.interval, window.max_timestamp())
            state.update(nxt)
            ctx.register_event_time_timer(nxt)
            return TriggerResult.FIRE
        return TriggerResult.CONTINUE

    def on_processing_time(
        self, time: int, window: Window, ctx: Trigger.TriggerContext
    ) -> TriggerResult:
        """CONTINUE."""
        return TriggerResult.CONTINUE

    def clear(self, window: Window, ctx: Trigger.TriggerContext) -> None:
        """Delete the interval timer."""
        state = self._state(ctx)
        t = state.value()
        if t is not None:
            ctx.delete_event_time_timer(t)
        state.clear()


class ContinuousProcessingTimeTrigger(Trigger[Window]):
    """Fires every ``interval`` of processing time (and at the window end on processing
    time assigners)."""

    STATE = "continuous-processing-time-fire"

    def __init__(self, interval: timedelta | int) -> None:
        self.interval = _ms(interval, "interval")
        if self.interval <= 0:
            msg = f"interval must be > 0 ms, got {self.interval}"
            raise ConfigurationError(msg)

    @staticmethod
    def of(interval: timedelta | int) -> ContinuousProcessingTimeTrigger:
        """Fire every ``interval``."""
        return ContinuousProcessingTimeTrigger(interval)

    def _state(self, ctx: Trigger.TriggerContext) -> Any:
        from strom.datastream.state import ValueStateDescriptor

        return ctx.get_partitioned_state(ValueStateDescriptor(self.STATE))

    def on_element(
        self, element: Any, timestamp: int | None, window: Window, ctx: Trigger.TriggerContext
    ) -> TriggerResult:
        """Register the next interval timer."""
        state = self._state(ctx)
        if state.value() is None:
            now = ctx.get_current_processing_time()
            nxt = now - now % self.interval + self.interval
            state.update(nxt)
            ctx.register_processing_time_timer(nxt)
        return TriggerResult.CONTINUE

    def on_event_time(
        self, time: int, window: Window, ctx: Trigger.TriggerContext
    ) -> TriggerResult:
        """CONTINUE."""
        return TriggerResult.CONTINUE

    def on_processing_time(
        self, time: int, window: Window, ctx: Trigger.TriggerContext
    ) -> TriggerResult:
        """Fire and schedule the next interval."""
        state = self._state(ctx)
        if state.value() == time:
            state.update(time + self.interval)
            ctx.register_processing_time_timer(time + self.interval)
            return TriggerResult.FIRE
        return TriggerResult.CONTINUE

    def clear(self, window: Window, ctx: Trigger.TriggerContext) -> None:
        """Delete the interval timer."""
        state = self._state(ctx)
        t = state.value()
        if t is not None:
            ctx.delete_processing_time_timer(t)
        state.clear()


# -- evictors ---------------------------------------------------------------------------


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


class CountEvictor(Evictor[Window]):
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


class TimeEvictor(Evictor[Window]):
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

    def _evict(self, elements: list[TimestampedValue[Any]]) -> None:
        stamped = [e.timestamp for e in elements if e.timestamp is not None]
        if not stamped:
            return
        cutoff = max(stamped) - self.window_size
        elements[:] = [e for e in elements if e.timestamp is None or e.timestamp > cutoff]

    def evict_before(
        self,
        elements: list[TimestampedValue[Any]],
        size: int,
        window: Window,
        evictor_context: Evictor.EvictorContext,
    ) -> None:
        """Evict unless ``do_evict_after``."""
        if not self.do_evict_after:
            self._evict(elements)

    def evict_after(
        self,
        elements: list[TimestampedValue[Any]],
        size: int,
        window: Window,
        evictor_context: Evictor.EvictorContext,
    ) -> None:
        """Evict if ``do_evict_after``."""
        if self.do_evict_after:
            self._evict(elements)


class DeltaEvictor(Evictor[Window]):
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

    def _evict(self, elements: list[TimestampedValue[Any]]) -> None:
        if not elements:
            return
        last = elements[-1].value
        elements[:] = [e for e in elements if self.delta_function(e.value, last) < self.threshold]

    def evict_before(
        self,
        elements: list[TimestampedValue[Any]],
        size: int,
        window: Window,
        evictor_context: Evictor.EvictorContext,
    ) -> None:
        """Evict unless ``do_evict_after``."""
        if not self.do_evict_after:
            self._evict(elements)

    def evict_after(
        self,
        elements: list[TimestampedValue[Any]],
        size: int,
        window: Window,
        evictor_context: Evictor.EvictorContext,
    ) -> None:
        """Evict if ``do_evict_after``."""
        if self.do_evict_after:
            self._evict(elements)


# -- window functions -------------------------------------------------------------------


class ProcessWindowFunction(Function, Generic[IN, OUT, KEY, W]):
    """Evaluates a window with full context (Flink's ``ProcessWindowFunction``)."""

    class Context(abc.ABC):
        """Context of one window evaluation; valid only during the call."""

        @abc.abstractmethod
        def window(self) -> Any:
            """The window being evaluated."""

        @abc.abstractmethod
        def current_processing_time(self) -> int:
            """Now, epoch ms."""

        @abc.abstractmethod
        def current_watermark(self) -> int:
            """The current watermark, epoch ms."""

        @abc.abstractmethod
        def window_state(self) -> Any:
            """Keyed state scoped to this key and window (``get_state(descriptor)``...)."""

        @abc.abstractmethod
        def global_state(self) -> Any:
            """Keyed state of this key across windows."""

        @abc.abstractmethod
        def output(self, output_tag: OutputTag, value: Any) -> None:
            """Emit to a side output."""

    @abc.abstractmethod
    def process(
        self, key: KEY, context: ProcessWindowFunction.Context, elements: Iterable[IN]
    ) -> Iterable[OUT] | None:
        """Yield the results for one key and window."""

    def clear(self, context: ProcessWindowFunction.Context) -> None:
        """The window is purged: delete per-window state kept in ``window_state()``."""


class ProcessAllWindowFunction(Function, Generic[IN, OUT, W]):
    """Evaluates a non-keyed window (``window_all``) with context."""

    Context = ProcessWindowFunction.Context

    @abc.abstractmethod
    def process(
        self, context: ProcessWindowFunction.Context, elements: Iterable[IN]
    ) -> Iterable[OUT] | None:
        """Yield the results for one window."""

    def clear(self, context: ProcessWindowFunction.Context) -> None:
        """The window is purged."""


class WindowFunction(Function, Generic[IN, OUT, KEY, W]):
    """The older window function without context (Flink's ``WindowFunction``, ``apply``)."""

    @abc.abstractmethod
    def apply(self, key: KEY, window: W, inputs: Iterable[IN]) -> Iterable[OUT] | None:
        """Yield the results for one key and window."""


class AllWindowFunction(Function, Generic[IN, OUT, W]):
    """``WindowFunction`` for ``window_all``."""

    @abc.abstractmethod
    def apply(self, window: W, inputs: Iterable[IN]) -> Iterable[OUT] | None:
        """Yield the results for one window."""
