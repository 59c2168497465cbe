"""The keyed state backend contract used by the runtime's keyed operators.

One backend instance serves one keyed operator subtask and owns the key groups of its
:class:`~strom._runtime.key_groups.KeyGroupRange`. The operator sets the current key per
record (:meth:`KeyedStateBackend.set_current_key`); state handles created by
:meth:`KeyedStateBackend.get_or_create_keyed_state` read and write the state of the
current key and of the handle's current namespace (:data:`VOID_NAMESPACE` unless a window
operator sets a window with ``set_current_namespace``). Snapshots are organised by key
group so that a restore can select any key-group range (rescaling), and heap and RocksDB
snapshots share one format family (:mod:`strom._state.snapshot`).

Handle types returned by ``get_or_create_keyed_state`` for each descriptor:

==============================  ========================================================
descriptor                      handle (public ABC) + ``set_current_namespace(ns)``
==============================  ========================================================
``ValueStateDescriptor``        ``ValueState``
``ListStateDescriptor``         ``ListState`` (+ ``merge_namespaces``)
``MapStateDescriptor``          ``MapState``
``ReducingStateDescriptor``     ``ReducingState`` (+ ``merge_namespaces``)
``AggregatingStateDescriptor``  ``AggregatingState`` (+ ``merge_namespaces``)
==============================  ========================================================

Lifecycle: create -> (``restore``) -> register states / process -> ``snapshot``\\* ->
``dispose``. A backend is used by its task's thread only.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from typing import Any, Protocol

from strom._runtime.key_groups import KeyGroupRange, KeyGroupRangeAssignment
from strom._state.derived import AggregatingStateImpl, ReducingStateImpl
from strom._state.key_layout import KEY_SERIALIZER
from strom._state.serializers import serializer_for
from strom._state.snapshot import (
    AGGREGATING,
    LIST,
    MAP,
    REDUCING,
    VALUE,
    StateMetaInfo,
)
from strom._state.ttl import TtlListState, TtlMapState, TtlPolicy, TtlValueState
from strom.datastream.state import (
    AggregatingStateDescriptor,
    ListStateDescriptor,
    MapStateDescriptor,
    ReducingStateDescriptor,
    StateDescriptor,
    ValueStateDescriptor,
)
from strom.errors import InvalidProgramError

__all__ = [
    "VOID_NAMESPACE",
    "AbstractKeyedStateBackend",
    "Clock",
    "InternalKvState",
    "KeyedStateBackend",
    "kind_of",
    "meta_info_for",
    "system_clock_ms",
]

VOID_NAMESPACE = None
"""The namespace of state outside windows."""

Clock = Callable[[], int]
"""A processing-time clock: returns epoch milliseconds."""


def system_clock_ms() -> int:
    """The wall clock in epoch milliseconds (the default TTL clock)."""
    return time.time_ns() // 1_000_000


class InternalKvState(Protocol):
    """What every keyed state handle offers the runtime beyond its public ABC."""

    def set_current_namespace(self, namespace: Any) -> None:
        """Scope subsequent access to ``namespace`` (hashable and picklable)."""

    def get_current_namespace(self) -> Any:
        """The current namespace."""

    def clear(self) -> None:
        """Remove the state of the current key and namespace."""


_KINDS: dict[type, str] = {
    ValueStateDescriptor: VALUE,
    ListStateDescriptor: LIST,
    MapStateDescriptor: MAP,
    ReducingStateDescriptor: REDUCING,
    AggregatingStateDescriptor: AGGREGATING,
}


def kind_of(descriptor: StateDescriptor) -> str:
    """The state kind (``"value"``, ``"list"`` ...) of a descriptor.

    Raises:
        TypeError: not a keyed state descriptor.
    """
    kind = _KINDS.get(type(descriptor))
    if kind is None:
        for cls, k in _KINDS.items():
            if isinstance(descriptor, cls):
                return k
        msg = f"not a keyed state descriptor: {descriptor!r}"
        raise TypeError(msg)
    return kind


def meta_info_for(descriptor: StateDescriptor) -> StateMetaInfo:
    """The :class:`StateMetaInfo` a descriptor declares (serializers from its type info)."""
    kind = kind_of(descriptor)
    if isinstance(descriptor, MapStateDescriptor):
        value_ser = serializer_for(descriptor.value_type_info)
        user_key = KEY_SERIALIZER.snapshot_configuration()
    else:
        value_ser = serializer_for(descriptor.type_info)
        user_key = None
    return StateMetaInfo(
        descriptor.name,
        kind,
        value_ser.snapshot_configuration(),
        user_key,
        descriptor.ttl_config is not None,
    )


class KeyedStateBackend(abc.ABC):
    """Keyed state of one operator subtask (Flink's ``KeyedStateBackend``).

    Attributes:
        max_parallelism: number of key groups.
        key_group_range: the key groups this backend owns.
    """

    max_parallelism: int
    key_group_range: KeyGroupRange

    @abc.abstractmethod
    def set_current_key(self, key: Any) -> None:
        """Scope subsequent state access to ``key`` (called per record; keep it cheap)."""

    @abc.abstractmethod
    def get_current_key(self) -> Any:
        """The current key."""

    @abc.abstractmethod
    def get_or_create_keyed_state(self, descriptor: Any) -> Any:
        """Return the state handle for ``descriptor`` (one handle per state name).

        The handle implements the descriptor's public state ABC and
        :class:`InternalKvState`. See the module docstring for the mapping.

        Raises:
            InvalidProgramError: the name is already used by a state of another kind or
                TTL setting, or restored state of that name is incompatible.
            TypeError: ``descriptor`` is not a keyed state descriptor.
        """

    @abc.abstractmethod
    def get_keys(self, state_name: str, namespace: Any) -> list[Any]:
        """Keys that have state ``state_name`` in ``namespace`` (Flink's ``getKeys``).

        Returns a list taken when called, so state may be changed while iterating it.
        Unknown state names yield nothing.
        """

    def apply_to_all_keys(
        self,
        namespace: Any,
        descriptor: StateDescriptor,
        function: Callable[[Any, Any], None],
    ) -> None:
        """Call ``function(key, state)`` for every key with state in ``namespace``.

        Used by ``KeyedBroadcastProcessFunction``'s ``apply_to_keyed_state``. The state
        handle is scoped to each key in turn; the function may read, update or clear it.
        The current key and the handle's namespace are restored afterwards.
        """
        state = self.get_or_create_keyed_state(descriptor)
        keys = list(self.get_keys(descriptor.name, namespace))
        previous_key = self.get_current_key()
        previous_ns = state.get_current_namespace()
        state.set_current_namespace(namespace)
        try:
            for key in keys:
                self.set_current_key(key)
                function(key, state)
        finally:
            state.set_current_namespace(previous_ns)
            self.set_current_key(previous_key)

    @abc.abstractmethod
    def snapshot(self, checkpoint_id: int) -> Any:
        """A picklable, versioned snapshot of all state, grouped by key group."""

    @abc.abstractmethod
    def restore(self, snapshots: list[Any]) -> None:
        """Load the key groups of this backend's range from one or more snapshots."""

    def dispose(self) -> None:  # noqa: B027 - optional hook
        """Release memory and local files; the backend is unusable afterwards."""


class AbstractKeyedStateBackend(KeyedStateBackend):
    """Shared logic of the heap and RocksDB backends: state registration, TTL wrapping
    and the reducing/aggregating views over a value store.

    Subclasses implement the raw value/list/map states (:meth:`_create_raw_state`) that
    store the *internal* values (``(value, last_access_ms)`` tuples under TTL).

    Args:
        max_parallelism: number of key groups.
        key_group_range: the key groups this backend owns (default: all).
        clock: TTL clock returning epoch ms (default: the wall clock).
    """

    def __init__(
        self,
        max_parallelism: int,
        key_group_range: KeyGroupRange | None = None,
        clock: Clock | None = None,
    ) -> None:
        KeyGroupRangeAssignment.check_max_parallelism(max_parallelism)
        self.max_parallelism = max_parallelism
        self.key_group_range = (
            key_group_range
            if key_group_range is not None
            else KeyGroupRange(0, max_parallelism - 1)
        )
        self.clock: Clock = clock if clock is not None else system_clock_ms
        self.current_key: Any = None
        self._metas: dict[str, StateMetaInfo] = {}
        self._handles: dict[str, tuple[type, Any]] = {}
        self._per_record_cleanups: list[Callable[[], None]] = []

    # -- keys ------------------------------------------------------------------------------
    def set_current_key(self, key: Any) -> None:
        """Scope state access to ``key``."""
        self.current_key = key

    def _set_current_key_with_cleanup(self, key: Any) -> None:
        """``set_current_key`` plus the per-record incremental TTL cleanups."""
        self.current_key = key
        for run in self._per_record_cleanups:
            run()

    def get_current_key(self) -> Any:
        """The current key."""
        return self.current_key

    # -- registration ----------------------------------------------------------------------
    def get_or_create_keyed_state(self, descriptor: Any) -> Any:
        """Return (creating on first use) the handle for ``descriptor``."""
        try:
            entry = self._handles.get(descriptor.name)
        except AttributeError:
            entry = None  # not a descriptor: kind_of() below raises TypeError
        if entry is not None and entry[0] is type(descriptor):
            return entry[1]
        meta = meta_info_for(descriptor)
        if entry is not None:
            msg = (
                f"state {descriptor.name!r} is already registered as "
                f"{self._metas[descriptor.name].kind} state; cannot register it as "
                f"{meta.kind} state"
            )
            raise InvalidProgramError(msg)
        self._register(meta)
        raw = self._create_raw_state(meta)
        handle = self._wrap(raw, meta, descriptor)
        self._handles[descriptor.name] = (type(descriptor), handle)
        return handle

    def _register(self, meta: StateMetaInfo) -> None:
        """Record ``meta`` for a newly requested state, checking restored state.

        Raises:
            InvalidProgramError: restored state of that name is incompatible.
        """
        old = self._metas.get(meta.name)
        if old is not None:
            old.check_compatible(meta)
            self._migrate(old, meta)
        self._metas[meta.name] = meta

    def _migrate(self, old: StateMetaInfo, new: StateMetaInfo) -> None:
        """Re-encode restored values whose serializer changed (RocksDB); heap: nothing."""

    def _wrap(self, raw: Any, meta: StateMetaInfo, descriptor: StateDescriptor) -> Any:
        """Add TTL and reducing/aggregating logic on top of a raw state."""
        cfg = descriptor.ttl_config
        store = raw
        if cfg is not None:
            policy = TtlPolicy(cfg, self.clock)
            on_access = self._ttl_cleanup_hook(meta, raw, policy)
            if meta.kind == LIST:
                return TtlListState(raw, policy, on_access)
            if meta.kind == MAP:
                return TtlMapState(raw, policy, on_access)
            store = TtlValueState(raw, policy, on_access)
            if meta.kind == VALUE:
                return store
        if meta.kind == REDUCING:
            assert isinstance(descriptor, ReducingStateDescriptor)
            return ReducingStateImpl(store, descriptor.get_reduce_function())
        if meta.kind == AGGREGATING:
            assert isinstance(descriptor, AggregatingStateDescriptor)
            return AggregatingStateImpl(store, descriptor.get_agg_function())
        return store

    def _ttl_cleanup_hook(
        self, meta: StateMetaInfo, raw: Any, policy: TtlPolicy
    ) -> Callable[[], None] | None:
        """A callable run after each access of a TTL state (incremental cleanup), or None."""
        return None

    @abc.abstractmethod
    def _create_raw_state(self, meta: StateMetaInfo) -> Any:
        """Create the raw value (also for reducing/aggregating), list or map state."""

    def registered_state_names(self) -> list[str]:
        """Names of all states known to the backend (registered or restored)."""
        return sorted(self._metas)
