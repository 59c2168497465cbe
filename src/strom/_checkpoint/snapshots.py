"""Writing task snapshots to checkpoint storage and reading them back for a restore.

The synchronous part of a checkpoint (``OperatorChain.snapshot_state``) produces one
picklable dict per operator uid; :class:`AsyncSnapshotWriter` pickles and writes them on a
background thread (so the task keeps processing) and reports the file names for the
acknowledgement. :func:`load_restored_states` turns a completed checkpoint or savepoint
back into one ``RestoredState`` per uid, validating that every uid with state exists in
the new job (unless non-restored state is allowed).

Incremental RocksDB checkpoints (see :mod:`strom._state.rocksdb.native`): the task takes
its snapshot inside :func:`snapshot_scope` (native RocksDB checkpoints for checkpoints,
canonical full snapshots for savepoints); :func:`encode_snapshot` replaces each native
checkpoint by its handle and returns an :class:`EncodedSnapshot` carrying the pending
uploads, which the writer performs (:func:`~strom._checkpoint.incremental.upload_native`)
before writing the state file; the acknowledgement then names the shared files.
"""

from __future__ import annotations

import pickle
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from strom._checkpoint.storage import CheckpointStorage, resolve_metadata_path
from strom._runtime.operators.base import RestoredState
from strom._state.rocksdb.native import INCREMENTAL_ENCODING, native_checkpoint_scope
from strom.errors import InvalidProgramError

__all__ = [
    "SNAPSHOT_FORMAT_VERSION",
    "AsyncSnapshotWriter",
    "EncodedSnapshot",
    "discard_encoded",
    "encode_snapshot",
    "load_restored_states",
    "snapshot_scope",
]

SNAPSHOT_FORMAT_VERSION = 1
"""Version of one operator subtask's state file."""


class EncodedSnapshot(bytes):
    """An encoded operator snapshot (the bytes of the state file) with the native RocksDB
    checkpoints that must be uploaded before the file is written.

    Attributes:
        native_uploads: the pending
            :class:`~strom._state.rocksdb.native.NativeCheckpointUpload` objects.
    """

    native_uploads: list[Any]


@contextmanager
def snapshot_scope(is_savepoint: bool) -> Iterator[None]:
    """Take a task's synchronous snapshot inside this block: RocksDB backends with
    incremental checkpoints take native checkpoints unless this is a savepoint (Flink's
    ``SnapshotType``)."""
    with native_checkpoint_scope(not is_savepoint):
        yield


def encode_snapshot(uid: str, subtask: int, state: dict[str, Any]) -> bytes:
    """Serialise one operator subtask's snapshot (versioned envelope, pickle protocol 5).

    Native RocksDB checkpoints among the top-level values of ``state`` are replaced by
    their handles; the result is then an :class:`EncodedSnapshot` listing them."""
    uploads = [v for v in state.values() if getattr(v, "is_native_upload", False)]
    if uploads:
        state = {k: (v.handle if getattr(v, "is_native_upload", False) else v)
                 for k, v in state.items()}
    envelope = {"version": SNAPSHOT_FORMAT_VERSION, "uid": uid, "subtask": subtask,
                "state": state}
    data = pickle.dumps(envelope, protocol=5)
    if not uploads:
        return data
    out = EncodedSnapshot(data)
    out.native_uploads = uploads
    return out


def discard_encoded(states: dict[str, bytes]) -> None:
    """Delete the local native checkpoints of encoded snapshots that will not be written
    (their checkpoint was aborted before the upload)."""
    for data in states.values():
        for up in getattr(data, "native_uploads", ()):
            up.discard()


def decode_snapshot(data: bytes, where: str) -> dict[str, Any]:
    """Inverse of :func:`encode_snapshot`.

    Raises:
        ValueError: an unknown format version.
    """
    envelope = pickle.loads(data)
    if envelope.get("version") != SNAPSHOT_FORMAT_VERSION:
        msg = f"state file {where} has format version {envelope.get('version')!r}; " \
              f"this Strom reads version {SNAPSHOT_FORMAT_VERSION}"
        raise ValueError(msg)
    state: dict[str, Any] = envelope["state"]
    return state


