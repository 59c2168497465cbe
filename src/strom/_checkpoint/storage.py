"""CheckpointStorage: checkpoint and savepoint directories through fsspec.

Layout (Flink's ``FsCheckpointStorage``)::

    <base>/<job_id>/chk-<id>/_metadata          JSON, written atomically (temp + rename)
    <base>/<job_id>/chk-<id>/<file>             one state file per operator subtask
    <base>/<job_id>/shared/<file>               files shared by several checkpoints
    <savepoint dir>/savepoint-<job>-<rand>/...  self-contained; file names in _metadata are
                                                relative, so the directory can be moved

A checkpoint exists once its ``_metadata`` exists; directories without one are orphans
of failed checkpoints or crashed jobs and are removed by :meth:`cleanup_orphans`.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import tempfile
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import fsspec

__all__ = ["METADATA_FILE", "METADATA_VERSION", "CheckpointStorage", "resolve_metadata_path"]

logger = logging.getLogger(__name__)

METADATA_FILE = "_metadata"
METADATA_VERSION = 1
"""Version of the ``_metadata`` format; bump with a migration when it changes."""


def _split_url(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    import fsspec.core  # lazily: with asyncio it is a tenth of a TaskManager's start-up

    fs, path = fsspec.core.url_to_fs(url)
    return fs, path.rstrip("/") if path != "/" else path


def resolve_metadata_path(path: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and directory of a checkpoint/savepoint given its directory or its
    ``_metadata`` file.

    Raises:
        FileNotFoundError: no ``_metadata`` there.
    """
    fs, p = _split_url(path)
    if posixpath.basename(p) == METADATA_FILE:
        p = posixpath.dirname(p)
    if not fs.exists(posixpath.join(p, METADATA_FILE)):
        msg = f"no checkpoint or savepoint at {path!r}: {METADATA_FILE} is missing"
        raise FileNotFoundError(msg)
    return fs, p


