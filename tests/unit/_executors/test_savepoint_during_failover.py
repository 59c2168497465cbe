"""A savepoint requested while an attempt fails is neither lost nor left waiting forever.

Before the fix, ``JobCheckpointing.detach`` cleared every queued event, including the
request's own start action: the caller of ``trigger_savepoint`` (the CLI, the JobMaster)
then waited until its timeout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from strom._executors.checkpointing import JobCheckpointing
from strom._runtime.elements import CheckpointBarrier
from strom.datastream import StreamExecutionEnvironment


class RecordingTarget:
    """A CheckpointTarget that records what the checkpointing asks of the tasks."""

    def __init__(self) -> None:
        self.triggered: list[tuple[list[Any], int, bool]] = []

    def trigger_tasks(self, keys: list[Any], barrier: CheckpointBarrier) -> None:
        self.triggered.append((keys, barrier.checkpoint_id, barrier.is_savepoint))

    def notify_tasks(self, checkpoint_id: int, final: bool) -> None:
        pass

    def abort_tasks(self, checkpoint_id: int) -> None:
        pass

    def snapshot_enumerators(self, checkpoint_id: int) -> dict[str, Any]:
        return {}


def _checkpointing(tmp_path: Path) -> JobCheckpointing:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.enable_checkpointing(3_600_000)  # only explicit savepoints
    env.get_checkpoint_config().set_checkpoint_storage(f"file://{tmp_path}/chk")
    env.from_collection([1, 2, 3]).uid("src").map(lambda x: x).uid("m").print()
    return JobCheckpointing(env.get_job_graph("sp"), "job-sp", lambda msg: None)


def test_request_queued_during_failover_runs_on_the_next_attempt(tmp_path: Path) -> None:
    cp = _checkpointing(tmp_path)
    try:
        first = RecordingTarget()
        cp.attach(first)
        answers: list[tuple[str | None, BaseException | None]] = []
        cp.trigger_savepoint(str(tmp_path / "sp"), lambda p, e: answers.append((p, e)))
        cp.detach()  # the attempt fails before the loop picked the request up
        second = RecordingTarget()
        cp.attach(second)
        cp.poll()
        assert first.triggered == []
        assert [(cid, sp) for _, cid, sp in second.triggered] == [(1, True)]
        assert answers == []  # pending: the new attempt's tasks acknowledge it
    finally:
        cp.close(retain=False)


def test_request_still_queued_at_close_is_answered_with_an_error(tmp_path: Path) -> None:
    cp = _checkpointing(tmp_path)
    cp.attach(RecordingTarget())
    answers: list[tuple[str | None, BaseException | None]] = []
    cp.trigger_savepoint(str(tmp_path / "sp"), lambda p, e: answers.append((p, e)))
    cp.detach()
    cp.close(retain=False)  # the job ends without another attempt
    assert len(answers) == 1
    path, error = answers[0]
    assert path is None
    assert isinstance(error, RuntimeError) and "not running" in str(error)
