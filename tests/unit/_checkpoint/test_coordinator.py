"""CheckpointCoordinator, CheckpointStorage and restart strategies, against real files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from strom._checkpoint.coordinator import (
    CheckpointCoordinator,
    CompletedCheckpoint,
    OperatorInfo,
)
from strom._checkpoint.failure import CheckpointFailureReason
from strom._checkpoint.restart import create_restart_strategy
from strom._checkpoint.storage import CheckpointStorage, resolve_metadata_path
from strom.datastream.checkpoint_config import CheckpointConfig, RestartStrategies
from strom.errors import ConfigurationError


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def make(tmp_path: Path, **cfg: object) -> tuple[CheckpointCoordinator, Clock, list, list]:
    config = (
        CheckpointConfig()
        .set_checkpoint_interval(100)
        .set_checkpoint_storage(str(tmp_path))
        .to_dict()
    )
    config.update(cfg)
    clock = Clock()
    completed: list[CompletedCheckpoint] = []
    failed: list[str] = []
    storage = CheckpointStorage(str(tmp_path), "job1")
    coord = CheckpointCoordinator(
        config,
        storage,
        "job1",
        {("v1", 0), ("v1", 1)},
        [OperatorInfo("src", 2, 128), OperatorInfo("sum", 2, 128)],
        clock,
        lambda: 1_700_000_000_000 + clock.now,
        completed.append,
        failed.append,
    )
    return coord, clock, completed, failed


def ack(coord: CheckpointCoordinator, cid: int, subtask: int) -> bool:
    p = coord.pending[cid]
    name = coord.storage.write_file(p.directory, f"sum-{subtask}", b"state")
    return coord.acknowledge(cid, ("v1", subtask), {"sum": name})


def test_trigger_ack_complete_writes_metadata(tmp_path: Path) -> None:
    coord, _clock, completed, _ = make(tmp_path)
    p = coord.trigger_if_due()
    assert p is not None and p.checkpoint_id == 1
    assert coord.trigger_if_due() is None  # max concurrent 1 and interval not elapsed
    assert not ack(coord, 1, 0)
    assert ack(coord, 1, 1)
    assert [c.checkpoint_id for c in completed] == [1]
    meta = json.loads((tmp_path / "job1" / "chk-1" / "_metadata").read_text())
    assert meta["version"] == 1 and meta["checkpoint_id"] == 1
    assert meta["operators"]["sum"] == {
        "parallelism": 2,
        "max_parallelism": 128,
        "subtasks": {"0": "sum-0", "1": "sum-1"},
    }
    fs, d = resolve_metadata_path(str(tmp_path / "job1" / "chk-1" / "_metadata"))
    assert CheckpointStorage.read_metadata(fs, d)["kind"] == "checkpoint"
    assert not list((tmp_path / "job1" / "chk-1").glob(".*tmp"))  # atomic write left nothing


def test_interval_and_min_pause(tmp_path: Path) -> None:
    coord, clock, _completed, _ = make(tmp_path, min_pause_ms=500, max_concurrent=3)
    coord.trigger_if_due()
    ack(coord, 1, 0)
    clock.now = 50
    assert coord.trigger_if_due() is None  # pending + min pause: no overlap
    ack(coord, 1, 1)
    clock.now = 200
    assert coord.trigger_if_due() is None  # 150 ms since completion < 500 ms pause
    clock.now = 551
    assert coord.trigger_if_due() is not None


def test_subsumed_checkpoints_are_deleted(tmp_path: Path) -> None:
    coord, clock, _completed, _ = make(tmp_path, num_retained=2)
    for i in range(1, 5):
        clock.now = i * 100
        p = coord.trigger_if_due()
        assert p is not None
        ack(coord, p.checkpoint_id, 0)
        ack(coord, p.checkpoint_id, 1)
    assert sorted(os.listdir(tmp_path / "job1")) == ["chk-3", "chk-4"]
    assert coord.latest_completed().checkpoint_id == 4  # type: ignore[union-attr]
    assert [c for c, _ in coord.storage.completed_checkpoints()] == [3, 4]


def test_timeout_decline_and_tolerable_failures(tmp_path: Path) -> None:
    coord, clock, _completed, failed = make(tmp_path, timeout_ms=50, tolerable_failures=1)
    coord.trigger_if_due()
    clock.now = 60
    coord.check_timeouts()
    assert coord.pending == {} and failed == []
    assert not (tmp_path / "job1" / "chk-1").exists()  # aborted files are removed
    clock.now = 200
    coord.trigger_if_due()
    coord.decline(2, ("v1", 0), CheckpointFailureReason.CHECKPOINT_DECLINED)
    assert len(failed) == 1 and "more than 1 consecutive" in failed[0]


def test_finished_tasks_and_late_acks(tmp_path: Path) -> None:
    coord, _clock, completed, _ = make(tmp_path)
    coord.trigger_if_due()
    ack(coord, 1, 0)
    coord.task_finished(("v1", 1))
    assert [c.checkpoint_id for c in completed] == [1]
    assert not coord.acknowledge(1, ("v1", 0), {})  # late ack is ignored


def test_orphan_cleanup(tmp_path: Path) -> None:
    coord, _clock, _c, _f = make(tmp_path)
    (tmp_path / "job1" / "chk-77").mkdir()
    (tmp_path / "job1" / "chk-77" / "half-written").write_bytes(b"x")
    coord.trigger_if_due()
    removed = coord.cleanup_orphans()
    assert [Path(r).name for r in removed] == ["chk-77"]
    assert (tmp_path / "job1" / "chk-1").exists()  # pending is kept


def test_savepoints_are_not_subsumed_and_relocatable(tmp_path: Path) -> None:
    coord, _clock, completed, _ = make(tmp_path)
    sp_dir = coord.storage.savepoint_dir(str(tmp_path / "sp"), "job1")
    coord.trigger(savepoint_dir=sp_dir)
    ack(coord, 1, 0)
    ack(coord, 1, 1)
    assert completed[0].metadata["kind"] == "savepoint"
    moved = tmp_path / "moved"
    os.rename(sp_dir, moved)
    fs, d = resolve_metadata_path(str(moved))
    meta = CheckpointStorage.read_metadata(fs, d)
    assert (moved / meta["operators"]["sum"]["subtasks"]["0"]).read_bytes() == b"state"


def test_unknown_metadata_version_fails(tmp_path: Path) -> None:
    (tmp_path / "_metadata").write_text(json.dumps({"version": 99}))
    fs, d = resolve_metadata_path(str(tmp_path))
    with pytest.raises(ValueError, match="version 99"):
        CheckpointStorage.read_metadata(fs, d)
    with pytest.raises(FileNotFoundError):
        resolve_metadata_path(str(tmp_path / "nope"))


def test_restart_strategies() -> None:
    clock = Clock()
    s = create_restart_strategy(RestartStrategies.fixed_delay_restart(2, 100), clock)
    results = []
    for _ in range(3):
        s.notify_failure()
        results.append((s.can_restart(), s.backoff_ms()))
    assert results == [(True, 100), (True, 100), (False, 100)]
    s = create_restart_strategy(None, clock)
    s.notify_failure()
    assert not s.can_restart()
    s = create_restart_strategy(RestartStrategies.failure_rate_restart(2, 1000, 10), clock)
    s.notify_failure()
    clock.now = 500
    s.notify_failure()
    assert s.can_restart()
    clock.now = 900
    s.notify_failure()
    assert not s.can_restart()  # 3 failures within 1 s
    clock.now = 2000
    s.notify_failure()
    assert s.can_restart()  # the old ones left the interval
    s = create_restart_strategy(
        RestartStrategies.exponential_delay_restart(10, 50, 2.0, 10_000, 0.0), clock
    )
    backoffs = []
    for _ in range(5):
        s.notify_failure()
        backoffs.append(s.backoff_ms())
    assert backoffs == [10, 20, 40, 50, 50]
    clock.now += 20_000
    s.notify_failure()
    assert s.backoff_ms() == 10  # reset after a quiet period


def test_checkpoint_config_validation() -> None:
    c = CheckpointConfig()
    assert not c.is_checkpointing_enabled()
    with pytest.raises(ConfigurationError):
        c.set_checkpoint_interval(0)
    with pytest.raises(ConfigurationError):
        c.set_max_concurrent_checkpoints(0)
    with pytest.raises(ConfigurationError):
        c.set_tolerable_checkpoint_failure_number(-1)
    from datetime import timedelta

    c.set_checkpoint_interval(timedelta(seconds=2)).set_min_pause_between_checkpoints(500)
    assert c.get_checkpoint_interval() == 2000 and c.get_min_pause_between_checkpoints() == 500