class CheckpointStorage:
    """Reads and writes checkpoints of one job.

    Args:
        base_url: checkpoint directory URL (None = a fresh temporary directory).
        job_id: the job's hex id (checkpoints go to ``<base>/<job_id>``).
    """

    def __init__(self, base_url: str | None, job_id: str) -> None:
        if base_url is None:
            base_url = tempfile.mkdtemp(prefix="strom-checkpoints-")
        self.base_url = base_url
        self.fs, base = _split_url(base_url)
        self.job_dir = posixpath.join(base, job_id)
        self.shared_dir = posixpath.join(self.job_dir, "shared")
        self.fs.makedirs(self.job_dir, exist_ok=True)
        self._local = type(self.fs).__name__ == "LocalFileSystem"

    # -- locations ------------------------------------------------------------------------
    def checkpoint_dir(self, checkpoint_id: int) -> str:
        """Directory of checkpoint ``checkpoint_id`` (created)."""
        d = posixpath.join(self.job_dir, f"chk-{checkpoint_id}")
        self.fs.makedirs(d, exist_ok=True)
        return d

    def savepoint_dir(self, target_url: str, job_id: str) -> str:
        """A new, unique savepoint directory under ``target_url`` (created)."""
        fs, base = _split_url(target_url)
        if fs is not self.fs and type(fs) is not type(self.fs):
            msg = "savepoints must use the same filesystem type as the checkpoint storage"
            raise ValueError(msg)
        d = posixpath.join(base, f"savepoint-{job_id[:6]}-{uuid.uuid4().hex[:12]}")
        self.fs.makedirs(d, exist_ok=True)
        return d

    # -- files ----------------------------------------------------------------------------
    def write_file(self, directory: str, name: str, data: bytes) -> str:
        """Write ``data`` to ``directory/name``; returns ``name`` (relative handle)."""
        with self.fs.open(posixpath.join(directory, name), "wb") as f:
            f.write(data)
        return name

    def put_file(self, directory: str, name: str, local_path: str) -> str:
        """Copy the local file ``local_path`` to ``directory/name``; returns ``name``."""
        self.fs.put_file(local_path, posixpath.join(directory, name))
        return name

    # -- shared files (incremental checkpoints) --------------------------------------------
    def shared_path(self, name: str) -> str:
        """Path of shared file ``name``."""
        return posixpath.join(self.shared_dir, name)

    def shared_file_exists(self, name: str) -> bool:
        """Whether shared file ``name`` exists (shared files are written atomically)."""
        return bool(self.fs.exists(self.shared_path(name)))

    def put_shared_file(self, name: str, local_path: str) -> None:
        """Store the immutable local file ``local_path`` as shared file ``name``,
        atomically (a temporary file renamed into place). On a local filesystem the file
        is hard-linked when possible (no copy).

        Raises:
            OSError: the file could not be read or written.
        """
        target = self.shared_path(name)
        tmp = posixpath.join(self.shared_dir, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
        self.fs.makedirs(self.shared_dir, exist_ok=True)
        if self._local:
            try:
                os.link(local_path, tmp)
            except OSError:
                self.fs.put_file(local_path, tmp)
        else:
            self.fs.put_file(local_path, tmp)
        self.fs.mv(tmp, target)

    def list_shared_files(self) -> list[str]:
        """Names of the shared files (temporary files excluded), sorted."""
        if not self.fs.exists(self.shared_dir):
            return []
        names = (posixpath.basename(p.rstrip("/"))
                 for p in self.fs.ls(self.shared_dir, detail=False))
        return sorted(n for n in names if not n.startswith("."))

    def delete_shared_files(self, names: list[str]) -> None:
        """Delete shared files (missing ones are ignored)."""
        for name in names:
            try:
                self.fs.rm_file(self.shared_path(name))
            except FileNotFoundError:
                pass
            except OSError as e:
                logger.warning("could not delete shared checkpoint file %s: %s", name, e)

    def read_file(self, directory: str, name: str) -> bytes:
        """Read ``directory/name``."""
        with self.fs.open(posixpath.join(directory, name), "rb") as f:
            data: bytes = f.read()
        return data

    def write_metadata(self, directory: str, metadata: dict[str, Any]) -> None:
        """Write ``_metadata`` atomically (a temporary file renamed into place)."""
        payload = json.dumps({"version": METADATA_VERSION, **metadata}, sort_keys=True)
        tmp = posixpath.join(directory, f".{METADATA_FILE}.{uuid.uuid4().hex}.tmp")
        with self.fs.open(tmp, "wb") as f:
            f.write(payload.encode("utf-8"))
        self.fs.mv(tmp, posixpath.join(directory, METADATA_FILE))

    @staticmethod
    def read_metadata(fs: fsspec.AbstractFileSystem, directory: str) -> dict[str, Any]:
        """Read and check a ``_metadata`` file.

        Raises:
            ValueError: an unknown format version.
        """
        with fs.open(posixpath.join(directory, METADATA_FILE), "rb") as f:
            meta: dict[str, Any] = json.loads(f.read().decode("utf-8"))
        if meta.get("version") != METADATA_VERSION:
            msg = (
                f"checkpoint metadata version {meta.get('version')!r} at {directory} is not "
                f"supported (this Strom reads version {METADATA_VERSION})"
            )
            raise ValueError(msg)
        return meta

    # -- lifecycle ------------------------------------------------------------------------
    def discard(self, directory: str) -> None:
        """Delete a checkpoint directory (no error if already gone). A file still being
        written by a late snapshot upload may make one attempt fail; what is left is an
        orphan removed by :meth:`cleanup_orphans` later."""
        for _ in range(3):
            try:
                if self.fs.exists(directory):
                    self.fs.rm(directory, recursive=True)
                return
            except OSError as e:
                logger.debug("could not delete %s yet: %s", directory, e)

    def completed_checkpoints(self) -> list[tuple[int, str]]:
        """``(checkpoint_id, dir)`` of every checkpoint with a ``_metadata``, oldest first."""
        out: list[tuple[int, str]] = []
        if not self.fs.exists(self.job_dir):
            return out
        for entry in self.fs.ls(self.job_dir, detail=False):
            name = posixpath.basename(entry.rstrip("/"))
            if name.startswith("chk-") and self.fs.exists(posixpath.join(entry, METADATA_FILE)):
                try:
                    out.append((int(name[4:]), entry.rstrip("/")))
                except ValueError:
                    continue
        return sorted(out)

    def cleanup_orphans(self, keep: set[str], keep_shared: set[str] | None = None) -> list[str]:
        """Delete ``chk-*`` directories not in ``keep`` (normalised paths) and, if
        ``keep_shared`` is given, the shared files not in it (and stale temporary shared
        files); return the deleted paths."""
        removed: list[str] = []
        if not self.fs.exists(self.job_dir):
            return removed
        keep_norm = {k.rstrip("/") for k in keep}
        for entry in self.fs.ls(self.job_dir, detail=False):
            e = entry.rstrip("/")
            if posixpath.basename(e).startswith("chk-") and e not in keep_norm:
                self.fs.rm(e, recursive=True)
                removed.append(e)
        if keep_shared is not None and self.fs.exists(self.shared_dir):
            for entry in self.fs.ls(self.shared_dir, detail=False):
                e = entry.rstrip("/")
                if posixpath.basename(e) not in keep_shared:
                    self.fs.rm(e, recursive=True)
                    removed.append(e)
        return removed

    def dispose(self) -> None:
        """Delete the whole job directory (checkpoints not retained)."""
        if self.fs.exists(self.job_dir):
            self.fs.rm(self.job_dir, recursive=True)
