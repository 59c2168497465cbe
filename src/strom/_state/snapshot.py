"""Snapshot formats of keyed and operator state, and conversion between backends.

A keyed snapshot (:class:`KeyedStateSnapshot`) is a picklable, versioned object organised
by key group, so a restore can select any :class:`~strom._runtime.key_groups.KeyGroupRange`
(rescaling). It carries, per state, a :class:`StateMetaInfo` (state kind, serializer
snapshots, TTL flag) and the data of each non-empty key group in one of two encodings:

* ``"heap"`` (written by the heap backend): ``{key_group: {state name: {namespace:
  {key: value}}}}`` with Python objects. Values are the backend's internal values: the
  user value for value/reducing/aggregating state, a list for list state, a dict for
  map state; with TTL every value, list element and map value is a ``(value,
  last_access_ms)`` tuple.
* ``"rocksdb"`` (written by the RocksDB backend): ``{key_group: {state name: blob}}``
  where the blob packs the state's raw RocksDB entries of that key group, sorted by key
  (:func:`~strom._state.key_layout.encode_entries`: ``varint len | entry key | varint
  len | entry value`` each, entry keys laid out as in :mod:`strom._state.key_layout`). One
  bytes object per key group and state keeps the snapshot's memory close to the raw
  data size.

Both backends restore both encodings (:func:`heap_entries_from_rocksdb` and
:func:`rocksdb_entries_from_heap` convert with the serializers of the meta info), so a job
can switch backends from a checkpoint, as Flink's canonical savepoints allow.

The format version (:data:`KEYED_SNAPSHOT_VERSION`) is checked on restore; a newer
version than this code knows is rejected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from strom._runtime.key_groups import KeyGroupRange
from strom._state.key_layout import (
    KEY_SERIALIZER,
    decode_entries,
    key_group_prefix,
    len_prefixed,
    namespace_part,
    split_entry_key,
)
from strom._state.serializers import (
    NullableSerializer,
    SchemaCompatibility,
    TtlSerializer,
    TypeSerializer,
    TypeSerializerSnapshot,
)
from strom.errors import InvalidProgramError, StateMigrationError

__all__ = [
    "AGGREGATING",
    "KEYED_SNAPSHOT_VERSION",
    "LIST",
    "MAP",
    "OPERATOR_SNAPSHOT_VERSION",
    "REDUCING",
    "VALUE",
    "KeyedStateSnapshot",
    "OperatorStateEntry",
    "OperatorStateSnapshot",
    "StateMetaInfo",
    "check_keyed_snapshot",
    "check_version",
    "heap_entries_from_rocksdb",
    "rocksdb_entries_from_heap",
]

KEYED_SNAPSHOT_VERSION = 1
"""Format version of :class:`KeyedStateSnapshot` written by this code."""
OPERATOR_SNAPSHOT_VERSION = 1
"""Format version of :class:`OperatorStateSnapshot` written by this code."""

VALUE = "value"
LIST = "list"
MAP = "map"
REDUCING = "reducing"
AGGREGATING = "aggregating"
_KINDS = (VALUE, LIST, MAP, REDUCING, AGGREGATING)


@dataclass(frozen=True)
class StateMetaInfo:
    """What a snapshot knows about one keyed state (Flink's ``StateMetaInfoSnapshot``).

    Attributes:
        name: the state name.
        kind: ``"value"``, ``"list"``, ``"map"``, ``"reducing"`` or ``"aggregating"``.
        value_serializer: serializer of the value (list element, map value, accumulator).
        user_key_serializer: serializer of map user keys (map state only).
        ttl: True if the entries carry last-access timestamps.
    """

    name: str
    kind: str
    value_serializer: TypeSerializerSnapshot
    user_key_serializer: TypeSerializerSnapshot | None = None
    ttl: bool = False

    def entry_value_serializer(self) -> TypeSerializer[Any]:
        """The serializer of RocksDB entry values (TTL / null-flag wrappers included).

        Raises:
            LookupError: the value serializer cannot be restored.
        """
        ser = self.value_serializer.restore_serializer()
        if self.kind == MAP:
            ser = NullableSerializer(ser)
        if self.ttl:
            ser = TtlSerializer(ser)
        return ser

    def check_compatible(self, other: StateMetaInfo) -> None:
        """Raise unless ``other`` (a newly declared state) may read this state.

        Raises:
            StateMigrationError: the kind or the TTL setting differs.
        """
        if other.kind != self.kind:
            msg = (
                f"state {self.name!r} was stored as {self.kind} state but is now declared "
                f"as {other.kind} state; use a new state name"
            )
            raise StateMigrationError(msg)
        if other.ttl != self.ttl:
            what = "enables" if other.ttl else "disables"
            msg = (
                f"state {self.name!r} {what} time-to-live, which changes its stored format; "
                "TTL cannot be switched on or off for existing state (use a new state name)"
            )
            raise StateMigrationError(msg)

    def needs_migration(self, new: StateMetaInfo) -> bool:
        """Resolve the schema compatibility of this (restored) state with ``new``, the
        state as now declared (same name, kind and TTL, see :meth:`check_compatible`).

        Returns:
            False if the stored values can be read as they are, True if they must be
            migrated (decoded with this serializer, encoded with the new one).

        Raises:
            StateMigrationError: the new value serializer cannot read the stored values
                (e.g. a dataclass lost a field), or the old one cannot be restored.
        """
        if new.value_serializer == self.value_serializer:
            return False
        try:
            new_ser = new.value_serializer.restore_serializer()
        except LookupError as e:
            msg = f"state {self.name!r}: its new serializer cannot be created: {e}"
            raise StateMigrationError(msg) from e
        compat, reason = new_ser.resolve_schema_compatibility(self.value_serializer)
        if compat is SchemaCompatibility.INCOMPATIBLE:
            old_id, new_id = self.value_serializer.serializer_id, new.value_serializer.serializer_id
            change = f" (serializer {old_id!r} -> {new_id!r})" if old_id != new_id else ""
            msg = (
                f"restored state {self.name!r} is incompatible with its new declaration"
                f"{change}: {reason}"
            )
            raise StateMigrationError(msg)
        return compat is SchemaCompatibility.COMPATIBLE_AFTER_MIGRATION

    def migration_error(self, new: StateMetaInfo, error: Exception) -> StateMigrationError:
        """The error to raise when migrating a value to ``new``'s serializer failed."""
        msg = (
            f"restored state {self.name!r} could not be migrated from serializer "
            f"{self.value_serializer.serializer_id!r} to {new.value_serializer.serializer_id!r}"
            f": {type(error).__name__}: {error}"
        )
        return StateMigrationError(msg)


def check_version(found: int, supported: int, what: str) -> None:
    """Raise if a snapshot's format version is newer than this code supports.

    Raises:
        InvalidProgramError: ``found`` is not in ``[1, supported]``.
    """
    if not isinstance(found, int) or not 1 <= found <= supported:
        msg = (
            f"{what} has format version {found!r}, but this Strom reads versions 1 to "
            f"{supported}; restore it with a newer Strom"
        )
        raise InvalidProgramError(msg)


def check_keyed_snapshot(snap: Any, max_parallelism: int) -> None:
    """Validate a keyed snapshot before restoring it.

    Raises:
        InvalidProgramError: not a :class:`KeyedStateSnapshot`, an unknown format version,
            or another ``max_parallelism``.
    """
    if not isinstance(snap, KeyedStateSnapshot):
        if getattr(snap, "encoding", None) in ("rocksdb-incremental", "rocksdb-native"):
            msg = (
                "this keyed state is a native RocksDB checkpoint, which only the RocksDB "
                "backend restores; to change the state backend, take a savepoint "
                "(strom savepoint JOB_ID DIR, or strom stop JOB_ID --savepoint-path DIR) "
                "with the old backend and start from it with the new one"
            )
            raise InvalidProgramError(msg)
        msg = f"not a keyed state snapshot: {type(snap).__name__}"
        raise InvalidProgramError(msg)
    check_version(snap.format_version, KEYED_SNAPSHOT_VERSION, "a keyed state snapshot")
    if snap.max_parallelism != max_parallelism:
        msg = (
            f"keyed state was written with max_parallelism {snap.max_parallelism} but the "
            f"operator now has max_parallelism {max_parallelism}; key groups cannot be "
            "remapped, so keep max_parallelism fixed for the life of the state"
        )
        raise InvalidProgramError(msg)


class KeyedStateSnapshot:
    """A snapshot of one keyed backend's state, by key group (see the module docstring).

    The heap backend creates the key-group view lazily: :meth:`snapshot` copies its tables
    (cheap) and the grouping runs on first access to :attr:`key_groups` or when the
    snapshot is pickled, which the checkpoint layer can do outside the task's hot path.

    Attributes:
        format_version: :data:`KEYED_SNAPSHOT_VERSION` when written.
        encoding: ``"heap"`` or ``"rocksdb"``.
        checkpoint_id: the checkpoint the snapshot belongs to.
        max_parallelism: the number of key groups (must match on restore).
        key_group_range: the key groups the writing backend owned.
        key_serializer: snapshot of the key/namespace serializer.
        states: meta info per state name.
    """

    __slots__ = (
        "_key_groups",
        "_pending",
        "checkpoint_id",
        "encoding",
        "format_version",
        "key_group_range",
        "key_serializer",
        "max_parallelism",
        "states",
    )

    def __init__(
        self,
        *,
        encoding: str,
        checkpoint_id: int,
        max_parallelism: int,
        key_group_range: KeyGroupRange,
        states: dict[str, StateMetaInfo],
        key_groups: dict[int, Any] | None = None,
        pending: Callable[[], dict[int, Any]] | None = None,
        format_version: int = KEYED_SNAPSHOT_VERSION,
        key_serializer: TypeSerializerSnapshot | None = None,
    ) -> None:
        self.format_version = format_version
        self.encoding = encoding
        self.checkpoint_id = checkpoint_id
        self.max_parallelism = max_parallelism
        self.key_group_range = key_group_range
        self.key_serializer = key_serializer or KEY_SERIALIZER.snapshot_configuration()
        self.states = states
        self._key_groups = key_groups
        self._pending = pending

    @property
    def key_groups(self) -> dict[int, Any]:
        """The data per non-empty key group (materialized on first access)."""
        if self._key_groups is None:
            assert self._pending is not None
            self._key_groups = self._pending()
            self._pending = None
        return self._key_groups

    def materialize(self) -> KeyedStateSnapshot:
        """Build the key-group view now; returns self."""
        _ = self.key_groups
        return self

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the materialized form."""
        return {
            "format_version": self.format_version,
            "encoding": self.encoding,
            "checkpoint_id": self.checkpoint_id,
            "max_parallelism": self.max_parallelism,
            "key_group_range": (
                self.key_group_range.start_key_group,
                self.key_group_range.end_key_group,
            ),
            "key_serializer": self.key_serializer,
            "states": self.states,
            "key_groups": self.key_groups,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle (tolerates unknown extra fields of newer minor versions)."""
        self.format_version = state["format_version"]
        self.encoding = state["encoding"]
        self.checkpoint_id = state["checkpoint_id"]
        self.max_parallelism = state["max_parallelism"]
        self.key_group_range = KeyGroupRange(*state["key_group_range"])
        self.key_serializer = state["key_serializer"]
        self.states = state["states"]
        self._key_groups = state["key_groups"]
        self._pending = None

    def __repr__(self) -> str:
        """Short description."""
        return (
            f"KeyedStateSnapshot(v{self.format_version}, {self.encoding}, "
            f"checkpoint={self.checkpoint_id}, {self.key_group_range!r}, "
            f"states={sorted(self.states)})"
        )


def heap_entries_from_rocksdb(meta: StateMetaInfo, blob: bytes) -> Iterator[tuple[Any, Any, Any]]:
    """Decode one state's RocksDB-format entries of one key group (a blob of
    :func:`~strom._state.key_layout.encode_entries`).

    Yields:
        ``(namespace, key, internal value)`` in heap form (lists and dicts assembled).

    Raises:
        LookupError: a serializer of the snapshot cannot be restored.
    """
    vser = meta.entry_value_serializer()
    de = vser.deserialize
    if meta.kind in (LIST, MAP):
        uk_de = KEY_SERIALIZER.deserialize
        groups: dict[tuple[Any, Any], Any] = {}
        for kb, vb in decode_entries(blob):
            key, ns, suffix = split_entry_key(kb)
            if meta.kind == LIST:
                groups.setdefault((key, ns), []).append(de(vb))
            else:
                groups.setdefault((key, ns), {})[uk_de(suffix)] = de(vb)
        for (key, ns), v in groups.items():
            yield ns, key, v
    else:
        for kb, vb in decode_entries(blob):
            key, ns, _ = split_entry_key(kb)
            yield ns, key, de(vb)


def rocksdb_entries_from_heap(
    meta: StateMetaInfo, key_group: int, namespaces: dict[Any, dict[Any, Any]], first_seq: int
) -> tuple[list[tuple[bytes, bytes]], int]:
    """Encode one state's heap-format data of one key group as RocksDB entries.

    Args:
        meta: the state's meta info (serializers).
        key_group: the key group of the data.
        namespaces: ``{namespace: {key: internal value}}``.
        first_seq: the next free list-element sequence number.

    Returns:
        ``(sorted (entry key, entry value) pairs, next free sequence number)``.

    Raises:
        LookupError: a serializer of the snapshot cannot be restored.
    """
    ser = meta.entry_value_serializer().serialize
    key_ser = KEY_SERIALIZER.serialize
    out: list[tuple[bytes, bytes]] = []
    kg_prefix = key_group_prefix(key_group)
    seq = first_seq
    for ns, table in namespaces.items():
        ns_b = namespace_part(ns)
        for key, value in table.items():
            prefix = kg_prefix + len_prefixed(key_ser(key)) + ns_b
            if meta.kind == LIST:
                for e in value:
                    out.append((prefix + seq.to_bytes(8, "big"), ser(e)))
                    seq += 1
            elif meta.kind == MAP:
                for uk, uv in value.items():
                    out.append((prefix + key_ser(uk), ser(uv)))
            else:
                out.append((prefix, ser(value)))
    out.sort()
    return out, seq


@dataclass
class OperatorStateEntry:
    """One operator state in an :class:`OperatorStateSnapshot`.

    Attributes:
        mode: ``"split"`` (even-split list), ``"union"`` (union list) or ``"broadcast"``.
        value_serializer: serializer snapshot of the elements (broadcast: the values).
        data: the elements (a list) or, for broadcast state, the mappings (a dict).
        key_serializer: serializer snapshot of broadcast map keys (broadcast only).
    """

    mode: str
    value_serializer: TypeSerializerSnapshot
    data: Any
    key_serializer: TypeSerializerSnapshot | None = None


@dataclass
class OperatorStateSnapshot:
    """A snapshot of one subtask's operator state (Flink's ``OperatorStateHandle`` content).

    Attributes:
        states: the states by name.
        checkpoint_id: the checkpoint it belongs to.
        format_version: :data:`OPERATOR_SNAPSHOT_VERSION` when written.
    """

    states: dict[str, OperatorStateEntry] = field(default_factory=dict)
    checkpoint_id: int = 0
    format_version: int = OPERATOR_SNAPSHOT_VERSION
