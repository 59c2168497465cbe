"""State backend descriptors: where keyed state lives (Flink's ``StateBackend`` choices).

Pass one to ``StreamExecutionEnvironment.set_state_backend``; it only sets configuration
values (``state.backend`` and friends), the runtime creates the backends per subtask::

    env.set_state_backend(EmbeddedRocksDBStateBackend(local_dir="/mnt/ssd/strom"))

- :class:`HashMapStateBackend` (default): state as Python objects in memory. Fastest;
  state must fit in memory.
- :class:`EmbeddedRocksDBStateBackend` (alias :data:`RocksDBStateBackend`): state in an
  embedded RocksDB per subtask on local disk, serialized. State may be far larger than
  memory; each access pays serialization (softened by a small write cache).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["EmbeddedRocksDBStateBackend", "HashMapStateBackend", "RocksDBStateBackend"]


@dataclass(frozen=True)
class HashMapStateBackend:
    """Keep keyed state as Python objects in dicts on the heap (Flink's
    ``HashMapStateBackend``)."""

    def to_config(self) -> dict[str, Any]:
        """The configuration values this backend sets."""
        return {"state.backend": "hashmap"}


@dataclass(frozen=True)
class EmbeddedRocksDBStateBackend:
    """Keep keyed state in an embedded RocksDB per operator subtask (Flink's
    ``EmbeddedRocksDBStateBackend``).

    Args:
        local_dir: directory for the RocksDB working files (one subdirectory per job and
            subtask, deleted when the task ends); None = a temporary directory.
        incremental: checkpoint only the RocksDB files created since the last checkpoint.

    Raises:
        TypeError: ``local_dir`` is not a str / path-like or ``incremental`` not a bool.
    """

    local_dir: str | None = None
    incremental: bool = True

    def __post_init__(self) -> None:
        """Validate eagerly."""
        if self.local_dir is not None:
            import os

            object.__setattr__(self, "local_dir", os.fspath(self.local_dir))
        if not isinstance(self.incremental, bool):
            msg = f"incremental must be a bool, got {type(self.incremental).__name__}"
            raise TypeError(msg)

    def to_config(self) -> dict[str, Any]:
        """The configuration values this backend sets."""
        return {
            "state.backend": "rocksdb",
            "state.backend.rocksdb.localdir": self.local_dir or "",
            "state.backend.incremental": self.incremental,
        }


RocksDBStateBackend = EmbeddedRocksDBStateBackend
"""Alias of :class:`EmbeddedRocksDBStateBackend` (Flink's older name)."""
