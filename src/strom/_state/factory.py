"""Creates the state backends a job's configuration asks for."""

from __future__ import annotations

from typing import Any

from strom._runtime.key_groups import KeyGroupRangeAssignment
from strom._state.backend import Clock, KeyedStateBackend
from strom._state.operator import OperatorStateBackend
from strom.errors import ConfigurationError

__all__ = ["create_keyed_state_backend", "create_operator_state_backend"]

WRITE_CACHE_SIZE_KEY = "state.backend.rocksdb.write-cache-size"
"""Optional config key: entries per state in the RocksDB backend's Python write cache."""


def create_keyed_state_backend(
    config: dict[str, Any],
    job_id: str,
    operator_uid: str,
    subtask_index: int,
    parallelism: int,
    max_parallelism: int,
    *,
    clock: Clock | None = None,
) -> KeyedStateBackend:
    """The keyed backend of one keyed operator subtask.

    The backend owns the key-group range
    ``KeyGroupRangeAssignment.compute_key_group_range_for_operator_index(max_parallelism,
    parallelism, subtask_index)``.

    Args:
        config: job configuration values: ``state.backend`` (``"hashmap"`` default or
            ``"rocksdb"``), ``state.backend.rocksdb.localdir`` (``""`` = a temporary
            directory), ``state.backend.incremental``.
        job_id: hex job id (RocksDB working directory name).
        operator_uid: the operator's uid (RocksDB working directory name).
        subtask_index: the subtask.
        parallelism: the operator's parallelism.
        max_parallelism: number of key groups.
        clock: processing-time clock for state TTL (epoch ms); None = the wall clock.

    Raises:
        ConfigurationError: unknown ``state.backend`` or out-of-bounds parallelism.
    """
    kind = str(config.get("state.backend", "hashmap")).lower()
    key_groups = KeyGroupRangeAssignment.compute_key_group_range_for_operator_index(
        max_parallelism, parallelism, subtask_index
    )
    if kind in ("hashmap", "heap", "filesystem"):
        from strom._state.heap import HeapKeyedStateBackend

        return HeapKeyedStateBackend(max_parallelism, key_groups, clock=clock)
    if kind == "rocksdb":
        from strom._state.rocksdb import RocksDBKeyedStateBackend
        from strom._state.rocksdb.options import DEFAULT_WRITE_CACHE_SIZE

        return RocksDBKeyedStateBackend(
            max_parallelism,
            key_groups,
            local_dir=str(config.get("state.backend.rocksdb.localdir") or "") or None,
            job_id=job_id,
            operator_uid=operator_uid,
            subtask_index=subtask_index,
            clock=clock,
            incremental=bool(config.get("state.backend.incremental", True)),
            write_cache_size=int(config.get(WRITE_CACHE_SIZE_KEY, DEFAULT_WRITE_CACHE_SIZE)),
        )
    msg = f"unknown state.backend {kind!r}: use 'hashmap' or 'rocksdb'"
    raise ConfigurationError(msg)


def create_operator_state_backend(
    subtask_index: int = 0, parallelism: int = 1
) -> OperatorStateBackend:
    """The operator (non-keyed) state backend of one subtask (always on the heap)."""
    return OperatorStateBackend(subtask_index, parallelism)
