"""The file sink's writer (one per subtask) and committer.

Part file life cycle (two-phase commit)::

    in-progress  .{prefix}-{subtask}-{counter}{suffix}.inprogress.{uuid}   being written
        | rolled (policy, or always at prepare_commit)
    pending      same hidden name, closed and fsynced    -> FileSinkCommittable
        | Committer.commit (after the checkpoint completed)
    finished     {prefix}-{subtask}-{counter}{suffix}    visible

Hidden names (leading '.') keep in-progress and pending files invisible to readers such as
:class:`~strom.connectors.file.FileSource`.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any

from strom.connectors.file import _fs
from strom.connectors.file._committable import FileSinkCommittable, FileWriterState
from strom.connectors.file._compat import override
from strom.connectors.file.encoders import BulkWriter, Encoder, record_error
from strom.connectors.file.rolling import PartFileInfo
from strom.connectors.sink import CommitRequest, Committer, SinkWriter, SinkWriterContext
from strom.errors import ConnectorError, StreamingError

if TYPE_CHECKING:
    from strom.connectors.file.sink import FileSink

__all__ = ["FileCommitter", "FileWriter"]

logger = logging.getLogger(__name__)


def wall_clock_ms() -> int:
    """Current processing time in int epoch milliseconds."""
    return time.time_ns() // 1_000_000


class _PartFile:
    """An open in-progress part file of one bucket."""

    def __init__(
        self,
        bucket_id: str,
        in_progress_path: str,
        final_path: str,
        stream: IO[bytes],
        bulk_writer: BulkWriter[Any] | None,
        now_ms: int,
    ) -> None:
        self.bucket_id = bucket_id
        self.in_progress_path = in_progress_path
        self.final_path = final_path
        self.stream = stream
        self.bulk_writer = bulk_writer
        self.creation_time_ms = now_ms
        self.last_update_time_ms = now_ms
        self.size = 0

    def info(self) -> PartFileInfo:
        return PartFileInfo(
            self.bucket_id, self.creation_time_ms, self.last_update_time_ms, self.size
        )


class FileWriter(SinkWriter[Any, FileSinkCommittable]):
    """Writes one subtask's records into part files (Flink's ``FileWriter``).

    Every ``write_batch`` groups the batch by bucket, consults the rolling policy once per
    bucket, encodes the group and writes it with a single ``write`` call (row formats) or
    hands it to the bulk writer. ``prepare_commit`` closes every in-progress file and
    returns a :class:`FileSinkCommittable` for each file finished since the last call:
    nothing is ever in progress at a checkpoint, so ``snapshot_state`` only keeps the part
    counters. Part counters continue from the restored state and from any part files of
    this subtask already in the bucket directory, so names never collide after a restart.

    Args:
        sink: the declarative sink (base path, encoder/bulk factory, policy, names).
        context: this subtask's context.
        bucket_counters: restored next part counter per bucket.
        clock: processing-time source in int epoch ms (injectable for tests).
    """

    def __init__(
        self,
        sink: FileSink,
        context: SinkWriterContext,
        bucket_counters: dict[str, int] | None = None,
        clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        fs, fs_path = _fs.resolve(sink.base_path)
        self._base_path = fs.unstrip_protocol(fs_path) if "://" in sink.base_path else fs_path
        self._encoder: Encoder[Any] | None = sink.encoder
        self._bulk_factory = sink.bulk_writer_factory
        self._policy = sink.rolling_policy
        self._assigner = sink.bucket_assigner
        self._prefix = sink.output_file_config.part_prefix
        self._suffix = sink.output_file_config.part_suffix
        self._subtask = context.subtask_index
        self._clock = clock
        self._counters: dict[str, int] = dict(bucket_counters or {})
        self._scanned: set[str] = set()
        self._parts: dict[str, _PartFile] = {}
        self._pending: list[FileSinkCommittable] = []
        self._name_pattern = re.compile(
            rf"^\.?{re.escape(self._prefix)}-{self._subtask}-(\d+){re.escape(self._suffix)}"
            r"(?:\.inprogress\.[0-9a-f]+)?$"
        )

    # ------------------------------------------------------------------ part file handling

    def _bucket_dir(self, bucket_id: str) -> str:
        return _fs.join(self._base_path, bucket_id)

    def _next_counter(self, bucket_id: str) -> int:
        """Reserve the next part counter of a bucket (scanning its directory the first time)."""
        if bucket_id not in self._scanned:
            used = [
                int(m.group(1))
                for name in _fs.list_names(self._bucket_dir(bucket_id))
                if (m := self._name_pattern.match(name))
            ]
            floor = max(used) + 1 if used else 0
            self._counters[bucket_id] = max(self._counters.get(bucket_id, 0), floor)
            self._scanned.add(bucket_id)
        counter = self._counters[bucket_id]
        self._counters[bucket_id] = counter + 1
        return counter

    def _open_part(self, bucket_id: str, now_ms: int) -> _PartFile:
        counter = self._next_counter(bucket_id)
        name = f"{self._prefix}-{self._subtask}-{counter}{self._suffix}"
        directory = self._bucket_dir(bucket_id)
        in_progress = _fs.join(directory, f".{name}.inprogress.{uuid.uuid4().hex}")
        stream = _fs.open_output(in_progress)
        bulk = self._bulk_factory.create(stream, in_progress) if self._bulk_factory else None
        part = _PartFile(bucket_id, in_progress, _fs.join(directory, name), stream, bulk, now_ms)
        if self._encoder is not None:
            header = self._encoder.header()
            if header:
                stream.write(header)
                part.size = len(header)
        self._parts[bucket_id] = part
        logger.debug("Opened part file %s", in_progress)
        return part

    def _roll(self, bucket_id: str) -> None:
        """Close the bucket's in-progress file; it becomes pending (a committable)."""
        part = self._parts.pop(bucket_id)
        try:
            if part.bulk_writer is not None:
                part.bulk_writer.finish()
                part.size = part.stream.tell()
            _fs.sync_and_close(part.stream)
        except StreamingError:
            raise
        except (OSError, ValueError) as exc:
            msg = f"Cannot finish part file '{part.in_progress_path}': {exc}"
            raise ConnectorError(msg) from exc
        self._pending.append(
            FileSinkCommittable(bucket_id, part.in_progress_path, part.final_path, part.size)
        )
        logger.debug("Rolled part file %s (%d bytes)", part.in_progress_path, part.size)

    # ------------------------------------------------------------------------ SinkWriter API

    @override
    def write(self, value: Any, timestamp_ms: int | None) -> None:
        """Write one record; prefer :meth:`write_batch`."""
        self.write_batch([value], None if timestamp_ms is None else [timestamp_ms])

    @override
    def write_batch(self, values: list[Any], timestamps_ms: list[int] | None) -> None:
        """Write a batch: one encode and one ``write`` call per bucket touched.

        Raises:
            ConnectorError: a record cannot be encoded, or the file cannot be written.
        """
        if not values:
            return
        now = self._clock()
        for bucket_id, group in self._assigner.assign_batch(values, timestamps_ms, now).items():
            self._write_group(bucket_id, group, now)

    def _encode(self, encoder: Encoder[Any], group: Sequence[Any]) -> bytes:
        try:
            return encoder.encode_batch(group)
        except Exception as exc:  # encoders may be user code and raise anything
            msg = (
                f"{encoder!r} cannot encode a record of the batch (first: {group[0]!r:.200}): "
                f"{exc}. Fix the record or choose another encoder."
            )
            raise record_error(msg) from exc

    def _write_group(self, bucket_id: str, group: list[Any], now: int) -> None:
        data = self._encode(self._encoder, group) if self._encoder is not None else b""
        part = self._parts.get(bucket_id)
        if part is not None:
            info = part.info()
            if self._policy.should_roll_on_event(
                info
            ) or self._policy.should_roll_on_processing_time(info, now):
                self._roll(bucket_id)
                part = None
        if part is None:
            part = self._open_part(bucket_id, now)
        try:
            if part.bulk_writer is not None:
                part.bulk_writer.add_batch(group)
                part.size = part.stream.tell()
            else:
                part.stream.write(data)
                part.size += len(data)
        except OSError as exc:
            msg = f"Cannot write to part file '{part.in_progress_path}': {exc}"
            raise ConnectorError(msg) from exc
        part.last_update_time_ms = now

    def on_processing_time(self, current_time_ms: int) -> None:
        """Roll in-progress files whose policy says so at ``current_time_ms`` (int epoch ms).

        Mirrors Flink's periodic bucket check; the runtime may call it from a processing
        time timer so that inactive files roll without new records. Rolled files are
        committed with the next checkpoint.
        """
        for bucket_id, part in list(self._parts.items()):
            if self._policy.should_roll_on_processing_time(part.info(), current_time_ms):
                self._roll(bucket_id)

    @override
    def flush(self, end_of_input: bool) -> None:
        """Flush the buffers of in-progress files (files are finished by prepare_commit)."""
        for part in self._parts.values():
            try:
                if part.bulk_writer is not None:
                    part.bulk_writer.flush()
                part.stream.flush()
            except OSError as exc:
                msg = f"Cannot flush part file '{part.in_progress_path}': {exc}"
                raise ConnectorError(msg) from exc

    @override
    def prepare_commit(self) -> list[FileSinkCommittable]:
        """Close every in-progress file; return all files finished since the last call."""
        for bucket_id in list(self._parts):
            self._roll(bucket_id)
        pending, self._pending = self._pending, []
        return pending

    @override
    def snapshot_state(self, checkpoint_id: int) -> list[Any]:
        """Return ``[FileWriterState]`` holding the next part counter of every bucket."""
        return [FileWriterState(dict(self._counters))]

    @override
    def close(self) -> None:
        """Close and delete files never handed out by prepare_commit (their data replays)."""
        discarded = []
        for part in self._parts.values():
            try:
                part.stream.close()
            except OSError as exc:
                logger.warning("Could not close '%s': %s", part.in_progress_path, exc)
            discarded.append(part.in_progress_path)
        discarded.extend(c.pending_path for c in self._pending)
        self._parts.clear()
        self._pending.clear()
        for path in discarded:
            _fs.remove(path)
        if discarded:
            logger.info(
                "File sink subtask %d discarded %d uncommitted part files on close.",
                self._subtask,
                len(discarded),
            )


