"""Incremental RocksDB checkpoints: the handles passed from the task to the snapshot writer
and stored in checkpoints (Flink's ``IncrementalRemoteKeyedStateHandle``).

This module does not import rocksdict, so the checkpoint layer can use it cheaply.

The flow of one incremental checkpoint of one RocksDB keyed backend:

1. Task thread, inside :func:`native_checkpoint_scope` (entered by the task for
   checkpoints, never for savepoints): the backend's ``snapshot()`` flushes its write
   cache and memtables and takes a native RocksDB checkpoint (hard links) into a local
   directory, returning a :class:`NativeCheckpointUpload`. Its
   :attr:`~NativeCheckpointUpload.handle` (an :class:`IncrementalKeyedStateHandle`)
   replaces it in the pickled state file.
2. Writer thread: the SST files are uploaded to the job's ``shared/`` directory unless
   already there (:class:`UploadHistory` remembers what the last completed checkpoint
   referenced), the other files (MANIFEST, CURRENT, OPTIONS) into the checkpoint's own
   directory; the local directory is deleted. The acknowledgement lists the shared files,
   which the coordinator reference-counts.
3. Restore: ``load_restored_states`` sets each handle's
   :attr:`~IncrementalKeyedStateHandle.location`; the backend downloads the files
   (:meth:`IncrementalKeyedStateHandle.download`) and either adopts them as its working
   DB or copies its key-group range out of them.

Shared file names are ``<backend instance id>-<SST name>``: unique per job (SST names are
only unique within one DB) and deterministic, so a file is never uploaded twice under two
names, and re-uploading an identical immutable file is harmless.
"""

from __future__ import annotations

import os
import posixpath
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from strom._runtime.key_groups import KeyGroupRange
from strom._state.snapshot import KEYED_SNAPSHOT_VERSION, StateMetaInfo

__all__ = [
    "INCREMENTAL_ENCODING",
    "IncrementalKeyedStateHandle",
    "NativeCheckpointUpload",
    "UploadHistory",
    "native_checkpoint_scope",
    "native_checkpoints_enabled",
]

INCREMENTAL_ENCODING = "rocksdb-incremental"
"""``encoding`` of :class:`IncrementalKeyedStateHandle`."""

SHARED_DIR = "shared"
"""Name of the job-level directory of shared files, next to the ``chk-<id>`` directories."""

_scope = threading.local()
_HISTORY_LIMIT = 16  # checkpoints remembered per backend (pending ones plus the base)


@contextmanager
def native_checkpoint_scope(enabled: bool) -> Iterator[None]:
    """Within this block (on this thread), RocksDB backends with ``incremental=True``
    answer ``snapshot()`` with a :class:`NativeCheckpointUpload` instead of a full
    snapshot. The task enters it for checkpoints (``enabled=True``), not for savepoints,
    which stay in the self-contained canonical format.

    Args:
        enabled: whether native snapshots are allowed in the block.
    """
    previous = getattr(_scope, "enabled", False)
    _scope.enabled = enabled
    try:
        yield
    finally:
        _scope.enabled = previous


def native_checkpoints_enabled() -> bool:
    """Whether the calling thread is inside ``native_checkpoint_scope(True)``."""
    return bool(getattr(_scope, "enabled", False))


def is_sst(file_name: str) -> bool:
    """Whether a RocksDB file is an (immutable, shareable) SST file."""
    return file_name.endswith(".sst")


