"""Two-input APIs: connect, broadcast state, window joins/co-groups and interval joins.

Mirrors Flink's ``ConnectedStreams``, ``BroadcastStream``/``BroadcastConnectedStream``,
``JoinedStreams``, ``CoGroupedStreams`` and ``KeyedStream.IntervalJoin``. Each input is
tagged with its index by a chained map and the tagged streams are unioned into one
two-input operator (see ``strom._runtime.operators.co``); keyed inputs are partitioned by
a selector that applies each input's own key selector.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from strom._graph.partitioner import BroadcastPartitioner, KeyGroupStreamPartitioner
from strom._graph.transformation import (
    OneInputTransformation,
    OperatorSpec,
    PartitionTransformation,
    Transformation,
    UnionTransformation,
)
from strom._utils.time import to_millis
from strom.datastream.functions import (
    BroadcastProcessFunction,
    CoFlatMapFunction,
    CoGroupFunction,
    CoMapFunction,
    CoProcessFunction,
    Function,
    JoinFunction,
    KeyedBroadcastProcessFunction,
    KeyedCoProcessFunction,
    ProcessJoinFunction,
)
from strom.errors import InvalidProgramError

if TYPE_CHECKING:
    from strom.datastream.data_stream import DataStream, KeyedStream
    from strom.datastream.environment import StreamExecutionEnvironment

__all__ = [
    "BroadcastConnectedStream",
    "BroadcastStream",
    "CoGroupedStreams",
    "ConnectedStreams",
    "IntervalJoin",
    "JoinedStreams",
]


def _tagged(stream: DataStream, index: int) -> Transformation:
    """``stream`` (before any key_by) mapped to ``(index, value)``."""
    from strom._runtime.operators.co import TagInput

    env = stream._env
    src = stream._t
    if isinstance(src, PartitionTransformation):  # a KeyedStream: tag before its key_by
        src = src.inputs[0]
    t = OneInputTransformation(
        name=f"Tag({index})", inputs=[src], operator=OperatorSpec("map", TagInput(index))
    )
    env._add(t)
    return t


def _two_input(
    env: StreamExecutionEnvironment,
    name: str,
    spec: OperatorSpec,
    inputs: list[Transformation],
    key_selector: Any = None,
) -> DataStream:
    from strom.datastream.data_stream import DataStream

    union = UnionTransformation(name="Union", inputs=inputs)
    env._add(union)
    t = OneInputTransformation(name=name, inputs=[union], operator=spec, key_selector=key_selector)
    env._add(t)
    return DataStream(env, t)


def _hash(env: StreamExecutionEnvironment, t: Transformation, selector: Any) -> Transformation:
    p = PartitionTransformation(
        name="KeyBy", inputs=[t], partitioner=KeyGroupStreamPartitioner(key_selector=selector)
    )
    env._add(p)
    return p


class ConnectedStreams:
    """Two streams processed together by one operator, possibly of different types.

    Args:
        first: input 0.
        second: input 1.
    """

    def __init__(self, first: DataStream, second: DataStream) -> None:
        self.first = first
        self.second = second
        self._env = first._env

    def _keyed_selectors(self) -> tuple[Any, Any] | None:
        from strom.datastream.data_stream import KeyedStream

        a, b = self.first, self.second
        if isinstance(a, KeyedStream) and isinstance(b, KeyedStream):
            return a.get_key_selector(), b.get_key_selector()
        if isinstance(a, KeyedStream) or isinstance(b, KeyedStream):
            msg = "connect(): key both streams (or neither); use key_by(k1, k2)"
            raise InvalidProgramError(msg)
        return None

    def key_by(self, key_selector1: Any, key_selector2: Any) -> ConnectedStreams:
        """Key both inputs (records with equal keys meet in the same subtask)."""
        return ConnectedStreams(self.first.key_by(key_selector1), self.second.key_by(key_selector2))

    def _inputs(self) -> tuple[list[Transformation], Any]:
        from strom._runtime.operators.co import TaggedKeySelector

        env = self._env
        t0, t1 = _tagged(self.first, 0), _tagged(self.second, 1)
        sel = self._keyed_selectors()
        if sel is None:
            return [t0, t1], None
        key = TaggedKeySelector(*sel)
        return [_hash(env, t0, key), _hash(env, t1, key)], key

    def map(
        self, func: CoMapFunction[Any, Any] | tuple[Any, Any], output_type: Any = None
    ) -> DataStream:
        """``map1``/``map2`` per input (a CoMapFunction or a pair of callables)."""
        _check_pair(func, CoMapFunction, "map")
        inputs, key = self._inputs()
        return _two_input(self._env, "CoMap", OperatorSpec("co_map", func), inputs, key)

    def flat_map(
        self, func: CoFlatMapFunction[Any, Any] | tuple[Any, Any], output_type: Any = None
    ) -> DataStream:
        """``flat_map1``/``flat_map2`` per input."""
        _check_pair(func, CoFlatMapFunction, "flat_map")
        inputs, key = self._inputs()
        return _two_input(self._env, "CoFlatMap", OperatorSpec("co_flat_map", func), inputs, key)

    def process(
        self,
        func: CoProcessFunction[Any, Any] | KeyedCoProcessFunction[Any, Any, Any],
        output_type: Any = None,
    ) -> DataStream:
        """A ``CoProcessFunction`` (non-keyed) or ``KeyedCoProcessFunction`` (both keyed)."""
        inputs, key = self._inputs()
        if key is not None:
            if not isinstance(func, KeyedCoProcessFunction):
                msg = "process() on keyed connected streams needs a KeyedCoProcessFunction"
                raise InvalidProgramError(msg)
            spec = OperatorSpec("keyed_co_process", func)
            return _two_input(self._env, "KeyedCoProcess", spec, inputs, key)
        if not isinstance(func, CoProcessFunction):
            msg = "process() on connected streams needs a CoProcessFunction (or key them)"
            raise InvalidProgramError(msg)
        return _two_input(self._env, "CoProcess", OperatorSpec("co_process", func), inputs)


def _check_pair(func: Any, cls: type, api: str) -> None:
    if isinstance(func, cls):
        return
    if isinstance(func, tuple) and len(func) == 2 and all(callable(f) for f in func):
        return
    msg = f"{api}() on connected streams needs a {cls.__name__} or a pair of callables"
    raise InvalidProgramError(msg)


class BroadcastStream:
    """A stream sent to every subtask, with the broadcast state descriptors it fills.

    Args:
        stream: the broadcast input.
        descriptors: ``MapStateDescriptor`` s of the broadcast state.
    """

    def __init__(self, stream: DataStream, descriptors: tuple[Any, ...]) -> None:
        self.stream = stream
        self.descriptors = descriptors


class BroadcastConnectedStream:
    """A (keyed or non-keyed) stream connected with a :class:`BroadcastStream`."""

    def __init__(self, stream: DataStream, broadcast: BroadcastStream) -> None:
        self.stream = stream
        self.broadcast = broadcast

    def process(
        self,
        func: BroadcastProcessFunction[Any, Any] | KeyedBroadcastProcessFunction[Any, Any, Any],
        output_type: Any = None,
    ) -> DataStream:
        """Run a ``BroadcastProcessFunction`` (non-keyed input) or a
        ``KeyedBroadcastProcessFunction`` (keyed input)."""
        from strom._runtime.operators.co import TaggedKeySelector
        from strom.datastream.data_stream import KeyedStream

        env = self.stream._env
        b = _tagged(self.broadcast.stream, 1)
        bp = PartitionTransformation(
            name="Broadcast", inputs=[b], partitioner=BroadcastPartitioner()
        )
        env._add(bp)
        t0 = _tagged(self.stream, 0)
        if isinstance(self.stream, KeyedStream):
            if not isinstance(func, KeyedBroadcastProcessFunction):
                msg = (
                    "a keyed stream connected to a broadcast stream needs a "
                    "KeyedBroadcastProcessFunction"
                )
                raise InvalidProgramError(msg)
            key = TaggedKeySelector(self.stream.get_key_selector(), None)
            spec = OperatorSpec("keyed_broadcast_process", func)
            return _two_input(env, "KeyedBroadcastProcess", spec, [_hash(env, t0, key), bp], key)
        if not isinstance(func, BroadcastProcessFunction):
            msg = (
                "a non-keyed stream connected to a broadcast stream needs a "
                "BroadcastProcessFunction"
            )
            raise InvalidProgramError(msg)
        return _two_input(
            env, "BroadcastProcess", OperatorSpec("broadcast_process", func), [t0, bp]
        )


class _CoGroupWindowFunction:
    """Window function of joins/co-groups: splits tagged elements by input."""

    def __init__(self, fn: Any, join: bool) -> None:
        self.fn = fn
        self.join = join

    def __call__(self, key: Any, window: Any, elements: Iterable[Any]) -> Iterable[Any]:
        first = [v for s, v in elements if s == 0]
        second = [v for s, v in elements if s == 1]
        if self.join:
            join = self.fn.join if isinstance(self.fn, JoinFunction) else self.fn
            return [join(a, b) for a in first for b in second]
        co_group = self.fn.co_group if isinstance(self.fn, CoGroupFunction) else self.fn
        r = co_group(first, second)
        return list(r) if r is not None else []


class JoinedStreams:
    """``a.join(b).where(ka).equal_to(kb).window(assigner).apply(join_function)``:
    an inner join of the pairs of each key and window (Flink's ``JoinedStreams``)."""

    _join = True

    def __init__(self, first: DataStream, second: DataStream) -> None:
        self.first = first
        self.second = second
        self._k1: Any = None
        self._k2: Any = None
        self._assigner: Any = None
        self._trigger: Any = None
        self._lateness: timedelta | int = 0

    def where(self, key_selector: Any) -> JoinedStreams:
        """Key of the first input."""
        from strom.datastream.data_stream import _key_selector

        self._k1 = _key_selector(key_selector)
        return self

    def equal_to(self, key_selector: Any) -> JoinedStreams:
        """Key of the second input."""
        from strom.datastream.data_stream import _key_selector

        self._k2 = _key_selector(key_selector)
        return self

    def window(self, assigner: Any) -> JoinedStreams:
        """The windows pairs must share."""
        self._assigner = assigner
        return self

    def trigger(self, trigger: Any) -> JoinedStreams:
        """Replace the default trigger."""
        self._trigger = trigger
        return self

    def allowed_lateness(self, lateness: timedelta | int) -> JoinedStreams:
        """Allowed lateness of the windows."""
        self._lateness = lateness
        return self

    def apply(self, function: Any, output_type: Any = None) -> DataStream:
        """Join (``JoinFunction``/callable ``(a, b) -> out``) or co-group
        (``CoGroupFunction``/callable ``(as, bs) -> iterable``) each key and window."""
        from strom._runtime.operators.co import TaggedKeySelector
        from strom.datastream.data_stream import DataStream, KeyedStream
        from strom.datastream.windowed_stream import WindowedStream

        if self._k1 is None or self._k2 is None or self._assigner is None:
            msg = "join/co_group needs where(...), equal_to(...) and window(...) before apply()"
            raise InvalidProgramError(msg)
        expected = JoinFunction if self._join else CoGroupFunction
        if not (
            isinstance(function, expected)
            or (callable(function) and not isinstance(function, Function))
        ):
            msg = f"apply() needs a {expected.__name__} or a callable"
            raise InvalidProgramError(msg)
        env = self.first._env
        key = TaggedKeySelector(self._k1, self._k2)
        union = UnionTransformation(
            name="Union", inputs=[_tagged(self.first, 0), _tagged(self.second, 1)]
        )
        env._add(union)
        keyed = KeyedStream(env, _hash(env, union, key), key)
        ws = WindowedStream(keyed, self._assigner)
        if self._trigger is not None:
            ws.trigger(self._trigger)
        ws.allowed_lateness(to_millis(self._lateness, name="allowed_lateness"))
        out = ws.apply(_CoGroupWindowFunction(function, self._join))
        out._t.name = "Window(Join)" if self._join else "Window(CoGroup)"
        return DataStream(env, out._t)


class CoGroupedStreams(JoinedStreams):
    """``a.co_group(b)...apply(co_group_function)`` (Flink's ``CoGroupedStreams``)."""

    _join = False


class IntervalJoin:
    """``keyed_a.interval_join(keyed_b).between(lower, upper).process(fn)``: joins each
    ``a`` at ``t`` with every ``b`` whose timestamp is in ``[t + lower, t + upper]``."""

    def __init__(self, first: KeyedStream, second: KeyedStream) -> None:
        self.first = first
        self.second = second
        self._lower: int | None = None
        self._upper: int | None = None
        self._lower_excl = False
        self._upper_excl = False

    def between(self, lower_bound: timedelta | int, upper_bound: timedelta | int) -> IntervalJoin:
        """Relative bounds (timedelta or ms; may be negative), inclusive by default.

        Raises:
            InvalidProgramError: lower > upper.
        """
        lo = _signed_ms(lower_bound)
        hi = _signed_ms(upper_bound)
        if lo > hi:
            msg = f"interval join lower bound {lo} ms is above the upper bound {hi} ms"
            raise InvalidProgramError(msg)
        self._lower, self._upper = lo, hi
        return self

    def lower_bound_exclusive(self) -> IntervalJoin:
        """Exclude the lower bound."""
        self._lower_excl = True
        return self

    def upper_bound_exclusive(self) -> IntervalJoin:
        """Exclude the upper bound."""
        self._upper_excl = True
        return self

    def process(
        self, process_join_function: ProcessJoinFunction[Any, Any] | Any, output_type: Any = None
    ) -> DataStream:
        """Call ``process_element(left, right, ctx)`` for every matching pair."""
        from strom._runtime.operators.co import TaggedKeySelector

        if self._lower is None or self._upper is None:
            msg = "interval_join needs between(lower, upper) before process()"
            raise InvalidProgramError(msg)
        if not (
            isinstance(process_join_function, ProcessJoinFunction)
            or (callable(process_join_function) and not isinstance(process_join_function, Function))
        ):
            msg = "process() needs a ProcessJoinFunction or a callable (left, right, ctx)"
            raise InvalidProgramError(msg)
        env = self.first._env
        key = TaggedKeySelector(self.first.get_key_selector(), self.second.get_key_selector())
        lo = self._lower + (1 if self._lower_excl else 0)
        hi = self._upper - (1 if self._upper_excl else 0)
        spec = OperatorSpec(
            "interval_join", process_join_function, params={"lower": lo, "upper": hi}
        )
        inputs = [_hash(env, _tagged(self.first, 0), key), _hash(env, _tagged(self.second, 1), key)]
        return _two_input(env, "IntervalJoin", spec, inputs, key)


def _signed_ms(value: timedelta | int) -> int:
    if isinstance(value, timedelta):
        return int(value.total_seconds() * 1000)
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"interval bounds must be timedelta or int ms, got {value!r}"
        raise InvalidProgramError(msg)
    return value
