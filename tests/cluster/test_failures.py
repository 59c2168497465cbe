"""Failures on the cluster: user errors in remote subtasks, a killed TaskManager, cancel,
Ctrl-C, and that no TaskManager process survives any of them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import traceback
from pathlib import Path

import pytest
from cluster_procs import descendants, is_running, wait_gone

from strom._cluster.errors import TaskManagerLostError
from strom._cluster.minicluster import MiniCluster
from strom.datastream import JobStatus, StreamExecutionEnvironment
from strom.errors import JobCancelledError, JobExecutionError, UserFunctionError
from strom.testing import TestingSink


def _env(p: int = 2) -> StreamExecutionEnvironment:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(p)
    return env


def _wait_running(client: object, min_records: int = 1, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = client.get_metrics()  # type: ignore[attr-defined]
        if sum(r["records_out"] for r in rows if r["vertex"].startswith("Source")) >= min_records:
            return
        time.sleep(0.02)
    raise AssertionError("the job did not start producing")


def explode_in_subtask_one(x: int) -> int:
    if x % 2 == 1:  # rebalanced: odd records reach one subtask only when p == 2
        raise ValueError(f"bad record {x}")
    return x


def test_user_error_in_remote_subtask_names_uid_and_subtask(minicluster: object) -> None:
    env = _env(2)
    (
        env.from_collection([*range(0, 40, 2), 7])
        .map(explode_in_subtask_one).name("explode").uid("explode-uid")
        .sink_to(TestingSink())
    )
    with pytest.raises(JobExecutionError) as info:
        env.execute("remote failure")
    cause = info.value.__cause__
    assert isinstance(cause, UserFunctionError)
    assert cause.operator_uid == "explode-uid" and cause.operator_name == "explode"
    assert cause.subtask_index in (0, 1)
    assert cause.job_id == info.value.job_id
    assert "explode-uid" in str(info.value) and "bad record 7" in str(info.value)
    original = cause.__cause__
    assert isinstance(original, ValueError)
    assert "in explode_in_subtask_one" in "".join(traceback.format_exception(original))
    # the session cluster is still usable
    sink = TestingSink()
    env2 = _env(2)
    env2.from_sequence(1, 10).sink_to(sink)
    env2.execute()
    assert sorted(sink.results) == list(range(1, 11))


def test_unpicklable_exception_is_rebuilt_with_type_and_message(minicluster: object) -> None:
    class OddError(Exception):
        def __init__(self, a: int, b: int) -> None:  # cannot be rebuilt from args
            super().__init__(f"odd {a} {b}")

    def fail(x: int) -> int:
        raise OddError(x, x)

    env = _env(2)
    env.from_sequence(1, 4).map(fail).uid("odd").sink_to(TestingSink())
    with pytest.raises(JobExecutionError, match="odd") as info:
        env.execute()
    assert isinstance(info.value.__cause__, UserFunctionError)
    assert "odd" in repr(info.value.__cause__.__cause__)


def test_killed_task_manager_fails_the_job_within_2s(own_cluster: MiniCluster) -> None:
    env = _env(2)
    env.from_sequence(1, 10**12).map(lambda x: (x % 10, x)).key_by(lambda r: r[0]) \
        .sum(1).sink_to(TestingSink())
    client = env.execute_async("to be killed")
    _wait_running(client, 10_000)
    victim = own_cluster.taskmanagers()[1]
    killed_at = time.monotonic()
    os.kill(victim.pid, signal.SIGKILL)
    with pytest.raises(JobExecutionError) as info:
        client.get_job_execution_result(timeout=10)
    elapsed = time.monotonic() - killed_at
    assert elapsed < 2.0, f"detected after {elapsed:.2f} s"
    message = str(info.value)
    assert victim.tm_id in message and f"pid {victim.pid}" in message
    assert "SIGKILL" in message
    assert isinstance(info.value.__cause__, TaskManagerLostError)
    assert client.get_job_status() is JobStatus.FAILED
    survivors = [h.pid for h in own_cluster.taskmanagers()]
    own_cluster.shutdown()
    assert wait_gone(own_cluster.pids()) == []
    assert not any(is_running(p) for p in survivors)


def test_cancel_stops_every_subtask(minicluster: MiniCluster) -> None:
    env = _env(2)
    env.from_sequence(1, 10**12).rebalance().map(lambda x: x).sink_to(TestingSink())
    client = env.execute_async("to be cancelled")
    _wait_running(client, 1000)
    client.cancel()
    with pytest.raises(JobCancelledError):
        client.get_job_execution_result(timeout=10)
    assert client.get_job_status() is JobStatus.CANCELED
    assert all(h.alive for h in minicluster.taskmanagers())


def test_job_cluster_leaves_no_process_behind(no_session_cluster: None) -> None:
    before = set(descendants(os.getpid()))
    env = _env(2)
    sink = TestingSink()
    env.from_sequence(1, 1000).rebalance().map(lambda x: -x).sink_to(sink)
    env.execute()
    assert len(sink.results) == 1000
    env = _env(2)
    env.from_sequence(1, 10).map(explode_in_subtask_one).sink_to(TestingSink())
    with pytest.raises(JobExecutionError):
        env.execute()
    left = [p for p in descendants(os.getpid()) if p not in before]
    assert wait_gone(left) == []


SCRIPT = textwrap.dedent(
    """
    import faulthandler
    import signal
    import sys
    from strom.datastream import StreamExecutionEnvironment
    from strom.testing import TestingSink

    # a terminal's Ctrl-C: a parent that runs us in the background (bash without job
    # control, nohup ... &) hands SIGINT down ignored, and Python then keeps ignoring it
    signal.signal(signal.SIGINT, signal.default_int_handler)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # stacks if the test times out

    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)
    env.from_sequence(1, 10**12).map(lambda x: (x % 3, x)).key_by(lambda r: r[0]) \\
        .sum(1).sink_to(TestingSink())
    print("started", flush=True)
    try:
        env.execute("until ctrl-c")
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
    """
)


def test_ctrl_c_cancels_and_leaves_no_process_behind(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=err, text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 20
        tree: list[int] = []
        while time.monotonic() < deadline and len(tree) < 3:  # launcher + 2 TaskManagers
            time.sleep(0.1)
            tree = descendants(proc.pid)
        assert len(tree) >= 3, tree
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)  # faulthandler: every thread's stack
            time.sleep(1)
            pytest.fail("Ctrl-C did not end the job within 15 s; client stacks:\n"
                        + stderr.read_text()[-20000:])
        assert rc == 130, stderr.read_text()[-5000:]
        assert "interrupted" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert wait_gone(tree) == []
