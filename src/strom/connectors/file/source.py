"""FileSource: read files (text, CSV, JSON lines, Parquet) once or continuously.

Example::

    from datetime import timedelta
    from strom.connectors.file import FileSource, StreamFormat

    source = (
        FileSource.for_record_stream_format(StreamFormat.text_line_format(), "/data/in")
        .monitor_continuously(timedelta(seconds=10))
        .build()
    )
    # env.from_source(source, WatermarkStrategy.no_watermarks(), "files")
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from dataclasses import dataclass
from typing import Any

from strom.connectors.file._compat import override
from strom.connectors.file._enumerator import (
    ContinuousFileSplitEnumerator,
    StaticFileSplitEnumerator,
)
from strom.connectors.file._reader import FileSourceReader
from strom.connectors.file._split import FileSourceSplit, PendingSplitsCheckpoint
from strom.connectors.file._time import to_millis
from strom.connectors.file.formats import BulkFormat, StreamFormat
from strom.connectors.source import (
    Boundedness,
    Source,
    SourceReader,
    SourceReaderContext,
    SplitEnumerator,
    SplitEnumeratorContext,
)
from strom.errors import ConfigurationError

__all__ = ["FileSource", "FileSourceBuilder"]

DEFAULT_BATCH_SIZE = 1000
"""Records per ``poll_next``: Strom's usual batch size (amortises per-batch overhead)."""


def _normalize_paths(paths: tuple[Any, ...]) -> tuple[str, ...]:
    if not paths:
        msg = "FileSource needs at least one path (a file, a directory or a glob pattern)."
        raise ConfigurationError(msg)
    out: list[str] = []
    for path in paths:
        if not isinstance(path, str | os.PathLike):
            msg = f"FileSource paths must be str or os.PathLike, got {path!r}."
            raise ConfigurationError(msg)
        text = os.fspath(path)
        if not isinstance(text, str) or not text:
            msg = f"FileSource path must be a non-empty string, got {path!r}."
            raise ConfigurationError(msg)
        out.append(text)
    return tuple(out)


