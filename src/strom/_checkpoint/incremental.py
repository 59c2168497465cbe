"""Incremental checkpoints on the checkpoint-storage side: uploading native RocksDB
checkpoints (writer thread) and reference-counting the shared files (coordinator).

* :func:`upload_native` (Flink's ``RocksDBStateUploader``): uploads the SST files of one
  :class:`~strom._state.rocksdb.native.NativeCheckpointUpload` that are not in storage
  yet into the job's ``shared/`` directory, and its small private files into the
  checkpoint's directory.
* :class:`SharedStateRegistry` (Flink's ``SharedStateRegistry``): how many retained
  completed checkpoints reference each shared file. A file whose count drops to zero when
  a checkpoint is subsumed is deleted; files uploaded only for a checkpoint that was
  aborted are deleted with it. It is a function of the retained checkpoints' ``_metadata``
  (:meth:`SharedStateRegistry.from_metadata`), where every subtask entry lists its shared
  files: ``{"file": <state file>, "shared": [<shared file>, ...]}``.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from strom._checkpoint.storage import CheckpointStorage
from strom._state.rocksdb.native import NativeCheckpointUpload

__all__ = ["SharedStateRegistry", "shared_files_of", "upload_native"]

logger = logging.getLogger(__name__)


def upload_native(storage: CheckpointStorage, directory: str, upload: NativeCheckpointUpload,
                  last_completed: int) -> list[str]:
    """Upload one native RocksDB checkpoint; return the shared file names it references.

    SST files the backend's checkpoint ``last_completed`` referenced are known to be in
    storage and skipped; other SST files are uploaded unless a complete copy exists
    already (shared files are written atomically, so an existing one is complete). The
    local directory is not deleted here.

    Args:
        storage: the job's checkpoint storage.
        directory: the checkpoint's directory (private files go there).
        upload: the native checkpoint.
        last_completed: the newest checkpoint id known to have completed (-1: none).

    Raises:
        OSError: a file could not be read or written.
    """
    h = upload.handle
    confirmed = upload.history.confirmed(last_completed)
    for local, name in h.shared.items():
        if name in confirmed or storage.shared_file_exists(name):
            continue
        storage.put_shared_file(name, os.path.join(upload.local_dir, local))
    for local, name in h.private.items():
        storage.put_file(directory, name, os.path.join(upload.local_dir, local))
    upload.history.record(h.checkpoint_id, h.shared.values())
    return sorted(set(h.shared.values()))


def _shared_in(by_uid: Iterable[dict[Any, Any]]) -> Iterator[str]:
    """Shared files of subtask entries (``{subtask: entry}`` per uid); only incremental
    entries (``{"file": ..., "shared": [...]}``) have any."""
    for by_subtask in by_uid:
        for entry in by_subtask.values():
            if isinstance(entry, dict):
                yield from entry.get("shared", ())


def shared_files_of(metadata: dict[str, Any]) -> list[str]:
    """Every shared file a checkpoint's ``_metadata`` references (with repetitions)."""
    operators = metadata.get("operators", {}).values()
    return list(_shared_in(info.get("subtasks", {}) for info in operators))


def shared_files_of_handles(handles: dict[str, dict[int, Any]]) -> set[str]:
    """The shared files of a pending checkpoint's acknowledged handles."""
    return set(_shared_in(handles.values()))


class SharedStateRegistry:
    """Reference counts of shared files over the retained completed checkpoints (Flink's
    ``SharedStateRegistry``).

    Args:
        storage: where the shared files live (deletions go there).
    """

    def __init__(self, storage: CheckpointStorage) -> None:
        self.storage = storage
        self.counts: Counter[str] = Counter()

    @classmethod
    def from_metadata(cls, storage: CheckpointStorage,
                      metadatas: Iterable[dict[str, Any]]) -> SharedStateRegistry:
        """The registry of the given retained checkpoints (e.g. after a restart)."""
        reg = cls(storage)
        for meta in metadatas:
            reg.counts.update(set(shared_files_of(meta)))
        return reg

    def __contains__(self, name: object) -> bool:
        """Whether a retained checkpoint references shared file ``name``."""
        return self.counts.get(name, 0) > 0  # type: ignore[call-overload]

    def missing(self, metadata: dict[str, Any]) -> list[str]:
        """Shared files of a completing checkpoint that are neither registered nor in
        storage (a checkpoint referencing them must not complete)."""
        return sorted(
            n for n in set(shared_files_of(metadata))
            if n not in self and not self.storage.shared_file_exists(n)
        )

    def register(self, metadata: dict[str, Any]) -> None:
        """A checkpoint completed: count its references."""
        self.counts.update(set(shared_files_of(metadata)))

    def unregister(self, metadata: dict[str, Any]) -> list[str]:
        """A retained checkpoint was subsumed or discarded: drop its references and delete
        the files nobody references any more; return them."""
        gone: list[str] = []
        for name in set(shared_files_of(metadata)):
            self.counts[name] -= 1
            if self.counts[name] <= 0:
                del self.counts[name]
                gone.append(name)
        self.storage.delete_shared_files(gone)
        return sorted(gone)

    def discard_unregistered(self, names: Iterable[str], keep: Iterable[str] = ()) -> list[str]:
        """Delete shared files of an aborted checkpoint that no retained checkpoint (and
        nothing in ``keep``) references; return them."""
        keep_set = set(keep)
        gone = sorted(n for n in set(names) if n not in self and n not in keep_set)
        self.storage.delete_shared_files(gone)
        return gone

    def referenced(self) -> set[str]:
        """Every shared file a retained checkpoint references."""
        return set(self.counts)
