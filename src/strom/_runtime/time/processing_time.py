"""ProcessingTimeService: wall-clock timers of one task, fired by its mailbox loop.

Processing time is epoch milliseconds from a clock (the system clock, or a
``strom.testing.ManualClock`` in tests). Callbacks run on the task thread, between
batches, so operators never see concurrent calls (Flink's mailbox model).
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable

__all__ = ["ProcessingTimeService", "system_clock_ms"]


def system_clock_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


class ProcessingTimeService:
    """Timers on processing time for the operators of one task.

    Args:
        clock: returns the current processing time in epoch ms.
    """

    def __init__(self, clock: Callable[[], int] = system_clock_ms) -> None:
        self.clock = clock
        self._heap: list[tuple[int, int, Callable[[int], None]]] = []
        self._seq = itertools.count()

    def get_current_processing_time(self) -> int:
        """Now, in epoch ms."""
        return self.clock()

    def register_timer(self, timestamp_ms: int, callback: Callable[[int], None]) -> None:
        """Call ``callback(timestamp_ms)`` once processing time reaches ``timestamp_ms``."""
        heapq.heappush(self._heap, (timestamp_ms, next(self._seq), callback))

    def next_timer_ms(self) -> int | None:
        """The earliest registered timer, or None."""
        return self._heap[0][0] if self._heap else None

    def fire_due(self) -> bool:
        """Fire every timer whose time has come; True if any fired."""
        heap = self._heap
        if not heap:
            return False
        now = self.clock()
        fired = False
        while heap and heap[0][0] <= now:
            ts, _seq, cb = heapq.heappop(heap)
            cb(ts)
            fired = True
        return fired
