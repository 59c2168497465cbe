"""Keyed one-input operators: running reduce/aggregations and the keyed process operator.

The input is already partitioned by key group; each record's key is extracted again here
(as Flink does) to scope state. In STREAMING mode a reduce emits every updated value; in
BATCH mode it emits only the final value per key at end of input.
"""

from __future__ import annotations

from typing import Any

from strom._runtime.operators.base import UdfStreamOperator
from strom._runtime.operators.basic import ProcessContext
from strom._runtime.time.timer_service import InternalTimerService
from strom._state.backend import KeyedStateBackend
from strom._state.factory import create_keyed_state_backend
from strom.datastream.functions import KeyedProcessFunction, TimerService
from strom.datastream.state import ValueStateDescriptor
from strom.datastream.watermark import TimeDomain
from strom.errors import InvalidProgramError, UnhashableKeyError

__all__ = ["KeyedProcessOperator", "KeyedTimerService", "StreamGroupedReduce"]

_MISSING = object()


class _KeyedMixin:
    """Creates the keyed backend and reports unhashable keys with context."""

    keyed_backend: KeyedStateBackend

    def _create_backend(self: Any) -> None:
        c = self.context
        self.keyed_backend = create_keyed_state_backend(
            c.config, c.job_id, c.uid, c.subtask_index, c.parallelism, c.max_parallelism
        )
        if self.restored is not None:
            try:
                self.keyed_backend.restore(self.restored.all("keyed"))
            except InvalidProgramError as e:
                msg = f"cannot restore the keyed state of operator uid {c.uid!r}: {e}"
                raise type(e)(msg) from e

    def _restore_timers(self: Any, timers: InternalTimerService) -> None:
        if self.restored is not None:
            keep = self.key_group_filter()
            for snap in self.restored.all("timers"):
                timers.restore(snap, keep)

    def dispose_backend(self: Any) -> None:
        backend = getattr(self, "keyed_backend", None)
        if backend is not None:
            backend.dispose()

    def _bad_key(self: Any, value: Any, exc: Exception) -> UnhashableKeyError:
        c = self.context
        try:
            key = c.key_selector(value)
        except Exception:  # pragma: no cover - the selector itself failed
            key = "?"
        msg = (
            f"key {key!r} of type {type(key).__name__} cannot be used as a key ({exc}); "
            "make the key_by selector return a str, int, float, bytes, bool, None or a "
            "tuple of those (e.g. tuple(the_list))"
        )
        return UnhashableKeyError(
            msg,
            job_id=c.job_id,
            operator_uid=c.uid,
            operator_name=c.name,
            subtask_index=c.subtask_index,
        )


class StreamGroupedReduce(UdfStreamOperator, _KeyedMixin):
    """Running reduce per key (Flink's ``StreamGroupedReduceOperator``).

    ``spec.function`` is a ``ReduceFunction`` or a callable ``(acc, value) -> acc``;
    ``sum``/``min``/``max``/``min_by``/``max_by`` are built on it.
    """

    method = "reduce"
    STATE_NAME = "_reduce_value"

    def open(self) -> None:
        """Create the keyed backend and the running-value table, then open the function."""
        self._create_backend()
        raw = getattr(self.keyed_backend, "raw_table", None)
        self.table = raw(self.STATE_NAME) if raw is not None else None
        self.state = self.keyed_backend.get_or_create_keyed_state(
            ValueStateDescriptor(self.STATE_NAME)
        )
        self.batch_mode = self.context.runtime_mode == "BATCH"
        self.batch_keys: dict[Any, None] = {}
        super().open()

    def process_batch(self, values: list[Any], timestamps: list[int] | None) -> None:
        """Fold each record into its key's running value; emit updates in STREAMING."""
        key_of = self.context.key_selector
        fn = self.fn
        specialize = getattr(fn, "specialize", None)
        if specialize is not None and values:  # built-in sum/min/max: compile once
            fn = self.fn = specialize(values[0])
        out: list[Any] = []
        append = out.append
        table = self.table
        try:
            if table is not None:  # heap fast path: one dict lookup per record
                get = table.get
                missing = _MISSING
                for v in values:
                    k = key_of(v)
                    cur = get(k, missing)
                    new = v if cur is missing else fn(cur, v)
                    table[k] = new
                    append(new)
            else:
                backend, state = self.keyed_backend, self.state
                for v in values:
                    k = key_of(v)
                    backend.set_current_key(k)
                    cur = state.value()
                    new = v if cur is None else fn(cur, v)
                    state.update(new)
                    append(new)
                    if self.batch_mode:
                        self.batch_keys[k] = None
        except TypeError as e:
            if "unhashable" in str(e):
                raise self._bad_key(values[len(out)], e) from e
            raise
        if not self.batch_mode:
            self.output.emit_batch(out, timestamps)

    def end_input(self) -> None:
        """In BATCH mode, emit the final value of every key."""
        if not self.batch_mode:
            return
        if self.table is not None:
            if self.table:
                self.output.emit_batch(list(self.table.values()), None)
            return
        out = []
        for k in self.batch_keys:
            self.keyed_backend.set_current_key(k)
            out.append(self.state.value())
        if out:
            self.output.emit_batch(out, None)

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        """The keyed running values, by key group."""
        return {
            **super().snapshot_state(checkpoint_id),
            "keyed": self.keyed_backend.snapshot(checkpoint_id),
        }


