"""Split enumerators of the file source: static file set and continuous monitoring."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from strom.connectors.file import _fs
from strom.connectors.file._compat import override
from strom.connectors.file._split import FileSourceSplit, PendingSplitsCheckpoint
from strom.connectors.source import SplitEnumerator, SplitEnumeratorContext
from strom.errors import ConnectorError

__all__ = ["ContinuousFileSplitEnumerator", "StaticFileSplitEnumerator"]

logger = logging.getLogger(__name__)


class _FileSplitEnumeratorBase(SplitEnumerator[FileSourceSplit, PendingSplitsCheckpoint]):
    """Shared bookkeeping: pending splits in path order, and the set of paths already seen.

    Readers pull work: each reader calls ``send_split_request`` when it has nothing to read,
    and :meth:`handle_split_request` assigns the next pending split (lowest path first).
    """

    def __init__(
        self,
        context: SplitEnumeratorContext[FileSourceSplit],
        paths: Sequence[str],
        checkpoint: PendingSplitsCheckpoint | None = None,
    ) -> None:
        self._context = context
        self._paths = tuple(paths)
        self._pending: list[FileSourceSplit] = []
        self._seen: set[str] = set()
        self._restored = checkpoint is not None
        if checkpoint is not None:
            self._pending = list(checkpoint.splits)
            self._seen = set(checkpoint.already_processed_paths)
            self._seen.update(s.path for s in checkpoint.splits)

    def _add_new_paths(self, paths: Sequence[str]) -> int:
        """Turn paths not seen before into pending splits; return how many were added."""
        fresh = [FileSourceSplit(p) for p in paths if p not in self._seen]
        self._seen.update(s.path for s in fresh)
        self._pending.extend(fresh)
        self._pending.sort(key=lambda s: s.path)
        return len(fresh)

    def _assign_next(self, subtask_id: int) -> bool:
        """Assign the next pending split to ``subtask_id``; False if none is pending."""
        if not self._pending:
            return False
        split = self._pending.pop(0)
        logger.debug("Assigning %s to reader %d", split.path, subtask_id)
        self._context.assign_split(split, subtask_id)
        return True

    @override
    def add_splits_back(self, splits: list[FileSourceSplit], subtask_id: int) -> None:
        """Re-queue the splits of a failed reader (progress included) for reassignment."""
        self._pending.extend(splits)
        self._seen.update(s.path for s in splits)
        self._pending.sort(key=lambda s: s.path)

    @override
    def add_reader(self, subtask_id: int) -> None:
        """Nothing to do: readers ask for splits themselves."""

    @override
    def snapshot_state(self, checkpoint_id: int) -> PendingSplitsCheckpoint:
        """Return the unassigned splits and every path turned into a split so far."""
        return PendingSplitsCheckpoint(
            splits=tuple(self._pending), already_processed_paths=frozenset(self._seen)
        )


class StaticFileSplitEnumerator(_FileSplitEnumeratorBase):
    """Enumerates the files once, then hands them out (Flink's ``StaticFileSplitEnumerator``).

    Files are listed in :meth:`start` (a fresh enumerator) or taken from the checkpoint. A
    reader asking when nothing is pending is told there will be no more splits.

    Args:
        context: the runtime's enumerator context.
        paths: source path specs (files, directories, globs; local or fsspec URLs).
        checkpoint: state to restore from, or None for a fresh start.
    """

    @override
    def start(self) -> None:
        """List the files (fresh start only).

        Raises:
            ConnectorError: a path does not exist or cannot be listed.
        """
        if not self._restored:
            added = self._add_new_paths(_fs.list_all_files(self._paths))
            logger.info("File source found %d files in %s", added, list(self._paths))
            self._restored = True

    @override
    def handle_split_request(self, subtask_id: int, requester_hostname: str | None) -> None:
        """Assign the next file, or signal no more splits if all are assigned."""
        if not self._assign_next(subtask_id):
            self._context.signal_no_more_splits(subtask_id)


class ContinuousFileSplitEnumerator(_FileSplitEnumeratorBase):
    """Periodically discovers new files (Flink's ``ContinuousFileSplitEnumerator``).

    Discovery runs through ``context.call_async`` every ``discovery_interval_ms``; only
    paths never seen before become splits, so a file is read once even if it changes later
    (write files elsewhere, or under a hidden name, and rename them into place). Readers
    that ask while nothing is pending wait until the next discovery finds a file.

    Args:
        context: the runtime's enumerator context.
        paths: source path specs (files, directories, globs; local or fsspec URLs).
        discovery_interval_ms: pause between two listings, in int milliseconds (> 0).
        checkpoint: state to restore from, or None for a fresh start.
    """

    def __init__(
        self,
        context: SplitEnumeratorContext[FileSourceSplit],
        paths: Sequence[str],
        discovery_interval_ms: int,
        checkpoint: PendingSplitsCheckpoint | None = None,
    ) -> None:
        super().__init__(context, paths, checkpoint)
        self._interval_ms = discovery_interval_ms
        self._waiting: list[int] = []

    @override
    def start(self) -> None:
        """Schedule periodic discovery (the first run is immediate)."""
        self._context.call_async(
            self._discover,
            self._handle_discovered,
            initial_delay_ms=0,
            period_ms=self._interval_ms,
        )

    def _discover(self) -> list[str]:
        """List the files (runs off the enumerator's thread: touches no enumerator state)."""
        return _fs.list_all_files(self._paths)

    def _handle_discovered(self, paths: list[str] | None, error: BaseException | None) -> None:
        """Add newly found files and serve waiting readers.

        Raises:
            ConnectorError: the listing failed; this fails the job (restart strategy applies).
        """
        if error is not None:
            if isinstance(error, ConnectorError):
                raise error
            msg = f"Continuous file discovery in {list(self._paths)} failed: {error}"
            raise ConnectorError(msg) from error
        added = self._add_new_paths(paths or [])
        if added:
            logger.info("File source discovered %d new files in %s", added, list(self._paths))
        self._serve_waiting()

    def _serve_waiting(self) -> None:
        while self._waiting and self._pending:
            self._assign_next(self._waiting.pop(0))

    @override
    def handle_split_request(self, subtask_id: int, requester_hostname: str | None) -> None:
        """Assign the next file, or remember the reader until discovery finds one."""
        if not self._assign_next(subtask_id) and subtask_id not in self._waiting:
            self._waiting.append(subtask_id)

    @override
    def add_splits_back(self, splits: list[FileSourceSplit], subtask_id: int) -> None:
        """Re-queue the splits of a failed reader and serve waiting readers."""
        super().add_splits_back(splits, subtask_id)
        if subtask_id in self._waiting:
            self._waiting.remove(subtask_id)
        self._serve_waiting()
