"""Raw keyed states of the RocksDB backend.

Value-like states (value, and the stores of reducing and aggregating state) keep a
bounded **write cache** of Python objects in front of RocksDB, in the spirit of Quix
Streams' partition transactions: ``value()`` is served from the cache when possible,
``update()``/``clear()`` only mark the entry dirty, and dirty entries are written to
RocksDB in one ``WriteBatch`` when the cache exceeds its size, before every snapshot,
``get_keys`` and compaction. A read miss loads one entry from RocksDB into a bounded
"clean" cache. This makes a hot key cost two dict operations instead of a RocksDB
``get`` + ``put`` through the Python binding (~3 us each), while the number of cached
entries, and so the memory, stays bounded for any number of keys. The cached objects are
the deserialized values: as with Flink's RocksDB backend, mutate a value only through
``update()``.

List and map states go to RocksDB on every call: list state stores one entry per element
(key suffix = an 8-byte sequence number, so ``add`` is one ``put`` and ``get`` one prefix
scan), map state one entry per user key (see :mod:`strom._state.key_layout`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from itertools import chain, repeat
from typing import TYPE_CHECKING, Any

import rocksdict

from strom._runtime.key_groups import key_groups_of
from strom._state.key_layout import KEY_SERIALIZER, VOID_NAMESPACE_BYTES, key_part
from strom._state.lists import checked_list
from strom._state.serializers import TypeSerializer
from strom.datastream.state import ListState, MapState, ValueState

if TYPE_CHECKING:
    from strom._state.rocksdb.backend import RocksDBKeyedStateBackend

__all__ = [
    "DirtyEntries",
    "RocksDBListState",
    "RocksDBMapState",
    "RocksDBValueState",
    "put_dirty_entries",
]

_MISSING: Any = object()
_U64 = struct.Struct(">Q")


class _RocksDBState:
    """Column family access and namespace handling shared by the raw states."""

    __slots__ = ("_backend", "_cf", "_cfh", "_de", "_ns", "_nsb", "_ser", "name")

    def __init__(
        self,
        backend: RocksDBKeyedStateBackend,
        name: str,
        cf: rocksdict.Rdict,
        cfh: rocksdict.ColumnFamily,
        serializer: TypeSerializer[Any],
    ) -> None:
        self._backend = backend
        self.name = name
        self._cf: Any = cf
        self._cfh: Any = cfh
        self._ser = serializer.serialize
        self._de = serializer.deserialize
        self._ns: Any = None
        self._nsb = VOID_NAMESPACE_BYTES

    def set_current_namespace(self, namespace: Any) -> None:
        """Scope access to ``namespace`` (None = VOID)."""
        self._ns = namespace
        self._nsb = self._backend.namespace_bytes(namespace)

    def get_current_namespace(self) -> Any:
        """The current namespace."""
        return self._ns

    def _prefix(self) -> bytes:
        """``key group | key | namespace`` bytes of the current key and namespace."""
        return self._backend.key_prefix() + self._nsb

    def _scan(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        """All ``(entry key, value)`` pairs starting with ``prefix``."""
        out = []
        for k, v in self._cf.items(from_key=prefix):
            if not k.startswith(prefix):
                break
            out.append((k, v))
        return out

    def _delete_prefix(self, prefix: bytes, batch: rocksdict.WriteBatch) -> None:
        """Add deletes of every entry under ``prefix`` to ``batch``."""
        h = self._cfh
        for k in self._cf.keys(from_key=prefix):
            if not k.startswith(prefix):
                break
            batch.delete(k, h)

    def detach(self) -> None:
        """Drop the column family references (the DB is closing)."""
        self._cf = None
        self._cfh = None

    def update_serializer(self, serializer: TypeSerializer[Any]) -> None:
        """Use another entry value serializer (after a migration)."""
        self._ser = serializer.serialize
        self._de = serializer.deserialize


class RocksDBValueState(_RocksDBState, ValueState[Any]):
    """Raw value state with a bounded write cache (see the module docstring).

    The cache is keyed by the key for the VOID namespace and by ``(key, namespace)``
    otherwise; ``None`` in the cache means "no value" (a dirty None is a pending delete).

    Args:
        backend: the owning backend.
        name: the state name.
        cf: the state's column family.
        cfh: its handle for write batches.
        serializer: the entry value serializer.
        cache_size: maximum entries of the dirty and of the clean cache.
    """

    __slots__ = ("_cap", "_nclean", "_ndirty", "_vclean", "_vdirty")

    def __init__(
        self,
        backend: RocksDBKeyedStateBackend,
        name: str,
        cf: rocksdict.Rdict,
        cfh: rocksdict.ColumnFamily,
        serializer: TypeSerializer[Any],
        cache_size: int,
    ) -> None:
        super().__init__(backend, name, cf, cfh, serializer)
        self._cap = max(1, cache_size)
        self._vdirty: dict[Any, Any] = {}
        self._vclean: dict[Any, Any] = {}
        self._ndirty: dict[tuple[Any, Any], Any] = {}
        self._nclean: dict[tuple[Any, Any], Any] = {}

    def value(self) -> Any:
        """The current key's value or None."""
        ns = self._ns
        if ns is None:
            k = self._backend.current_key
            v = self._vdirty.get(k, _MISSING)
            if v is _MISSING:
                v = self._vclean.get(k, _MISSING)
                if v is _MISSING:
                    v = self._load(k, self._vclean)
            return v
        ck = (self._backend.current_key, ns)
        v = self._ndirty.get(ck, _MISSING)
        if v is _MISSING:
            v = self._nclean.get(ck, _MISSING)
            if v is _MISSING:
                v = self._load(ck, self._nclean)
        return v

    value_for_merge = value

    def _load(self, cache_key: Any, clean: dict[Any, Any]) -> Any:
        """Read the current key's entry from RocksDB into the clean cache."""
        data = self._cf.get(self._backend.key_prefix() + self._nsb)
        v = None if data is None else self._de(data)
        if len(clean) >= self._cap:
            clean.clear()
        clean[cache_key] = v
        return v

    def update(self, value: Any) -> None:
        """Set the current key's value (None clears it)."""
        ns = self._ns
        if ns is None:
            d = self._vdirty
            d[self._backend.current_key] = value
        else:
            d = self._ndirty
            d[(self._backend.current_key, ns)] = value
        if len(d) > self._cap:
            self.flush()

    def clear(self) -> None:
        """Remove the current key's value."""
        self.update(None)

    def flush(self) -> None:
        """Write the dirty entries to RocksDB in one batch and move them to the clean
        cache."""
        if not self._vdirty and not self._ndirty:
            return
        backend = self._backend
        batch = rocksdict.WriteBatch(raw_mode=True)
        put_dirty_entries(batch, self._cfh, self._ser, backend.max_parallelism,
                          self.dirty_entries(backend.namespace_bytes))
        backend.write_batch(batch)
        for dirty, clean in ((self._vdirty, self._vclean), (self._ndirty, self._nclean)):
            if len(clean) + len(dirty) > self._cap:
                clean.clear()
            clean.update(dirty)
            dirty.clear()

    def dirty_entries(self, namespace_bytes: Any) -> DirtyEntries:
        """A copy of the dirty cache: ``({key: value}, keys, namespace bytes, values)``, the
        last three parallel lists of the namespaced entries; a value of None means a
        pending delete. Namespaces are given as their entry-key bytes
        (``namespace_bytes(namespace)``, memoized by the backend, so equal windows share
        one bytes object), which pickle far faster than window objects. Values are
        replaced, never mutated, by ``update()``, so this is a consistent snapshot of what
        RocksDB lacks."""
        nd = self._ndirty
        return (
            dict(self._vdirty),
            [ck[0] for ck in nd],
            [namespace_bytes(ck[1]) for ck in nd],
            list(nd.values()),
        )

    def invalidate(self) -> None:
        """Forget the clean cache (RocksDB was changed behind it); dirty entries stay."""
        self._vclean.clear()
        self._nclean.clear()

    def cached_entries(self) -> int:
        """Number of cached entries (dirty + clean), for tests and metrics."""
        return len(self._vdirty) + len(self._vclean) + len(self._ndirty) + len(self._nclean)


