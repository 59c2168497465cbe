"""WindowOperator: keyed windows with triggers, evictors, allowed lateness and merging.

Mirrors Flink's ``WindowOperator``/``EvictingWindowOperator``. Window contents live in
keyed state (state ``"window-contents"``, namespace = the window): the reduced value, the
aggregate accumulator, or the list of elements (``process``/``apply``/evictors). Each
window gets a cleanup timer at ``max_timestamp + allowed_lateness`` (event time) or
``max_timestamp`` (processing time); the default ``EventTimeTrigger`` registers a timer at
``max_timestamp``, which coincides with the cleanup timer when lateness is 0, so one timer
fires and clears the window. Results carry the timestamp ``window.max_timestamp()``.
Merging assigners (sessions) keep a per-key map window -> state window (state
``"window-merging-set"``) and merge contents when sessions join.

Outputs are buffered while a batch (or a watermark's timers) is processed and emitted as
one batch.

The heap backend's fast path (``window_fast``) keeps contents as ``{window: {key: acc}}``
and snapshots them in that shape (``window_contents``) instead of as keyed state, which
saves building and grouping one entry object per key and window at every checkpoint; a
restore moves them into keyed state on the generic path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from strom._runtime.operators.base import StreamingRuntimeContext, UdfStreamOperator
from strom._runtime.operators.keyed import _KeyedMixin
from strom._runtime.operators.window_fast import FastEventTimeWindows
from strom._runtime.time.timer_service import (
    InternalTimerService,
    grouped_timer_snapshot,
    snapshot_timers,
)
from strom.datastream.functions import AggregateFunction, Function, ReduceFunction
from strom.datastream.state import ValueStateDescriptor
from strom.datastream.watermark import MAX_WATERMARK_MS
from strom.datastream.window import (
    EventTimeTrigger,
    Evictor,
    MergingWindowAssigner,
    ProcessWindowFunction,
    SlidingEventTimeWindows,
    TimestampedValue,
    TimeWindow,
    Trigger,
    TumblingEventTimeWindows,
    WindowAssigner,
)
from strom.errors import InvalidProgramError

__all__ = ["WindowOperator"]


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


CONTENTS = "window-contents"
WINDOW_CONTENTS_VERSION = 1
"""Format of the ``window_contents`` entry of a fast-path window snapshot:
``{"version": 1, "windows": {window: {key: accumulator}}}``."""
MERGING_SET = "window-merging-set"
_MISSING = object()


class _Scoped:
    """A state handle bound to one namespace: sets it before every call."""

    __slots__ = ("_handle", "_ns")

    def __init__(self, handle: Any, namespace: Any) -> None:
        self._handle = handle
        self._ns = namespace

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._handle, name)
        if not callable(attr):
            return attr
        handle, ns = self._handle, self._ns

        def call(*args: Any, **kwargs: Any) -> Any:
            handle.set_current_namespace(ns)
            return attr(*args, **kwargs)

        return call


class _StateStore:
    """Keyed state of the current key in one namespace (``window_state``/``global_state``)."""

    def __init__(self, backend: Any, namespace: Any) -> None:
        self._backend = backend
        self._ns = namespace

    def _get(self, descriptor: Any) -> Any:
        return _Scoped(self._backend.get_or_create_keyed_state(descriptor), self._ns)

    get_state = get_list_state = get_map_state = _get
    get_reducing_state = get_aggregating_state = _get


class _TriggerContext(Trigger.OnMergeContext):
    """Trigger callbacks' view of one (key, window)."""

    def __init__(self, op: WindowOperator) -> None:
        self.op = op
        self.window: Any = None
        self.merged_windows: list[Any] = []

    def get_current_processing_time(self) -> int:
        return self.op.timers.current_processing_time()

    def get_current_watermark(self) -> int:
        return self.op.timers.current_watermark

    def register_processing_time_timer(self, time: int) -> None:
        self.op.timers.register_processing_time_timer(self.window, time)

    def register_event_time_timer(self, time: int) -> None:
        self.op.timers.register_event_time_timer(self.window, time)

    def delete_processing_time_timer(self, time: int) -> None:
        self.op.timers.delete_processing_time_timer(self.window, time)

    def delete_event_time_timer(self, time: int) -> None:
        self.op.timers.delete_event_time_timer(self.window, time)

    def get_partitioned_state(self, state_descriptor: Any) -> Any:
        handle = self.op.keyed_backend.get_or_create_keyed_state(state_descriptor)
        return _Scoped(handle, self.window)

    def merge_partitioned_state(self, state_descriptor: Any) -> None:
        """Combine a trigger's per-window value of the merged windows into the result
        window: numbers are summed, other values keep the first one found."""
        name = state_descriptor if isinstance(state_descriptor, str) else state_descriptor.name
        handle = self.op.keyed_backend.get_or_create_keyed_state(ValueStateDescriptor(name))
        merged: Any = None
        for w in self.merged_windows:
            handle.set_current_namespace(w)
            v = handle.value()
            if v is None:
                continue
            if merged is None:
                merged = v
            elif isinstance(v, (int, float)) and isinstance(merged, (int, float)):
                merged = merged + v
            handle.clear()
        handle.set_current_namespace(self.window)
        if merged is not None:
            handle.update(merged)


