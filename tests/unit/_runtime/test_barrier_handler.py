"""Barrier alignment (exactly-once) and tracking (at-least-once)."""

from __future__ import annotations

from strom._runtime.io.barrier_handler import CheckpointBarrierHandler


def test_aligned_blocks_until_all_channels_delivered() -> None:
    h = CheckpointBarrierHandler(3, exactly_once=True)
    assert h.on_barrier(0, 1) is None
    assert h.is_blocked(0) and not h.is_blocked(1)
    assert h.on_barrier(2, 1) is None
    assert h.blocked == {0, 2}
    assert h.on_barrier(1, 1) == 1
    assert h.blocked == set()


def test_tracking_never_blocks() -> None:
    h = CheckpointBarrierHandler(2, exactly_once=False)
    assert h.on_barrier(1, 5) is None
    assert not h.is_blocked(1)
    assert h.on_barrier(0, 5) == 5


def test_newer_barrier_aborts_unfinished_alignment() -> None:
    h = CheckpointBarrierHandler(2)
    h.on_barrier(0, 1)
    assert h.on_barrier(0, 2) is None  # checkpoint 1 can no longer complete here
    assert h.take_aborted() == [1]
    assert h.on_barrier(1, 1) is None  # late barrier of the abandoned checkpoint
    assert h.on_barrier(1, 2) == 2


def test_end_of_input_completes_alignment_and_single_channel() -> None:
    h = CheckpointBarrierHandler(2)
    h.on_barrier(0, 3)
    assert h.on_end_of_input(1) == 3
    assert h.on_barrier(0, 4) == 4  # only one live channel left
    single = CheckpointBarrierHandler(1)
    assert single.on_barrier(0, 1) == 1
    assert single.on_barrier(0, 1) is None  # duplicates are ignored
