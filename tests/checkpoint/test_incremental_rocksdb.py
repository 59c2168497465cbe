"""Incremental RocksDB checkpoints: real RocksDB, real checkpoint storage, the real
coordinator and snapshot writer (only the task loop is replaced by direct calls).

Checked: a checkpoint uploads exactly the SST files not in storage yet; shared files are
reference-counted (deleted when no retained checkpoint needs them; an aborted checkpoint's
new files are deleted with it); restores at the same and at other parallelisms give the
exact state; savepoints stay in the canonical full format; jobs recover exactly.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from counting_job import counting_job, read_output

from strom._checkpoint.coordinator import CheckpointCoordinator, OperatorInfo
from strom._checkpoint.failure import CheckpointFailureReason
from strom._checkpoint.snapshots import (
    AsyncSnapshotWriter,
    encode_snapshot,
    load_restored_states,
    snapshot_scope,
)
from strom._checkpoint.storage import CheckpointStorage
from strom._runtime.key_groups import KeyGroupRange, KeyGroupRangeAssignment
from strom._state.rocksdb import RocksDBKeyedStateBackend
from strom._state.rocksdb.native import IncrementalKeyedStateHandle
from strom._state.snapshot import KeyedStateSnapshot
from strom.datastream import ListStateDescriptor, ValueStateDescriptor

MAXP = 128
UID = "op"


class Harness:
    """One keyed operator uid with ``parallelism`` RocksDB subtasks, checkpointed through
    the coordinator, the writer thread and the checkpoint storage."""

    def __init__(self, tmp: Path, parallelism: int = 1, retained: int = 1,
                 job_id: str = "job") -> None:
        self.storage = CheckpointStorage(str(tmp / "chk"), job_id)
        self.tasks = {("v", i) for i in range(parallelism)}
        self.coordinator = CheckpointCoordinator(
            {"interval_ms": 1, "num_retained": retained}, self.storage, job_id,
            set(self.tasks), [OperatorInfo(UID, parallelism, MAXP)],
            clock=lambda: 0, wall_clock=lambda: 0,
            on_complete=lambda done: None, on_fail_job=lambda msg: None,
        )
        self.acks: list[tuple[int, Any, Any, Any]] = []
        self.lock = threading.Lock()
        self.writer = AsyncSnapshotWriter(self._done)
        self.backends = [
            backend(KeyGroupRangeAssignment.compute_key_group_range_for_operator_index(
                MAXP, parallelism, i), tmp / "db")
            for i in range(parallelism)
        ]

    def _done(self, cid: int, key: Any, handles: Any, error: Any) -> None:
        with self.lock:
            self.acks.append((cid, key, handles, error))

    def checkpoint(self, complete: bool = True) -> int:
        """Trigger, snapshot every subtask, upload; acknowledge if ``complete``."""
        p = self.coordinator.trigger()
        latest = self.coordinator.latest_completed()
        for i, b in enumerate(self.backends):
            with snapshot_scope(False):
                snap = b.snapshot(p.checkpoint_id)
            data = encode_snapshot(UID, i, {"keyed": snap})
            self.writer.submit_encoded(self.storage, p.directory, p.checkpoint_id, ("v", i),
                                       {UID: data},
                                       latest.checkpoint_id if latest else -1)
        assert self.writer.flush()
        with self.lock:
            acks, self.acks = self.acks, []
        assert [a[3] for a in acks] == [None] * len(self.backends)
        if complete:
            for cid, key, handles, _ in acks:
                self.coordinator.acknowledge(cid, key, handles)
            assert self.coordinator.latest_completed().checkpoint_id == p.checkpoint_id
        else:  # one acknowledges, then the checkpoint is declined
            cid, key, handles, _ = acks[0]
            self.coordinator.acknowledge(cid, key, handles)
            if self.coordinator.pending:
                self.coordinator.decline(cid, ("v", len(self.backends) - 1),
                                         CheckpointFailureReason.CHECKPOINT_DECLINED)
        return p.checkpoint_id

    def shared(self) -> set[str]:
        return set(self.storage.list_shared_files())

    def checkpoint_dirs(self) -> list[str]:
        return sorted(p for p in os.listdir(self.storage.job_dir) if p.startswith("chk-"))

    def close(self) -> None:
        self.writer.close()
        for b in self.backends:
            b.dispose()


def backend(key_groups: KeyGroupRange, local_dir: Path) -> RocksDBKeyedStateBackend:
    # a small write cache: most values reach RocksDB (SST files), the last ones written
    # before a checkpoint are still cached and travel in the handle's ``cached`` entries
    return RocksDBKeyedStateBackend(MAXP, key_groups, local_dir=str(local_dir),
                                    incremental=True, write_cache_size=100)


def put(b: RocksDBKeyedStateBackend, keys: range, tag: str = "v") -> None:
    """value state ``v`` = f"{tag}{key}", list state ``l`` += [key] for the owned keys."""
    value = b.get_or_create_keyed_state(ValueStateDescriptor("v"))
    lst = b.get_or_create_keyed_state(ListStateDescriptor("l"))
    for k in keys:
        if KeyGroupRangeAssignment.assign_to_key_group(k, MAXP) in b.key_group_range:
            b.set_current_key(k)
            value.update(f"{tag}{k}")
            lst.add(k)


def read(b: RocksDBKeyedStateBackend, keys: range) -> dict[int, tuple[Any, list[Any]]]:
    value = b.get_or_create_keyed_state(ValueStateDescriptor("v"))
    lst = b.get_or_create_keyed_state(ListStateDescriptor("l"))
    out = {}
    for k in keys:
        b.set_current_key(k)
        v, items = value.value(), list(lst.get() or [])
        if v is not None or items:
            out[k] = (v, items)
    return out


def local_ssts(b: RocksDBKeyedStateBackend) -> set[str]:
    return {f"{b.backend_id}-{f}" for f in os.listdir(b.path) if f.endswith(".sst")}


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    yield h
    h.close()


def test_second_checkpoint_uploads_only_new_sst_files(harness: Harness) -> None:
    b = harness.backends[0]
    put(b, range(0, 2000))
    harness.checkpoint()
    first = harness.shared()
    assert first == local_ssts(b) and len(first) == 2  # one SST per state (column family)
    # replace one stored file (atomically, the original is a hard link of the live SST):
    # the next checkpoint must not upload it again
    victim = harness.storage.shared_path(sorted(first)[0])
    original = Path(victim).read_bytes()
    Path(victim + ".new").write_bytes(b"not re-uploaded")
    os.replace(victim + ".new", victim)
    put(b, range(2000, 3000))
    harness.checkpoint()
    assert Path(victim).read_bytes() == b"not re-uploaded"
    Path(victim).write_bytes(original)
    second = harness.shared()
    new = second - first
    assert len(new) == 2 and second == local_ssts(b)
    # the _metadata of the retained checkpoint lists exactly the shared files
    meta = json.loads(Path(harness.storage.job_dir, "chk-2", "_metadata").read_text())
    entry = meta["operators"][UID]["subtasks"]["0"]
    assert entry == {"file": f"{UID}-0-2", "shared": sorted(second)}
    # private files are in the checkpoint's own directory, chk-1 was subsumed
    assert harness.checkpoint_dirs() == ["chk-2"]
    private = sorted(os.listdir(Path(harness.storage.job_dir, "chk-2")))
    assert "_metadata" in private and f"{UID}-0-2" in private
    assert any(p.startswith(f"{b.backend_id}-2-MANIFEST-") for p in private)
    assert not any(p.endswith(".sst") for p in private)
    # the local native checkpoint directories are gone after the upload
    assert not [p for p in os.listdir(os.path.dirname(b.path)) if ".chk-" in p]


def test_shared_files_deleted_when_no_retained_checkpoint_needs_them(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, retained=2)
    try:
        b = h.backends[0]
        put(b, range(0, 1000))
        h.checkpoint()
        s1 = h.shared()
        put(b, range(1000, 2000))
        h.checkpoint()
        s2 = h.shared()
        assert s1 < s2
        b.compact()  # every SST is rewritten: checkpoint 3 shares nothing with 1 and 2
        h.checkpoint()
        s3 = local_ssts(b)
        assert not s3 & s2
        # retained: 2 and 3; 1's files are all referenced by 2
        assert h.checkpoint_dirs() == ["chk-2", "chk-3"]
        assert h.shared() == s2 | s3
        put(b, range(5000, 5001))
        h.checkpoint()  # subsumes 2: its files go, 3's stay
        s4 = local_ssts(b)
        assert h.checkpoint_dirs() == ["chk-3", "chk-4"]
        assert h.shared() == s3 | s4
        assert h.coordinator.shared.referenced() == s3 | s4
    finally:
        h.close()


def test_aborted_checkpoint_deletes_only_its_new_files(tmp_path: Path) -> None:
    h = Harness(tmp_path, parallelism=2)
    try:
        for b in h.backends:
            put(b, range(0, 1000))
        h.checkpoint()
        before = h.shared()
        for b in h.backends:
            put(b, range(1000, 1500))
        h.checkpoint(complete=False)  # subtask 0 acknowledges, subtask 1 declines
        assert h.coordinator.latest_completed().checkpoint_id == 1
        assert h.checkpoint_dirs() == ["chk-1"]
        # subtask 0's new files were deleted with the checkpoint; subtask 1's upload is
        # unknown to the coordinator (never acknowledged): the orphan cleanup removes it
        assert not {f for f in h.shared() - before if f.startswith(h.backends[0].backend_id)}
        h.coordinator.cleanup_orphans()
        assert h.shared() == before
        # the next checkpoint uploads them again and is complete
        h.checkpoint()
        assert h.shared() == local_ssts(h.backends[0]) | local_ssts(h.backends[1])
    finally:
        h.close()


def restored_handles(h: Harness, parallelism: int) -> list[Any]:
    latest = h.coordinator.latest_completed()
    states, _, _ = load_restored_states(latest.directory, {UID: MAXP})
    r = states[UID]
    snaps = r.all("keyed")
    assert all(isinstance(s, IncrementalKeyedStateHandle) for s in snaps)
    return snaps


@pytest.mark.parametrize(("old", "new"), [(1, 1), (1, 3), (2, 1), (2, 3), (3, 2)])
def test_restore_at_any_parallelism_gives_exact_state(tmp_path: Path, old: int,
                                                      new: int) -> None:
    keys = range(0, 3000)
    h = Harness(tmp_path, parallelism=old)
    try:
        for b in h.backends:
            put(b, range(0, 2000))
        h.checkpoint()
        for b in h.backends:
            put(b, range(1000, 3000), tag="w")  # overwrites and appends across two SSTs
        h.checkpoint()
        snaps = restored_handles(h, old)
    finally:
        h.close()
    want = {k: (("w" if k >= 1000 else "v") + str(k), [k] * (2 if 1000 <= k < 2000 else 1))
            for k in keys}
    got: dict[int, Any] = {}
    for i in range(new):
        rng = KeyGroupRangeAssignment.compute_key_group_range_for_operator_index(MAXP, new, i)
        b = backend(rng, tmp_path / "restored")
        try:
            b.restore(snaps)
            adopted = bool(b._restored_shared)  # the download became the working DB
            assert adopted == any(
                s.key_group_range.start_key_group <= rng.start_key_group
                and rng.end_key_group <= s.key_group_range.end_key_group for s in snaps
            )
            part = read(b, keys)
            assert all(KeyGroupRangeAssignment.assign_to_key_group(k, MAXP) in rng
                       for k in part)
            # only this range's entries are in the DB (entries outside were deleted)
            assert b.entry_count("v") == len(part)
            got.update(part)
            put(b, range(3000, 3100))  # appends after a restore keep their order
            assert read(b, range(3000, 3100)) == {
                k: (f"v{k}", [k]) for k in range(3000, 3100)
                if KeyGroupRangeAssignment.assign_to_key_group(k, MAXP) in rng
            }
            b.set_current_key(1500)
            if KeyGroupRangeAssignment.assign_to_key_group(1500, MAXP) in rng:
                lst = b.get_or_create_keyed_state(ListStateDescriptor("l"))
                lst.add(-1)
                assert list(lst.get()) == [1500, 1500, -1]
        finally:
            b.dispose()
    assert got == want


def test_restored_backend_reuses_the_restored_files(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    try:
        put(h.backends[0], range(0, 1000))
        h.checkpoint()
        snaps = restored_handles(h, 1)
        old = h.backends[0]
        h.backends = [backend(KeyGroupRange(0, MAXP - 1), tmp_path / "db2")]
        old.dispose()
        h.backends[0].restore(snaps)
        before = h.shared()
        put(h.backends[0], range(1000, 1200))
        h.checkpoint()
        # the restored SSTs keep their names: only the new SST of each state is uploaded
        new = h.shared() - before
        assert len(new) == 2 and all(f.startswith(h.backends[0].backend_id) for f in new)
        assert h.shared() == before | new
    finally:
        h.close()


def test_savepoints_and_non_incremental_use_the_full_format(tmp_path: Path) -> None:
    b = backend(KeyGroupRange(0, MAXP - 1), tmp_path / "db")
    full = RocksDBKeyedStateBackend(MAXP, local_dir=str(tmp_path / "db"), incremental=False)
    try:
        put(b, range(100))
        put(full, range(100))
        with snapshot_scope(True):  # a savepoint
            assert isinstance(b.snapshot(1), KeyedStateSnapshot)
        with snapshot_scope(False):
            assert isinstance(full.snapshot(1), KeyedStateSnapshot)
        assert isinstance(b.snapshot(1), KeyedStateSnapshot)  # outside a checkpoint
    finally:
        b.dispose()
        full.dispose()


def test_job_resumes_from_retained_incremental_checkpoint_at_other_parallelism(
    tmp_path: Path,
) -> None:
    """Cancel a p2 RocksDB job mid-stream keeping its incremental checkpoints, resume the
    latest at p3: every update exactly once; the directory holds the retained
    checkpoints and exactly the shared files they reference."""
    import time

    from strom.datastream import (
        EmbeddedRocksDBStateBackend,
        ExternalizedCheckpointRetention,
        StreamExecutionEnvironment,
    )
    from strom.errors import JobCancelledError

    n = 20_000
    chk = tmp_path / "chk"
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)
    env.set_state_backend(EmbeddedRocksDBStateBackend(local_dir=str(tmp_path / "db")))
    # a small write cache, so values reach RocksDB's files (shared SSTs) and the cache's
    # latest entries travel in the checkpoint handles
    env.configure("state.backend.rocksdb.write-cache-size", 2)
    env.enable_checkpointing(30)
    config = env.get_checkpoint_config()
    config.set_checkpoint_storage(str(chk))
    config.set_num_retained_checkpoints(2)
    config.set_externalized_checkpoint_retention(
        ExternalizedCheckpointRetention.RETAIN_ON_CANCELLATION
    )
    counting_job(env, tmp_path / "o1", n, 4000.0)
    client = env.execute_async("first")
    deadline = time.monotonic() + 20
    while not list(chk.glob("*/chk-[3-9]*/_metadata")):  # three checkpoints completed
        assert time.monotonic() < deadline and not client.is_done()
        time.sleep(0.01)
    client.cancel()
    with pytest.raises(JobCancelledError):
        client.get_job_execution_result(timeout=20)
    job_dir = next(chk.iterdir())
    retained = sorted((p for p in job_dir.iterdir() if p.name.startswith("chk-")),
                      key=lambda p: int(p.name[4:]))
    assert len(retained) == 2
    referenced = set()
    for c in retained:
        meta = json.loads((c / "_metadata").read_text())
        for entry in meta["operators"]["count"]["subtasks"].values():
            referenced.update(entry["shared"])
    assert sorted(p.name for p in (job_dir / "shared").iterdir()) == sorted(referenced)
    first = read_output(tmp_path / "o1")
    assert 0 < len(first) < n
    env2 = StreamExecutionEnvironment.get_execution_environment()
    env2.set_parallelism(3)
    env2.set_state_backend(EmbeddedRocksDBStateBackend(local_dir=str(tmp_path / "db")))
    env2.enable_checkpointing(60_000)
    env2.get_checkpoint_config().set_checkpoint_storage(str(tmp_path / "chk2"))
    env2.set_savepoint_restore(str(retained[-1]))
    counting_job(env2, tmp_path / "o2", n, 1_000_000.0)
    env2.execute("resumed")
    rows = first + read_output(tmp_path / "o2")
    per_key: dict[str, list[int]] = {}
    for row in rows:
        per_key.setdefault(row[0], []).append(row[2] if len(row) == 3 else 1)
    assert {k: sorted(v) for k, v in per_key.items()} == {
        f"k{i}": list(range(1, n // 5 + 1)) for i in range(5)
    }
    assert not list((tmp_path / "db").rglob("*.sst"))  # local working dirs removed


def test_cached_deletes_and_window_namespaces_restore_exactly(tmp_path: Path) -> None:
    """Entries still in the write cache at a checkpoint (updates, pending deletes of
    values already in RocksDB, per-window namespaces) travel in the handle and are
    applied over the RocksDB files on restore, at the same and at another parallelism."""
    from strom.datastream.window import TimeWindow

    h = Harness(tmp_path, parallelism=2)
    windows = [TimeWindow(0, 10), TimeWindow(10, 20)]

    def owned(b: RocksDBKeyedStateBackend, k: int) -> bool:
        return KeyGroupRangeAssignment.assign_to_key_group(k, MAXP) in b.key_group_range

    try:
        for b in h.backends:
            put(b, range(0, 400))  # cache size 100: most values flushed to RocksDB
            ns_state = b.get_or_create_keyed_state(ValueStateDescriptor("w"))
            for k in range(0, 400):
                if owned(b, k):
                    b.set_current_key(k)
                    for w in windows:
                        ns_state.set_current_namespace(w)  # type: ignore[attr-defined]
                        ns_state.update(k * w.start)
        h.checkpoint()
        for b in h.backends:
            value = b.get_or_create_keyed_state(ValueStateDescriptor("v"))
            ns_state = b.get_or_create_keyed_state(ValueStateDescriptor("w"))
            for k in range(0, 60):  # pending deletes, the keys' values are in RocksDB
                if owned(b, k):
                    b.set_current_key(k)
                    value.clear()
                    ns_state.set_current_namespace(windows[0])  # type: ignore[attr-defined]
                    ns_state.clear()
            for k in range(390, 410):
                if owned(b, k):
                    b.set_current_key(k)
                    value.update(f"x{k}")
            cached = b._states["v"].dirty_entries(b.namespace_bytes)[0]  # type: ignore[attr-defined]
            assert any(v is None for v in cached.values())  # the test covers deletes
        h.checkpoint()
        snaps = restored_handles(h, 2)
    finally:
        h.close()
    assert all(s.cached for s in snaps)
    want_v = {k: f"x{k}" if k >= 390 else f"v{k}" for k in range(60, 410)}
    want_w = {(k, w.start): k * w.start for k in range(400) for w in windows
              if not (k < 60 and w == windows[0])}
    for new in (2, 3):
        got_v: dict[int, Any] = {}
        got_w: dict[tuple[int, int], Any] = {}
        for i in range(new):
            rng = KeyGroupRangeAssignment.compute_key_group_range_for_operator_index(
                MAXP, new, i)
            b = backend(rng, tmp_path / f"restored-{new}")
            try:
                b.restore(snaps)
                value = b.get_or_create_keyed_state(ValueStateDescriptor("v"))
                ns_state = b.get_or_create_keyed_state(ValueStateDescriptor("w"))
                for k in range(0, 410):
                    b.set_current_key(k)
                    if value.value() is not None:
                        assert KeyGroupRangeAssignment.assign_to_key_group(k, MAXP) in rng
                        got_v[k] = value.value()
                    for w in windows:
                        ns_state.set_current_namespace(w)  # type: ignore[attr-defined]
                        if ns_state.value() is not None:
                            got_w[(k, w.start)] = ns_state.value()
            finally:
                b.dispose()
        assert got_v == want_v
        assert got_w == want_w


def test_incremental_checkpoint_into_the_heap_backend_names_uid_and_savepoint(
    tmp_path: Path,
) -> None:
    """A native RocksDB checkpoint cannot be read by the heap backend: the error names the
    operator uid and says how to switch backends (a savepoint, as in Flink)."""
    from strom.datastream import StreamExecutionEnvironment
    from strom.errors import InvalidProgramError
    from strom.testing import OneInputOperatorTestHarness

    h = Harness(tmp_path)
    try:
        put(h.backends[0], range(0, 300))
        h.checkpoint()
        snaps = restored_handles(h, 1)
    finally:
        h.close()
    env = StreamExecutionEnvironment.get_execution_environment()
    stream = env.from_collection([(1, 1)]).key_by(lambda r: r[0]) \
        .reduce(lambda a, b: (a[0], a[1] + b[1]))
    harness = OneInputOperatorTestHarness.for_stream(
        stream, config={"state.backend": "hashmap"}, uid="running-sum")
    restored = OneInputOperatorTestHarness.repartition({0: {"keyed": snaps[0]}}, 1)
    with pytest.raises(InvalidProgramError) as info:
        harness.initialize_state(restored)
    message = str(info.value)
    assert "'running-sum'" in message
    assert "native RocksDB checkpoint" in message and "savepoint" in message
