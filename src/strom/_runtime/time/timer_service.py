"""InternalTimerService: per-key event-time and processing-time timers of an operator.

Mirrors Flink's ``InternalTimerServiceImpl``: timers are ``(timestamp, key, namespace)``;
registering the same timer twice keeps one; event-time timers fire in timestamp order when
the watermark reaches them, processing-time timers when the task's processing-time
service reaches them. Before a timer fires the backend's current key is set to the
timer's key. Timers are part of the operator's snapshot.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from strom._runtime.time.processing_time import ProcessingTimeService
from strom.errors import InvalidProgramError

__all__ = [
    "TIMER_SNAPSHOT_VERSION",
    "InternalTimerService",
    "Triggerable",
    "grouped_timer_snapshot",
    "snapshot_timers",
]


TIMER_SNAPSHOT_VERSION = 2
"""Newest format of a timer snapshot this code reads.

Version 1: ``{"version": 1, "event": [(ts, key, namespace)], "processing": [...]}``.
Version 2 adds ``"event_groups"`` / ``"processing_groups"``: ``[(ts, namespace, [keys])]``,
one timer per key (the window fast path writes its timers this way: one group per window
instead of one tuple per key and window). A reader takes the flat lists and the groups.
"""


def grouped_timer_snapshot(
    event_groups: list[tuple[int, Any, list[Any]]],
    processing_groups: list[tuple[int, Any, list[Any]]] | None = None,
) -> dict[str, Any]:
    """A timer snapshot of the current version from ``[(ts, namespace, [keys])]`` groups
    sorted by timestamp (see :data:`TIMER_SNAPSHOT_VERSION`); without processing-time
    groups the ``processing_groups`` entry is left out."""
    snap: dict[str, Any] = {
        "version": TIMER_SNAPSHOT_VERSION,
        "event": [],
        "processing": [],
        "event_groups": event_groups,
    }
    if processing_groups is not None:
        snap["processing_groups"] = processing_groups
    return snap


def snapshot_timers(snapshot: dict[str, Any], domain: str) -> Iterator[tuple[int, Any, Any]]:
    """Every ``(ts, key, namespace)`` timer of ``domain`` (``"event"`` or
    ``"processing"``) in a timer snapshot of version 1 or 2: the flat list first, then the
    groups, in order.

    Raises:
        InvalidProgramError: the format version is newer than :data:`TIMER_SNAPSHOT_VERSION`.
    """
    version = snapshot.get("version", 1)
    if not isinstance(version, int) or not 1 <= version <= TIMER_SNAPSHOT_VERSION:
        msg = (
            f"a timer snapshot has format version {version!r}, but this Strom reads "
            f"versions 1 to {TIMER_SNAPSHOT_VERSION}; restore it with a newer Strom"
        )
        raise InvalidProgramError(msg)
    yield from snapshot.get(domain, ())
    for ts, ns, keys in snapshot.get(f"{domain}_groups", ()):
        for key in keys:
            yield ts, key, ns


class Triggerable(Protocol):
    """What receives fired timers (a window or keyed process operator)."""

    def on_event_time(self, timestamp_ms: int, key: Any, namespace: Any) -> None:
        """An event-time timer fired (current key already set)."""

    def on_processing_time(self, timestamp_ms: int, key: Any, namespace: Any) -> None:
        """A processing-time timer fired (current key already set)."""


class InternalTimerService:
    """Timers of one keyed operator subtask.

    Args:
        set_current_key: the keyed backend's ``set_current_key``.
        get_current_key: the keyed backend's ``get_current_key``.
        triggerable: receives fired timers.
        processing_time_service: the task's processing-time service.
    """

    def __init__(
        self,
        set_current_key: Callable[[Any], None],
        get_current_key: Callable[[], Any],
        triggerable: Triggerable,
        processing_time_service: ProcessingTimeService,
    ) -> None:
        self._set_key = set_current_key
        self._get_key = get_current_key
        self._target = triggerable
        self._pts = processing_time_service
        self._seq = itertools.count()
        self._event_heap: list[tuple[int, int, Any, Any]] = []
        self._event_set: set[tuple[int, Any, Any]] = set()
        self._proc_heap: list[tuple[int, int, Any, Any]] = []
        self._proc_set: set[tuple[int, Any, Any]] = set()
        self._proc_scheduled: int | None = None
        self.current_watermark = -(2**63)

    # -- registration (current key) -------------------------------------------------------
    def register_event_time_timer(self, namespace: Any, timestamp_ms: int) -> None:
        """Fire ``on_event_time`` for the current key at watermark >= ``timestamp_ms``."""
        entry = (timestamp_ms, self._get_key(), namespace)
        if entry not in self._event_set:
            self._event_set.add(entry)
            heapq.heappush(self._event_heap, (timestamp_ms, next(self._seq), entry[1], namespace))

    def register_event_time_timer_for_key(self, key: Any, namespace: Any,
                                          timestamp_ms: int) -> None:
        """Register an event-time timer for ``key`` without setting the current key."""
        entry = (timestamp_ms, key, namespace)
        if entry not in self._event_set:
            self._event_set.add(entry)
            heapq.heappush(self._event_heap, (timestamp_ms, next(self._seq), key, namespace))

    def delete_event_time_timer(self, namespace: Any, timestamp_ms: int) -> None:
        """Delete the current key's event-time timer (lazily removed from the heap)."""
        self._event_set.discard((timestamp_ms, self._get_key(), namespace))

    def register_processing_time_timer(self, namespace: Any, timestamp_ms: int) -> None:
        """Fire ``on_processing_time`` for the current key at processing time ``timestamp_ms``."""
        entry = (timestamp_ms, self._get_key(), namespace)
        if entry not in self._proc_set:
            self._proc_set.add(entry)
            heapq.heappush(self._proc_heap, (timestamp_ms, next(self._seq), entry[1], namespace))
            self._schedule()

    def delete_processing_time_timer(self, namespace: Any, timestamp_ms: int) -> None:
        """Delete the current key's processing-time timer."""
        self._proc_set.discard((timestamp_ms, self._get_key(), namespace))

    def current_processing_time(self) -> int:
        """Now, in epoch ms."""
        return self._pts.get_current_processing_time()

    def num_event_time_timers(self) -> int:
        """Registered (not deleted) event-time timers."""
        return len(self._event_set)

    def num_processing_time_timers(self) -> int:
        """Registered processing-time timers."""
        return len(self._proc_set)

    # -- firing ---------------------------------------------------------------------------
    def advance_watermark(self, watermark_ms: int) -> None:
        """Fire every event-time timer with timestamp <= ``watermark_ms``, in order."""
        self.current_watermark = watermark_ms
        heap, live = self._event_heap, self._event_set
        while heap and heap[0][0] <= watermark_ms:
            ts, _seq, key, ns = heapq.heappop(heap)
            entry = (ts, key, ns)
            if entry not in live:
                continue
            live.discard(entry)
            self._set_key(key)
            self._target.on_event_time(ts, key, ns)

    def _schedule(self) -> None:
        if not self._proc_heap:
            return
        first = self._proc_heap[0][0]
        if self._proc_scheduled is None or first < self._proc_scheduled:
            self._proc_scheduled = first
            self._pts.register_timer(first, self._on_processing_time)

    def _on_processing_time(self, due_ms: int) -> None:
        if self._proc_scheduled == due_ms:
            self._proc_scheduled = None
        now = self._pts.get_current_processing_time()
        heap, live = self._proc_heap, self._proc_set
        while heap and heap[0][0] <= now:
            ts, _seq, key, ns = heapq.heappop(heap)
            entry = (ts, key, ns)
            if entry not in live:
                continue
            live.discard(entry)
            self._set_key(key)
            self._target.on_processing_time(ts, key, ns)
        self._schedule()

    # -- snapshots ------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Live timers in the grouped form of version 2: ``{"event_groups": [(ts, ns,
        [keys])], "processing_groups": [...]}`` by timestamp. Timers of one window share
        ``(ts, ns)``, so a window object is written once, not once per key (pickling a
        window costs a Python call)."""
        return grouped_timer_snapshot(_grouped(self._event_set), _grouped(self._proc_set))

    def restore(self, snapshot: dict[str, Any], key_filter: Callable[[Any], bool] | None = None
                ) -> None:
        """Re-register timers of a snapshot (only keys passing ``key_filter``).

        Raises:
            InvalidProgramError: the snapshot has a format version newer than
                :data:`TIMER_SNAPSHOT_VERSION`.
        """
        for ts, key, ns in snapshot_timers(snapshot, "event"):
            if key_filter is None or key_filter(key):
                entry = (ts, key, ns)
                if entry not in self._event_set:
                    self._event_set.add(entry)
                    heapq.heappush(self._event_heap, (ts, next(self._seq), key, ns))
        for ts, key, ns in snapshot_timers(snapshot, "processing"):
            if key_filter is None or key_filter(key):
                entry = (ts, key, ns)
                if entry not in self._proc_set:
                    self._proc_set.add(entry)
                    heapq.heappush(self._proc_heap, (ts, next(self._seq), key, ns))
        self._schedule()


def _grouped(timers: set[tuple[int, Any, Any]]) -> list[tuple[int, Any, list[Any]]]:
    """``[(ts, ns, [keys])]`` sorted by timestamp, one group per ``(ts, ns)``."""
    groups: dict[tuple[int, Any], list[Any]] = {}
    for ts, key, ns in timers:
        g = groups.get((ts, ns))
        if g is None:
            groups[(ts, ns)] = [key]
        else:
            g.append(key)
    return [(ts, ns, keys) for (ts, ns), keys in sorted(groups.items(), key=lambda kv: kv[0][0])]
