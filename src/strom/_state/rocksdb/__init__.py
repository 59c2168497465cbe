"""The RocksDB keyed state backend (``EmbeddedRocksDBStateBackend``), on rocksdict.

The backend classes are imported lazily, so that :mod:`strom._state.rocksdb.native`
(used by every checkpoint) does not load rocksdict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from strom._state.rocksdb.backend import RocksDBKeyedStateBackend, RocksDBNativeSnapshot

__all__ = ["RocksDBKeyedStateBackend", "RocksDBNativeSnapshot"]


def __getattr__(name: str) -> Any:
    """Import the backend classes on first use."""
    if name in __all__:
        from strom._state.rocksdb import backend

        return getattr(backend, name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
