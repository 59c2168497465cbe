"""Two-input operators: connected streams, broadcast state and the interval join.

Strom runs a two-input operator over the union of its inputs, each record tagged with
its input index (``(0, value)`` or ``(1, value)``) by a chained map right after each
input (Flink's ``TaggedUnion`` technique, which it also uses for ``coGroup``). The union
keeps Flink's two-input semantics: records of each input stay in order, the operator's
watermark is the minimum over both inputs' channels, and each input may use its own
partitioner (forward, key-group hash, broadcast). This module holds the operators that
dispatch the tagged records to ``*1``/``*2`` methods.
"""

from __future__ import annotations

from typing import Any

from strom._runtime.operators.base import StreamOperator, UdfStreamOperator
from strom._runtime.operators.basic import ProcessContext, _NoTimersService
from strom._runtime.operators.keyed import KeyedTimerService, _KeyedContext, _KeyedMixin
from strom._runtime.time.timer_service import InternalTimerService
from strom._state.operator import ReadOnlyBroadcastStateView, SimpleBroadcastState
from strom.datastream.functions import ProcessJoinFunction
from strom.datastream.state import ValueStateDescriptor
from strom.datastream.watermark import TimeDomain

__all__ = [
    "BroadcastProcessOperator",
    "CoFlatMapOperator",
    "CoMapOperator",
    "CoProcessOperator",
    "IntervalJoinOperator",
    "KeyedCoProcessOperator",
    "TagInput",
    "TaggedKeySelector",
]


class TagInput:
    """``value -> (index, value)``: the chained map that tags one input."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __call__(self, value: Any) -> tuple[int, Any]:
        return (self.index, value)


class TaggedKeySelector:
    """Key of a tagged record: the first input's selector for ``(0, v)``, the second's
    for ``(1, v)``.

    Args:
        first: key selector of input 0.
        second: key selector of input 1.
    """

    __slots__ = ("first", "second")

    def __init__(self, first: Any, second: Any) -> None:
        self.first = first
        self.second = second

    def __call__(self, tagged: tuple[int, Any]) -> Any:
        side, value = tagged
        return self.first(value) if side == 0 else self.second(value)


def _emit(op: StreamOperator, out: list[Any], out_ts: list[Any] | None) -> None:
    if out:
        op.output.emit_batch(out, out_ts)


class CoMapOperator(UdfStreamOperator):
    """``ConnectedStreams.map(CoMapFunction)``; a pair of callables also works."""

    def open(self) -> None:
        """Bind map1/map2."""
        fn = self.user_function
        self.m1, self.m2 = (fn.map1, fn.map2) if hasattr(fn, "map1") else fn
        super().open()

    def process_batch(self, values: list[Any], timestamps: list[int] | None) -> None:
        """Dispatch by input index."""
        m1, m2 = self.m1, self.m2
        self.output.emit_batch([m1(v) if s == 0 else m2(v) for s, v in values], timestamps)


class CoFlatMapOperator(UdfStreamOperator):
    """``ConnectedStreams.flat_map(CoFlatMapFunction)``."""

    def open(self) -> None:
        """Bind flat_map1/flat_map2."""
        fn = self.user_function
        self.f1, self.f2 = (fn.flat_map1, fn.flat_map2) if hasattr(fn, "flat_map1") else fn
        super().open()

    def process_batch(self, values: list[Any], timestamps: list[int] | None) -> None:
        """Dispatch by input index; outputs keep their input's timestamp."""
        out: list[Any] = []
        out_ts: list[Any] = []
        ts_list = timestamps if timestamps is not None else [None] * len(values)
        for (s, v), t in zip(values, ts_list):
            r = self.f1(v) if s == 0 else self.f2(v)
            if r is not None:
                n = len(out)
                out.extend(r)
                out_ts.extend([t] * (len(out) - n))
        _emit(self, out, out_ts if timestamps is not None else None)


