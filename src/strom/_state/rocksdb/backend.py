"""EmbeddedRocksDBStateBackend's keyed backend: keyed state in a local RocksDB (rocksdict).

One DB per keyed operator subtask in its own working directory
(``<local dir>/job_<job id>/op_<uid>_<subtask>_<random>``, local dir from
``state.backend.rocksdb.localdir`` or a fresh temporary directory), one column family per
state, entry keys laid out as in :mod:`strom._state.key_layout` (2-byte key group first,
so a key-group range is one contiguous range scan). Memory is bounded by the options in
:mod:`strom._state.rocksdb.options` and the per-state write cache of
:mod:`strom._state.rocksdb.states`; state far larger than memory lives on disk.

Snapshots (the format choice):

* :meth:`RocksDBKeyedStateBackend.snapshot` returns a self-contained
  :class:`~strom._state.snapshot.KeyedStateSnapshot` in the ``"rocksdb"`` encoding: the
  raw entry bytes per key group and state (after flushing the write caches). It is
  restorable into any key-group range of either backend, survives the loss of the local
  directory and is what checkpoints store today. Cost: one sequential scan of the DB
  (~0.4 us per entry) on the task thread.
* :meth:`RocksDBKeyedStateBackend.create_native_checkpoint` takes a RocksDB checkpoint
  (hard links of the immutable SST files plus the manifest) into a directory and returns
  a :class:`RocksDBNativeSnapshot` listing its files. This is the basis for incremental
  checkpoints (``state.backend.incremental``): the checkpoint layer uploads only SST files
  it has not uploaded before and shares them between checkpoints by reference count.
  :meth:`~RocksDBKeyedStateBackend.restore` accepts it too, opening the checkpoint
  read-only and copying the key-group range this backend owns (Flink's rescaling path
  for incremental snapshots).
* Incremental checkpoints (:mod:`strom._state.rocksdb.native`): with
  ``incremental=True``, inside ``native_checkpoint_scope(True)`` (checkpoints, not
  savepoints) :meth:`~RocksDBKeyedStateBackend.snapshot` takes a native checkpoint into
  ``<working dir>.chk-<id>`` and returns a
  :class:`~strom._state.rocksdb.native.NativeCheckpointUpload`; the snapshot writer
  uploads only the SST files not in storage yet. Restoring an
  :class:`~strom._state.rocksdb.native.IncrementalKeyedStateHandle` downloads its files;
  if one handle covers this backend's whole key-group range and nothing was written yet,
  the download becomes the working DB (entries outside the range are deleted with range
  tombstones: Flink's fast path), otherwise the range is copied out of each download.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil
import struct
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import rocksdict

from strom._runtime.key_groups import KeyGroupRange, stable_hash
from strom._state.backend import AbstractKeyedStateBackend, Clock
from strom._state.key_layout import (
    KEY_SERIALIZER,
    decode_entries,
    key_group_prefix,
    key_part,
    namespace_part,
)
from strom._state.rocksdb.native import (
    INCREMENTAL_ENCODING,
    IncrementalKeyedStateHandle,
    NativeCheckpointUpload,
    UploadHistory,
    is_sst,
    native_checkpoints_enabled,
)
from strom._state.rocksdb.options import DEFAULT_WRITE_CACHE_SIZE, db_options, write_options
from strom._state.rocksdb.states import (
    DirtyEntries,
    RocksDBListState,
    RocksDBMapState,
    RocksDBValueState,
    put_dirty_entries,
)
from strom._state.serializers import decode_varint, encode_varint
from strom._state.snapshot import (
    KEYED_SNAPSHOT_VERSION,
    LIST,
    MAP,
    KeyedStateSnapshot,
    StateMetaInfo,
    check_keyed_snapshot,
    check_version,
    rocksdb_entries_from_heap,
)
from strom._state.ttl import TtlPolicy
from strom.errors import InvalidProgramError, StateMigrationError

__all__ = ["RocksDBKeyedStateBackend", "RocksDBNativeSnapshot"]

logger = logging.getLogger(__name__)

_MISSING: Any = object()
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_NS_MEMO_LIMIT = 4096  # window namespaces memoized per backend (bounded; ~100 B each)
_UNSAFE_PATH_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
_VARINT1 = [bytes((n,)) for n in range(0x80)]


def _cf_name(state_name: str) -> str:
    """Column family name of a state (never RocksDB's ``default``)."""
    return "state:" + state_name


@dataclass
class RocksDBNativeSnapshot:
    """A RocksDB checkpoint directory of one backend (see the module docstring).

    Attributes:
        path: the checkpoint directory (SST files are hard links into the DB).
        files: the file names in ``path`` (SST files are immutable and shareable).
        states: meta info per state name.
        checkpoint_id: the checkpoint it belongs to.
        max_parallelism: the number of key groups.
        key_group_range: the key groups the writing backend owned.
        format_version: :data:`~strom._state.snapshot.KEYED_SNAPSHOT_VERSION`.
    """

    path: str
    files: list[str]
    states: dict[str, StateMetaInfo]
    checkpoint_id: int
    max_parallelism: int
    key_group_range: KeyGroupRange
    format_version: int = KEYED_SNAPSHOT_VERSION
    encoding: str = field(default="rocksdb-native")


class RocksDBKeyedStateBackend(AbstractKeyedStateBackend):
    """Keyed state of one operator subtask in RocksDB (Flink's
    ``RocksDBKeyedStateBackend``, used by ``EmbeddedRocksDBStateBackend``).

    Args:
        max_parallelism: number of key groups.
        key_group_range: the key groups this subtask owns (default: all).
        local_dir: base directory for the working directory (None or "" = a new
            temporary directory, deleted on :meth:`dispose`).
        job_id: job id (part of the working directory path).
        operator_uid: operator uid (part of the working directory path).
        subtask_index: subtask index (part of the working directory path).
        clock: TTL clock returning epoch ms (default: the wall clock).
        incremental: whether checkpoints should be incremental (recorded for the
            checkpoint layer; see :meth:`create_native_checkpoint`).
        write_cache_size: entries per value-like state cached in Python
            (see :mod:`strom._state.rocksdb.states`).

    Raises:
        ConfigurationError: ``max_parallelism`` is out of bounds.
        OSError: the working directory cannot be created.
    """

    def __init__(
        self,
        max_parallelism: int,
        key_group_range: KeyGroupRange | None = None,
        *,
        local_dir: str | None = None,
        job_id: str = "local",
        operator_uid: str = "operator",
        subtask_index: int = 0,
        clock: Clock | None = None,
        incremental: bool = True,
        write_cache_size: int = DEFAULT_WRITE_CACHE_SIZE,
    ) -> None:
        super().__init__(max_parallelism, key_group_range, clock)
        self.incremental = incremental
        self._write_cache_size = write_cache_size
        self._own_base: str | None = None
        base = local_dir
        if not base:
            base = self._own_base = tempfile.mkdtemp(prefix="strom-rocksdb-")
        job_dir = os.path.join(base, "job_" + _UNSAFE_PATH_CHARS.sub("_", str(job_id)))
        self.path = os.path.join(
            job_dir,
            f"op_{_UNSAFE_PATH_CHARS.sub('_', str(operator_uid))}_{subtask_index}_"
            f"{uuid.uuid4().hex[:8]}",
        )
        os.makedirs(self.path)
        self._job_dir = job_dir
        self._opts = db_options()
        self._wo = write_options()
        self._db: Any = rocksdict.Rdict(self.path, self._opts)
        self._db.set_write_options(self._wo)
        self._cfs: dict[str, Any] = {}
        self._cfhs: dict[str, Any] = {}
        self._states: dict[str, Any] = {}
        self._policies: dict[str, TtlPolicy] = {}
        self._seq = 0
        self._pk: Any = _MISSING
        self._pb = b""
        self._ns_memo: dict[Any, bytes] = {}
        self._disposed = False
        self.backend_id = uuid.uuid4().hex[:16]
        """Unique id of this backend instance (prefix of its shared checkpoint files)."""
        self.upload_history = UploadHistory()
        """Shared files of this instance's incremental checkpoints (writer thread)."""
        self._restored_shared: dict[str, str] = {}
        self._written = False

    # -- per-record helpers used by the states ---------------------------------------------
    def key_prefix(self) -> bytes:
        """``key group | key`` bytes of the current key (cached while the key is the same
        object).

        Raises:
            TypeError: the key has no stable hash (unsupported type).
        """
        k = self.current_key
        if k is self._pk:
            return self._pb
        pb = key_part(stable_hash(k) % self.max_parallelism, k)
        self._pk = k
        self._pb = pb
        return pb

    def namespace_bytes(self, namespace: Any) -> bytes:
        """The length-prefixed bytes of ``namespace`` (memoized, bounded)."""
        if namespace is None:
            return namespace_part(None)
        b = self._ns_memo.get(namespace)
        if b is None:
            if len(self._ns_memo) >= _NS_MEMO_LIMIT:
                self._ns_memo.clear()
            b = self._ns_memo[namespace] = namespace_part(namespace)
        return b

    def next_sequence(self) -> bytes:
        """The next list-element sequence number (8 bytes, big-endian)."""
        self._seq += 1
        return _U64.pack(self._seq)

    def write_batch(self, batch: rocksdict.WriteBatch) -> None:
        """Apply a write batch (no WAL)."""
        if not batch.is_empty():
            self._db.write(batch)

    # -- registration ----------------------------------------------------------------------
    def _column_family(self, name: str) -> tuple[Any, Any]:
        cf = self._cfs.get(name)
        if cf is None:
            cf_name = _cf_name(name)
            cf = self._db.create_column_family(cf_name, self._opts)
            cf.set_write_options(self._wo)
            self._cfs[name] = cf
            self._cfhs[name] = self._db.get_column_family_handle(cf_name)
        return cf, self._cfhs[name]

    def _create_raw_state(self, meta: StateMetaInfo) -> Any:
        cf, cfh = self._column_family(meta.name)
        ser = meta.entry_value_serializer()
        state: Any
        if meta.kind == LIST:
            state = RocksDBListState(self, meta.name, cf, cfh, ser)
        elif meta.kind == MAP:
            state = RocksDBMapState(self, meta.name, cf, cfh, ser)
        else:
            state = RocksDBValueState(self, meta.name, cf, cfh, ser, self._write_cache_size)
        self._states[meta.name] = state
        return state

    def _ttl_cleanup_hook(
        self, meta: StateMetaInfo, raw: Any, policy: TtlPolicy
    ) -> Callable[[], None] | None:
        # Incremental cleanup is heap-only (as in Flink); record the policy for the
        # full-snapshot filter and the compaction filter.
        self._policies[meta.name] = policy
        return None

    def _migrate(self, old: StateMetaInfo, new: StateMetaInfo) -> None:
        """Re-encode restored values if the declared serializer changed."""
        convert = _converter(old, new)
        if convert is None or old.name not in self._cfs:
            return
        cf, cfh = self._column_family(old.name)
        batch = rocksdict.WriteBatch(raw_mode=True)
        for k, v in cf.items():
            batch.put(k, convert(v), cfh)
        self.write_batch(batch)
        logger.info("migrated state %r to serializer %s", old.name, new.value_serializer)

    # -- queries ---------------------------------------------------------------------------
    def flush_caches(self) -> None:
        """Write every state's dirty cached values to RocksDB."""
        for s in self._states.values():
            if isinstance(s, RocksDBValueState):
                s.flush()

    def _invalidate_caches(self) -> None:
        for s in self._states.values():
            if isinstance(s, RocksDBValueState):
                s.invalidate()

    def get_keys(self, state_name: str, namespace: Any) -> list[Any]:
        """Keys with state ``state_name`` in ``namespace`` (one scan of the state)."""
        cf = self._cfs.get(state_name)
        if cf is None:
            return []
        state = self._states.get(state_name)
        if isinstance(state, RocksDBValueState):
            state.flush()
        nsb = namespace_part(namespace)
        found: dict[bytes, None] = {}
        for k in cf.keys():
            n, pos = decode_varint(k, 2)
            end = pos + n
            if k.startswith(nsb, end):
                found[k[pos:end]] = None
        de = KEY_SERIALIZER.deserialize
        return [de(kb) for kb in found]

    def entry_count(self, state_name: str) -> int:
        """Number of stored (key, namespace) pairs of a state, expired ones included
        (for tests and metrics)."""
        cf = self._cfs.get(state_name)
        if cf is None:
            return 0
        self.flush_caches()
        seen: set[bytes] = set()
        for k in cf.keys():
            n, pos = decode_varint(k, 2)
            m, pos2 = decode_varint(k, pos + n)
            seen.add(k[: pos2 + m])
        return len(seen)

    # -- snapshot / restore ----------------------------------------------------------------
    def snapshot(self, checkpoint_id: int) -> KeyedStateSnapshot:
        """A self-contained snapshot of the raw entries by key group (see the module
        docstring); expired entries are dropped for states with full-snapshot cleanup.

        With ``incremental=True`` inside ``native_checkpoint_scope(True)``, a
        :class:`~strom._state.rocksdb.native.NativeCheckpointUpload` instead (see
        :meth:`snapshot_incremental`)."""
        if self.incremental and native_checkpoints_enabled():
            return self.snapshot_incremental(checkpoint_id)  # type: ignore[return-value]
        self._check_open()
        self.flush_caches()
        now = self.clock()
        groups: dict[int, dict[str, bytes]] = {}
        unpack_ts = _I64.unpack_from
        for name, cf in self._cfs.items():
            policy = self._policies.get(name)
            deadline = now - policy.ttl_ms if policy is not None and policy.full_snapshot else None
            current_kg = -1
            buf = bytearray()
            for k, v in cf.items():
                if deadline is not None and unpack_ts(v)[0] <= deadline:
                    continue
                kg = (k[0] << 8) | k[1]
                if kg != current_kg:
                    if buf:
                        groups.setdefault(current_kg, {})[name] = bytes(buf)
                        buf.clear()
                    current_kg = kg
                n = len(k)
                buf += _VARINT1[n] if n < 0x80 else encode_varint(n)
                buf += k
                n = len(v)
                buf += _VARINT1[n] if n < 0x80 else encode_varint(n)
                buf += v
            if buf:
                groups.setdefault(current_kg, {})[name] = bytes(buf)
        return KeyedStateSnapshot(
            encoding="rocksdb",
            checkpoint_id=checkpoint_id,
            max_parallelism=self.max_parallelism,
            key_group_range=self.key_group_range,
            states=dict(self._metas),
            key_groups=groups,
        )

    def create_native_checkpoint(
        self, checkpoint_id: int, target_dir: str, flush_write_cache: bool = True
    ) -> RocksDBNativeSnapshot:
        """Take a RocksDB checkpoint into ``target_dir`` (which must not exist yet).

        SST files are hard-linked (copied across filesystems), so this is fast and the
        files can be uploaded incrementally. TTL full-snapshot cleanup does not apply.

        Args:
            checkpoint_id: the checkpoint.
            target_dir: where to create it.
            flush_write_cache: write the Python write caches' dirty entries to RocksDB
                first (False: the caller snapshots them itself).

        Raises:
            OSError, Exception: RocksDB could not create the checkpoint.
        """
        self._check_open()
        if flush_write_cache:
            self.flush_caches()
        self._db.flush()
        rocksdict.Checkpoint(self._db).create_checkpoint(target_dir)
        return RocksDBNativeSnapshot(
            path=target_dir,
            files=sorted(os.listdir(target_dir)),
            states=dict(self._metas),
            checkpoint_id=checkpoint_id,
            max_parallelism=self.max_parallelism,
            key_group_range=self.key_group_range,
        )

    def snapshot_incremental(self, checkpoint_id: int) -> NativeCheckpointUpload:
        """The synchronous part of an incremental checkpoint: flush the write caches and
        memtables and hard-link the DB's files into ``<working dir>.chk-<id>``.

        SST files get the shared names ``<backend id>-<file>`` (files adopted by a restore
        keep the names they have in storage); the other files the private names
        ``<backend id>-<checkpoint id>-<file>``.

        Raises:
            RuntimeError: the backend was disposed.
            OSError, Exception: RocksDB could not create the checkpoint.
        """
        target = f"{self.path}.chk-{checkpoint_id}"
        shutil.rmtree(target, ignore_errors=True)  # a retaken checkpoint id after a failure
        native = self.create_native_checkpoint(checkpoint_id, target, flush_write_cache=False)
        cached: dict[str, DirtyEntries] = {}
        for name, st in self._states.items():
            if isinstance(st, RocksDBValueState):
                entries = st.dirty_entries(self.namespace_bytes)
                if entries[0] or entries[1]:
                    cached[name] = entries
        shared: dict[str, str] = {}
        private: dict[str, str] = {}
        for f in native.files:
            if is_sst(f):
                shared[f] = self._restored_shared.get(f) or f"{self.backend_id}-{f}"
            else:
                private[f] = f"{self.backend_id}-{checkpoint_id}-{f}"
        handle = IncrementalKeyedStateHandle(
            checkpoint_id=checkpoint_id,
            max_parallelism=self.max_parallelism,
            key_group_range=self.key_group_range,
            states=dict(self._metas),
            sequence=self._seq,
            shared=shared,
            private=private,
            backend_id=self.backend_id,
            cached=cached,
        )
        return NativeCheckpointUpload(target, handle, self.upload_history)

    def restore(self, snapshots: list[Any]) -> None:
        """Load this backend's key groups from keyed snapshots of either backend, from
        native RocksDB checkpoints, or from incremental checkpoint handles.

        Raises:
            InvalidProgramError: a snapshot has an unknown format version, another
                ``max_parallelism``, or state incompatible with registered state.
        """
        self._check_open()
        self.flush_caches()
        incremental = [
            s for s in snapshots
            if getattr(s, "encoding", None) == INCREMENTAL_ENCODING
            and len(s.key_group_range.intersection(self.key_group_range))
        ]
        if incremental:
            self._restore_incremental(incremental)
        for snap in snapshots:
            if snap is None or getattr(snap, "encoding", None) == INCREMENTAL_ENCODING:
                continue
            if isinstance(snap, RocksDBNativeSnapshot):
                self._restore_native(snap)
                continue
            check_keyed_snapshot(snap, self.max_parallelism)
            for meta in snap.states.values():
                self._restore_meta(meta)
            start = self.key_group_range.start_key_group
            end = self.key_group_range.end_key_group
            for kg, states in snap.key_groups.items():
                if not start <= kg <= end:
                    continue
                batch = rocksdict.WriteBatch(raw_mode=True)
                for name, data in states.items():
                    source = snap.states[name]
                    target = self._metas[name]
                    _, cfh = self._column_family(name)
                    entries: Iterable[tuple[bytes, bytes]]
                    if snap.encoding == "heap":
                        try:
                            entries, self._seq = rocksdb_entries_from_heap(
                                target, kg, data, self._seq
                            )
                        except LookupError as e:
                            msg = f"restored state {name!r} cannot be read: {e}"
                            raise StateMigrationError(msg) from e
                        convert = None
                    else:
                        entries = decode_entries(data)
                        convert = _converter(source, target)
                    is_list = source.kind == LIST
                    for kb, vb in entries:
                        batch.put(kb, vb if convert is None else convert(vb), cfh)
                        if is_list:
                            seq = _U64.unpack_from(kb, len(kb) - 8)[0]
                            if seq > self._seq:
                                self._seq = seq
                self.write_batch(batch)
                self._written = True
        self._invalidate_caches()

    def _restore_meta(self, meta: StateMetaInfo) -> None:
        old = self._metas.get(meta.name)
        if old is None:
            self._metas[meta.name] = meta
        else:
            old.check_compatible(meta)

    def _restore_incremental(self, handles: list[IncrementalKeyedStateHandle]) -> None:
        """Download and load incremental checkpoint handles that overlap this range."""
        mine = self.key_group_range
        for h in handles:
            self._check_native_compatible(h.format_version, h.max_parallelism)
        adopt = None
        if not self._written and not self._cfs:
            for h in handles:
                r = h.key_group_range
                if r.start_key_group <= mine.start_key_group \
                        and mine.end_key_group <= r.end_key_group:
                    adopt = h
                    break
        if adopt is not None:
            self._adopt(adopt)
        for h in handles:
            if h is adopt:
                continue
            tmp = f"{self.path}.restore-{uuid.uuid4().hex[:8]}"
            try:
                h.download(tmp)
                self._restore_native(RocksDBNativeSnapshot(
                    path=tmp, files=sorted(os.listdir(tmp)), states=h.states,
                    checkpoint_id=h.checkpoint_id, max_parallelism=h.max_parallelism,
                    key_group_range=h.key_group_range, format_version=h.format_version,
                ))
                self._seq = max(self._seq, h.sequence)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        for h in handles:  # the write caches' entries are newer than the RocksDB files
            self._apply_cached(h)
        self._written = True

    def _apply_cached(self, h: IncrementalKeyedStateHandle) -> None:
        """Write a handle's cached (not yet flushed) entries of this range to RocksDB."""
        cached = getattr(h, "cached", None)
        if not cached:
            return
        mine = self.key_group_range
        maxp = self.max_parallelism
        for name, entries in cached.items():
            source = h.states[name]
            self._restore_meta(source)
            ser: Callable[[Any], bytes] = source.entry_value_serializer().serialize
            convert = _converter(source, self._metas[name])
            if convert is not None:
                ser = _then(ser, convert)
            _, cfh = self._column_family(name)
            batch = rocksdict.WriteBatch(raw_mode=True)
            put_dirty_entries(batch, cfh, ser, maxp, entries, mine)
            self.write_batch(batch)
        self._invalidate_caches()

    def _adopt(self, h: IncrementalKeyedStateHandle) -> None:
        """Make the downloaded checkpoint the working DB (nothing was written yet) and
        delete the entries of key groups outside this backend's range."""
        for meta in h.states.values():
            self._restore_meta(meta)
        self._db.close()
        self._db = None
        shutil.rmtree(self.path, ignore_errors=True)
        h.download(self.path)
        cf_names = [n for n in rocksdict.Rdict.list_cf(self.path) if n != "default"]
        self._db = rocksdict.Rdict(
            self.path, self._opts, column_families={n: self._opts for n in cf_names}
        )
        self._db.set_write_options(self._wo)
        for name in h.states:
            if _cf_name(name) not in cf_names:
                continue
            cf = self._db.get_column_family(_cf_name(name))
            cf.set_write_options(self._wo)
            self._cfs[name] = cf
            self._cfhs[name] = self._db.get_column_family_handle(_cf_name(name))
        start = self.key_group_range.start_key_group
        end_kg = self.key_group_range.end_key_group + 1
        for cf in self._cfs.values():
            if start > 0:
                cf.delete_range(key_group_prefix(0), key_group_prefix(start))
            if end_kg < self.max_parallelism:
                cf.delete_range(key_group_prefix(end_kg), b"\xff\xff\xff")
        self._seq = max(self._seq, h.sequence)
        self._restored_shared = dict(h.shared)
        self.upload_history.record(h.checkpoint_id, h.shared.values())

    def _check_native_compatible(self, format_version: int, max_parallelism: int) -> None:
        check_version(format_version, KEYED_SNAPSHOT_VERSION, "a RocksDB checkpoint")
        if max_parallelism != self.max_parallelism:
            msg = (
                f"RocksDB checkpoint has max_parallelism {max_parallelism}, the "
                f"operator {self.max_parallelism}; keep max_parallelism fixed"
            )
            raise InvalidProgramError(msg)

    def _restore_native(self, snap: RocksDBNativeSnapshot) -> None:
        self._check_native_compatible(snap.format_version, snap.max_parallelism)
        for meta in snap.states.values():
            self._restore_meta(meta)
        start = key_group_prefix(self.key_group_range.start_key_group)
        end_kg = self.key_group_range.end_key_group + 1
        end = key_group_prefix(end_kg) if end_kg < (1 << 15) else b"\xff\xff\xff"
        cf_names = rocksdict.Rdict.list_cf(snap.path)
        ro = rocksdict.Rdict(
            snap.path,
            rocksdict.Options(raw_mode=True),
            column_families={n: rocksdict.Options(raw_mode=True) for n in cf_names},
            access_type=rocksdict.AccessType.read_only(),
        )
        try:
            for name, source in snap.states.items():
                if _cf_name(name) not in cf_names:
                    continue
                src_cf: Any = ro.get_column_family(_cf_name(name))
                _, cfh = self._column_family(name)
                convert = _converter(source, self._metas[name])
                batch = rocksdict.WriteBatch(raw_mode=True)
                for k, v in src_cf.items(from_key=start):
                    if k >= end:
                        break
                    batch.put(k, v if convert is None else convert(v), cfh)
                    if source.kind == LIST:
                        self._seq = max(self._seq, _U64.unpack(k[-8:])[0])
                self.write_batch(batch)
                del src_cf
        finally:
            ro.close()
            del ro
        self._invalidate_caches()

    # -- TTL compaction filter -------------------------------------------------------------
    def compact(self) -> int:
        """Compact every column family, first applying the TTL compaction filter.

        RocksDB cannot run Python code inside its background compactions, so states with
        ``cleanup_in_rocksdb_compact_filter(n)`` are filtered here: one scan of the state
        deletes entries whose last-access timestamp expired, re-reading the clock every
        ``n`` entries, before RocksDB compacts the range (dropping the tombstones).

        Returns:
            The number of expired entries removed.
        """
        self._check_open()
        self.flush_caches()
        removed = 0
        unpack_ts = _I64.unpack_from
        for name, policy in self._policies.items():
            interval = policy.compact_query_interval
            if interval <= 0 or name not in self._cfs:
                continue
            cf, cfh = self._column_family(name)
            batch = rocksdict.WriteBatch(raw_mode=True)
            deadline = policy.clock() - policy.ttl_ms
            for i, (k, v) in enumerate(cf.items(), 1):
                if unpack_ts(v)[0] <= deadline:
                    batch.delete(k, cfh)
                    removed += 1
                if i % interval == 0:
                    deadline = policy.clock() - policy.ttl_ms
            self.write_batch(batch)
        if removed:
            self._invalidate_caches()
        for cf in self._cfs.values():
            cf.compact_range(None, None)
        return removed

    # -- lifecycle -------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._disposed:
            msg = "the RocksDB state backend was disposed"
            raise RuntimeError(msg)

    def dispose(self) -> None:
        """Close the DB and delete the working directory (idempotent)."""
        if self._disposed:
            return
        self._disposed = True
        for s in self._states.values():
            s.detach()
        self._states.clear()
        self._handles.clear()
        for cf in self._cfs.values():
            cf.close()
        self._cfs.clear()
        self._cfhs.clear()
        try:
            self._db.close()
        finally:
            self._db = None
            shutil.rmtree(self.path, ignore_errors=True)
            for leftover in glob.glob(glob.escape(self.path) + ".*"):
                shutil.rmtree(leftover, ignore_errors=True)  # un-uploaded native checkpoints
            if self._own_base is not None:
                shutil.rmtree(self._own_base, ignore_errors=True)
            else:
                try:
                    os.rmdir(self._job_dir)  # only if no other subtask uses it
                except OSError:
                    pass


def _then(
    first: Callable[[Any], bytes], second: Callable[[bytes], bytes]
) -> Callable[[Any], bytes]:
    """``second(first(x))``."""
    return lambda x: second(first(x))


def _converter(source: StateMetaInfo, target: StateMetaInfo) -> Callable[[bytes], bytes] | None:
    """A function re-encoding entry values from ``source``'s to ``target``'s value
    serializer, or None if the stored bytes can be read as they are.

    Raises:
        StateMigrationError: the serializers are incompatible (see
            :meth:`StateMetaInfo.needs_migration`); the returned function raises it too
            when a value cannot be converted.
    """
    if not source.needs_migration(target):
        return None
    de = source.entry_value_serializer().deserialize
    ser = target.entry_value_serializer().serialize

    def convert(data: bytes) -> bytes:
        try:
            return ser(de(data))
        except Exception as e:
            raise source.migration_error(target, e) from e

    return convert
