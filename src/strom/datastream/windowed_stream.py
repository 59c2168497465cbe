"""WindowedStream and AllWindowedStream: the builder between ``window(...)`` and the
window function (Flink's classes of the same names)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from strom._graph.transformation import OperatorSpec
from strom._utils.time import to_millis
from strom.datastream.functions import AggregateFunction, Function, ReduceFunction
from strom.datastream.output_tag import OutputTag
from strom.datastream.window import (
    AllWindowFunction,
    Evictor,
    ProcessAllWindowFunction,
    ProcessWindowFunction,
    Trigger,
    WindowAssigner,
    WindowFunction,
)
from strom.errors import InvalidProgramError

if TYPE_CHECKING:
    from strom.datastream.data_stream import DataStream, KeyedStream

__all__ = ["AllWindowedStream", "WindowedStream"]


class WindowedStream:
    """A keyed stream cut into windows; finish it with ``reduce``/``aggregate``/``process``.

    Args:
        keyed_stream: the keyed input.
        window_assigner: how records map to windows.
    """

    _all = False

    def __init__(self, keyed_stream: KeyedStream, window_assigner: WindowAssigner[Any]) -> None:
        if not isinstance(window_assigner, WindowAssigner):
            msg = (
                f"window() needs a WindowAssigner such as TumblingEventTimeWindows.of(...), "
                f"got {window_assigner!r}"
            )
            raise InvalidProgramError(msg)
        self._keyed = keyed_stream
        self._assigner = window_assigner
        self._trigger: Trigger[Any] | None = None
        self._evictor: Evictor[Any] | None = None
        self._lateness = 0
        self._late_tag: str | None = None

    def trigger(self, trigger: Trigger[Any]) -> WindowedStream:
        """Replace the assigner's default trigger."""
        if not isinstance(trigger, Trigger):
            msg = f"trigger() needs a Trigger, got {trigger!r}"
            raise InvalidProgramError(msg)
        self._trigger = trigger
        return self

    def evictor(self, evictor: Evictor[Any]) -> WindowedStream:
        """Evict elements before/after evaluation (keeps every element in state)."""
        if not isinstance(evictor, Evictor):
            msg = f"evictor() needs an Evictor, got {evictor!r}"
            raise InvalidProgramError(msg)
        self._evictor = evictor
        return self

    def allowed_lateness(self, time: timedelta | int) -> WindowedStream:
        """Keep window state ``time`` (timedelta or ms) past the window's end; late records
        within it update and re-fire the window.

        Raises:
            InvalidProgramError: on processing-time windows with lateness > 0.
        """
        ms = to_millis(time, name="allowed_lateness")
        if ms and not self._assigner.is_event_time():
            msg = "allowed_lateness() only applies to event-time windows"
            raise InvalidProgramError(msg)
        self._lateness = ms
        return self

    def side_output_late_data(self, output_tag: OutputTag) -> WindowedStream:
        """Send records too late for any window to ``output_tag`` instead of dropping them."""
        if not isinstance(output_tag, OutputTag):
            msg = f"side_output_late_data() needs an OutputTag, got {output_tag!r}"
            raise InvalidProgramError(msg)
        self._late_tag = output_tag.tag_id
        return self

    def _build(self, name: str, kind: str, **functions: Any) -> DataStream:
        from strom.datastream.data_stream import DataStream

        params = {
            "assigner": self._assigner,
            "trigger": self._trigger,
            "evictor": self._evictor,
            "allowed_lateness": self._lateness,
            "late_tag": self._late_tag,
            "kind": kind,
            "all": self._all,
            **functions,
        }
        ks = self._keyed
        t = ks._one_input(name, OperatorSpec("window", params=params), ks._key_selector)
        if self._all:
            t.parallelism = 1
            t.max_parallelism = 1
        return DataStream(ks._env, t)

    @staticmethod
    def _check(fn: Any, cls: type, api: str) -> None:
        if fn is None or isinstance(fn, cls) or (callable(fn) and not isinstance(fn, Function)):
            return
        msg = f"{api} needs a {cls.__name__} or a callable, got {fn!r}"
        raise InvalidProgramError(msg)

    def _window_fn_classes(self) -> tuple[type, ...]:
        if self._all:
            return (ProcessAllWindowFunction, AllWindowFunction)
        return (ProcessWindowFunction, WindowFunction)

    def _check_window_fn(self, fn: Any, api: str) -> None:
        if fn is None:
            return
        if isinstance(fn, self._window_fn_classes()) or (
            callable(fn) and not isinstance(fn, Function)
        ):
            return
        names = " or ".join(c.__name__ for c in self._window_fn_classes())
        msg = f"{api} needs a {names} or a callable, got {fn!r}"
        raise InvalidProgramError(msg)

    def reduce(
        self, reduce_function: ReduceFunction[Any] | Any, window_function: Any = None
    ) -> DataStream:
        """Reduce each window incrementally; optionally pass the result to a
        ``ProcessWindowFunction`` (``process(key, ctx, [result])``)."""
        self._check(reduce_function, ReduceFunction, "reduce()")
        self._check_window_fn(window_function, "reduce(..., window_function)")
        return self._build(
            "Window(Reduce)",
            "reduce",
            reduce_function=reduce_function,
            window_function=window_function,
        )

    def aggregate(
        self, aggregate_function: AggregateFunction[Any, Any, Any], window_function: Any = None
    ) -> DataStream:
        """Aggregate each window incrementally with an ``AggregateFunction``; optionally
        pass ``get_result`` to a ``ProcessWindowFunction``."""
        if not isinstance(aggregate_function, AggregateFunction):
            msg = (
                f"aggregate() needs an AggregateFunction (create_accumulator/add/get_result/"
                f"merge), got {aggregate_function!r}"
            )
            raise InvalidProgramError(msg)
        self._check_window_fn(window_function, "aggregate(..., window_function)")
        return self._build(
            "Window(Aggregate)",
            "aggregate",
            aggregate_function=aggregate_function,
            window_function=window_function,
        )

    def process(self, process_window_function: Any) -> DataStream:
        """Evaluate each window with all its elements: ``process(key, ctx, elements)``
        (``process(ctx, elements)`` for ``window_all``)."""
        self._check_window_fn(process_window_function, "process()")
        if process_window_function is None:
            msg = "process() needs a ProcessWindowFunction"
            raise InvalidProgramError(msg)
        return self._build("Window(Process)", "process", window_function=process_window_function)

    def apply(self, window_function: Any) -> DataStream:
        """Evaluate each window with a ``WindowFunction``: ``apply(key, window, elements)``."""
        self._check_window_fn(window_function, "apply()")
        if window_function is None:
            msg = "apply() needs a WindowFunction"
            raise InvalidProgramError(msg)
        return self._build("Window(Apply)", "apply", window_function=window_function)


class AllWindowedStream(WindowedStream):
    """Windows over the whole (non-keyed) stream, evaluated at parallelism 1."""

    _all = True