class _BroadcastContext(ProcessContext):
    """Context with broadcast state access (read-write on the broadcast side)."""

    __slots__ = ("read_only",)
    read_only: bool

    def get_broadcast_state(self, state_descriptor: Any) -> Any:
        """The broadcast state of ``state_descriptor`` (a MapStateDescriptor)."""
        return self._op.broadcast_state(state_descriptor, self.read_only)

    def apply_to_keyed_state(self, state_descriptor: Any, function: Any) -> None:
        """Call ``function(key, state)`` for every key with ``state_descriptor`` state."""
        self._op.apply_to_keyed_state(state_descriptor, function)


class _KeyedBroadcastContext(_KeyedContext):
    """Keyed context with read-only broadcast state."""

    __slots__ = ()

    def get_broadcast_state(self, state_descriptor: Any) -> Any:
        """Read-only broadcast state."""
        return self._op.broadcast_state(state_descriptor, True)


class _CoProcessBase(UdfStreamOperator):
    """Shared dispatch of (keyed) co-process and broadcast operators."""

    keyed = False
    names = ("process_element1", "process_element2")

    def open(self) -> None:
        """Create backend/timers if keyed, contexts, and bind the two methods."""
        fn = self.user_function
        self.f1 = getattr(fn, self.names[0])
        self.f2 = getattr(fn, self.names[1])
        self._bstate: dict[str, dict[Any, Any]] = {}
        if self.restored is not None:
            broadcast = self.restored.all("broadcast")
            if broadcast:  # every subtask holds the same copy: take subtask 0's
                self._bstate = {k: dict(v) for k, v in broadcast[0].items()}
        if self.keyed:
            self._create_backend()  # type: ignore[attr-defined]
            b = self.keyed_backend  # type: ignore[attr-defined]
            self.timers = InternalTimerService(
                b.set_current_key,
                b.get_current_key,
                self,
                self.context.processing_time_service,
            )
            self.ctx = self._keyed_ctx(KeyedTimerService(self.timers))
            self.ctx2 = self._keyed_ctx2(KeyedTimerService(self.timers))
            on_timer = getattr(fn, "on_timer", None)
            self.on_timer_fn = on_timer if callable(on_timer) else None
        else:
            ts = _NoTimersService(self)  # type: ignore[arg-type]
            self.ctx = self._plain_ctx(ts)
            self.ctx2 = self._plain_ctx2(ts)
        super().open()

    current_watermark = -(2**63)

    def _plain_ctx(self, ts: Any) -> Any:
        return ProcessContext(self, ts)

    _plain_ctx2 = _plain_ctx

    def _keyed_ctx(self, ts: Any) -> Any:
        return _KeyedContext(self, ts)

    _keyed_ctx2 = _keyed_ctx

    def process_batch(self, values: list[Any], timestamps: list[int] | None) -> None:
        """Set the key (keyed), dispatch to the input's method, emit its outputs."""
        out: list[Any] = []
        out_ts: list[Any] = []
        ts_list = timestamps if timestamps is not None else [None] * len(values)
        key_of = self.context.key_selector if self.keyed else None
        set_key = self.keyed_backend.set_current_key if self.keyed else None  # type: ignore[attr-defined]
        for tagged, t in zip(values, ts_list):
            side, v = tagged
            if set_key is not None and (side == 0 or not self.broadcast_side_unkeyed):
                set_key(key_of(tagged))  # type: ignore[misc]
            ctx = self.ctx if side == 0 else self.ctx2
            ctx.ts = t
            r = self.f1(v, ctx) if side == 0 else self.f2(v, ctx)
            if r is not None:
                n = len(out)
                out.extend(r)
                out_ts.extend([t] * (len(out) - n))
        _emit(self, out, out_ts if timestamps is not None else None)

    broadcast_side_unkeyed = False

    # timers
    def _fire(self, timestamp_ms: int, domain: TimeDomain) -> None:
        if self.on_timer_fn is None:
            return
        ctx = self.ctx
        ctx.ts = timestamp_ms if domain is TimeDomain.EVENT_TIME else None
        ctx.domain = domain
        r = self.on_timer_fn(timestamp_ms, ctx)
        out = list(r) if r is not None else []
        if out:
            ts = [timestamp_ms] * len(out) if domain is TimeDomain.EVENT_TIME else None
            self.output.emit_batch(out, ts)

    def on_event_time(self, timestamp_ms: int, key: Any, namespace: Any) -> None:
        """An event-time timer fired."""
        self._fire(timestamp_ms, TimeDomain.EVENT_TIME)

    def on_processing_time(self, timestamp_ms: int, key: Any, namespace: Any) -> None:
        """A processing-time timer fired."""
        self._fire(timestamp_ms, TimeDomain.PROCESSING_TIME)

    def process_watermark(self, watermark: Any) -> None:
        """Fire due timers (keyed), then forward."""
        self.current_watermark = watermark.timestamp_ms
        if self.keyed:
            self.timers.advance_watermark(watermark.timestamp_ms)
        self.output.emit_watermark(watermark)

    # broadcast state
    def broadcast_state(self, descriptor: Any, read_only: bool) -> Any:
        """The subtask's copy of a broadcast state."""
        d = self._bstate.setdefault(descriptor.name, {})
        return ReadOnlyBroadcastStateView(d) if read_only else SimpleBroadcastState(d)

    def apply_to_keyed_state(self, descriptor: Any, function: Any) -> None:
        """Apply ``function(key, state)`` to every key that has ``descriptor`` state."""
        backend = self.keyed_backend  # type: ignore[attr-defined]
        apply_all = getattr(backend, "apply_to_all_keys", None)
        if apply_all is None:
            msg = "the state backend does not support apply_to_keyed_state"
            raise TypeError(msg)
        apply_all(None, descriptor, function)

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        """Keyed state, timers and broadcast state."""
        snap: dict[str, Any] = {
            **super().snapshot_state(checkpoint_id),
            "broadcast": {k: dict(v) for k, v in self._bstate.items()},
        }
        if self.keyed:
            snap["keyed"] = self.keyed_backend.snapshot(checkpoint_id)  # type: ignore[attr-defined]
            snap["timers"] = self.timers.snapshot()
        return snap


