"""Checkpoints, restarts and savepoints on the multi-process MiniCluster.

The fault-injection test is issue 6's acceptance test: a bounded job over 1,000,000
records (keyed event-time windows, keyed ValueState, event-time timers; see
``recovery_job``) at parallelism 2 with checkpoints every 300 ms and an exactly-once
FileSink; while it runs, a random TaskManager process is SIGKILLed three times at random
moments. The committed output must equal the failure-free output exactly (as a multiset of
lines; computed in Python by ``recovery_job.expected``, which is what an uninterrupted
run commits), and the checkpoint directory must hold only the retained checkpoint.
Run with both state backends. The kill moments come from a seed printed on failure
(``STROM_FAULT_SEED`` replays one).
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import recovery_job as rj

from strom._cluster.errors import TaskManagerLostError
from strom._cluster.minicluster import MiniCluster
from strom._executors.cluster import get_session_cluster, use_session_cluster
from strom.datastream import JobStatus, RestartStrategies, StreamExecutionEnvironment
from strom.errors import JobCancelledError, JobExecutionError

FAULT_N = 1_000_000
FAULT_RATE = 100_000.0  # records/s: >= 10 s per run, time for three kills at random moments


@pytest.fixture
def cluster() -> Iterator[MiniCluster]:
    """A private 2-TaskManager cluster for this test's jobs (tests kill its processes)."""
    previous = get_session_cluster()
    c = MiniCluster(2).start()
    use_session_cluster(c)
    try:
        yield c
    finally:
        use_session_cluster(previous)
        c.shutdown()


def _env(tmp: Path, parallelism: int = 2, interval_ms: int = 300, backend: str = "hashmap",
         restarts: int | None = 10, delay_ms: int = 100) -> StreamExecutionEnvironment:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(parallelism)
    env.configure("state.backend", backend)
    env.enable_checkpointing(interval_ms)
    env.get_checkpoint_config().set_checkpoint_storage(str(tmp / "chk"))
    if restarts is not None:
        env.set_restart_strategy(RestartStrategies.fixed_delay_restart(restarts, delay_ms))
    return env


