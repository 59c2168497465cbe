"""Checkpoints and recovery on the in-process runtime: exactly-once output after failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from counting_job import counting_job, read_output

from strom.connectors import DataGeneratorSource
from strom.connectors.file import Encoder, FileSink, FileSource, StreamFormat
from strom.datastream import (
    MapFunction,
    RestartStrategies,
    RuntimeContext,
    StreamExecutionEnvironment,
)
from strom.errors import JobExecutionError


class FailOnce(MapFunction):
    """Raises at the given record in the first attempt only."""

    def __init__(self, at: int) -> None:
        self.at = at

    def open(self, runtime_context: RuntimeContext) -> None:
        self.attempt = runtime_context.get_attempt_number()

    def map(self, value: Any) -> Any:
        if self.attempt == 0 and value[1] == self.at:
            raise RuntimeError(f"injected failure at {value}")
        return value


@pytest.mark.parametrize("backend", ["hashmap", "rocksdb"])
def test_exactly_once_file_output_after_failure(tmp_path: Path, backend: str) -> None:
    n = 4000
    env = StreamExecutionEnvironment.get_execution_environment()
    env.configure("state.backend", backend)
    env.enable_checkpointing(20)
    env.get_checkpoint_config().set_checkpoint_storage(str(tmp_path / "chk"))
    env.set_restart_strategy(RestartStrategies.fixed_delay_restart(3, 10))
    out = tmp_path / "out"
    source = DataGeneratorSource(lambda i: (f"k{i % 7}", i), n, 20_000.0)
    (
        env.from_source(source, None, "gen")
        .uid("gen")
        .map(FailOnce(2500))
        .uid("fail-once")
        .key_by(lambda r: r[0])
        .reduce(lambda a, b: (a[0], b[1], a[2] + 1) if len(a) == 3 else (a[0], b[1], 2))
        .uid("count")
        .sink_to(FileSink.for_row_format(str(out), Encoder.json_lines_encoder()).build())
        .uid("sink")
    )
    env.execute("recovering job")
    rows = read_output(out)
    # every update exactly once: per key the running counts 1..n_k appear once each
    per_key: dict[str, list[int]] = {}
    for row in rows:
        per_key.setdefault(row[0], []).append(1 if len(row) == 2 else row[2])
    assert sorted(per_key) == [f"k{i}" for i in range(7)]
    for k, counts in per_key.items():
        expected = len([i for i in range(n) if f"k{i % 7}" == k])
        assert sorted(counts) == list(range(1, expected + 1)), k
    # only retained checkpoints are left (one by default), no orphans
    chk = [p.name for p in (tmp_path / "chk").iterdir()]
    assert len(chk) == 1
    entries = sorted(p.name for p in (tmp_path / "chk" / chk[0]).iterdir())
    checkpoints = [e for e in entries if e.startswith("chk-")]
    assert len(checkpoints) == 1
    # RocksDB checkpoints are incremental: their SST files live in the job's shared/
    assert entries == sorted([*checkpoints, *(["shared"] if backend == "rocksdb" else [])])


def test_no_restart_strategy_fails_the_job(tmp_path: Path) -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.enable_checkpointing(20)
    env.get_checkpoint_config().set_checkpoint_storage(str(tmp_path / "chk"))
    source = DataGeneratorSource(lambda i: ("k", i), 100)
    env.from_source(source, None, "gen").map(FailOnce(50)).print()
    with pytest.raises(JobExecutionError, match="injected failure"):
        env.execute()


def test_savepoint_restore_from_retained_checkpoint(tmp_path: Path) -> None:
    """A job restored from a retained checkpoint continues with its state."""
    chk = tmp_path / "chk"
    env = StreamExecutionEnvironment.get_execution_environment()
    env.enable_checkpointing(10)
    env.get_checkpoint_config().set_checkpoint_storage(str(chk))
    src = tmp_path / "in.txt"
    src.write_text("".join(f"w{i % 3}\n" for i in range(30)))
    fs = FileSource.for_record_stream_format(StreamFormat.text_line_format(), str(src)).build()
    env.from_source(fs, None, "lines").uid("lines").map(lambda w: (w, 1)).uid("pair").key_by(0).sum(
        1
    ).uid("counts").sink_to(
        FileSink.for_row_format(str(tmp_path / "o1"), Encoder.json_lines_encoder()).build()
    ).uid("sink")
    env.execute()
    final: dict[str, int] = {}
    for w, c in read_output(tmp_path / "o1"):
        final[w] = max(final.get(w, 0), c)
    assert final == {"w0": 10, "w1": 10, "w2": 10}
    job_dir = next(chk.iterdir())
    final = next(p for p in job_dir.iterdir() if p.name.startswith("chk-"))
    # restoring the final checkpoint: sources are at their end, state has the counts
    env2 = StreamExecutionEnvironment.get_execution_environment()
    env2.set_savepoint_restore(str(final))
    fs2 = FileSource.for_record_stream_format(StreamFormat.text_line_format(), str(src)).build()
    env2.from_source(fs2, None, "lines").uid("lines").map(lambda w: (w, 1)).uid("pair").key_by(
        0
    ).sum(1).uid("counts").sink_to(
        FileSink.for_row_format(str(tmp_path / "o2"), Encoder.json_lines_encoder()).build()
    ).uid("sink")
    env2.execute()
    assert read_output(tmp_path / "o2") == []  # nothing left to read: no duplicates


def test_stop_with_savepoint_and_resume(tmp_path: Path) -> None:
    """Stop with a savepoint mid-stream, resume from it: every record counted once."""
    n = 3000
    env = StreamExecutionEnvironment.get_execution_environment()
    env.enable_checkpointing(60_000)  # savepoints only
    env.get_checkpoint_config().set_checkpoint_storage(str(tmp_path / "chk"))
    counting_job(env, tmp_path / "o1", n, 10_000.0)
    client = env.execute_async("first")
    import time

    time.sleep(0.1)
    path = client.stop_with_savepoint(str(tmp_path / "savepoints"), timeout=20)
    assert client.get_job_status().name == "FINISHED"
    assert Path(path, "_metadata").exists()
    first = read_output(tmp_path / "o1")
    assert 0 < len(first) < n  # stopped mid-stream
    env2 = StreamExecutionEnvironment.get_execution_environment()
    env2.enable_checkpointing(60_000)
    env2.get_checkpoint_config().set_checkpoint_storage(str(tmp_path / "chk"))
    env2.set_savepoint_restore(path)
    counting_job(env2, tmp_path / "o2", n, 1_000_000.0)
    env2.execute("resumed")
    rows = first + read_output(tmp_path / "o2")
    assert len(rows) == n  # one update per record, none lost, none twice
    final: dict[str, int] = {}
    for row in rows:
        final[row[0]] = max(final.get(row[0], 0), row[2] if len(row) == 3 else 1)
    assert final == {f"k{i}": n // 5 for i in range(5)}


def test_savepoint_needs_checkpointing() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_source(DataGeneratorSource(lambda i: i, None, 100.0), None, "g").print()
    client = env.execute_async()
    try:
        with pytest.raises(ValueError, match="enable_checkpointing"):
            client.trigger_savepoint("/tmp/unused", timeout=5)
    finally:
        client.cancel()
