"""The fast path of ``WindowOperator``: tumbling/sliding event-time windows with the
default ``EventTimeTrigger``, no evictor, on the heap backend, with ``reduce`` or
``aggregate``.

Contents are held as one dict per window (``window -> {key: accumulator}``), windows are
looked up by start in a cache, and each window fires once for all its keys when the
watermark passes its end (one heap entry per window instead of one timer per key and
window). Semantics are those of the generic path, lateness included: a record for a
window that already fired but is within the allowed lateness updates it and fires that
key's result again at once; later records go to the late side output.

Snapshots hold the per-window dicts as they are (the operator's ``window_contents``) and
the timers the generic path would hold (the end-of-window timer of every key of a window
that has not fired, and the cleanup timer with allowed lateness) grouped per timestamp and
window (``event_groups`` of the timer snapshot format version 2, see
``InternalTimerService``), so no object is built per key and window at a checkpoint. Either
path restores either form, on either backend (``WindowOperator`` moves restored contents
into keyed state on the generic path). After a restore the watermark starts again from its
minimum; a record for a window that fired before the checkpoint then fires its key again
when the watermark reaches the window end, as the generic path's re-registered timer does.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from strom.datastream.window import TimeWindow, TumblingEventTimeWindows

__all__ = ["FastEventTimeWindows"]

_MISSING = object()
_NO_WATERMARK = -(2**64)  # below every watermark


def _first(t: tuple[Any, ...]) -> Any:
    return t[0]


class FastEventTimeWindows:
    """Per-window dictionaries for one window operator subtask.

    Args:
        assigner: a ``TumblingEventTimeWindows`` or ``SlidingEventTimeWindows``.
        lateness: allowed lateness in ms.
        add: ``(value, acc) -> acc`` (aggregate) or None for reduce.
        create: ``() -> acc`` (aggregate) or None for reduce.
        reduce_fn: ``(acc, value) -> acc`` for reduce.
        emit: ``(key, window, contents)`` evaluates and buffers one window result.
        emit_many: ``(window, {key: contents})`` evaluates a whole window.
    """

    def __init__(
        self,
        assigner: Any,
        lateness: int,
        add: Callable[[Any, Any], Any] | None,
        create: Callable[[], Any] | None,
        reduce_fn: Callable[[Any, Any], Any] | None,
        emit: Callable[[Any, Any, Any], None],
        emit_many: Callable[[Any, dict[Any, Any]], None],
    ) -> None:
        self.assigner = assigner
        self.tumbling = type(assigner) is TumblingEventTimeWindows
        self.size = int(assigner.size)
        self.offset = int(assigner.offset)
        self.lateness = lateness
        self.add = add
        self.create = create
        self.reduce_fn = reduce_fn
        self.emit = emit
        self.emit_many = emit_many
        # window -> {key: acc}; cache: start -> (window, max_ts, contents dict)
        self.windows: dict[TimeWindow, dict[Any, Any]] = {}
        self.cache: dict[int, tuple[TimeWindow, int, dict[Any, Any]]] = {}
        self.to_fire: list[tuple[int, int, int]] = []  # (max_ts, start, end)
        self.to_clean: list[tuple[int, int, int]] = []  # (cleanup_ts, start, end)
        self.fired: set[TimeWindow] = set()
        # After a restore the watermark starts again from its minimum, so a record may
        # reach a window that fired before the checkpoint while the watermark is still
        # before its end. As on the generic path (the trigger registers that key's
        # end-of-window timer again), the key fires again when the watermark reaches the
        # end: refire holds those keys per window (in arrival order), to_refire the
        # windows by end; refire_until is the latest end of a restored fired window
        # (no such record is possible once the watermark passed it).
        self.refire: dict[TimeWindow, dict[Any, None]] = {}
        self.to_refire: list[tuple[int, int, int]] = []  # (max_ts, start, end)
        self.refire_until = _NO_WATERMARK

    # -- records --------------------------------------------------------------------------
    def _open_window(self, w: TimeWindow, max_ts: int) -> dict[Any, Any]:
        d: dict[Any, Any] = {}
        self.windows[w] = d
        heapq.heappush(self.to_fire, (max_ts, w[0], w[1]))
        if self.lateness:
            heapq.heappush(self.to_clean, (max_ts + self.lateness, w[0], w[1]))
        return d

    def process(
        self,
        values: list[Any],
        timestamps: list[int],
        key_of: Callable[[Any], Any],
        wm: int,
        late_values: list[Any],
        late_ts: list[int],
    ) -> None:
        """Add a batch; records too late for every window go to ``late_*``."""
        if self.tumbling:
            self._tumbling(values, timestamps, key_of, wm, late_values, late_ts)
        else:
            self._sliding(values, timestamps, key_of, wm, late_values, late_ts)

    def _tumbling(
        self,
        values: list[Any],
        timestamps: list[int],
        key_of: Callable[[Any], Any],
        wm: int,
        late_values: list[Any],
        late_ts: list[int],
    ) -> None:
        cache = self.cache
        size, offset = self.size, self.offset
        add, create, reduce_fn = self.add, self.create, self.reduce_fn
        missing = _MISSING
        for v, t in zip(values, timestamps):
            start = t - (t - offset) % size
            e = cache.get(start)
            if e is None:
                w = TimeWindow(start, start + size)
                max_ts = start + size - 1
                if max_ts + self.lateness <= wm:  # window gone for good: late record
                    late_values.append(v)
                    late_ts.append(t)
                    continue
                d = self.windows.get(w)
                if d is None:
                    d = self._open_window(w, max_ts)
                elif max_ts > wm and w in self.fired:  # after a restore (not cached)
                    self._refire_later(v, key_of(v), w, max_ts, d)
                    continue
                e = cache[start] = (w, max_ts, d)
            w, max_ts, d = e
            if max_ts <= wm:
                if not self._late_update(v, key_of(v), w, max_ts, wm):
                    late_values.append(v)
                    late_ts.append(t)
                continue
            k = key_of(v)
            acc = d.get(k, missing)
            if acc is missing:
                d[k] = add(v, create()) if add is not None else v  # type: ignore[misc]
            elif add is not None:
                d[k] = add(v, acc)
            else:
                d[k] = reduce_fn(acc, v)  # type: ignore[misc]

    def _sliding(
        self,
        values: list[Any],
        timestamps: list[int],
        key_of: Callable[[Any], Any],
        wm: int,
        late_values: list[Any],
        late_ts: list[int],
    ) -> None:
        assign = self.assigner.assign_windows
        add, create, reduce_fn = self.add, self.create, self.reduce_fn
        restored_fired = wm < self.refire_until
        for v, t in zip(values, timestamps):
            k = key_of(v)
            assigned = False
            for w in assign(v, t, None):
                max_ts = w[1] - 1
                if max_ts <= wm:
                    assigned |= self._late_update(v, k, w, max_ts, wm)
                    continue
                assigned = True
                d = self.windows.get(w)
                if d is None:
                    d = self._open_window(w, max_ts)
                elif restored_fired and w in self.fired:
                    self._refire_later(v, k, w, max_ts, d)
                    continue
                acc = d.get(k, _MISSING)
                if acc is _MISSING:
                    d[k] = add(v, create()) if add is not None else v  # type: ignore[misc]
                else:
                    d[k] = add(v, acc) if add is not None else reduce_fn(acc, v)  # type: ignore[misc]
            if not assigned and t + self.lateness <= wm:
                late_values.append(v)
                late_ts.append(t)

    def _late_update(self, v: Any, k: Any, w: TimeWindow, max_ts: int, wm: int) -> bool:
        """A record for a fired window: within lateness it updates and re-fires that key."""
        if max_ts + self.lateness <= wm:
            return False
        d = self.windows.get(w)
        if d is None:
            d = self.windows[w] = {}
            heapq.heappush(self.to_clean, (max_ts + self.lateness, w[0], w[1]))
            self.fired.add(w)
        self.emit(k, w, self._fold(d, k, v))
        return True

    def _fold(self, d: dict[Any, Any], k: Any, v: Any) -> Any:
        """Fold ``v`` into key ``k``'s accumulator in ``d``; return it (the cold paths'
        form of the loop the record paths inline)."""
        acc = d.get(k, _MISSING)
        if acc is _MISSING:
            new = self.add(v, self.create()) if self.add is not None else v  # type: ignore[misc]
        else:
            new = self.add(v, acc) if self.add is not None else self.reduce_fn(acc, v)  # type: ignore[misc]
        d[k] = new
        return new

    def _refire_later(self, v: Any, k: Any, w: TimeWindow, max_ts: int,
                      d: dict[Any, Any]) -> None:
        """A record for a window that fired before a restore, the watermark not yet at
        its end: update, and fire that key again when the watermark reaches the end."""
        self._fold(d, k, v)
        keys = self.refire.get(w)
        if keys is None:
            keys = self.refire[w] = {}
            heapq.heappush(self.to_refire, (max_ts, w[0], w[1]))
        keys[k] = None

    # -- time -----------------------------------------------------------------------------
    def advance(self, wm: int) -> None:
        """Fire every window whose end passed (and keys of restored fired windows that
        must fire again), then drop windows past their lateness."""
        to_fire = self.to_fire
        while to_fire and to_fire[0][0] <= wm:
            _max_ts, start, end = heapq.heappop(to_fire)
            w = TimeWindow(start, end)
            d = self.windows.get(w)
            if d:
                self.emit_many(w, d)
            if self.lateness:
                self.fired.add(w)
            else:
                self._drop(w)
        to_refire = self.to_refire
        while to_refire and to_refire[0][0] <= wm:
            _max_ts, start, end = heapq.heappop(to_refire)
            w = TimeWindow(start, end)
            keys = self.refire.pop(w, None)
            d = self.windows.get(w)
            if keys and d is not None:
                for k in keys:
                    if k in d:
                        self.emit(k, w, d[k])
        to_clean = self.to_clean
        while to_clean and to_clean[0][0] <= wm:
            _t, start, end = heapq.heappop(to_clean)
            self._drop(TimeWindow(start, end))

    def _drop(self, w: TimeWindow) -> None:
        self.windows.pop(w, None)
        self.fired.discard(w)
        self.refire.pop(w, None)
        e = self.cache.get(w[0])
        if e is not None and e[0] == w:
            del self.cache[w[0]]

    # -- snapshots ------------------------------------------------------------------------
    def snapshot(self) -> tuple[dict[TimeWindow, dict[Any, Any]], list[tuple[int, Any, list[Any]]]]:
        """The contents and the timers a snapshot needs, without per-entry objects.

        Returns:
            ``({window: {key: acc}}, [(timestamp, window, keys)])``: the live per-window
            dicts (the caller copies them before more records arrive) and the event-time
            timers the generic path would hold, one group per timestamp and window (the
            end-of-window timer of every key of a window that has not fired, and its
            cleanup timer if there is allowed lateness), sorted by timestamp.
        """
        groups: list[tuple[int, Any, list[Any]]] = []
        fired, lateness = self.fired, self.lateness
        for w, d in self.windows.items():
            if not d:
                continue
            keys = list(d)
            max_ts = w[1] - 1
            if w not in fired:
                groups.append((max_ts, w, keys))
            else:
                again = self.refire.get(w)
                if again:
                    groups.append((max_ts, w, [k for k in again if k in d]))
            if lateness:
                groups.append((max_ts + lateness, w, keys))
        groups.sort(key=_first)
        return self.windows, groups

    def load(self, table: dict[Any, Any], timers: list[tuple[int, Any, Any]]) -> None:
        """Take over restored contents (emptying ``table``) and their timers.

        A window whose keys all have their end-of-window timer has not fired; any other
        window has fired (it is kept for its allowed lateness), and those of its keys that
        have an end-of-window timer fire again at its end (the generic path registered it
        again for a record that arrived after an earlier restore).
        """
        ends: dict[TimeWindow, dict[Any, None]] = {}
        for ts, k, w in timers:
            if ts == w[1] - 1:
                ends.setdefault(TimeWindow(w[0], w[1]), {})[k] = None
        by_window: dict[TimeWindow, dict[Any, Any]] = {}
        for (k, w), acc in table.items():
            by_window.setdefault(TimeWindow(w[0], w[1]), {})[k] = acc
        table.clear()
        for w, d in by_window.items():
            max_ts = w[1] - 1
            e = ends.get(w, {})
            if e and all(k in e for k in d):
                self._open_window(w, max_ts).update(d)
                continue
            self.windows[w] = d
            self.fired.add(w)
            heapq.heappush(self.to_clean, (max_ts + self.lateness, w[0], w[1]))
            self.refire_until = max(self.refire_until, max_ts)
            again = [k for k in e if k in d]
            if again:
                self.refire[w] = dict.fromkeys(again)
                heapq.heappush(self.to_refire, (max_ts, w[0], w[1]))
