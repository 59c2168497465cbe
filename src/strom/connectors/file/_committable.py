"""The file sink's committable and writer state (picklable, versioned)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["FileSinkCommittable", "FileWriterState"]

SINK_STATE_VERSION = 1
"""Version of the pickled committable / writer state layout; bump on incompatible changes."""


@dataclass(frozen=True)
class FileSinkCommittable:
    """A finished ("pending") part file waiting to be published (Flink's ``FileSinkCommittable``).

    Returned by the writer's ``prepare_commit``; the committer renames ``pending_path`` to
    ``final_path`` once the checkpoint holding this committable completed.

    Attributes:
        bucket_id: the bucket (sub-directory) of the file; "" for the base path.
        pending_path: the closed hidden file, ``.{prefix}-{subtask}-{counter}{suffix}
            .inprogress.{uuid}`` in the bucket directory.
        final_path: the visible name, ``{prefix}-{subtask}-{counter}{suffix}``.
        size: bytes in the file.
        version: layout version of this state object.
    """

    bucket_id: str
    pending_path: str
    final_path: str
    size: int
    version: int = SINK_STATE_VERSION


@dataclass(frozen=True)
class FileWriterState:
    """What a file writer needs after a restore (returned by ``snapshot_state``).

    Strom rolls every part file at a checkpoint, so no in-progress file needs resuming: the
    state is only the next part counter per bucket, which keeps part file names unique
    across restarts.

    Attributes:
        bucket_counters: bucket id -> next part counter of this subtask.
        version: layout version of this state object.
    """

    bucket_counters: Mapping[str, int] = field(default_factory=dict)
    version: int = SINK_STATE_VERSION