DirtyEntries = tuple[dict[Any, Any], list[Any], list[bytes], list[Any]]
"""What :meth:`RocksDBValueState.dirty_entries` returns: ``({key: value}, keys, namespace
bytes, values)``, the last three parallel lists of the namespaced entries."""


def put_dirty_entries(
    batch: rocksdict.WriteBatch,
    cfh: Any,
    serialize: Callable[[Any], bytes],
    max_parallelism: int,
    entries: DirtyEntries,
    key_group_range: Any = None,
) -> None:
    """Add a value state's cached entries to ``batch``: a put of ``serialize(value)`` at
    ``key_part(key group, key) + namespace bytes`` per entry, a delete for a None value.
    Used by the cache flush and by a restore of the entries a checkpoint kept.

    Args:
        batch: the write batch.
        cfh: the state's column family handle.
        serialize: value -> entry value bytes.
        max_parallelism: the number of key groups.
        entries: see :data:`DirtyEntries`.
        key_group_range: if given (a ``KeyGroupRange``), entries of other key groups
            are skipped.
    """
    vdirty, nkeys, nsbytes, nvalues = entries
    vkeys = list(vdirty)
    rows = zip(
        chain(vkeys, nkeys),
        chain(key_groups_of(vkeys, max_parallelism), key_groups_of(nkeys, max_parallelism)),
        chain(repeat(VOID_NAMESPACE_BYTES, len(vkeys)), nsbytes),
        chain(vdirty.values(), nvalues),
    )
    for key, kg, nsb, v in rows:
        if key_group_range is not None and kg not in key_group_range:
            continue
        entry = key_part(kg, key) + nsb
        if v is None:
            batch.delete(entry, cfh)
        else:
            batch.put(entry, serialize(v), cfh)


