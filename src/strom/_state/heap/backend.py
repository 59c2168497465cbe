"""HashMapStateBackend's keyed backend: keyed state as Python objects in dicts.

Layout: per state a :class:`~strom._state.heap.states.HeapStateTable` (``key -> value``
for the VOID namespace, ``(key, namespace) -> value`` for windows). Key groups are not
computed on the per-record path (that would cost a stable hash per access); they are
computed when a snapshot is grouped, so ``set_current_key`` is one attribute store.

Snapshots (the "copy on snapshot, group later" choice):

1. *Synchronous part* (:meth:`HeapKeyedStateBackend.snapshot`, on the task thread): a
   shallow copy of every table with ``dict.copy`` (C speed; measured 30-100 ms per million
   entries on a busy 2-core VM); list and map states also copy their containers
   (``list.copy``/``dict.copy`` per entry, in C via ``map``) because the backend mutates
   them in place. Nothing is hashed, pickled or grouped here.
2. *Grouping* (lazy, on first access to ``key_groups`` or when the snapshot is pickled,
   which the checkpoint layer may do off the task thread): keys are assigned to key groups
   with the stable hash and sorted into per-key-group dicts (measured 15 ms per 10,000
   and 1.2 s per million entries on the same VM), and expired entries are dropped if the
   state's TTL asks for full-snapshot cleanup. A :class:`KeyGroupCache` per backend
   remembers the key group of every key of the last snapshots, so keys seen before (the
   same user in several windows, at every checkpoint) are not hashed again.

Cost and caveat: the copy holds references to the same value objects as the live state
until the snapshot is pickled. Values replaced through the state API are safe (the copy
keeps the old object); a user object *mutated in place* after ``snapshot()`` and before
the snapshot is serialized would leak into it. Value-state users must therefore treat
stored objects as immutable or ``update()`` a new object, as Flink's heap backend
requires with object reuse.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

from strom._runtime.key_groups import KeyGroupRange, key_groups_of
from strom._state.backend import AbstractKeyedStateBackend, Clock, meta_info_for
from strom._state.heap.cleanup import HeapIncrementalCleanup, unexpired
from strom._state.heap.states import (
    HeapListState,
    HeapMapState,
    HeapStateTable,
    HeapValueState,
)
from strom._state.snapshot import (
    LIST,
    MAP,
    VALUE,
    KeyedStateSnapshot,
    StateMetaInfo,
    check_keyed_snapshot,
    heap_entries_from_rocksdb,
)
from strom._state.ttl import TtlPolicy
from strom.datastream.state import ValueStateDescriptor
from strom.errors import InvalidProgramError, StateMigrationError

__all__ = ["HeapKeyedStateBackend", "KeyGroupCache"]

_RAW_CLASSES: dict[str, type] = {LIST: HeapListState, MAP: HeapMapState}

_Copy = Callable[[Any], Any] | None


def _container_copy(kind: str) -> _Copy:
    """The per-value copy a snapshot or restore needs (list/map containers), or None."""
    if kind == LIST:
        return list.copy
    if kind == MAP:
        return dict.copy
    return None


def _copy_table(d: dict[Any, Any], copy: _Copy) -> dict[Any, Any]:
    """Shallow copy of a table, copying the containers too if ``copy`` is set."""
    if copy is None:
        return d.copy()
    return dict(zip(d.keys(), map(copy, d.values())))


class KeyGroupCache:
    """Key -> key group, remembered across snapshots of one backend.

    Hashing a key with the stable hash costs about a microsecond; keyed operators
    snapshot mostly the same keys at every checkpoint (a window operator on the generic
    path also the same key in every open window), so the grouping looks them up here
    first. :func:`~strom._runtime.key_groups.stable_hash`
    hashes keys that compare equal alike (``1 == 1.0 == True``), so a dict keyed by the
    key is exact. The cache is dropped when it holds many more keys than the last
    snapshot (keys that left the state), so its size stays in proportion to the state.

    Args:
        max_parallelism: number of key groups.
    """

    __slots__ = ("_map", "max_parallelism")

    def __init__(self, max_parallelism: int) -> None:
        self.max_parallelism = max_parallelism
        self._map: dict[Any, int] = {}

    def __len__(self) -> int:
        """Number of remembered keys."""
        return len(self._map)

    def groups(self, keys: list[Any]) -> list[int]:
        """The key group of every key of ``keys``, in order.

        Raises:
            TypeError: a key has a type the stable hash does not support.
        """
        m = self._map
        try:
            return list(map(m.__getitem__, keys))  # usually every key is known
        except KeyError:
            pass
        missing = [k for k in keys if k not in m]
        m.update(zip(missing, key_groups_of(missing, self.max_parallelism)))
        return list(map(m.__getitem__, keys))

    def trim(self, live_keys: int) -> None:
        """Forget everything if the cache outgrew ``live_keys`` (the keys the last
        snapshot held) by far."""
        if len(self._map) > 2 * live_keys + 4096:
            self._map = {}


_Copied = tuple[str, str, dict[Any, Any], dict[Any, Any], int | None]
"""``(name, kind, void copy, namespaced copy, TTL deadline)``."""


def _group(
    copies: list[_Copied],
    max_parallelism: int,
    cache: KeyGroupCache | None = None,
) -> dict[int, dict[str, dict[Any, dict[Any, Any]]]]:
    """Group copied tables by key group: ``{kg: {name: {namespace: {key: value}}}}``.

    Entries expired at ``deadline`` (full-snapshot TTL cleanup) are left out; key groups
    come from ``cache`` (a fresh one if None).
    """
    if cache is None:
        cache = KeyGroupCache(max_parallelism)
    groups = cache.groups
    out: dict[int, dict[str, dict[Any, dict[Any, Any]]]] = {}
    live = 0
    for name, kind, void, namespaced, deadline in copies:
        if void:
            keys = list(void)
            live += len(keys)
            buckets: list[dict[Any, Any] | None] = [None] * max_parallelism
            for k, kg, v in zip(keys, groups(keys), void.values()):
                if deadline is not None:
                    v = unexpired(kind, v, deadline)
                    if v is None:
                        continue
                b = buckets[kg]
                if b is None:
                    b = buckets[kg] = {}
                b[k] = v
            for kg, b in enumerate(buckets):
                if b:
                    out.setdefault(kg, {}).setdefault(name, {})[None] = b
        if namespaced:
            cks = list(namespaced)
            live += len(cks)
            kgs = groups([ck[0] for ck in cks])
            ns_buckets: list[dict[Any, dict[Any, Any]] | None] = [None] * max_parallelism
            for ck, kg, v in zip(cks, kgs, namespaced.values()):
                if deadline is not None:
                    v = unexpired(kind, v, deadline)
                    if v is None:
                        continue
                nb = ns_buckets[kg]
                if nb is None:
                    nb = ns_buckets[kg] = {}
                t = nb.get(ck[1])
                if t is None:
                    t = nb[ck[1]] = {}
                t[ck[0]] = v
            for kg, nb in enumerate(ns_buckets):
                if nb:
                    out.setdefault(kg, {}).setdefault(name, {}).update(nb)
    cache.trim(live)
    return out


class HeapKeyedStateBackend(AbstractKeyedStateBackend):
    """Keyed state of one operator subtask in Python dicts (Flink's
    ``HeapKeyedStateBackend``, used by ``HashMapStateBackend``).

    Args:
        max_parallelism: number of key groups.
        key_group_range: the key groups this subtask owns (restore keeps only these);
            default: all.
        clock: TTL clock returning epoch ms (default: the wall clock); tests pass a
            manual clock.

    Raises:
        ConfigurationError: ``max_parallelism`` is out of bounds.
    """

    def __init__(
        self,
        max_parallelism: int,
        key_group_range: KeyGroupRange | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(max_parallelism, key_group_range, clock)
        self._tables: dict[str, HeapStateTable] = {}
        self._policies: dict[str, TtlPolicy] = {}
        self._kg_cache = KeyGroupCache(max_parallelism)

    # -- runtime fast paths ----------------------------------------------------------------
    def _raw_value_table(self, name: str) -> HeapStateTable:
        meta = self._metas.get(name)
        if meta is None:
            self._register(meta_info_for(ValueStateDescriptor(name)))
        elif meta.kind != VALUE or meta.ttl:
            msg = f"state {name!r} is not a value state without TTL; no raw table access"
            raise InvalidProgramError(msg)
        return self._table(name)

    def raw_table(self, name: str) -> dict[Any, Any]:
        """The live ``key -> value`` dict of value state ``name`` in the VOID namespace.

        The runtime's keyed reduce uses it as a fast path (one ``dict.get`` and one store
        per record). The dict is the state itself and stays the same object for the
        backend's life (restore fills it in place).

        Raises:
            InvalidProgramError: ``name`` is registered as another kind or with TTL.
        """
        return self._raw_value_table(name).void

    def raw_namespaced_table(self, name: str) -> dict[tuple[Any, Any], Any]:
        """The live ``(key, namespace) -> value`` dict of value state ``name``.

        Raises:
            InvalidProgramError: ``name`` is registered as another kind or with TTL.
        """
        return self._raw_value_table(name).namespaced

    # -- registration ----------------------------------------------------------------------
    def _table(self, name: str) -> HeapStateTable:
        t = self._tables.get(name)
        if t is None:
            t = self._tables[name] = HeapStateTable()
        return t

    def _create_raw_state(self, meta: StateMetaInfo) -> Any:
        cls = _RAW_CLASSES.get(meta.kind, HeapValueState)
        return cls(self, self._table(meta.name))

    def _ttl_cleanup_hook(
        self, meta: StateMetaInfo, raw: Any, policy: TtlPolicy
    ) -> Callable[[], None] | None:
        self._policies[meta.name] = policy
        if policy.incremental_size <= 0:
            return None
        cleanup = HeapIncrementalCleanup(self._table(meta.name), meta.kind, policy)
        if policy.incremental_every_record:
            self._per_record_cleanups.append(cleanup)
            # Swap in the slower per-record variant only when a state asks for it.
            self.set_current_key = self._set_current_key_with_cleanup  # type: ignore[method-assign]
        return cleanup

    # -- queries ---------------------------------------------------------------------------
    def get_keys(self, state_name: str, namespace: Any) -> list[Any]:
        """Keys with state ``state_name`` in ``namespace`` (a list taken now)."""
        t = self._tables.get(state_name)
        if t is None:
            return []
        if namespace is None:
            return list(t.void)
        return [ck[0] for ck in t.namespaced if ck[1] == namespace]

    def entry_count(self, state_name: str) -> int:
        """Number of stored (key, namespace) entries of a state, expired ones included
        (for tests and metrics)."""
        t = self._tables.get(state_name)
        return 0 if t is None else len(t)

    # -- snapshot / restore ----------------------------------------------------------------
    def snapshot(self, checkpoint_id: int) -> KeyedStateSnapshot:
        """Copy all state (see the module docstring); grouping by key group is lazy."""
        now = self.clock()
        copies: list[_Copied] = []
        for name, t in self._tables.items():
            if not t.void and not t.namespaced:
                continue
            kind = self._metas[name].kind
            copy = _container_copy(kind)
            policy = self._policies.get(name)
            deadline = now - policy.ttl_ms if policy is not None and policy.full_snapshot else None
            copies.append(
                (name, kind, _copy_table(t.void, copy), _copy_table(t.namespaced, copy), deadline)
            )
        return KeyedStateSnapshot(
            encoding="heap",
            checkpoint_id=checkpoint_id,
            max_parallelism=self.max_parallelism,
            key_group_range=self.key_group_range,
            states=dict(self._metas),
            pending=functools.partial(_group, copies, self.max_parallelism, self._kg_cache),
        )

    def restore(self, snapshots: list[Any]) -> None:
        """Load this backend's key groups from heap- or RocksDB-format snapshots.

        Raises:
            InvalidProgramError: a snapshot has an unknown format version, another
                ``max_parallelism``, or state incompatible with registered state.
        """
        start = self.key_group_range.start_key_group
        end = self.key_group_range.end_key_group
        for snap in snapshots:
            if snap is None:
                continue
            check_keyed_snapshot(snap, self.max_parallelism)
            for meta in snap.states.values():
                self._restore_meta(meta)
            for kg, states in snap.key_groups.items():
                if not start <= kg <= end:
                    continue
                for name, data in states.items():
                    meta = snap.states[name]
                    table = self._table(name)
                    copy = _container_copy(meta.kind)
                    items: Iterator[tuple[Any, Any, Any]]
                    if snap.encoding == "heap":
                        items = (
                            (ns, k, v) for ns, entries in data.items() for k, v in entries.items()
                        )
                    else:
                        try:
                            meta.entry_value_serializer()  # the generator needs it
                        except LookupError as e:
                            msg = f"restored state {name!r} cannot be read: {e}"
                            raise StateMigrationError(msg) from e
                        items = heap_entries_from_rocksdb(meta, data)
                    void, namespaced = table.void, table.namespaced
                    for ns, k, v in items:
                        if copy is not None:
                            v = copy(v)
                        if ns is None:
                            void[k] = v
                        else:
                            namespaced[(k, ns)] = v

    def _migrate(self, old: StateMetaInfo, new: StateMetaInfo) -> None:
        """Check a restored state against its new declaration and, if its serializer
        changed compatibly, migrate the restored objects the way RocksDB migrates bytes:
        encode with the old serializer, decode, encode with the new one, decode (so e.g. a
        dataclass that gained a field gets its default, as in RocksDB).

        Raises:
            StateMigrationError: incompatible serializers, or a value that cannot be
                migrated.
        """
        if not old.needs_migration(new):
            return
        table = self._tables.get(old.name)
        if table is None or not (table.void or table.namespaced):
            return
        old_ser, new_ser = old.entry_value_serializer(), new.entry_value_serializer()
        old_s, old_d = old_ser.serialize, old_ser.deserialize
        new_s, new_d = new_ser.serialize, new_ser.deserialize

        def convert(element: Any) -> Any:
            return new_d(new_s(old_d(old_s(element))))

        def convert_list(value: list[Any]) -> list[Any]:
            return [convert(e) for e in value]

        def convert_map(value: dict[Any, Any]) -> dict[Any, Any]:
            return {k: convert(e) for k, e in value.items()}

        per_value: Callable[[Any], Any] = convert
        if old.kind == LIST:
            per_value = convert_list
        elif old.kind == MAP:
            per_value = convert_map
        try:
            for d in (table.void, table.namespaced):
                for k, v in d.items():
                    d[k] = per_value(v)
        except Exception as e:
            raise old.migration_error(new, e) from e

    def _restore_meta(self, meta: StateMetaInfo) -> None:
        old = self._metas.get(meta.name)
        if old is None:
            self._metas[meta.name] = meta
        else:
            old.check_compatible(meta)

    def dispose(self) -> None:
        """Drop all state."""
        self._kg_cache = KeyGroupCache(self.max_parallelism)
        self._tables.clear()
        self._handles.clear()
        self._metas.clear()
        self._per_record_cleanups.clear()
