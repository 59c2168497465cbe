"""Input channels and gates: where a task's input elements wait, in order per channel.

A :class:`LocalInputChannel` is a FIFO of elements from one producer subtask. Its
``capacity`` (in batches) plays the role of Flink's credits: a producer whose channels are
full is back-pressured (its task is not scheduled until they drain). An
:class:`InputGate` reads its channels fairly and tracks end of input per channel.
``collections.deque`` append/popleft are atomic, so a network thread may fill a channel
that the task thread drains (the multi-process runtime does this).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

__all__ = ["InputGate", "LocalInputChannel", "OutputChannel"]


class OutputChannel(Protocol):
    """What a RecordWriter writes to: a :class:`LocalInputChannel` shared with a consumer
    in this process, or a network channel's producer half (``strom._runtime.io.network``).
    ``len(queue) >= capacity`` means the producer is back-pressured."""

    queue: deque[Any]
    capacity: int

    def push(self, element: Any) -> None:
        """Append an element (a RecordBatch or a control element)."""


class LocalInputChannel:
    """A FIFO of elements from one producer subtask to one consumer subtask.

    Args:
        capacity: batches the channel holds before its producer is back-pressured.
        name: for debugging (``"producer[i] -> consumer[j]"``).
    """

    __slots__ = ("capacity", "index", "name", "queue")

    def __init__(self, capacity: int, name: str = "") -> None:
        self.queue: deque[Any] = deque()
        self.capacity = capacity
        self.name = name
        self.index = -1  # position in the consumer's gate, set by the gate

    def push(self, element: Any) -> None:
        """Append an element (a RecordBatch or a control element)."""
        self.queue.append(element)

    def is_writable(self) -> bool:
        """True while the channel holds fewer than ``capacity`` elements."""
        return len(self.queue) < self.capacity

    def __len__(self) -> int:
        return len(self.queue)


class InputGate:
    """All input channels of one consumer subtask (one logical input).

    Args:
        channels: the channels, one per producer subtask of every input edge.
    """

    def __init__(self, channels: list[LocalInputChannel]) -> None:
        self.channels = channels
        for i, ch in enumerate(channels):
            ch.index = i
        self.ended = [False] * len(channels)
        self.blocked: set[int] = set()
        """Channels not to read while a checkpoint barrier aligns (exactly-once)."""
        self.num_ended = 0
        self._next = 0

    def poll(self) -> tuple[int, Any] | None:
        """Return ``(channel index, element)`` from the next non-empty channel, or None.

        Channels are visited round-robin so that no producer starves another.
        """
        chans = self.channels
        n = len(chans)
        start = self._next
        blocked = self.blocked
        for i in range(n):
            idx = (start + i) % n
            q = chans[idx].queue
            if q and (not blocked or idx not in blocked):
                self._next = (idx + 1) % n
                return idx, q.popleft()
        return None

    def has_data(self) -> bool:
        """True if any channel holds an element."""
        return any(ch.queue for ch in self.channels)

    def mark_ended(self, index: int) -> bool:
        """Record end of input on channel ``index``; True once every channel ended."""
        if not self.ended[index]:
            self.ended[index] = True
            self.num_ended += 1
        return self.num_ended == len(self.channels)

    def queued_batches(self) -> int:
        """Elements waiting in all channels (a back-pressure metric)."""
        return sum(len(ch.queue) for ch in self.channels)