class FileSource(Source[Any, FileSourceSplit, PendingSplitsCheckpoint]):
    """Reads files: one split per file (Flink's ``FileSource``).

    Build it with :meth:`for_record_stream_format` or :meth:`for_bulk_file_format`.

    A bounded source (the default, ``process_static_file_set``) lists its paths once when
    the job starts and ends after reading every file. A continuous source
    (``monitor_continuously``) lists them again every interval and reads files it has not
    seen before, forever; a file is read once even if it is modified later, so write
    files elsewhere (or under a hidden name starting with ``.``) and rename them into place.

    Paths may be files, directories (all files beneath, recursively; names starting with
    ``.`` or ``_`` are skipped) or glob patterns; local paths or fsspec URLs. Stream formats
    read ``.gz``, ``.bz2``, ``.xz`` and single-member ``.zip`` files decompressed.

    Exactly-once: a reader snapshot holds each unfinished file with the number of records
    already emitted; the enumerator snapshot holds the unassigned files and every path seen.

    Args:
        paths: the path specs (non-empty).
        stream_format: how to decode each file.
        boundedness: BOUNDED or CONTINUOUS_UNBOUNDED.
        discovery_interval_ms: listing interval in int ms (continuous only; > 0).
        batch_size: most records per reader poll (> 0).

    Raises:
        ConfigurationError: invalid arguments.
    """

    def __init__(
        self,
        paths: tuple[str, ...],
        stream_format: StreamFormat[Any] | BulkFormat[Any],
        boundedness: Boundedness = Boundedness.BOUNDED,
        discovery_interval_ms: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self._paths = _normalize_paths(paths)
        if not isinstance(stream_format, StreamFormat | BulkFormat):
            msg = (
                f"FileSource needs a StreamFormat or BulkFormat, got {stream_format!r}; use e.g."
                " StreamFormat.text_line_format()."
            )
            raise ConfigurationError(msg)
        if boundedness is Boundedness.CONTINUOUS_UNBOUNDED and not discovery_interval_ms:
            msg = "A continuous FileSource needs a discovery interval > 0."
            raise ConfigurationError(msg)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            msg = f"FileSource batch_size must be a positive int, got {batch_size!r}."
            raise ConfigurationError(msg)
        self._format = stream_format
        self._boundedness = boundedness
        self._discovery_interval_ms = discovery_interval_ms
        self._batch_size = batch_size

    @staticmethod
    def for_record_stream_format(
        stream_format: StreamFormat[Any], *paths: str | os.PathLike[str]
    ) -> FileSourceBuilder:
        """Start building a source that decodes files with a :class:`StreamFormat`.

        Args:
            stream_format: e.g. ``StreamFormat.text_line_format()``.
            *paths: files, directories or glob patterns (local paths or fsspec URLs).

        Raises:
            ConfigurationError: no paths, or ``stream_format`` is not a StreamFormat.
        """
        if not isinstance(stream_format, StreamFormat):
            msg = (
                f"for_record_stream_format needs a StreamFormat, got {stream_format!r}; for "
                "Parquet use FileSource.for_bulk_file_format(BulkFormat.parquet(), ...)."
            )
            raise ConfigurationError(msg)
        return FileSourceBuilder(stream_format, _normalize_paths(paths))

    @staticmethod
    def for_bulk_file_format(
        bulk_format: BulkFormat[Any], *paths: str | os.PathLike[str]
    ) -> FileSourceBuilder:
        """Start building a source that decodes files with a :class:`BulkFormat` (Parquet).

        Args:
            bulk_format: e.g. ``BulkFormat.parquet(columns=["a", "b"])``.
            *paths: files, directories or glob patterns (local paths or fsspec URLs).

        Raises:
            ConfigurationError: no paths, or ``bulk_format`` is not a BulkFormat.
        """
        if not isinstance(bulk_format, BulkFormat):
            msg = f"for_bulk_file_format needs a BulkFormat, got {bulk_format!r}."
            raise ConfigurationError(msg)
        return FileSourceBuilder(bulk_format, _normalize_paths(paths))

    @property
    def paths(self) -> tuple[str, ...]:
        """The path specs this source reads."""
        return self._paths

    @property
    def batch_size(self) -> int:
        """Most records per reader poll."""
        return self._batch_size

    @property
    def discovery_interval_ms(self) -> int | None:
        """Listing interval of a continuous source in int ms; None when bounded."""
        return self._discovery_interval_ms

    @override
    def get_boundedness(self) -> Boundedness:
        """BOUNDED for a static file set, CONTINUOUS_UNBOUNDED when monitoring."""
        return self._boundedness

    @override
    def create_reader(self, context: SourceReaderContext) -> SourceReader[Any, FileSourceSplit]:
        """Create the :class:`~strom.connectors.file._reader.FileSourceReader` of a subtask."""
        return FileSourceReader(context, self._format, self._batch_size)

    @override
    def create_enumerator(
        self, context: SplitEnumeratorContext[FileSourceSplit]
    ) -> SplitEnumerator[FileSourceSplit, PendingSplitsCheckpoint]:
        """Create a fresh enumerator (files are listed when it starts)."""
        return self._enumerator(context, None)

    @override
    def restore_enumerator(
        self,
        context: SplitEnumeratorContext[FileSourceSplit],
        checkpoint: PendingSplitsCheckpoint,
    ) -> SplitEnumerator[FileSourceSplit, PendingSplitsCheckpoint]:
        """Re-create the enumerator from its checkpoint (no re-listing for a static set)."""
        if not isinstance(checkpoint, PendingSplitsCheckpoint):
            msg = f"Cannot restore a FileSource enumerator from {type(checkpoint).__name__}."
            raise ConfigurationError(msg)
        return self._enumerator(context, checkpoint)

    def _enumerator(
        self,
        context: SplitEnumeratorContext[FileSourceSplit],
        checkpoint: PendingSplitsCheckpoint | None,
    ) -> SplitEnumerator[FileSourceSplit, PendingSplitsCheckpoint]:
        if self._boundedness is Boundedness.CONTINUOUS_UNBOUNDED:
            assert self._discovery_interval_ms is not None
            return ContinuousFileSplitEnumerator(
                context, self._paths, self._discovery_interval_ms, checkpoint
            )
        return StaticFileSplitEnumerator(context, self._paths, checkpoint)

    def __repr__(self) -> str:
        mode = (
            f"monitor every {self._discovery_interval_ms} ms"
            if self._boundedness is Boundedness.CONTINUOUS_UNBOUNDED
            else "static"
        )
        return f"FileSource({list(self._paths)}, {self._format!r}, {mode})"


@dataclass(frozen=True)
class FileSourceBuilder:
    """Configures a :class:`FileSource` (Flink's ``FileSource.FileSourceBuilder``).

    Immutable: every method returns a new builder. Get one from
    :meth:`FileSource.for_record_stream_format` or :meth:`FileSource.for_bulk_file_format`.
    """

    stream_format: StreamFormat[Any] | BulkFormat[Any]
    paths: tuple[str, ...]
    discovery_interval_ms: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE

    def monitor_continuously(self, interval: datetime.timedelta | int) -> FileSourceBuilder:
        """Make the source CONTINUOUS_UNBOUNDED, listing the paths every ``interval``.

        Args:
            interval: a ``timedelta`` or int milliseconds (> 0).

        Raises:
            ConfigurationError: ``interval`` is not positive.
        """
        interval_ms = to_millis(interval, "monitor_continuously interval")
        return dataclasses.replace(self, discovery_interval_ms=interval_ms)

    def process_static_file_set(self) -> FileSourceBuilder:
        """Make the source BOUNDED: list the paths once, read them, end (the default)."""
        return dataclasses.replace(self, discovery_interval_ms=None)

    def set_batch_size(self, batch_size: int) -> FileSourceBuilder:
        """Set the most records a reader emits per poll (default 1000).

        Raises:
            ConfigurationError: ``batch_size`` is not a positive int.
        """
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            msg = f"FileSource batch_size must be a positive int, got {batch_size!r}."
            raise ConfigurationError(msg)
        return dataclasses.replace(self, batch_size=batch_size)

    def build(self) -> FileSource:
        """Create the :class:`FileSource`."""
        continuous = self.discovery_interval_ms is not None
        return FileSource(
            self.paths,
            self.stream_format,
            Boundedness.CONTINUOUS_UNBOUNDED if continuous else Boundedness.BOUNDED,
            self.discovery_interval_ms,
            self.batch_size,
        )
