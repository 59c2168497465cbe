"""State time-to-live: wrappers that add expiry to any backend's raw states (Flink's
``TtlStateFactory``/``AbstractTtlState``).

A TTL state stores ``(value, last_access_ms)`` pairs in a raw state of its backend (list
state: one pair per element; map state: one pair per user key). On every read the wrapper
checks ``last_access_ms + ttl_ms <= now``:

* expired: the entry is removed (cleanup on read, always on), and returned one last time
  only with ``StateVisibility.ReturnExpiredIfNotCleanedUp``;
* not expired: with ``UpdateType.OnReadAndWrite`` its timestamp is refreshed.

Writes always store the current time. Reducing and aggregating state never combine a new
value with an expired accumulator (``value_for_merge``). Entries that are never read again
are removed by the backend's background cleanups (full snapshot, incremental, RocksDB
compaction), configured in :class:`~strom.datastream.state.StateTtlConfig`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from strom._state.lists import checked_list
from strom.datastream.state import ListState, MapState, StateTtlConfig, ValueState

__all__ = ["TtlListState", "TtlMapState", "TtlPolicy", "TtlValueState"]


class TtlPolicy:
    """A :class:`StateTtlConfig` resolved for the hot path, plus the clock.

    Attributes:
        ttl_ms: time-to-live in ms.
        update_on_read: refresh timestamps on reads.
        return_expired: return expired values not yet cleaned up.
        clock: returns the current processing time in epoch ms.
        full_snapshot: leave expired entries out of snapshots.
        incremental_size: entries checked per access (incremental cleanup), or 0.
        incremental_every_record: also run the incremental cleanup per record.
        compact_query_interval: compaction filter time refresh interval, or 0 (off).
    """

    __slots__ = (
        "clock",
        "compact_query_interval",
        "full_snapshot",
        "incremental_every_record",
        "incremental_size",
        "return_expired",
        "ttl_ms",
        "update_on_read",
    )

    def __init__(self, config: StateTtlConfig, clock: Callable[[], int]) -> None:
        self.ttl_ms = config.ttl_ms
        self.update_on_read = config.update_type is StateTtlConfig.UpdateType.OnReadAndWrite
        self.return_expired = (
            config.state_visibility is StateTtlConfig.StateVisibility.ReturnExpiredIfNotCleanedUp
        )
        self.clock = clock
        strategies = config.cleanup_strategies
        self.full_snapshot = strategies.full_snapshot
        inc = strategies.incremental
        self.incremental_size = inc.cleanup_size if inc is not None else 0
        self.incremental_every_record = inc.every_record if inc is not None else False
        compact = strategies.rocksdb_compact_filter
        self.compact_query_interval = (
            compact.query_time_after_num_entries if compact is not None else 0
        )


class _TtlView:
    """What the TTL states share: the raw state they wrap (storing ``(value, ts)``), the
    resolved policy, the access hook and namespace scoping.

    Args:
        inner: the raw state.
        policy: the resolved TTL config.
        on_access: run after every access (incremental cleanup), or None.
    """

    __slots__ = ("_clock", "_inner", "_on_access", "_ret_exp", "_ttl", "_upd_read")

    def __init__(
        self, inner: Any, policy: TtlPolicy, on_access: Callable[[], None] | None = None
    ) -> None:
        self._inner = inner
        self._ttl = policy.ttl_ms
        self._upd_read = policy.update_on_read
        self._ret_exp = policy.return_expired
        self._clock = policy.clock
        self._on_access = on_access

    def set_current_namespace(self, namespace: Any) -> None:
        """Scope access to ``namespace``."""
        self._inner.set_current_namespace(namespace)

    def get_current_namespace(self) -> Any:
        """The current namespace."""
        return self._inner.get_current_namespace()


class TtlValueState(_TtlView, ValueState[Any]):
    """``ValueState`` with TTL over a raw value state storing ``(value, ts)``.

    Args:
        inner: the raw value state.
        policy: the resolved TTL config.
        on_access: run after every access (incremental cleanup), or None.
    """

    __slots__ = ()

    def value(self) -> Any:
        """The current key's value if not expired (see the module docstring)."""
        w = self._inner.value()
        result = None
        if w is not None:
            now = self._clock()
            if w[1] + self._ttl <= now:
                self._inner.clear()
                if self._ret_exp:
                    result = w[0]
            else:
                result = w[0]
                if self._upd_read:
                    self._inner.update((result, now))
        if self._on_access is not None:
            self._on_access()
        return result

    def value_for_merge(self) -> Any:
        """The stored value unless expired (no timestamp refresh; a write follows)."""
        w = self._inner.value()
        if w is None or w[1] + self._ttl <= self._clock():
            return None
        return w[0]

    def update(self, value: Any) -> None:
        """Store ``value`` with the current time (None clears)."""
        if value is None:
            self._inner.clear()
        else:
            self._inner.update((value, self._clock()))
        if self._on_access is not None:
            self._on_access()

    def clear(self) -> None:
        """Remove the current key's value."""
        self._inner.clear()


