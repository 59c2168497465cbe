"""RocksDB options of the keyed state backend: bounded memory, no WAL.

Memory per backend instance (one per keyed operator subtask) is bounded by:

* the block cache (:data:`BLOCK_CACHE_BYTES`), which also holds index and filter blocks
  (``cache_index_and_filter_blocks``), so reading SST files does not grow RSS with the
  number of files;
* the memtables, capped for all column families together by a write buffer manager
  (:data:`WRITE_BUFFER_MANAGER_BYTES`) on top of per-column-family write buffers of
  :data:`WRITE_BUFFER_BYTES` x :data:`MAX_WRITE_BUFFER_NUMBER`;
* the backend's Python-side write cache (``write_cache_size`` entries per state, see
  :mod:`strom._state.rocksdb.states`).

The write-ahead log is disabled: keyed state is recovered from checkpoints, never from
the local DB (as in Flink, whose RocksDB backend also disables the WAL).
"""

from __future__ import annotations

import rocksdict

__all__ = [
    "BLOCK_CACHE_BYTES",
    "DEFAULT_WRITE_CACHE_SIZE",
    "MAX_WRITE_BUFFER_NUMBER",
    "WRITE_BUFFER_BYTES",
    "WRITE_BUFFER_MANAGER_BYTES",
    "db_options",
    "write_options",
]

BLOCK_CACHE_BYTES = 64 << 20
"""LRU block cache per DB: 64 MiB keeps the hot index/filter/data blocks of a few GB of
state in memory while leaving room for many subtasks per process."""

WRITE_BUFFER_BYTES = 16 << 20
"""Memtable size per column family: 16 MiB (RocksDB's default is 64 MiB, too large when
one process runs several subtasks with several states each)."""

MAX_WRITE_BUFFER_NUMBER = 2
"""One active and one flushing memtable per column family."""

WRITE_BUFFER_MANAGER_BYTES = 64 << 20
"""Cap on all memtables of one DB (all its column families) together."""

DEFAULT_WRITE_CACHE_SIZE = 65_536
"""Entries per value-like state kept as Python objects in front of RocksDB (see
:mod:`strom._state.rocksdb.states`): large enough that a working set of tens of thousands
of hot keys never touches RocksDB between checkpoints, small enough (~10-20 MB per state)
to keep memory bounded for any number of keys."""


def db_options() -> rocksdict.Options:
    """Options for the DB and every column family (raw bytes mode)."""
    opts = rocksdict.Options(raw_mode=True)
    opts.create_if_missing(True)
    opts.create_missing_column_families(True)
    opts.set_max_background_jobs(2)  # one flush + one compaction thread per DB
    opts.set_write_buffer_size(WRITE_BUFFER_BYTES)
    opts.set_max_write_buffer_number(MAX_WRITE_BUFFER_NUMBER)
    opts.set_write_buffer_manager(rocksdict.WriteBufferManager(WRITE_BUFFER_MANAGER_BYTES, False))
    table = rocksdict.BlockBasedOptions()
    table.set_block_cache(rocksdict.Cache(BLOCK_CACHE_BYTES))
    table.set_cache_index_and_filter_blocks(True)
    table.set_pin_l0_filter_and_index_blocks_in_cache(True)
    table.set_bloom_filter(10, False)  # ~1% false positives for point lookups of absent keys
    opts.set_block_based_table_factory(table)
    opts.set_max_open_files(512)  # bounded file handles and table-reader memory
    opts.set_keep_log_file_num(2)  # RocksDB's info LOG: keep local dirs small
    opts.set_max_log_file_size(1 << 20)
    return opts


def write_options() -> rocksdict.WriteOptions:
    """Write options: no WAL, no fsync."""
    wo = rocksdict.WriteOptions()
    # A bool property at runtime (the bundled stub wrongly declares a method).
    setattr(wo, "disable_wal", True)  # noqa: B010
    return wo