class AsyncSnapshotWriter:
    """Writes snapshots off the task thread, one background thread per process.

    Args:
        on_done: ``(checkpoint_id, task_key, handles | None, error | None)`` called on the
            writer thread when a snapshot is written (or failed).
    """

    def __init__(self, on_done: Callable[[int, Any, dict[str, Any] | None,
                                         BaseException | None], None]) -> None:
        self.on_done = on_done
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="strom-snapshot-writer",
                                        daemon=True)
        self._thread.start()

    def submit_encoded(self, storage: CheckpointStorage, directory: str, checkpoint_id: int,
                       task_key: tuple[str, int], states: dict[str, bytes],
                       last_completed: int = -1) -> None:
        """Queue one task's encoded states (uid -> bytes from :func:`encode_snapshot`)
        for writing into ``directory``. ``last_completed`` is the newest checkpoint id the
        caller knows completed: incremental uploads skip the files it stored."""
        self._queue.put((storage, directory, checkpoint_id, task_key, states, last_completed))

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every snapshot queued so far is written; False on timeout."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            storage, directory, cid, task_key, snapshots, last_completed = item
            try:
                handles: dict[str, Any] = {}
                for uid, data in snapshots.items():
                    name = f"{uid}-{task_key[1]}-{cid}"
                    uploads = getattr(data, "native_uploads", None)
                    if uploads:
                        from strom._checkpoint.incremental import upload_native

                        shared: set[str] = set()
                        for up in uploads:
                            shared.update(upload_native(storage, directory, up, last_completed))
                        storage.write_file(directory, name, data)
                        handles[uid] = {"file": name, "shared": sorted(shared)}
                    else:
                        handles[uid] = storage.write_file(directory, name, data)
                self.on_done(cid, task_key, handles, None)
            except BaseException as e:  # report every failure as a declined checkpoint
                self.on_done(cid, task_key, None, e)
            finally:
                discard_encoded(snapshots)

    def close(self) -> None:
        """Stop the thread after the queued snapshots are written."""
        self._queue.put(None)
        self._thread.join(timeout=30)


def load_restored_states(
    path: str,
    operators: dict[str, int],
    allow_non_restored_state: bool = False,
) -> tuple[dict[str, RestoredState], dict[str, Any], int]:
    """Read a checkpoint/savepoint for a restore.

    Args:
        path: its directory or ``_metadata`` file.
        operators: uid -> max parallelism of every operator of the new job.
        allow_non_restored_state: tolerate state of uids the new job lacks.

    Returns:
        (RestoredState per uid, decoded split-enumerator states per source uid,
        checkpoint id).

    Raises:
        InvalidProgramError: state for a uid missing in the job (and not allowed), or a
            changed max parallelism.
        FileNotFoundError: no checkpoint at ``path``.
    """
    fs, directory = resolve_metadata_path(path)
    meta = CheckpointStorage.read_metadata(fs, directory)
    restored: dict[str, RestoredState] = {}
    missing = []
    for uid, info in meta.get("operators", {}).items():
        subtasks = info.get("subtasks", {})
        if uid not in operators:
            if subtasks:
                missing.append(uid)
            continue
        if subtasks and int(info["max_parallelism"]) != operators[uid]:
            msg = (
                f"operator uid {uid!r} was checkpointed with max parallelism "
                f"{info['max_parallelism']} but the job now has {operators[uid]}; the max "
                "parallelism (number of key groups) must stay the same for the life of the state"
            )
            raise InvalidProgramError(msg)
        states = {}
        for idx, entry in subtasks.items():
            name = entry["file"] if isinstance(entry, dict) else entry
            with fs.open(f"{directory}/{name}", "rb") as f:
                state = decode_snapshot(f.read(), f"{directory}/{name}")
            for v in state.values():
                if getattr(v, "encoding", None) == INCREMENTAL_ENCODING:
                    v.location = fs.unstrip_protocol(directory)
            states[int(idx)] = state
        restored[uid] = RestoredState(states, int(info["parallelism"]),
                                      int(meta["checkpoint_id"]))
    if missing and not allow_non_restored_state:
        msg = (
            f"the checkpoint at {path} has state for operator uids {sorted(missing)} that "
            "are not in this job; restore with allow_non_restored_state=True "
            "(--allow-non-restored-state) to drop it, or keep those uids"
        )
        raise InvalidProgramError(msg)
    enumerators = {}
    for uid, name in meta.get("enumerators", {}).items():
        with fs.open(f"{directory}/{name}", "rb") as f:
            enumerators[uid] = pickle.loads(f.read())
    return restored, enumerators, int(meta["checkpoint_id"])