class FileCommitter(Committer[FileSinkCommittable]):
    """Publishes pending part files by renaming them (Flink's ``FileCommitter``).

    Idempotent: a committable whose pending file is gone but whose final file exists was
    committed before and is skipped. The rename is atomic on a local filesystem; on object
    stores fsspec copies and deletes.
    """

    @override
    def commit(self, requests: list[CommitRequest[FileSinkCommittable]]) -> None:
        """Rename every pending file to its final name.

        Raises:
            ConnectorError: the final name is taken by another file, the pending file was
                deleted before the commit (its data is lost), or the rename failed.
        """
        for request in requests:
            self._commit_one(request.committable)

    def _commit_one(self, committable: FileSinkCommittable) -> None:
        pending, final = committable.pending_path, committable.final_path
        if _fs.exists(pending):
            if _fs.exists(final):
                msg = (
                    f"Cannot commit '{pending}': the final file '{final}' already exists and "
                    "is a different file. Another job (or a restore from an older checkpoint) "
                    "wrote the same names: use another base path or part prefix."
                )
                raise ConnectorError(msg)
            _fs.rename(pending, final)
            logger.debug("Committed %s", final)
        elif _fs.exists(final):
            logger.debug("Skipping %s: already committed", final)
        else:
            msg = (
                f"Cannot commit '{final}': its pending file '{pending}' is gone and the final "
                "file does not exist, so its data is lost. Do not delete hidden '.inprogress' "
                "files while a job may still commit them."
            )
            raise ConnectorError(msg)
