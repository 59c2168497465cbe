"""State time-to-live (Flink's ``StateTtlConfig``); re-exported by
``strom.datastream.state``."""

from __future__ import annotations

import datetime as _dt
import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = ["StateTtlConfig"]


def _to_ms(ttl: Any) -> int:
    """Convert a TTL given as int ms, ``timedelta`` or ``to_milliseconds()`` object to ms."""
    if isinstance(ttl, _dt.timedelta):
        ms = ttl // _dt.timedelta(milliseconds=1)
    elif isinstance(ttl, bool):
        msg = f"a TTL must be milliseconds (int) or a timedelta, got {ttl!r}"
        raise TypeError(msg)
    elif isinstance(ttl, int):
        ms = ttl
    elif callable(getattr(ttl, "to_milliseconds", None)):
        ms = int(ttl.to_milliseconds())
    else:
        msg = f"a TTL must be milliseconds (int) or a timedelta, got {ttl!r}"
        raise TypeError(msg)
    if ms <= 0:
        msg = f"a TTL must be positive, got {ms} ms"
        raise ValueError(msg)
    return ms


@dataclass(frozen=True)
class StateTtlConfig:
    """Time-to-live of keyed state entries (Flink's ``StateTtlConfig``).

    An entry expires ``ttl_ms`` milliseconds of processing time after its last access
    (creation and writes; reads too with ``UpdateType.OnReadAndWrite``). List elements
    and map entries expire individually. Expired values are always removed when read;
    :meth:`Builder.cleanup_full_snapshot`, :meth:`Builder.cleanup_incrementally` (heap
    backend) and :meth:`Builder.cleanup_in_rocksdb_compact_filter` (RocksDB backend) add
    cleanup of entries that are never read again. Build it with :meth:`new_builder`::

        ttl = (
            StateTtlConfig.new_builder(timedelta(minutes=5))
            .set_update_type(StateTtlConfig.UpdateType.OnReadAndWrite)
            .set_state_visibility(StateTtlConfig.StateVisibility.NeverReturnExpired)
            .cleanup_incrementally(10, False)
            .build()
        )

    Attributes:
        ttl_ms: the time-to-live in milliseconds.
        update_type: when the last-access timestamp is refreshed.
        state_visibility: whether expired values not yet cleaned up may be returned.
        ttl_time_characteristic: the clock (processing time only).
        cleanup_strategies: the configured cleanups of expired entries.
    """

    @dataclass(frozen=True)
    class IncrementalCleanupStrategy:
        """Check ``cleanup_size`` entries per state access (and per record if asked)."""

        cleanup_size: int
        every_record: bool

        def get_cleanup_size(self) -> int:
            """Entries checked per state access."""
            return self.cleanup_size

        def run_cleanup_for_every_record(self) -> bool:
            """Whether the cleanup also runs once per processed record."""
            return self.every_record

    @dataclass(frozen=True)
    class RocksdbCompactFilterCleanupStrategy:
        """Drop expired entries while RocksDB compacts (refreshing the time every N entries)."""

        query_time_after_num_entries: int

        def get_query_time_after_num_entries(self) -> int:
            """Entries processed between two reads of the current time."""
            return self.query_time_after_num_entries

    @dataclass(frozen=True)
    class CleanupStrategies:
        """Which background cleanups of expired state are configured."""

        full_snapshot: bool = False
        incremental: StateTtlConfig.IncrementalCleanupStrategy | None = None
        rocksdb_compact_filter: StateTtlConfig.RocksdbCompactFilterCleanupStrategy | None = None
        is_cleanup_in_background: bool = True

        def in_full_snapshot(self) -> bool:
            """True if expired entries are left out of full snapshots."""
            return self.full_snapshot

        def get_incremental_cleanup_strategy(
            self,
        ) -> StateTtlConfig.IncrementalCleanupStrategy | None:
            """The incremental cleanup (heap backend), or None."""
            return self.incremental

        def get_rocksdb_compact_filter_cleanup_strategy(
            self,
        ) -> StateTtlConfig.RocksdbCompactFilterCleanupStrategy | None:
            """The compaction-filter cleanup (RocksDB backend), or None."""
            return self.rocksdb_compact_filter

    class UpdateType(enum.Enum):
        """When the last-access timestamp of a state entry is refreshed."""

        Disabled = 0
        """TTL is disabled; state never expires."""
        OnCreateAndWrite = 1
        """Set when the entry is created and on every write."""
        OnReadAndWrite = 2
        """As ``OnCreateAndWrite``, and also on every read."""

    class StateVisibility(enum.Enum):
        """Whether an expired value that is still stored may be returned."""

        ReturnExpiredIfNotCleanedUp = 0
        """Return an expired value once if it was not cleaned up yet (it is removed then)."""
        NeverReturnExpired = 1
        """Treat expired values as absent."""

    class TtlTimeCharacteristic(enum.Enum):
        """The clock of state TTL."""

        ProcessingTime = 0
        """The wall clock of the task (epoch milliseconds)."""

    ttl_ms: int
    update_type: StateTtlConfig.UpdateType = UpdateType.OnCreateAndWrite
    state_visibility: StateTtlConfig.StateVisibility = StateVisibility.NeverReturnExpired
    ttl_time_characteristic: StateTtlConfig.TtlTimeCharacteristic = (
        TtlTimeCharacteristic.ProcessingTime
    )
    cleanup_strategies: StateTtlConfig.CleanupStrategies = field(default_factory=CleanupStrategies)

    def __post_init__(self) -> None:
        """Validate the TTL."""
        object.__setattr__(self, "ttl_ms", _to_ms(self.ttl_ms))

    @staticmethod
    def new_builder(ttl: int | _dt.timedelta | Any) -> StateTtlConfig.Builder:
        """Start building a config with the given time-to-live.

        Args:
            ttl: milliseconds (int), a ``datetime.timedelta``, or an object with
                ``to_milliseconds()`` (PyFlink's ``Time``/``Duration``).

        Raises:
            TypeError: ``ttl`` has another type.
            ValueError: ``ttl`` is not positive.
        """
        return StateTtlConfig.Builder(ttl)

    def get_ttl(self) -> _dt.timedelta:
        """The time-to-live."""
        return _dt.timedelta(milliseconds=self.ttl_ms)

    def get_update_type(self) -> StateTtlConfig.UpdateType:
        """When the last-access timestamp is refreshed."""
        return self.update_type

    def get_state_visibility(self) -> StateTtlConfig.StateVisibility:
        """Whether expired values not yet cleaned up may be returned."""
        return self.state_visibility

    def get_ttl_time_characteristic(self) -> StateTtlConfig.TtlTimeCharacteristic:
        """The clock TTL uses."""
        return self.ttl_time_characteristic

    def get_cleanup_strategies(self) -> StateTtlConfig.CleanupStrategies:
        """The configured cleanup strategies."""
        return self.cleanup_strategies

    def is_enabled(self) -> bool:
        """False if the update type is ``Disabled``."""
        return self.update_type is not StateTtlConfig.UpdateType.Disabled

    class Builder:
        """Builds a :class:`StateTtlConfig` (defaults: ``OnCreateAndWrite``,
        ``NeverReturnExpired``, no extra cleanup)."""

        def __init__(self, ttl: int | _dt.timedelta | Any) -> None:
            """Start with the given TTL (see :meth:`StateTtlConfig.new_builder`)."""
            self._ttl_ms = _to_ms(ttl)
            self._update_type = StateTtlConfig.UpdateType.OnCreateAndWrite
            self._visibility = StateTtlConfig.StateVisibility.NeverReturnExpired
            self._characteristic = StateTtlConfig.TtlTimeCharacteristic.ProcessingTime
            self._full_snapshot = False
            self._incremental: StateTtlConfig.IncrementalCleanupStrategy | None = None
            self._compact: StateTtlConfig.RocksdbCompactFilterCleanupStrategy | None = None
            self._in_background = True

        def set_update_type(self, update_type: StateTtlConfig.UpdateType) -> StateTtlConfig.Builder:
            """Set when the last-access timestamp is refreshed."""
            self._update_type = StateTtlConfig.UpdateType(update_type)
            return self

        def update_ttl_on_create_and_write(self) -> StateTtlConfig.Builder:
            """Refresh the timestamp on creation and writes only."""
            return self.set_update_type(StateTtlConfig.UpdateType.OnCreateAndWrite)

        def update_ttl_on_read_and_write(self) -> StateTtlConfig.Builder:
            """Refresh the timestamp on reads too."""
            return self.set_update_type(StateTtlConfig.UpdateType.OnReadAndWrite)

        def set_state_visibility(
            self, state_visibility: StateTtlConfig.StateVisibility
        ) -> StateTtlConfig.Builder:
            """Set whether expired values not yet cleaned up may be returned."""
            self._visibility = StateTtlConfig.StateVisibility(state_visibility)
            return self

        def return_expired_if_not_cleaned_up(self) -> StateTtlConfig.Builder:
            """Return an expired value once if it is still stored."""
            return self.set_state_visibility(
                StateTtlConfig.StateVisibility.ReturnExpiredIfNotCleanedUp
            )

        def never_return_expired(self) -> StateTtlConfig.Builder:
            """Never return expired values."""
            return self.set_state_visibility(StateTtlConfig.StateVisibility.NeverReturnExpired)

        def set_ttl_time_characteristic(
            self, ttl_time_characteristic: StateTtlConfig.TtlTimeCharacteristic
        ) -> StateTtlConfig.Builder:
            """Set the clock (only processing time exists)."""
            self._characteristic = StateTtlConfig.TtlTimeCharacteristic(ttl_time_characteristic)
            return self

        def use_processing_time(self) -> StateTtlConfig.Builder:
            """Use processing time (the default and only choice)."""
            return self.set_ttl_time_characteristic(
                StateTtlConfig.TtlTimeCharacteristic.ProcessingTime
            )

        def cleanup_full_snapshot(self) -> StateTtlConfig.Builder:
            """Leave expired entries out of full snapshots (checkpoints and savepoints).

            The entries stay in the local state until read or otherwise cleaned up.
            """
            self._full_snapshot = True
            return self

        def cleanup_incrementally(
            self, cleanup_size: int, run_cleanup_for_every_record: bool
        ) -> StateTtlConfig.Builder:
            """Check ``cleanup_size`` entries for expiry on every access of the state.

            The heap backend keeps a lazy iterator over all entries of the state and
            removes expired ones as it advances; with ``run_cleanup_for_every_record`` it
            also advances once per processed record (each ``set_current_key``). As in
            Flink this has no effect in the RocksDB backend.

            Raises:
                ValueError: ``cleanup_size`` is negative.
            """
            if cleanup_size < 0:
                msg = f"cleanup_size must be >= 0, got {cleanup_size}"
                raise ValueError(msg)
            self._incremental = StateTtlConfig.IncrementalCleanupStrategy(
                int(cleanup_size), bool(run_cleanup_for_every_record)
            )
            return self

        def cleanup_in_rocksdb_compact_filter(
            self, query_time_after_num_entries: int
        ) -> StateTtlConfig.Builder:
            """Drop expired entries when the RocksDB backend compacts the state.

            The current time is re-read after every ``query_time_after_num_entries``
            entries. RocksDB cannot call Python during its own background compactions, so
            Strom's RocksDB backend applies this filter in its compaction pass
            (``RocksDBKeyedStateBackend.compact()``). No effect in the heap backend.

            Raises:
                ValueError: ``query_time_after_num_entries`` is not positive.
            """
            if query_time_after_num_entries <= 0:
                msg = (
                    f"query_time_after_num_entries must be > 0, got {query_time_after_num_entries}"
                )
                raise ValueError(msg)
            self._compact = StateTtlConfig.RocksdbCompactFilterCleanupStrategy(
                int(query_time_after_num_entries)
            )
            return self

        def disable_cleanup_in_background(self) -> StateTtlConfig.Builder:
            """Mark background cleanup as disabled (explicitly configured ones still run)."""
            self._in_background = False
            return self

        def set_ttl(self, ttl: int | _dt.timedelta | Any) -> StateTtlConfig.Builder:
            """Change the time-to-live."""
            self._ttl_ms = _to_ms(ttl)
            return self

        def build(self) -> StateTtlConfig:
            """The immutable config."""
            return StateTtlConfig(
                self._ttl_ms,
                self._update_type,
                self._visibility,
                self._characteristic,
                StateTtlConfig.CleanupStrategies(
                    self._full_snapshot, self._incremental, self._compact, self._in_background
                ),
            )