class KeyedTimerService(TimerService):
    """The public ``TimerService`` of keyed functions over the internal timer service.

    Args:
        internal: the operator's timer service.
        namespace: the namespace timers are registered in (VOID for process functions).
    """

    __slots__ = ("internal", "namespace")

    def __init__(self, internal: InternalTimerService, namespace: Any = None) -> None:
        self.internal = internal
        self.namespace = namespace

    def current_processing_time(self) -> int:
        """Now, in epoch ms."""
        return self.internal.current_processing_time()

    def current_watermark(self) -> int:
        """The operator's current watermark, epoch ms."""
        return self.internal.current_watermark

    def register_event_time_timer(self, timestamp_ms: int) -> None:
        """Fire ``on_timer`` for the current key once the watermark passes ``timestamp_ms``."""
        self.internal.register_event_time_timer(self.namespace, int(timestamp_ms))

    def register_processing_time_timer(self, timestamp_ms: int) -> None:
        """Fire ``on_timer`` for the current key at processing time ``timestamp_ms``."""
        self.internal.register_processing_time_timer(self.namespace, int(timestamp_ms))

    def delete_event_time_timer(self, timestamp_ms: int) -> None:
        """Delete an event-time timer of the current key."""
        self.internal.delete_event_time_timer(self.namespace, int(timestamp_ms))

    def delete_processing_time_timer(self, timestamp_ms: int) -> None:
        """Delete a processing-time timer of the current key."""
        self.internal.delete_processing_time_timer(self.namespace, int(timestamp_ms))


class _KeyedContext(ProcessContext, KeyedProcessFunction.OnTimerContext):
    """Per-record (and per-timer) context of a keyed process function."""

    __slots__ = ("domain",)
    domain: TimeDomain

    def get_current_key(self) -> Any:
        """The key of the record (or timer) being processed."""
        return self._op.keyed_backend.get_current_key()

    def time_domain(self) -> TimeDomain:
        """Which clock fired the timer (valid in ``on_timer``)."""
        return self.domain


class KeyedProcessOperator(UdfStreamOperator, _KeyedMixin):
    """Runs a ``KeyedProcessFunction`` with keyed state and timers.

    Mirrors Flink's ``KeyedProcessOperator``: the current key is set per record and per
    fired timer; outputs of ``process_element`` carry the input record's timestamp,
    outputs of an event-time ``on_timer`` the timer's timestamp.
    """

    method = "process_element"

    def open(self) -> None:
        """Create the keyed backend, timers and the context, then open the function."""
        self._create_backend()
        b = self.keyed_backend
        self.timers = InternalTimerService(
            b.set_current_key, b.get_current_key, self, self.context.processing_time_service
        )
        self._restore_timers(self.timers)
        self.ctx = _KeyedContext(self, KeyedTimerService(self.timers))
        on_timer = getattr(self.user_function, "on_timer", None)
        self.on_timer_fn = on_timer if callable(on_timer) else None
        super().open()

    def process_batch(self, values: list[Any], timestamps: list[int] | None) -> None:
        """Set the key, call ``process_element(value, ctx)``, emit what it yields."""
        key_of = self.context.key_selector
        set_key = self.keyed_backend.set_current_key
        fn, ctx = self.fn, self.ctx
        out: list[Any] = []
        out_ts: list[int] = []
        ts_iter = timestamps if timestamps is not None else [None] * len(values)
        for v, t in zip(values, ts_iter):
            k = key_of(v)
            try:
                hash(k)
            except TypeError as e:
                raise self._bad_key(v, e) from e
            set_key(k)
            ctx.ts = t
            r = fn(v, ctx)
            if r is not None:
                n = len(out)
                out.extend(r)
                if t is not None:
                    out_ts.extend([t] * (len(out) - n))
        ctx.ts = None
        if out:
            self.output.emit_batch(out, out_ts if timestamps is not None else None)

    def _fire(self, timestamp_ms: int, domain: TimeDomain) -> None:
        if self.on_timer_fn is None:
            return
        ctx = self.ctx
        ctx.ts = timestamp_ms if domain is TimeDomain.EVENT_TIME else None
        ctx.domain = domain
        try:
            r = self.on_timer_fn(timestamp_ms, ctx)
            out = list(r) if r is not None else []
        except Exception as e:
            raise self.user_error(e, "on_timer of the user function") from e
        finally:
            ctx.ts = None
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
        """Fire due event-time timers, then forward the watermark."""
        self.timers.advance_watermark(watermark.timestamp_ms)
        self.output.emit_watermark(watermark)

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        """All keyed state (by key group) and timers."""
        return {
            **super().snapshot_state(checkpoint_id),
            "keyed": self.keyed_backend.snapshot(checkpoint_id),
            "timers": self.timers.snapshot(),
        }
