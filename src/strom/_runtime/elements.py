"""The in-band elements that travel between operators and tasks.

Data moves as :class:`RecordBatch` es (a list of values and an optional parallel list of
int epoch-millisecond timestamps); control elements are interleaved in order:
``Watermark`` (from ``strom.datastream.watermark``), :class:`WatermarkStatus`,
:class:`CheckpointBarrier` and :data:`END_OF_INPUT`. A batch is immutable once emitted:
operators build new lists instead of mutating their input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "END_OF_INPUT",
    "CheckpointBarrier",
    "EndOfInput",
    "RecordBatch",
    "WatermarkStatus",
]


class RecordBatch:
    """A batch of records.

    Attributes:
        values: the records.
        timestamps: parallel list of event timestamps (int epoch ms), or None when the
            stream carries no timestamps.
    """

    __slots__ = ("timestamps", "values")

    def __init__(self, values: list[Any], timestamps: list[int] | None = None) -> None:
        self.values = values
        self.timestamps = timestamps

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        return f"RecordBatch({len(self.values)} records)"


@dataclass(frozen=True)
class WatermarkStatus:
    """Marks a channel idle (it no longer holds back the watermark) or active again.

    Attributes:
        idle: True for IDLE, False for ACTIVE.
    """

    idle: bool


WatermarkStatus.IDLE = WatermarkStatus(True)  # type: ignore[attr-defined]
WatermarkStatus.ACTIVE = WatermarkStatus(False)  # type: ignore[attr-defined]


class EndOfInput:
    """Marks that an upstream subtask finished (Flink's ``EndOfPartitionEvent``)."""

    _instance: EndOfInput | None = None

    def __new__(cls) -> EndOfInput:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "END_OF_INPUT"


END_OF_INPUT = EndOfInput()
"""The one EndOfInput instance."""


@dataclass(frozen=True)
class CheckpointBarrier:
    """Separates the records of checkpoint ``checkpoint_id`` from the next ones.

    Attributes:
        checkpoint_id: strictly increasing checkpoint number.
        timestamp_ms: wall-clock trigger time, epoch ms.
        is_savepoint: True for a savepoint.
    """

    checkpoint_id: int
    timestamp_ms: int
    is_savepoint: bool = False
