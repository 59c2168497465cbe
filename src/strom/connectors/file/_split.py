"""The file source's split and enumerator checkpoint types."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from strom.connectors.file._compat import override
from strom.connectors.source import SourceSplit

__all__ = ["FileSourceSplit", "PendingSplitsCheckpoint"]

SPLIT_STATE_VERSION = 1
"""Version of the pickled split / enumerator state layout; bump on incompatible changes."""


@dataclass(frozen=True)
class FileSourceSplit(SourceSplit):
    """One whole file to read, with the reader's progress (Flink's ``FileSourceSplit``).

    A split is immutable; a reader that snapshots its progress returns a copy made with
    :meth:`update_with_checkpointed_position`. A reader given a split with
    ``records_to_skip = n`` re-opens the file and discards its first ``n`` records before
    emitting, so a snapshot + restore neither duplicates nor loses records. (Skipping
    re-reads the file: it works for compressed files, which cannot seek.)

    Attributes:
        path: the file, a local path or fsspec URL. Also the split id: one split per file.
        records_to_skip: records already consumed from the start of the file (Flink's
            ``CheckpointedPosition.recordsAfterOffset`` with no byte offset). The unit is the
            format's record: a line (text, JSON lines), a CSV row after the header, or a
            Parquet row. Malformed records skipped under ``on_error="skip"`` and blank
            lines count as consumed.
        version: layout version of this state object.
    """

    path: str
    records_to_skip: int = 0
    version: int = SPLIT_STATE_VERSION

    @override
    def split_id(self) -> str:
        """The file path: stable across restarts and unique within one source."""
        return self.path

    def update_with_checkpointed_position(self, records_to_skip: int) -> FileSourceSplit:
        """Return a copy of this split whose reading resumes after ``records_to_skip`` records.

        Args:
            records_to_skip: records consumed so far (>= 0).
        """
        return dataclasses.replace(self, records_to_skip=records_to_skip)


@dataclass(frozen=True)
class PendingSplitsCheckpoint:
    """The file enumerator's checkpoint (Flink's ``PendingSplitsCheckpoint``).

    Attributes:
        splits: splits not yet assigned to any reader, in assignment order.
        already_processed_paths: every path the enumerator has turned into a split (assigned
            or pending); continuous monitoring never creates a split for these again.
        version: layout version of this state object.
    """

    splits: tuple[FileSourceSplit, ...] = ()
    already_processed_paths: frozenset[str] = frozenset()
    version: int = SPLIT_STATE_VERSION