class TtlListState(_TtlView, ListState[Any]):
    """``ListState`` with per-element TTL over a raw list state storing ``(element, ts)``.

    Args:
        inner: the raw list state.
        policy: the resolved TTL config.
        on_access: run after every access (incremental cleanup), or None.
    """

    __slots__ = ()

    def get(self) -> list[Any]:
        """The current key's unexpired elements (expired ones too if visible), in order.

        Expired elements are removed; with ``OnReadAndWrite`` the timestamps of the
        unexpired ones are refreshed.
        """
        stored = self._inner.get()
        result: list[Any] = []
        if stored:
            now = self._clock()
            deadline = now - self._ttl  # expired iff ts <= deadline
            alive = [w for w in stored if w[1] > deadline]
            source = stored if self._ret_exp else alive
            result = [w[0] for w in source]
            if self._upd_read and alive:
                self._inner.update([(w[0], now) for w in alive])
            elif len(alive) != len(stored):
                self._inner.update(alive)
        if self._on_access is not None:
            self._on_access()
        return result

    def add(self, value: Any) -> None:
        """Append ``value`` with the current time.

        Raises:
            ValueError: ``value`` is None.
        """
        if value is None:
            msg = "cannot add None to a ListState"
            raise ValueError(msg)
        self._inner.add((value, self._clock()))
        if self._on_access is not None:
            self._on_access()

    def add_all(self, values: list[Any]) -> None:
        """Append ``values`` with the current time."""
        now = self._clock()
        self._inner.add_all(_wrap_all(values, now))
        if self._on_access is not None:
            self._on_access()

    def update(self, values: list[Any]) -> None:
        """Replace the list with ``values`` stamped with the current time."""
        now = self._clock()
        self._inner.update(_wrap_all(values, now))
        if self._on_access is not None:
            self._on_access()

    def clear(self) -> None:
        """Remove the current key's list."""
        self._inner.clear()

    def merge_namespaces(self, target: Any, sources: Iterable[Any]) -> None:
        """Move the elements of ``sources`` (with their timestamps) to ``target``."""
        self._inner.merge_namespaces(target, sources)


def _wrap_all(values: Any, now: int) -> list[tuple[Any, int]]:
    """``[(v, now) for v in values]``, rejecting None (list state holds no None).

    Raises:
        ValueError: ``values`` is None or contains None.
    """
    return [(v, now) for v in checked_list(values)]


class TtlMapState(_TtlView, MapState[Any, Any]):
    """``MapState`` with per-entry TTL over a raw map state storing ``uk -> (value, ts)``.

    Args:
        inner: the raw map state.
        policy: the resolved TTL config.
        on_access: run after every access (incremental cleanup), or None.
    """

    __slots__ = ()

    def _after(self) -> None:
        if self._on_access is not None:
            self._on_access()

    def _read(self, key: Any) -> tuple[bool, Any]:
        """``(visible, value)`` of one entry, applying cleanup on read."""
        w = self._inner.get(key)
        if w is None:
            return False, None
        now = self._clock()
        if w[1] + self._ttl <= now:
            self._inner.remove(key)
            return self._ret_exp, w[0]
        if self._upd_read:
            self._inner.put(key, (w[0], now))
        return True, w[0]

    def get(self, key: Any) -> Any:
        """The value of ``key`` if present and not expired (or visible), else None."""
        visible, value = self._read(key)
        self._after()
        return value if visible else None

    def contains(self, key: Any) -> bool:
        """True if ``key`` has a visible entry."""
        visible, _ = self._read(key)
        self._after()
        return visible

    def put(self, key: Any, value: Any) -> None:
        """Map ``key`` to ``value`` with the current time."""
        self._inner.put(key, (value, self._clock()))
        self._after()

    def put_all(self, dict_value: dict[Any, Any]) -> None:
        """Copy all mappings with the current time."""
        now = self._clock()
        self._inner.put_all({k: (v, now) for k, v in dict_value.items()})
        self._after()

    def remove(self, key: Any) -> None:
        """Remove ``key``."""
        self._inner.remove(key)
        self._after()

    def items(self) -> list[tuple[Any, Any]]:
        """All visible ``(key, value)`` pairs; expired entries are removed."""
        stored = self._inner.items()
        out: list[tuple[Any, Any]] = []
        if stored:
            now = self._clock()
            deadline = now - self._ttl
            expired = []
            refreshed = {}
            for k, w in stored:
                if w[1] > deadline:
                    out.append((k, w[0]))
                    if self._upd_read:
                        refreshed[k] = (w[0], now)
                else:
                    expired.append(k)
                    if self._ret_exp:
                        out.append((k, w[0]))
            for k in expired:
                self._inner.remove(k)
            if refreshed:
                self._inner.put_all(refreshed)
        self._after()
        return out

    def keys(self) -> list[Any]:
        """All visible keys."""
        return [k for k, _ in self.items()]

    def values(self) -> list[Any]:
        """All visible values."""
        return [v for _, v in self.items()]

    def is_empty(self) -> bool:
        """True if no entry is visible (expired entries are removed)."""
        return not self.items()

    def clear(self) -> None:
        """Remove all entries of the current key."""
        self._inner.clear()