class _WindowContext(ProcessWindowFunction.Context):
    """Context of one window evaluation."""

    def __init__(self, op: WindowOperator) -> None:
        self.op = op
        self.win: Any = None

    def window(self) -> Any:
        return self.win

    def current_processing_time(self) -> int:
        return self.op.timers.current_processing_time()

    def current_watermark(self) -> int:
        return self.op.timers.current_watermark

    def window_state(self) -> Any:
        return _StateStore(self.op.keyed_backend, self.win)

    def global_state(self) -> Any:
        return _StateStore(self.op.keyed_backend, None)

    def output(self, output_tag: Any, value: Any) -> None:
        ts = self.win.max_timestamp()
        self.op.output.emit_side(output_tag.tag_id, [value], [ts])


class _AssignerContext(WindowAssigner.WindowAssignerContext):
    def __init__(self, op: WindowOperator) -> None:
        self.op = op

    def get_current_processing_time(self) -> int:
        return self.op.context.processing_time_ms()


class WindowOperator(UdfStreamOperator, _KeyedMixin):
    """Evaluates windows per key.

    ``spec.params``: ``assigner``, ``trigger`` (None = the assigner's default),
    ``evictor`` (or None), ``allowed_lateness`` (ms), ``late_tag`` (side output name or
    None), ``kind`` (``"reduce"``, ``"aggregate"``, ``"process"``, ``"apply"``),
    ``reduce_function``, ``aggregate_function``, ``window_function`` (process/apply or the
    function applied to the pre-aggregated result), ``all`` (True for ``window_all``).
    """

    def open(self) -> None:
        """Create backend, timers, contexts and the evaluation function."""
        assert self.spec is not None
        p = self.spec.params
        self._create_backend()
        b = self.keyed_backend
        self.timers = InternalTimerService(
            b.set_current_key, b.get_current_key, self, self.context.processing_time_service
        )
        self.assigner: WindowAssigner[Any] = p["assigner"]
        self.trigger: Trigger[Any] = p.get("trigger") or self.assigner.get_default_trigger()
        self.evictor: Evictor[Any] | None = p.get("evictor")
        self.lateness: int = int(p.get("allowed_lateness", 0))
        self.late_tag: str | None = p.get("late_tag")
        self.kind: str = p["kind"]
        self.is_all = bool(p.get("all"))
        self.merging = isinstance(self.assigner, MergingWindowAssigner)
        if self.merging and not self.trigger.can_merge():
            msg = f"trigger {type(self.trigger).__name__} cannot be used with merging windows"
            raise TypeError(msg)
        self.event_time = self.assigner.is_event_time()
        self.contents = b.get_or_create_keyed_state(ValueStateDescriptor(CONTENTS))
        self.merge_state = b.get_or_create_keyed_state(ValueStateDescriptor(MERGING_SET))
        self.trigger_ctx = _TriggerContext(self)
        self.window_ctx = _WindowContext(self)
        self.assigner_ctx = _AssignerContext(self)
        self.late_records_dropped = 0
        self._out: list[Any] = []
        self._out_ts: list[int] = []
        self._setup_functions(p)
        raw = getattr(b, "raw_namespaced_table", None)
        fast = (
            raw is not None
            and not self.merging
            and self.evictor is None
            and type(self.trigger) is EventTimeTrigger
            and type(self.assigner) in (TumblingEventTimeWindows, SlidingEventTimeWindows)
            and self.kind in ("reduce", "aggregate")
        )
        self.table = raw(CONTENTS) if fast and raw is not None else None
        self.fast: FastEventTimeWindows | None = None
        if self.table is not None:
            agg = self.agg
            self.fast = FastEventTimeWindows(
                self.assigner,
                self.lateness,
                agg.add if agg is not None else None,
                agg.create_accumulator if agg is not None else None,
                self.reduce_fn,
                self._emit_window,
                self._emit_whole_window,
            )
            self._restore_window_contents()
            restored_timers: list[Any] = []
            if self.restored is not None:
                keep = self.key_group_filter()
                for snap in self.restored.all("timers"):
                    restored_timers.extend(
                        t for t in snapshot_timers(snap, "event") if keep(t[1])
                    )
            self.fast.load(self.table, restored_timers)
        else:
            self._restore_window_contents()
            self._restore_timers(self.timers)
        self.open_user_functions()

    def _restore_window_contents(self) -> None:
        """Take this subtask's keys of contents a fast-path snapshot held outside the keyed
        snapshot (``window_contents``, see :meth:`snapshot_state`): into the contents
        table on the fast path, through the contents state otherwise (any backend).

        Raises:
            InvalidProgramError: a ``window_contents`` format version newer than this code.
        """
        snaps = self.restored.all("window_contents") if self.restored is not None else []
        if not snaps:
            return
        keep = self.key_group_filter()
        table, backend, contents = self.table, self.keyed_backend, self.contents
        for snap in snaps:
            version = snap.get("version")
            if version != WINDOW_CONTENTS_VERSION:
                msg = (
                    f"window contents of operator {self.context.uid!r} have format version "
                    f"{version!r}; this Strom reads version {WINDOW_CONTENTS_VERSION}"
                )
                raise InvalidProgramError(msg)
            for w, entries in snap["windows"].items():
                w = TimeWindow(w[0], w[1])
                for k, acc in entries.items():
                    if not keep(k):
                        continue
                    if table is not None:
                        table[(k, w)] = acc
                    else:
                        backend.set_current_key(k)
                        contents.set_current_namespace(w)
                        contents.update(acc)

    def _setup_functions(self, p: dict[str, Any]) -> None:
        rf = p.get("reduce_function")
        self.reduce_fn: Callable[[Any, Any], Any] | None = (
            rf.reduce if isinstance(rf, ReduceFunction) else rf
        )
        self.agg: AggregateFunction[Any, Any, Any] | None = p.get("aggregate_function")
        wf = p.get("window_function")
        self.window_fn_obj = wf
        self.window_fn: Callable[..., Any] | None = None
        if wf is not None:
            if isinstance(wf, Function) and hasattr(wf, "process"):
                self.window_fn = wf.process
            elif isinstance(wf, Function) and hasattr(wf, "apply"):
                self.window_fn = wf.apply
            else:
                self.window_fn = wf
        self.apply_style = self.kind == "apply" or (
            wf is not None
            and isinstance(wf, Function)
            and not hasattr(wf, "process")
            and hasattr(wf, "apply")
        )
        if self.agg is not None and not isinstance(self.agg, AggregateFunction):
            msg = "aggregate() needs an AggregateFunction"
            raise TypeError(msg)

    def _user_functions(self) -> list[Function]:
        assert self.spec is not None
        p = self.spec.params
        fns = (p.get("reduce_function"), p.get("aggregate_function"), p.get("window_function"))
        return [f for f in fns if isinstance(f, Function)]

    def close(self) -> None:
        """Close every user function and release the window state."""
        try:
            for f in self._user_functions():
                f.close()
        finally:
            backend = getattr(self, "keyed_backend", None)
            if backend is not None:
                backend.dispose()

    # -- input ----------------------------------------------------------------------------
    def process_batch(self, values: list[Any], timestamps: list[int] | None) -> None:
        """Assign each record to its windows, update contents, run the trigger."""
        if self.fast is not None and timestamps is not None:
            self._process_fast(values, timestamps)
        else:
            key_of = self.context.key_selector
            set_key = self.keyed_backend.set_current_key
            ts_list = timestamps if timestamps is not None else [None] * len(values)
            for v, t in zip(values, ts_list):
                k = key_of(v)
                try:
                    set_key(k)
                except TypeError as e:
                    raise self._bad_key(v, e) from e
                self._process_element(k, v, t)
        self._flush()

    def _process_fast(self, values: list[Any], timestamps: list[int]) -> None:
        """The per-window-dict fast path (see ``window_fast``)."""
        assert self.fast is not None
        late_values: list[Any] = []
        late_ts: list[int] = []
        key_of = self.context.key_selector
        try:
            self.fast.process(
                values, timestamps, key_of, self.timers.current_watermark, late_values, late_ts
            )
        except TypeError as e:
            if "unhashable" not in str(e):
                raise
            bad = next(v for v in values if not _hashable(key_of(v)))
            raise self._bad_key(bad, e) from e
        if late_values:
            self._late(late_values, late_ts)

    def _emit_whole_window(self, window: Any, contents: dict[Any, Any]) -> None:
        """Evaluate every key of a fired window (fast path)."""
        if self.window_fn is None:
            ts = window[1] - 1
            if self.kind == "aggregate":
                assert self.agg is not None
                get_result = self.agg.get_result
                self._out.extend([get_result(acc) for acc in contents.values()])
            else:
                self._out.extend(contents.values())
            self._out_ts.extend([ts] * len(contents))
            return
        for k, acc in contents.items():
            self._emit_window(k, window, acc)

    def _late(self, values: list[Any], timestamps: list[Any]) -> None:
        if self.late_tag is not None:
            self.output.emit_side(self.late_tag, values, timestamps)
        else:
            self.late_records_dropped += len(values)

    def _cleanup_time(self, w: Any) -> int:
        if self.event_time:
            t = w.max_timestamp() + self.lateness
            return t if t >= w.max_timestamp() else MAX_WATERMARK_MS
        return int(w.max_timestamp())

    def _is_window_late(self, w: Any) -> bool:
        return self.event_time and self._cleanup_time(w) <= self.timers.current_watermark

    def _add_to_contents(self, window: Any, value: Any, timestamp: int | None) -> None:
        c = self.contents
        c.set_current_namespace(window)
        cur = c.value()
        if self.evictor is not None or self.kind in ("process", "apply"):
            item = TimestampedValue(value, timestamp) if self.evictor is not None else value
            c.update([item] if cur is None else [*cur, item])
        elif self.kind == "aggregate":
            assert self.agg is not None
            acc = self.agg.create_accumulator() if cur is None else cur
            c.update(self.agg.add(value, acc))
        else:
            assert self.reduce_fn is not None
            c.update(value if cur is None else self.reduce_fn(cur, value))

    def _merge_contents(self, a: Any, b: Any) -> Any:
        if a is None:
            return b
        if b is None:
            return a
        if self.evictor is not None or self.kind in ("process", "apply"):
            return [*a, *b]
        if self.kind == "aggregate":
            assert self.agg is not None
            return self.agg.merge(a, b)
        assert self.reduce_fn is not None
        return self.reduce_fn(a, b)

    def _process_element(self, key: Any, value: Any, ts: int | None) -> None:
        windows = self.assigner.assign_windows(value, ts, self.assigner_ctx)
        skipped = True
        if self.merging:
            skipped = self._process_merging(key, value, ts, windows)
        else:
            tctx = self.trigger_ctx
            for w in windows:
                if self._is_window_late(w):
                    continue
                skipped = False
                self._add_to_contents(w, value, ts)
                tctx.window = w
                result = self.trigger.on_element(value, ts, w, tctx)
                self._handle_result(key, w, w, result)
                self._register_cleanup(w)
        if (
            skipped
            and self.event_time
            and ts is not None
            and (ts + self.lateness <= self.timers.current_watermark)
        ):
            self._late([value], [ts])

    def _handle_result(self, key: Any, window: Any, state_window: Any, result: Any) -> None:
        if result.is_fire():
            self.contents.set_current_namespace(state_window)
            contents = self.contents.value()
            if contents is not None:
                self._emit_window(key, window, contents, state_window)
        if result.is_purge():
            self.contents.set_current_namespace(state_window)
            self.contents.clear()

    def _register_cleanup(self, w: Any) -> None:
        t = self._cleanup_time(w)
        if t == MAX_WATERMARK_MS:
            return  # global windows never get cleaned
        if self.event_time:
            self.timers.register_event_time_timer(w, t)
        else:
            self.timers.register_processing_time_timer(w, t)

    def _delete_cleanup(self, w: Any) -> None:
        t = self._cleanup_time(w)
        if self.event_time:
            self.timers.delete_event_time_timer(w, t)
        else:
            self.timers.delete_processing_time_timer(w, t)

    # -- merging windows ------------------------------------------------------------------
    def _process_merging(self, key: Any, value: Any, ts: int | None, windows: list[Any]) -> bool:
        assert isinstance(self.assigner, MergingWindowAssigner)
        self.merge_state.set_current_namespace(None)
        mapping: dict[Any, Any] = dict(self.merge_state.value() or {})
        skipped = True
        tctx = self.trigger_ctx
        for new_window in windows:
            groups: list[tuple[list[Any], Any]] = []

            def collect(ws: list[Any], r: Any, g: list[tuple[list[Any], Any]] = groups) -> None:
                g.append((list(ws), r))

            candidates = list(mapping)
            if new_window not in mapping:
                candidates.append(new_window)
            self.assigner.merge_windows(candidates, collect)
            actual = new_window
            for merged, result in groups:
                existing = [m for m in merged if m in mapping]
                if new_window in merged:
                    actual = result
                if not existing:
                    continue
                state_window = mapping[existing[0]]
                combined = None
                for m in existing:
                    sw = mapping.pop(m)
                    self.contents.set_current_namespace(sw)
                    combined = self._merge_contents(combined, self.contents.value())
                    self.contents.clear()
                    if m != result:
                        tctx.window = m
                        self.trigger.clear(m, tctx)
                        self._delete_cleanup(m)
                mapping[result] = state_window
                self.contents.set_current_namespace(state_window)
                if combined is not None:
                    self.contents.update(combined)
                tctx.window = result
                tctx.merged_windows = [m for m in existing if m != result]
                self.trigger.on_merge(result, tctx)
                tctx.merged_windows = []
            if actual not in mapping:
                mapping[actual] = actual
            if self._is_window_late(actual):
                state_window = mapping.pop(actual)
                self.contents.set_current_namespace(state_window)
                self.contents.clear()
                continue
            skipped = False
            state_window = mapping[actual]
            self._add_to_contents(state_window, value, ts)
            tctx.window = actual
            result_ = self.trigger.on_element(value, ts, actual, tctx)
            self._handle_result(key, actual, state_window, result_)
            self._register_cleanup(actual)
        self.merge_state.set_current_namespace(None)
        if mapping:
            self.merge_state.update(mapping)
        else:
            self.merge_state.clear()
        return skipped

    # -- timers ---------------------------------------------------------------------------
    def on_event_time(self, timestamp_ms: int, key: Any, window: Any) -> None:
        """An event-time timer of (key, window) fired."""
        self._on_timer(timestamp_ms, key, window, event_time=True)

    def on_processing_time(self, timestamp_ms: int, key: Any, window: Any) -> None:
        """A processing-time timer of (key, window) fired."""
        self._on_timer(timestamp_ms, key, window, event_time=False)
        self._flush()

    def _on_timer(self, ts: int, key: Any, window: Any, event_time: bool) -> None:
        state_window = window
        mapping: dict[Any, Any] | None = None
        if self.merging:
            self.merge_state.set_current_namespace(None)
            mapping = self.merge_state.value() or {}
            if window not in mapping:
                return  # the window merged into another one
            state_window = mapping[window]
        tctx = self.trigger_ctx
        tctx.window = window
        if event_time:
            result = self.trigger.on_event_time(ts, window, tctx)
        else:
            result = self.trigger.on_processing_time(ts, window, tctx)
        self._handle_result(key, window, state_window, result)
        if event_time == self.event_time and ts == self._cleanup_time(window):
            self._clear_all(window, state_window, mapping)

    def _clear_all(self, window: Any, state_window: Any, mapping: dict[Any, Any] | None) -> None:
        self.contents.set_current_namespace(state_window)
        self.contents.clear()
        tctx = self.trigger_ctx
        tctx.window = window
        self.trigger.clear(window, tctx)
        clear = getattr(self.window_fn_obj, "clear", None)
        if callable(clear):
            self.window_ctx.win = window
            clear(self.window_ctx)
        if mapping is not None:
            mapping = dict(mapping)
            mapping.pop(window, None)
            self.merge_state.set_current_namespace(None)
            if mapping:
                self.merge_state.update(mapping)
            else:
                self.merge_state.clear()

    def process_watermark(self, watermark: Any) -> None:
        """Fire due windows/timers (emitting results as one batch), then forward."""
        if self.fast is not None:
            self.timers.current_watermark = watermark.timestamp_ms
            self.fast.advance(watermark.timestamp_ms)
        else:
            self.timers.advance_watermark(watermark.timestamp_ms)
        self._flush()
        self.output.emit_watermark(watermark)

    # -- evaluation -----------------------------------------------------------------------
    def _emit_window(self, key: Any, window: Any, contents: Any, state_window: Any = None) -> None:
        ts = window.max_timestamp()
        fn = self.window_fn
        if self.evictor is not None:
            elements = list(contents)
            ectx = self.window_ctx
            ectx.win = window
            self.evictor.evict_before(elements, len(elements), window, self)  # type: ignore[arg-type]
            values = [e.value for e in elements]
            results = self._call_window_fn(key, window, values)
            self.evictor.evict_after(elements, len(elements), window, self)  # type: ignore[arg-type]
            self.contents.set_current_namespace(
                state_window if state_window is not None else window
            )
            if elements:
                self.contents.update(elements)
            else:
                self.contents.clear()
        elif self.kind in ("process", "apply"):
            results = self._call_window_fn(key, window, list(contents))
        else:
            value = (
                self.agg.get_result(contents) if self.kind == "aggregate" and self.agg else contents
            )
            if fn is None:
                self._out.append(value)
                self._out_ts.append(ts)
                return
            results = self._call_window_fn(key, window, [value])
        if results is not None:
            n = len(self._out)
            self._out.extend(results)
            self._out_ts.extend([ts] * (len(self._out) - n))

    def _call_window_fn(self, key: Any, window: Any, elements: list[Any]) -> Any:
        fn = self.window_fn
        assert fn is not None
        try:
            if self.apply_style:
                r = fn(window, elements) if self.is_all else fn(key, window, elements)
            else:
                self.window_ctx.win = window
                r = (
                    fn(self.window_ctx, elements)
                    if self.is_all
                    else fn(key, self.window_ctx, elements)
                )
            return list(r) if r is not None else None
        except Exception as e:
            raise self.user_error(e, "window function") from e

    # evictor context
    def get_current_processing_time(self) -> int:
        """Now, epoch ms (EvictorContext)."""
        return self.timers.current_processing_time()

    def get_current_watermark(self) -> int:
        """The current watermark (EvictorContext)."""
        return self.timers.current_watermark

    def _flush(self) -> None:
        if self._out:
            out, ts = self._out, self._out_ts
            self._out, self._out_ts = [], []
            self.output.emit_batch(out, ts)

    # -- lifecycle ------------------------------------------------------------------------
    def open_user_functions(self) -> None:
        """Open reduce/aggregate/window functions with a runtime context."""
        ctx = StreamingRuntimeContext(self)
        for f in self._user_functions():
            try:
                f.open(ctx)
            except Exception as e:
                raise self.user_error(e, "open() of a window function") from e

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        """Window contents and timers.

        The generic path snapshots its keyed state (contents in ``window-contents``) and
        its timers. The fast path writes its per-window dicts as they are
        (``window_contents``, :data:`WINDOW_CONTENTS_VERSION`) and its timers grouped per
        window (timer snapshot version 2); either path restores either form, on either
        backend, at any parallelism (restores filter contents and timers by key group).
        """
        if self.fast is not None:
            # The contents as the per-window dicts are (copied, not grouped by key group:
            # a restore filters them by key), the timers in groups; no per-entry objects.
            windows, groups = self.fast.snapshot()
            return {
                **super().snapshot_state(checkpoint_id),
                "keyed": self.keyed_backend.snapshot(checkpoint_id),  # other keyed state
                "window_contents": {
                    "version": WINDOW_CONTENTS_VERSION,
                    "windows": {w: d.copy() for w, d in windows.items() if d},
                },
                "timers": grouped_timer_snapshot(groups),
            }
        return {
            **super().snapshot_state(checkpoint_id),
            "keyed": self.keyed_backend.snapshot(checkpoint_id),
            "timers": self.timers.snapshot(),
        }
