"""Rolling policies of the file sink: when to close the in-progress part file and start anew.

A closed ("rolled") part file becomes *pending*: it is handed to the committer at the next
checkpoint (or at end of input) and made visible under its final name once that checkpoint
completes.

Strom's file sink always rolls at a checkpoint (``prepare_commit``): no file stays in
progress across a checkpoint, so a restore never has to resume a half-written file. A
policy's :meth:`RollingPolicy.should_roll_on_checkpoint` is therefore informative only.
"""

from __future__ import annotations

import abc
import datetime
from dataclasses import dataclass

from strom.connectors.file._compat import override
from strom.connectors.file._time import to_millis
from strom.errors import ConfigurationError

__all__ = [
    "DefaultRollingPolicy",
    "OnCheckpointRollingPolicy",
    "PartFileInfo",
    "RollingPolicy",
]

DEFAULT_PART_SIZE = 128 * 1024 * 1024
"""Flink's default maximum part file size: 128 MiB."""
DEFAULT_ROLLOVER_INTERVAL_MS = 60_000
"""Flink's default maximum age of a part file: 60 s."""
DEFAULT_INACTIVITY_INTERVAL_MS = 60_000
"""Flink's default maximum time without writes to a part file: 60 s."""


@dataclass(frozen=True)
class PartFileInfo:
    """What a rolling policy knows about the in-progress part file (Flink's ``PartFileInfo``).

    Attributes:
        bucket_id: the bucket (sub-directory) of the part file; "" for the base path.
        creation_time_ms: when the file was opened (int epoch ms, processing time).
        last_update_time_ms: when a batch was last written to it (int epoch ms).
        size: bytes written so far (for bulk formats: bytes flushed to the file so far).
    """

    bucket_id: str
    creation_time_ms: int
    last_update_time_ms: int
    size: int


class RollingPolicy(abc.ABC):
    """Decides when the sink closes its in-progress part file (Flink's ``RollingPolicy``).

    Policies are declarative, picklable and stateless: they see a :class:`PartFileInfo`.
    The sink writes in batches, so the event check runs before each batch and a part file
    can exceed a size limit by at most one batch.
    """

    @abc.abstractmethod
    def should_roll_on_event(self, part_file: PartFileInfo) -> bool:
        """Called before a batch is written to ``part_file``; True closes it first."""

    @abc.abstractmethod
    def should_roll_on_processing_time(self, part_file: PartFileInfo, current_time_ms: int) -> bool:
        """Called with the current processing time (int epoch ms); True closes the file.

        Checked before each batch and whenever the runtime calls the writer's
        ``on_processing_time``.
        """

    def should_roll_on_checkpoint(self, part_file: PartFileInfo) -> bool:
        """Whether to close the file at a checkpoint; Strom always does (see module doc)."""
        return True

    @staticmethod
    def default_rolling_policy(
        part_size: int = DEFAULT_PART_SIZE,
        rollover_interval: datetime.timedelta | int = DEFAULT_ROLLOVER_INTERVAL_MS,
        inactivity_interval: datetime.timedelta | int = DEFAULT_INACTIVITY_INTERVAL_MS,
    ) -> DefaultRollingPolicy:
        """Roll on size, age or inactivity; see :class:`DefaultRollingPolicy`."""
        return DefaultRollingPolicy(part_size, rollover_interval, inactivity_interval)


class DefaultRollingPolicy(RollingPolicy):
    """Roll when a part file is too big, too old or idle (Flink's ``DefaultRollingPolicy``).

    Args:
        part_size: roll once a file holds at least this many bytes (> 0).
        rollover_interval: roll once a file is this old (timedelta or int ms; > 0).
        inactivity_interval: roll once nothing was written for this long (timedelta or int
            ms; > 0).

    Raises:
        ConfigurationError: a value is not positive.
    """

    def __init__(
        self,
        part_size: int = DEFAULT_PART_SIZE,
        rollover_interval: datetime.timedelta | int = DEFAULT_ROLLOVER_INTERVAL_MS,
        inactivity_interval: datetime.timedelta | int = DEFAULT_INACTIVITY_INTERVAL_MS,
    ) -> None:
        if not isinstance(part_size, int) or isinstance(part_size, bool) or part_size <= 0:
            msg = f"part_size must be a positive int number of bytes, got {part_size!r}."
            raise ConfigurationError(msg)
        self.part_size = part_size
        self.rollover_interval_ms = to_millis(rollover_interval, "rollover_interval")
        self.inactivity_interval_ms = to_millis(inactivity_interval, "inactivity_interval")

    @override
    def should_roll_on_event(self, part_file: PartFileInfo) -> bool:
        """True once the file holds at least ``part_size`` bytes."""
        return part_file.size >= self.part_size

    @override
    def should_roll_on_processing_time(self, part_file: PartFileInfo, current_time_ms: int) -> bool:
        """True once the file is ``rollover_interval`` old or idle for ``inactivity_interval``."""
        return (
            current_time_ms - part_file.creation_time_ms >= self.rollover_interval_ms
            or current_time_ms - part_file.last_update_time_ms >= self.inactivity_interval_ms
        )

    def __repr__(self) -> str:
        return (
            f"DefaultRollingPolicy(part_size={self.part_size}, rollover_interval_ms="
            f"{self.rollover_interval_ms}, inactivity_interval_ms={self.inactivity_interval_ms})"
        )


class OnCheckpointRollingPolicy(RollingPolicy):
    """Roll only at checkpoints (Flink's ``OnCheckpointRollingPolicy``); default for bulk formats.

    Without checkpointing, a bounded job writes one part file per subtask and bucket.
    """

    @override
    def should_roll_on_event(self, part_file: PartFileInfo) -> bool:
        """Never: only checkpoints roll."""
        return False

    @override
    def should_roll_on_processing_time(self, part_file: PartFileInfo, current_time_ms: int) -> bool:
        """Never: only checkpoints roll."""
        return False

    def __repr__(self) -> str:
        return "OnCheckpointRollingPolicy()"
