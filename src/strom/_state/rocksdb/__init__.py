"""The RocksDB keyed state backend (``EmbeddedRocksDBStateBackend``), on rocksdict."""

from strom._state.rocksdb.backend import RocksDBKeyedStateBackend, RocksDBNativeSnapshot

__all__ = ["RocksDBKeyedStateBackend", "RocksDBNativeSnapshot"]