@dataclass
class IncrementalKeyedStateHandle:
    """An incremental RocksDB checkpoint of one keyed backend, as stored in the state file
    (Flink's ``IncrementalRemoteKeyedStateHandle``).

    Attributes:
        checkpoint_id: the checkpoint it belongs to.
        max_parallelism: the number of key groups.
        key_group_range: the key groups the writing backend owned.
        states: meta info per state name (serializers, kinds).
        sequence: the backend's list-element sequence counter at snapshot time.
        shared: local RocksDB file name -> file name in the job's ``shared/`` directory
            (the SST files, shared by later checkpoints).
        private: local RocksDB file name -> file name in the checkpoint's directory
            (MANIFEST, CURRENT, OPTIONS: small, re-uploaded every time).
        backend_id: id of the backend instance that wrote it.
        location: URL of the checkpoint directory holding the state file (set by the
            restore, empty until then); ``shared/`` is its sibling.
        cached: per value-like state name, the entries of its Python write cache that
            were not written to RocksDB yet: ``({key: value}, keys, namespace bytes,
            values)``, the last three parallel lists of the namespaced entries (None = a
            pending delete), applied over the RocksDB files on restore. Keeping
            them out of RocksDB at the checkpoint spares a flush of every dirty entry
            (most of them short-lived window contents) once per checkpoint.
        format_version: :data:`~strom._state.snapshot.KEYED_SNAPSHOT_VERSION`.
        encoding: :data:`INCREMENTAL_ENCODING`.
    """

    checkpoint_id: int
    max_parallelism: int
    key_group_range: KeyGroupRange
    states: dict[str, StateMetaInfo]
    sequence: int
    shared: dict[str, str]
    private: dict[str, str]
    backend_id: str = ""
    location: str = ""
    format_version: int = KEYED_SNAPSHOT_VERSION
    encoding: str = INCREMENTAL_ENCODING
    cached: dict[str, tuple[dict[Any, Any], list[Any], list[bytes], list[Any]]] = field(
        default_factory=dict
    )

    def remote_files(self) -> dict[str, str]:
        """Local file name -> URL of every file of this checkpoint.

        Raises:
            ValueError: :attr:`location` was not set (the handle was not loaded through
                ``load_restored_states``).
        """
        if not self.location:
            msg = "the incremental RocksDB handle has no location (load it from a checkpoint)"
            raise ValueError(msg)
        base = self.location.rstrip("/")
        shared = posixpath.join(posixpath.dirname(base), SHARED_DIR)
        out = {local: posixpath.join(shared, name) for local, name in self.shared.items()}
        out.update({local: posixpath.join(base, name) for local, name in self.private.items()})
        return out

    def download(self, target_dir: str) -> None:
        """Copy every file of this checkpoint into ``target_dir`` (created; local path)
        under its RocksDB file name.

        Raises:
            ValueError: no :attr:`location`.
            FileNotFoundError, OSError: a file is missing or cannot be read.
        """
        import fsspec

        files = self.remote_files()
        os.makedirs(target_dir, exist_ok=True)
        fs, _ = fsspec.core.url_to_fs(self.location)
        for local, url in files.items():
            _, path = fsspec.core.url_to_fs(url)
            target = os.path.join(target_dir, local)
            if type(fs).__name__ == "LocalFileSystem" and is_sst(local):
                try:
                    os.link(path, target)  # immutable: a hard link is a copy
                    continue
                except OSError:
                    pass
            fs.get_file(path, target)


class UploadHistory:
    """Which shared files one backend instance's checkpoints referenced (Flink's
    ``uploadedSstFiles`` per checkpoint), so the next checkpoint skips the files the last
    *completed* checkpoint already stored. Thread-safe (written by the writer thread,
    seeded by a restore on the task thread).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_checkpoint: dict[int, frozenset[str]] = {}

    def record(self, checkpoint_id: int, shared_names: Iterable[str]) -> None:
        """Remember the shared file names ``checkpoint_id`` references (after its upload)."""
        with self._lock:
            self._by_checkpoint[checkpoint_id] = frozenset(shared_names)
            while len(self._by_checkpoint) > _HISTORY_LIMIT:  # completions never reported
                del self._by_checkpoint[min(self._by_checkpoint)]

    def confirmed(self, last_completed: int) -> frozenset[str]:
        """The shared files of checkpoint ``last_completed`` if this backend took part in
        it (they are in storage and stay there while any retained checkpoint needs them);
        records of older checkpoints are dropped. Empty if unknown."""
        with self._lock:
            for cid in [c for c in self._by_checkpoint if c < last_completed]:
                del self._by_checkpoint[cid]
            return self._by_checkpoint.get(last_completed, frozenset())


@dataclass
class NativeCheckpointUpload:
    """A native RocksDB checkpoint in a local directory waiting to be uploaded (handed from
    the task thread to the snapshot writer; never persisted).

    Attributes:
        local_dir: the local checkpoint directory (deleted after the upload).
        handle: what the state file stores in place of this object.
        history: the backend instance's upload history.
    """

    local_dir: str
    handle: IncrementalKeyedStateHandle
    history: UploadHistory = field(repr=False)
    is_native_upload = True
    """Marker the snapshot encoder looks for (without importing this module)."""

    def discard(self) -> None:
        """Delete the local directory (idempotent)."""
        import shutil

        shutil.rmtree(self.local_dir, ignore_errors=True)