class RocksDBListState(_RocksDBState, ListState[Any]):
    """Raw list state: one RocksDB entry per element (see the module docstring)."""

    __slots__ = ()

    def get(self) -> list[Any]:
        """The current key's elements in insertion order ([] if none)."""
        de = self._de
        return [de(v) for _, v in self._scan(self._prefix())]

    def add(self, value: Any) -> None:
        """Append ``value``.

        Raises:
            ValueError: ``value`` is None.
        """
        if value is None:
            msg = "cannot add None to a ListState"
            raise ValueError(msg)
        self._cf.put(self._prefix() + self._backend.next_sequence(), self._ser(value))

    def add_all(self, values: list[Any]) -> None:
        """Append ``values`` in one batch."""
        new = checked_list(values)
        if not new:
            return
        prefix = self._prefix()
        batch = rocksdict.WriteBatch(raw_mode=True)
        self._put_all(batch, prefix, new)
        self._backend.write_batch(batch)

    def _put_all(self, batch: rocksdict.WriteBatch, prefix: bytes, values: list[Any]) -> None:
        h, ser, seq = self._cfh, self._ser, self._backend.next_sequence
        for v in values:
            batch.put(prefix + seq(), ser(v), h)

    def update(self, values: list[Any]) -> None:
        """Replace the list (empty clears)."""
        new = checked_list(values)
        prefix = self._prefix()
        batch = rocksdict.WriteBatch(raw_mode=True)
        self._delete_prefix(prefix, batch)
        self._put_all(batch, prefix, new)
        self._backend.write_batch(batch)

    def clear(self) -> None:
        """Remove the current key's list."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        self._delete_prefix(self._prefix(), batch)
        self._backend.write_batch(batch)

    def merge_namespaces(self, target: Any, sources: Iterable[Any]) -> None:
        """Move the elements of ``sources`` to the end of ``target`` (bytes are moved,
        not decoded). The handle is scoped to ``target`` afterwards."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        h = self._cfh
        moved: list[bytes] = []
        for ns in sources:
            if ns == target:
                continue
            self.set_current_namespace(ns)
            for k, v in self._scan(self._prefix()):
                batch.delete(k, h)
                moved.append(v)
        self.set_current_namespace(target)
        prefix = self._prefix()
        seq = self._backend.next_sequence
        for v in moved:
            batch.put(prefix + seq(), v, h)
        self._backend.write_batch(batch)


class RocksDBMapState(_RocksDBState, MapState[Any, Any]):
    """Raw map state: one RocksDB entry per user key (values carry a null flag)."""

    __slots__ = ()

    def get(self, key: Any) -> Any:
        """The value of user key ``key`` or None."""
        data = self._cf.get(self._prefix() + KEY_SERIALIZER.serialize(key))
        return None if data is None else self._de(data)

    def put(self, key: Any, value: Any) -> None:
        """Map ``key`` to ``value``."""
        self._cf.put(self._prefix() + KEY_SERIALIZER.serialize(key), self._ser(value))

    def put_all(self, dict_value: dict[Any, Any]) -> None:
        """Copy all mappings in one batch."""
        if not dict_value:
            return
        prefix = self._prefix()
        batch = rocksdict.WriteBatch(raw_mode=True)
        h, ser, kser = self._cfh, self._ser, KEY_SERIALIZER.serialize
        for k, v in dict_value.items():
            batch.put(prefix + kser(k), ser(v), h)
        self._backend.write_batch(batch)

    def remove(self, key: Any) -> None:
        """Remove user key ``key``."""
        self._cf.delete(self._prefix() + KEY_SERIALIZER.serialize(key))

    def contains(self, key: Any) -> bool:
        """True if ``key`` is mapped."""
        return self._cf.get(self._prefix() + KEY_SERIALIZER.serialize(key)) is not None

    def items(self) -> list[tuple[Any, Any]]:
        """All ``(user key, value)`` pairs, in serialized-key order."""
        prefix = self._prefix()
        n = len(prefix)
        de, kde = self._de, KEY_SERIALIZER.deserialize
        return [(kde(k[n:]), de(v)) for k, v in self._scan(prefix)]

    def keys(self) -> list[Any]:
        """All user keys."""
        return [k for k, _ in self.items()]

    def values(self) -> list[Any]:
        """All values."""
        return [v for _, v in self.items()]

    def is_empty(self) -> bool:
        """True if the current key has no mappings."""
        prefix = self._prefix()
        for k in self._cf.keys(from_key=prefix):
            return not k.startswith(prefix)
        return True

    def clear(self) -> None:
        """Remove all mappings of the current key."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        self._delete_prefix(self._prefix(), batch)
        self._backend.write_batch(batch)
