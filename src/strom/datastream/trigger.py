"""Triggers: when a window is evaluated and/or purged (Flink's ``Trigger``,
``TriggerResult`` and the built-in triggers). Re-exported by ``strom.datastream.window``."""

from __future__ import annotations

import abc
import enum
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from strom._utils.time import to_millis
from strom.errors import ConfigurationError

if TYPE_CHECKING:
    from strom.datastream.window import Window

W = TypeVar("W", bound="Window")
"""The window type of a trigger/evictor."""


def _ms(value: timedelta | int, name: str) -> int:
    return to_millis(value, name=name)


__all__ = [
    "ContinuousEventTimeTrigger",
    "ContinuousProcessingTimeTrigger",
    "CountTrigger",
    "EventTimeTrigger",
    "NeverTrigger",
    "ProcessingTimeTrigger",
    "PurgingTrigger",
    "Trigger",
    "TriggerResult",
]


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


class EventTimeTrigger(Trigger[Any]):
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


class ProcessingTimeTrigger(Trigger[Any]):
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


class NeverTrigger(Trigger[Any]):
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


class CountTrigger(Trigger[Any]):
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


class PurgingTrigger(Trigger[Any]):
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


class ContinuousEventTimeTrigger(Trigger[Any]):
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


class ContinuousProcessingTimeTrigger(Trigger[Any]):
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
