"""Declarative partitioners: how records of one edge are routed to downstream subtasks.

These are pure descriptions stored on graph edges; ``strom._runtime.io.record_writer``
implements the routing. ``ship_strategy`` is the name Flink's plan JSON shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BroadcastPartitioner",
    "CustomPartitionerWrapper",
    "ForwardPartitioner",
    "KeyGroupStreamPartitioner",
    "Partitioner",
    "RebalancePartitioner",
    "RescalePartitioner",
    "ShufflePartitioner",
]


@dataclass(frozen=True)
class Partitioner:
    """Base of the edge partitioners."""

    ship_strategy: str = "FORWARD"

    @property
    def is_forward(self) -> bool:
        """True for the pointwise forward strategy (the only one that allows chaining)."""
        return self.ship_strategy == "FORWARD"


@dataclass(frozen=True)
class ForwardPartitioner(Partitioner):
    """Subtask i sends to subtask i (needs equal parallelism)."""

    ship_strategy: str = "FORWARD"


@dataclass(frozen=True)
class RebalancePartitioner(Partitioner):
    """Round-robin over all downstream subtasks (Flink's default on a parallelism change)."""

    ship_strategy: str = "REBALANCE"


@dataclass(frozen=True)
class RescalePartitioner(Partitioner):
    """Round-robin over a local subset of downstream subtasks."""

    ship_strategy: str = "RESCALE"


@dataclass(frozen=True)
class ShufflePartitioner(Partitioner):
    """Uniformly random downstream subtask."""

    ship_strategy: str = "SHUFFLE"


@dataclass(frozen=True)
class BroadcastPartitioner(Partitioner):
    """Every record to every downstream subtask."""

    ship_strategy: str = "BROADCAST"


@dataclass(frozen=True)
class KeyGroupStreamPartitioner(Partitioner):
    """By key group of the record's key (``key_by``).

    Attributes:
        key_selector: record -> key.
    """

    key_selector: Callable[[Any], Any] | None = None
    ship_strategy: str = "HASH"


@dataclass(frozen=True)
class CustomPartitionerWrapper(Partitioner):
    """A user partitioner: ``partitioner(key, num_partitions) -> index``.

    Attributes:
        partitioner: (key, number of downstream subtasks) -> subtask index.
        key_selector: record -> key.
    """

    partitioner: Callable[[Any, int], int] | None = None
    key_selector: Callable[[Any], Any] | None = None
    ship_strategy: str = "CUSTOM"
