"""Checkpoint barrier handling at tasks with several input channels.

Mirrors Flink's ``SingleCheckpointBarrierHandler`` (aligned, exactly-once) and
``CheckpointBarrierTracker`` (at-least-once). The task calls :meth:`on_barrier` for every
barrier and :meth:`on_end_of_input` when a channel ends; the handler answers with the
checkpoint id the task must snapshot now (or None) and, when aligning, tells the task
which channels to stop reading (``blocked``) until the snapshot is taken:

- aligned: after the first barrier of checkpoint n arrives on a channel, that channel is
  blocked (its later records belong after the snapshot); when every live channel has
  delivered barrier n, the task snapshots, forwards the barrier and all channels unblock.
  A barrier of a newer checkpoint aborts an unfinished alignment (the older checkpoint
  can no longer complete at this task).
- tracking: nothing is blocked; the snapshot is taken when the last live channel delivers
  barrier n (records after a barrier may already be in the state: at-least-once).
"""

from __future__ import annotations

__all__ = ["CheckpointBarrierHandler"]


class CheckpointBarrierHandler:
    """Decides when a task with ``num_channels`` inputs takes a checkpoint.

    Args:
        num_channels: input channels of the task.
        exactly_once: align (True) or track (False).
    """

    def __init__(self, num_channels: int, exactly_once: bool = True) -> None:
        self.num_channels = num_channels
        self.exactly_once = exactly_once
        self.ended: set[int] = set()
        self.current: int = -1
        self.received: set[int] = set()
        self.blocked: set[int] = set()
        self.last_completed: int = -1
        self.aborted: list[int] = []

    def _live(self) -> set[int]:
        return set(range(self.num_channels)) - self.ended

    def _complete(self) -> int:
        cid = self.current
        self.last_completed = cid
        self.received = set()
        self.blocked = set()
        return cid

    def on_barrier(self, channel: int, checkpoint_id: int) -> int | None:
        """A barrier arrived on ``channel``; returns the checkpoint to take now, if any."""
        if checkpoint_id <= self.last_completed:
            return None  # a late barrier of a checkpoint already taken or aborted here
        if checkpoint_id > self.current:
            if self.received and self.current > self.last_completed:
                self.aborted.append(self.current)
            self.current = checkpoint_id
            self.received = set()
            self.blocked = set()
        elif checkpoint_id < self.current:
            return None  # belongs to an alignment that was already abandoned
        self.received.add(channel)
        if self.exactly_once:
            self.blocked.add(channel)
        if self.received >= self._live():
            return self._complete()
        return None

    def on_end_of_input(self, channel: int) -> int | None:
        """``channel`` ended; an alignment waiting only for it completes now."""
        self.ended.add(channel)
        self.blocked.discard(channel)
        if self.received and self.current > self.last_completed and (
            self.received >= self._live()
        ):
            return self._complete()
        return None

    def is_blocked(self, channel: int) -> bool:
        """True while ``channel`` must not be read (aligning)."""
        return channel in self.blocked

    def take_aborted(self) -> list[int]:
        """Checkpoints whose alignment was abandoned since the last call (to decline)."""
        out, self.aborted = self.aborted, []
        return out