class CoProcessOperator(_CoProcessBase):
    """``ConnectedStreams.process(CoProcessFunction)`` on non-keyed inputs."""


class KeyedCoProcessOperator(_CoProcessBase, _KeyedMixin):
    """``ConnectedStreams.process(KeyedCoProcessFunction)`` on two keyed inputs."""

    keyed = True


class BroadcastProcessOperator(_CoProcessBase):
    """``BroadcastConnectedStream.process(BroadcastProcessFunction)``: input 0 is the
    regular stream (read-only broadcast state), input 1 the broadcast stream."""

    names = ("process_element", "process_broadcast_element")

    def _plain_ctx(self, ts: Any) -> Any:
        c = _BroadcastContext(self, ts)
        c.read_only = True
        return c

    def _plain_ctx2(self, ts: Any) -> Any:
        c = _BroadcastContext(self, ts)
        c.read_only = False
        return c


class KeyedBroadcastProcessOperator(_CoProcessBase, _KeyedMixin):
    """``KeyedBroadcastProcessFunction``: input 0 keyed, input 1 broadcast (not keyed)."""

    keyed = True
    broadcast_side_unkeyed = True
    names = ("process_element", "process_broadcast_element")

    def _keyed_ctx(self, ts: Any) -> Any:
        return _KeyedBroadcastContext(self, ts)

    def _keyed_ctx2(self, ts: Any) -> Any:
        c = _BroadcastContext(self, ts)
        c.read_only = False
        return c


class _JoinContext(ProcessJoinFunction.Context):
    __slots__ = ("left_ts", "op", "right_ts")

    def __init__(self, op: IntervalJoinOperator) -> None:
        self.op = op
        self.left_ts = 0
        self.right_ts = 0

    def get_left_timestamp(self) -> int:
        return self.left_ts

    def get_right_timestamp(self) -> int:
        return self.right_ts

    def get_timestamp(self) -> int:
        return max(self.left_ts, self.right_ts)

    def output(self, output_tag: Any, value: Any) -> None:
        self.op.output.emit_side(output_tag.tag_id, [value], [self.get_timestamp()])


