"""The file source's reader: reads its assigned files one after another, in batches."""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from typing import Any

from strom.connectors.file import _fs
from strom.connectors.file._compat import override
from strom.connectors.file._split import FileSourceSplit
from strom.connectors.file.formats import BulkFormat, FormatReader, StreamFormat
from strom.connectors.source import InputStatus, ReaderOutput, SourceReader, SourceReaderContext
from strom.errors import ConfigurationError, ConnectorError, StreamingError

__all__ = ["FileSourceReader"]

logger = logging.getLogger(__name__)


class _OpenSplit:
    """The split being read: its open file layers and the format reader over them."""

    def __init__(self, split: FileSourceSplit, fmt: StreamFormat[Any] | BulkFormat[Any]) -> None:
        self.split = split
        self.stack = contextlib.ExitStack()
        try:
            stream = _fs.open_input(
                split.path, self.stack, decompress=isinstance(fmt, StreamFormat)
            )
            self.reader: FormatReader[Any] = fmt.restore_reader(
                stream, split.path, split.records_to_skip
            )
        except BaseException:
            self.stack.close()
            raise

    def snapshot(self) -> FileSourceSplit:
        return self.split.update_with_checkpointed_position(self.reader.position)

    def close(self) -> None:
        try:
            self.reader.close()
        finally:
            self.stack.close()


class FileSourceReader(SourceReader[Any, FileSourceSplit]):
    """Reads whole files, one split at a time (Flink's ``FileSourceReader``).

    The reader asks the enumerator for one split at a time (``send_split_request``) when it
    starts without restored splits and whenever it finishes its last split. Each
    :meth:`poll_next` emits at most one batch of up to ``batch_size`` records with one
    ``collect_batch`` call on the split's output, so it never blocks for long.

    Args:
        context: the runtime's reader context.
        stream_format: the format decoding each file; a :class:`StreamFormat` gets
            decompressed streams, a :class:`BulkFormat` the raw seekable file.
        batch_size: most records per ``poll_next`` (> 0).

    Attributes:
        num_skipped_records: malformed records skipped so far under ``on_error="skip"``,
            over all files this reader read (never silently dropped: also logged).

    Raises:
        ConfigurationError: ``batch_size`` is not a positive int.
    """

    def __init__(
        self,
        context: SourceReaderContext,
        stream_format: StreamFormat[Any] | BulkFormat[Any],
        batch_size: int,
    ) -> None:
        if not isinstance(batch_size, int) or batch_size <= 0:
            msg = f"File source batch_size must be a positive int, got {batch_size!r}."
            raise ConfigurationError(msg)
        self._context = context
        self._format = stream_format
        self._batch_size = batch_size
        self._queue: deque[FileSourceSplit] = deque()
        self._current: _OpenSplit | None = None
        self._no_more_splits = False
        self._request_pending = False
        self._skipped_in_finished = 0

    @property
    def num_skipped_records(self) -> int:
        """Malformed records skipped so far (``on_error="skip"``), over all files."""
        current = self._current.reader.num_skipped_records if self._current else 0
        return self._skipped_in_finished + current

    def _request_split(self) -> None:
        if not self._request_pending and not self._no_more_splits:
            self._request_pending = True
            self._context.send_split_request()

    @override
    def start(self) -> None:
        """Ask for a first split unless splits were restored from a checkpoint."""
        if not self._queue and self._current is None:
            self._request_split()

    @override
    def add_splits(self, splits: list[FileSourceSplit]) -> None:
        """Queue assigned (or restored) splits; they are read in the order given."""
        self._queue.extend(splits)
        self._request_pending = False

    @override
    def notify_no_more_splits(self) -> None:
        """The enumerator has no more files for this reader: finish after the queued ones."""
        self._no_more_splits = True
        self._request_pending = False

    def _finish_current(self, output: ReaderOutput) -> None:
        current = self._current
        assert current is not None
        self._current = None
        skipped = current.reader.num_skipped_records
        self._skipped_in_finished += skipped
        if skipped:
            logger.warning(
                "Skipped %d malformed records in '%s' (on_error='skip').",
                skipped,
                current.split.path,
            )
        current.close()
        output.release_output_for_split(current.split.split_id())
        logger.debug("Finished reading %s", current.split.path)

    @override
    def poll_next(self, output: ReaderOutput) -> InputStatus:
        """Emit one batch of the current split; open the next split when one ends.

        Returns:
            MORE_AVAILABLE after emitting (or when another split is queued),
            NOTHING_AVAILABLE while waiting for a split (one has been requested),
            END_OF_INPUT once no more splits will come and all are read.

        Raises:
            ConnectorError: a file cannot be opened or read.
            DeserializationError: malformed input under ``on_error="fail"``.
        """
        while True:
            if self._current is None:
                if not self._queue:
                    if self._no_more_splits:
                        return InputStatus.END_OF_INPUT
                    self._request_split()
                    return InputStatus.NOTHING_AVAILABLE
                self._current = _OpenSplit(self._queue.popleft(), self._format)
            current = self._current
            try:
                values = current.reader.read_batch(self._batch_size)
            except StreamingError:
                raise
            except OSError as exc:
                msg = f"Cannot read '{current.split.path}': {exc}"
                raise ConnectorError(msg) from exc
            if values:
                output.create_output_for_split(current.split.split_id()).collect_batch(values)
                return InputStatus.MORE_AVAILABLE
            self._finish_current(output)
            if not self._queue:
                self._request_split()

    @override
    def snapshot_state(self, checkpoint_id: int) -> list[FileSourceSplit]:
        """Return the current split (with its record position) and the queued splits."""
        splits = [self._current.snapshot()] if self._current is not None else []
        splits.extend(self._queue)
        return splits

    @override
    def close(self) -> None:
        """Close the open file, if any."""
        if self._current is not None:
            current, self._current = self._current, None
            current.close()