def _wait_status(client: Any, status: JobStatus, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get_job_status() is not status:
        if client.is_done() or time.monotonic() > deadline:
            msg = f"job is {client.get_job_status().name}, expected {status.name}"
            raise AssertionError(msg)
        time.sleep(0.005)


def _wait_restarts(client: Any, count: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while len(client.executor.job_master.restart_causes) < count:
        if client.is_done() or time.monotonic() > deadline:
            msg = f"no restart {count} (job {client.get_job_status().name})"
            raise AssertionError(msg)
        time.sleep(0.005)


def _wait_emitted(client: Any, records: int, timeout_s: float = 30.0) -> None:
    """Wait until the sources emitted ``records`` (metrics arrive with heartbeats)."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = client.get_metrics()
        emitted = sum(r["records_out"] for r in rows if r["uid"] == "gen")
        if emitted >= records:
            return
        if client.is_done() or time.monotonic() > deadline:
            msg = f"sources emitted {emitted} records, expected {records}"
            raise AssertionError(msg)
        time.sleep(0.02)


def _statuses(client: Any) -> list[str]:
    return [s.name for s, _t in client.executor.job_master.status_machine.history]


def _checkpoint_entries(chk: Path) -> list[str]:
    return sorted(str(p.relative_to(chk)) for p in chk.rglob("*") if p.is_dir())


@pytest.mark.parametrize("backend", ["rocksdb", "hashmap"])
def test_sigkill_taskmanagers_exactly_once_output(
    cluster: MiniCluster, tmp_path: Path, backend: str
) -> None:
    """Three SIGKILLs of random TaskManagers at random moments: output exactly once."""
    seed = int(os.environ.get("STROM_FAULT_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    env = _env(tmp_path, backend=backend)
    rj.build(env, tmp_path / "out", FAULT_N, FAULT_RATE)
    client = env.execute_async(f"fault injection ({backend})")
    kills = []
    for _ in range(3):
        _wait_status(client, JobStatus.RUNNING)
        time.sleep(rng.uniform(0.2, 2.5))
        assert not client.is_done(), f"the job ended before kill {len(kills) + 1} (seed {seed})"
        victim = rng.choice(cluster.taskmanagers())
        os.kill(victim.pid, signal.SIGKILL)
        kills.append(victim.tm_id)
        _wait_restarts(client, len(kills))
    client.get_job_execution_result(timeout=120)
    jm = client.executor.job_master
    assert len(jm.restart_causes) == 3, (seed, jm.restart_causes)  # one per kill
    history = _statuses(client)
    assert history[:4] == ["CREATED", "RUNNING", "FAILING", "RESTARTING"], history
    assert history[-2:] == ["RUNNING", "FINISHED"], history
    got = rj.committed(tmp_path / "out")
    want = rj.expected(FAULT_N)
    lost, duplicated = want - got, got - want
    assert not lost and not duplicated, (
        f"seed {seed}, kills {kills}: {sum(lost.values())} rows lost (e.g. "
        f"{list(lost)[:3]}), {sum(duplicated.values())} extra (e.g. {list(duplicated)[:3]})"
    )
    # only the retained (final) checkpoint is left: no orphans of aborted checkpoints
    # (RocksDB checkpoints are incremental: plus exactly the shared files it references)
    entries = _checkpoint_entries(tmp_path / "chk")
    job_dir = client.get_job_id()
    shared = [f"{job_dir}/shared"] if backend == "rocksdb" else []
    assert len(entries) == 2 + len(shared) and entries[0] == job_dir, entries
    assert entries[1].startswith(f"{job_dir}/chk-"), entries
    assert entries[2:] == shared, entries
    files = sorted(p.name for p in (tmp_path / "chk" / entries[1]).iterdir())
    assert "_metadata" in files and not any(f.startswith(".") for f in files), files
    if shared:
        meta = json.loads((tmp_path / "chk" / entries[1] / "_metadata").read_text())
        referenced = {
            name
            for op in meta["operators"].values()
            for entry in op["subtasks"].values() if isinstance(entry, dict)
            for name in entry["shared"]
        }
        assert referenced
        assert sorted(p.name for p in (tmp_path / "chk" / shared[0]).iterdir()) == sorted(
            referenced
        )


def test_stop_with_savepoint_and_resume_at_other_parallelism(
    cluster: MiniCluster, tmp_path: Path
) -> None:
    """Savepoint, then stop-with-savepoint at parallelism 2 mid-stream; resuming at
    parallelism 1 (in-process) and at 4 (cluster) both complete the uninterrupted run's
    output exactly. (The watermark bound keeps records on time when the resumed p1
    reader reads the split of old subtask 0 after that of subtask 1; windows and timers
    then fire at the end of input, from the restored state.)"""
    n = 200_000
    env = _env(tmp_path, interval_ms=60_000, restarts=None)  # savepoints only
    rj.build(env, tmp_path / "out", n, 50_000.0, out_of_orderness_ms=n)
    client = env.execute_async("to be stopped")
    _wait_emitted(client, 20_000)  # >= 400 per key: the savepoint commits count markers
    plain = client.trigger_savepoint(str(tmp_path / "savepoints"), timeout=30)
    assert Path(plain, "_metadata").exists()
    time.sleep(0.3)
    path = client.stop_with_savepoint(str(tmp_path / "savepoints"), timeout=30)
    assert client.get_job_status() is JobStatus.FINISHED
    assert Path(path, "_metadata").exists() and path != plain
    first = rj.committed(tmp_path / "out")
    want = rj.expected(n)
    where = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert 0 < sum(first.values()) < sum(want.values()), (where, path)  # stopped mid-stream
    assert not first - want, (first - want, where)
    for p in (1, 4):
        env2 = _env(tmp_path, parallelism=p, interval_ms=60_000, restarts=None)
        env2.set_savepoint_restore(path)
        out = tmp_path / f"out-p{p}"
        rj.build(env2, out, n, out_of_orderness_ms=n)
        env2.execute(f"resumed at p{p}")
        rest = rj.committed(out)
        missing, extra = want - first - rest, first + rest - want
        assert not missing and not extra, (
            p, sum(missing.values()), sorted(missing)[:5], sum(extra.values()), sorted(extra)[:5]
        )


def test_user_failure_restarts_from_checkpoint(cluster: MiniCluster, tmp_path: Path) -> None:
    n = 100_000
    env = _env(tmp_path, interval_ms=50)
    rj.build(env, tmp_path / "out", n, 50_000.0, fail=rj.FailAt(n, 60_000))
    client = env.execute_async("fails once")
    client.get_job_execution_result(timeout=60)
    assert rj.committed(tmp_path / "out") == rj.expected(n)
    assert _statuses(client) == [
        "CREATED", "RUNNING", "FAILING", "RESTARTING", "RUNNING", "FINISHED"
    ]
    (cause,) = client.executor.job_master.restart_causes
    assert "injected failure" in str(cause)


def test_job_fails_once_restarts_are_used_up(cluster: MiniCluster, tmp_path: Path) -> None:
    n = 20_000
    env = _env(tmp_path, interval_ms=50, restarts=2, delay_ms=10)
    rj.build(env, tmp_path / "out", n, fail=rj.FailAt(n, 5_000, attempts=None))
    client = env.execute_async("always fails")
    with pytest.raises(JobExecutionError, match="injected failure"):
        client.get_job_execution_result(timeout=60)
    assert client.get_job_status() is JobStatus.FAILED
    assert len(client.executor.job_master.restart_causes) == 2
    assert _statuses(client)[-2:] == ["FAILING", "FAILED"]


def test_killed_taskmanager_without_restarts_fails_within_2s(
    cluster: MiniCluster, tmp_path: Path
) -> None:
    env = _env(tmp_path, restarts=None)
    rj.build(env, tmp_path / "out", 10**7)
    client = env.execute_async("no restarts")
    _wait_status(client, JobStatus.RUNNING)
    time.sleep(0.5)
    victim = cluster.taskmanagers()[0]
    killed_at = time.monotonic()
    os.kill(victim.pid, signal.SIGKILL)
    with pytest.raises(JobExecutionError) as info:
        client.get_job_execution_result(timeout=10)
    assert time.monotonic() - killed_at < 2.0
    assert isinstance(info.value.__cause__, TaskManagerLostError)
    assert victim.tm_id in str(info.value) and "SIGKILL" in str(info.value)
    assert client.get_job_status() is JobStatus.FAILED


def test_cancel_during_restart_backoff(cluster: MiniCluster, tmp_path: Path) -> None:
    """Exponential backoff: the first restart is quick, the second waits a minute; a
    cancel then ends the job at once (RESTARTING -> CANCELLING -> CANCELED)."""
    env = _env(tmp_path, restarts=None)
    env.set_restart_strategy(
        RestartStrategies.exponential_delay_restart(10, 60_000, 10_000.0, jitter_factor=0.0)
    )
    rj.build(env, tmp_path / "out", 10**7)
    client = env.execute_async("cancelled while restarting")
    for k in (1, 2):
        _wait_status(client, JobStatus.RUNNING)
        time.sleep(0.3)
        os.kill(cluster.taskmanagers()[1].pid, signal.SIGKILL)
        _wait_restarts(client, k)
    _wait_status(client, JobStatus.RESTARTING)
    cancelled_at = time.monotonic()
    client.cancel()
    with pytest.raises(JobCancelledError):
        client.get_job_execution_result(timeout=5)
    assert time.monotonic() - cancelled_at < 2.0
    assert client.get_job_status() is JobStatus.CANCELED
    assert _statuses(client)[-3:] == ["RESTARTING", "CANCELLING", "CANCELED"]


def test_savepoint_needs_checkpointing_on_the_cluster(cluster: MiniCluster) -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)
    env.from_sequence(1, 10**12).filter(lambda x: False).print()
    client = env.execute_async()
    try:
        with pytest.raises(ValueError, match="enable_checkpointing"):
            client.trigger_savepoint("/tmp/unused", timeout=10)
    finally:
        client.cancel()
    with pytest.raises(JobCancelledError):
        client.get_job_execution_result(timeout=10)


class _FakeWriter:
    def __init__(self) -> None:
        self.submitted: list[tuple[str, int, tuple[str, int], dict[str, bytes]]] = []

    def submit_encoded(self, storage: Any, directory: str, cid: int, key: tuple[str, int],
                       states: dict[str, bytes], last_completed: int = -1) -> None:
        self.submitted.append((directory, cid, key, states))


class _FakeExecutor:
    def __init__(self) -> None:
        self.w = _FakeWriter()
        self.sent: list[Any] = []

    def writer(self) -> _FakeWriter:
        return self.w

    def send(self, msg: Any) -> None:
        self.sent.append(msg)

    def flush_output(self) -> None:
        pass


def test_snapshot_waits_for_the_directory_when_the_barrier_overtakes_the_trigger(
    tmp_path: Path,
) -> None:
    """A task reached by an in-band barrier may snapshot before its TaskManager got the
    checkpoint's directory (control and data connections are not ordered): the snapshot
    is held until ``TriggerCheckpoint`` arrives, then written there; snapshots of
    completed or aborted checkpoints are dropped."""
    from strom._cluster.taskmanager.task_executor import _JobCheckpoints, _JobRun

    class Task:
        task_key = ("v", 1)

    ex = _FakeExecutor()
    cps = _JobCheckpoints(ex, _JobRun("job", [], attempt=3), str(tmp_path))  # type: ignore[arg-type]
    cps.on_snapshot(Task(), 7, {"uid": b"state"})  # type: ignore[arg-type]
    assert ex.w.submitted == []
    cps.started(7, "/dir/chk-7")
    assert ex.w.submitted == [("/dir/chk-7", 7, ("job\x003\x00v", 1), {"uid": b"state"})]
    cps.started(8, "/sp/savepoint-1")
    cps.on_snapshot(Task(), 8, {})  # type: ignore[arg-type]
    assert ex.w.submitted[-1][:2] == ("/sp/savepoint-1", 8)
    cps.completed(8)
    cps.aborted_checkpoint(9)
    cps.on_snapshot(Task(), 8, {})  # type: ignore[arg-type]
    cps.on_snapshot(Task(), 9, {})  # type: ignore[arg-type]
    assert len(ex.w.submitted) == 2 and not cps.waiting


def test_a_task_snapshots_each_checkpoint_once() -> None:
    """A direct trigger for a checkpoint the task already took in-band (sent because the
    task reached its end of input while its acknowledgement was on the way) must not
    snapshot again: the second snapshot would overwrite the first file with later state."""
    from strom._executors.local import LocalExecutor
    from strom._runtime.elements import CheckpointBarrier

    env = StreamExecutionEnvironment.get_execution_environment()
    env.enable_checkpointing(60_000)
    env.from_collection([1, 2, 3]).map(lambda x: x).print()
    executor = LocalExecutor(env.get_job_graph())
    executor.build()
    snapshots: list[int] = []

    class Listener:
        def on_snapshot(self, task: Any, cid: int, states: Any) -> None:
            snapshots.append(cid)

        def on_declined(self, task: Any, cid: int, reason: str) -> None:
            pass

        def on_finished(self, task: Any) -> None:
            pass

    task = executor.tasks[0]
    task.initialize(None)
    task.enable_checkpointing(Listener(), True, ("v", 0))
    for cid in (1, 1, 2, 1):
        task.trigger_checkpoint(CheckpointBarrier(cid, 0, False))
    assert snapshots == [1, 2]
    task.close()