class IntervalJoinOperator(UdfStreamOperator, _KeyedMixin):
    """Joins each left record at ``t`` with right records in ``[t + lower, t + upper]``.

    Mirrors Flink's ``IntervalJoinOperator``: both sides are buffered per key in keyed
    state (``{timestamp: [values]}``), joined on arrival, and removed by cleanup timers
    once no future record can match; records behind the watermark are dropped as late.
    Pairs carry the larger of the two timestamps.
    ``spec.params``: ``lower``, ``upper`` (ms, inclusive after exclusivity adjustment).
    """

    method = "process_element"
    LEFT, RIGHT = "interval-join-left", "interval-join-right"

    def open(self) -> None:
        """Create backend, buffers and timers."""
        assert self.spec is not None
        self.lower = int(self.spec.params["lower"])
        self.upper = int(self.spec.params["upper"])
        self._create_backend()
        b = self.keyed_backend
        self.left = b.get_or_create_keyed_state(ValueStateDescriptor(self.LEFT))
        self.right = b.get_or_create_keyed_state(ValueStateDescriptor(self.RIGHT))
        self.timers = InternalTimerService(
            b.set_current_key, b.get_current_key, self, self.context.processing_time_service
        )
        self._restore_timers(self.timers)
        self.jctx = _JoinContext(self)
        self.late_records_dropped = 0
        super().open()

    def process_batch(self, values: list[Any], timestamps: list[int] | None) -> None:
        """Buffer and join each record with the other side's buffered records."""
        if timestamps is None:
            msg = (
                "interval_join needs event timestamps on both inputs: set a WatermarkStrategy "
                "with a timestamp assigner"
            )
            raise ValueError(msg)
        key_of = self.context.key_selector
        set_key = self.keyed_backend.set_current_key
        out: list[Any] = []
        out_ts: list[int] = []
        wm = self.timers.current_watermark
        for tagged, t in zip(values, timestamps):
            if t < wm:
                self.late_records_dropped += 1
                continue
            set_key(key_of(tagged))
            side, v = tagged
            if side == 0:
                own, other, lo, hi, cleanup_ns = self.left, self.right, self.lower, self.upper, 0
            else:
                own, other, lo, hi, cleanup_ns = (
                    self.right,
                    self.left,
                    -self.upper,
                    -self.lower,
                    1,
                )
            buf = dict(own.value() or {})
            buf[t] = [*buf.get(t, []), v]
            own.update(buf)
            for ots, ovals in (other.value() or {}).items():
                if t + lo <= ots <= t + hi:
                    for ov in ovals:
                        left, right = (v, ov) if side == 0 else (ov, v)
                        self.jctx.left_ts, self.jctx.right_ts = (t, ots) if side == 0 else (ots, t)
                        r = self.fn(left, right, self.jctx)
                        if r is not None:
                            n = len(out)
                            out.extend(r)
                            out_ts.extend([max(t, ots)] * (len(out) - n))
            cleanup = t + hi if hi > 0 else t
            self.timers.register_event_time_timer(cleanup_ns, cleanup)
        _emit(self, out, out_ts)

    def on_event_time(self, timestamp_ms: int, key: Any, namespace: Any) -> None:
        """Remove buffered records that can no longer match."""
        if namespace == 0:
            ts = timestamp_ms if self.upper <= 0 else timestamp_ms - self.upper
            state = self.left
        else:
            ts = timestamp_ms + self.lower if self.lower <= 0 else timestamp_ms
            state = self.right
        buf = dict(state.value() or {})
        if buf.pop(ts, None) is not None:
            if buf:
                state.update(buf)
            else:
                state.clear()

    def on_processing_time(self, timestamp_ms: int, key: Any, namespace: Any) -> None:
        """Not used."""

    def process_watermark(self, watermark: Any) -> None:
        """Run cleanup timers, then forward."""
        self.timers.advance_watermark(watermark.timestamp_ms)
        self.output.emit_watermark(watermark)

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        """Buffers (keyed state) and cleanup timers."""
        return {
            **super().snapshot_state(checkpoint_id),
            "keyed": self.keyed_backend.snapshot(checkpoint_id),
            "timers": self.timers.snapshot(),
        }
